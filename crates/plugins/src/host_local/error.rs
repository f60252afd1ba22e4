//! host-local's error codes: the one place where an allocator error becomes a CNI error.
//!
//! | code | meaning |
//! |------|---------|
//! | 1    | the config needs more than one address per family, which its cniVersion (< 0.3.0) cannot carry |
//! | 4    | `CNI_ARGS` `IP=` is not an address; the container id or ifname cannot be stored |
//! | 5    | the data dir or the `resolvConf` file cannot be read or written |
//! | 7    | invalid `ipam` config; a requested address (`args`, `runtimeConfig`) is malformed or in no range set; GC without a valid-attachment list |
//! | 50   | STATUS: the data dir is not usable, or a range set is exhausted |
//! | 100  | [`RANGE_EXHAUSTED`] |
//! | 101  | [`ADDRESS_TAKEN`] |
//! | 102  | [`NOT_RESERVED`] |
//!
//! The reference host-local reports all of these as 999. Exhaustion and a taken address get
//! codes of their own rather than 11: retrying the same ADD does not help until someone
//! else's DEL runs, and a runtime (or an operator reading events) should be able to tell the
//! two apart.

use cni_spec::{Error, ErrorCode};
use ipam::ErrorKind;

/// A range set has no free address left (`no IP addresses available in range set: ...`).
pub const RANGE_EXHAUSTED: u32 = 100;
/// A requested address is reserved by someone else or is the gateway, or the attachment
/// already holds an address in the range set.
pub const ADDRESS_TAKEN: u32 = 101;
/// CHECK: nothing, or not the `prevResult`'s address, is reserved for the attachment.
pub const NOT_RESERVED: u32 = 102;

/// The CNI error for an allocator failure, message unchanged.
pub fn to_cni(err: ipam::Error) -> Error {
    Error::new(code_of(&err), err.to_string())
}

fn code_of(err: &ipam::Error) -> ErrorCode {
    // Empty or multi-line container ids and ifnames come from CNI_CONTAINERID/CNI_IFNAME.
    if matches!(err, ipam::Error::Attachment { .. }) {
        return ErrorCode::InvalidEnvironment;
    }
    match err.kind() {
        ErrorKind::InvalidConfig | ErrorKind::InvalidRequest => ErrorCode::InvalidConfig,
        ErrorKind::Io => ErrorCode::Io,
        ErrorKind::Exhausted => ErrorCode::Plugin(RANGE_EXHAUSTED),
        ErrorKind::Conflict => ErrorCode::Plugin(ADDRESS_TAKEN),
        ErrorKind::NotFound => ErrorCode::Plugin(NOT_RESERVED),
    }
}

/// A requested address in `CNI_ARGS` that does not parse: the environment is at fault (4).
pub fn cni_args_error(err: ipam::Error) -> Error {
    Error::invalid_env(format!("CNI_ARGS IP: {err}"))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    fn code(err: ipam::Error) -> u32 {
        to_cni(err).code.code()
    }

    #[test]
    fn every_kind_has_its_code() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let exhausted = ipam::Error::Exhausted { range_set: "10.0.0.2-10.0.0.3".into() };
        assert_eq!(code(ipam::Error::RangeSet { index: 0, source: Box::new(exhausted) }), 100);
        assert_eq!(code(ipam::Error::Unavailable { ip, range_set: "x".into() }), 101);
        assert_eq!(code(ipam::Error::RequestedGateway { ip }), 101);
        assert_eq!(code(ipam::Error::Duplicate { ip, id: "c".into() }), 101);
        let nothing = ipam::Error::NothingReserved { id: "c".into(), ifname: "eth0".into() };
        assert_eq!(code(nothing), 102);
        assert_eq!(code(ipam::Error::Unfulfilled { ips: vec![ip] }), 7);
        assert_eq!(code(ipam::Error::RequestedIp { value: "x".into(), reason: "bad".into() }), 7);
        let io = std::io::Error::other("boom");
        assert_eq!(code(ipam::Error::Io { op: "open", path: "/x".into(), source: io }), 5);
        let attachment = ipam::Error::Attachment { what: "ifname", value: String::new(), reason: "empty" };
        assert_eq!(code(attachment), 4);
    }

    #[test]
    fn message_is_the_allocators() {
        let err = to_cni(ipam::Error::Exhausted { range_set: "10.0.0.2-10.0.0.3".into() });
        assert_eq!(err.msg, "no IP addresses available in range set: 10.0.0.2-10.0.0.3");
        let bad = ipam::Error::RequestedIp { value: "x".into(), reason: "bad".into() };
        let env = cni_args_error(bad);
        assert_eq!(env.code.code(), 4);
        assert_eq!(env.msg, "CNI_ARGS IP: invalid requested ip \"x\": bad");
    }
}
