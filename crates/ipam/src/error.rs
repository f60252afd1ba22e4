//! The crate's error type and the coarse [`ErrorKind`] a plugin maps to a CNI error code.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

/// What went wrong, coarsely: the one thing a CNI wrapper needs to pick an error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The `ipam` configuration (or the network name) is unusable.
    InvalidConfig,
    /// The caller's request is unusable: a malformed or unsatisfiable requested IP,
    /// an empty container id or ifname.
    InvalidRequest,
    /// A range set has no free address left.
    Exhausted,
    /// The store could not be read or written.
    Io,
    /// The address is taken: requested IP reserved or equal to the gateway, the
    /// attachment already holds an address in the range set, or it belongs to someone else.
    Conflict,
    /// Nothing is reserved for the attachment (CHECK).
    NotFound,
}

/// A problem in one field of the configuration; [`Error::Config`] says which field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing")]
    Missing,
    #[error("expected {expected}, found {found}")]
    WrongType { expected: &'static str, found: String },
    #[error("invalid CIDR {value:?}: {reason}")]
    BadCidr { value: String, reason: String },
    #[error("invalid IP address {value:?}: {reason}")]
    BadIp { value: String, reason: String },
    #[error("network {subnet} too small to allocate from")]
    SubnetTooSmall { subnet: IpNet },
    #[error(
        "network {subnet} has host bits set: for a prefix length of {} the network address is {}",
        subnet.prefix_len(),
        subnet.network()
    )]
    HostBitsSet { subnet: IpNet },
    #[error("network {subnet} is IPv4-mapped IPv6: write it as an IPv4 network")]
    MappedSubnet { subnet: IpNet },
    #[error("{ip} is not in network {subnet}")]
    NotInSubnet { ip: IpAddr, subnet: IpNet },
    #[error("{ip} is not the address family of network {subnet}")]
    FamilyMismatch { ip: IpAddr, subnet: IpNet },
    #[error("rangeEnd {end} is before rangeStart {start}")]
    EndBeforeStart { start: IpAddr, end: IpAddr },
    #[error("empty range set")]
    EmptyRangeSet,
    #[error("mixed address families")]
    MixedFamilies,
    #[error("subnets {first} and {second} overlap")]
    RangesOverlap { first: String, second: String },
    #[error("no IP ranges specified")]
    NoRanges,
    #[error("range set {first} overlaps with {second}")]
    RangeSetsOverlap { first: usize, second: usize },
}

/// Every failure of this crate. Messages follow the reference host-local's wording where it
/// has one, lower-cased, so logs read the same after a switch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {source}")]
    Config { field: String, source: ConfigError },
    #[error("invalid network name {name:?}: {reason}")]
    NetworkName { name: String, reason: &'static str },
    #[error("invalid requested ip {value:?}: {reason}")]
    RequestedIp { value: String, reason: String },
    #[error("invalid {what} {value:?}: {reason}")]
    Attachment { what: &'static str, value: String, reason: &'static str },
    #[error("failed to allocate all requested IPs: {}", join_ips(ips))]
    Unfulfilled { ips: Vec<IpAddr> },
    #[error("failed to allocate for range {index}: {source}")]
    RangeSet { index: usize, source: Box<Error> },
    #[error("no IP addresses available in range set: {range_set}")]
    Exhausted { range_set: String },
    #[error("requested IP address {ip} is not available in range set {range_set}")]
    Unavailable { ip: IpAddr, range_set: String },
    #[error("requested ip {ip} is subnet's gateway")]
    RequestedGateway { ip: IpAddr },
    #[error("{ip} has been allocated to {id}, duplicate allocation is not allowed")]
    Duplicate { ip: IpAddr, id: String },
    #[error("failed to find address added by container {id} on {ifname}")]
    NothingReserved { id: String, ifname: String },
    #[error("{ip} is not reserved for container {id} on {ifname}")]
    NotReserved { ip: IpAddr, id: String, ifname: String },
    #[error("{ip} is reserved for {owner}, not for container {id} on {ifname}")]
    ReservedByOther { ip: IpAddr, owner: String, id: String, ifname: String },
    #[error("{op} {}: {source}", path.display())]
    Io { op: &'static str, path: PathBuf, source: io::Error },
    #[error("{}", join_errors(.0))]
    Many(Vec<Error>),
}

impl Error {
    /// The coarse class of this error, for mapping to a CNI error code in one place.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. } | Error::NetworkName { .. } => ErrorKind::InvalidConfig,
            Error::RequestedIp { .. } | Error::Attachment { .. } | Error::Unfulfilled { .. } => {
                ErrorKind::InvalidRequest
            }
            Error::RangeSet { source, .. } => source.kind(),
            Error::Exhausted { .. } => ErrorKind::Exhausted,
            Error::Unavailable { .. }
            | Error::RequestedGateway { .. }
            | Error::Duplicate { .. }
            | Error::ReservedByOther { .. } => ErrorKind::Conflict,
            Error::NothingReserved { .. } | Error::NotReserved { .. } => ErrorKind::NotFound,
            Error::Io { .. } => ErrorKind::Io,
            Error::Many(errors) => errors.first().map_or(ErrorKind::Io, Error::kind),
        }
    }

    /// Shorthand for an I/O failure on `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { op, path: path.into(), source }
    }

    /// Shorthand for a configuration problem in `field`.
    pub(crate) fn config(field: impl Into<String>, source: ConfigError) -> Error {
        Error::Config { field: field.into(), source }
    }

    /// Prefix the field of a configuration error with the path of the object it sits in.
    pub(crate) fn within(self, prefix: &str) -> Error {
        match self {
            Error::Config { field, source } if !prefix.is_empty() => {
                Error::Config { field: format!("{prefix}.{field}"), source }
            }
            other => other,
        }
    }
}

fn join_ips(ips: &[IpAddr]) -> String {
    let parts: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
    parts.join(" ")
}

// The reference joins the errors of a DEL over several range sets with ";".
fn join_errors(errors: &[Error]) -> String {
    let parts: Vec<String> = errors.iter().map(Error::to_string).collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_set_error_takes_the_kind_of_its_cause() {
        let inner = Error::Exhausted { range_set: "10.0.0.2-10.0.0.6".into() };
        let err = Error::RangeSet { index: 1, source: Box::new(inner) };
        assert_eq!(err.kind(), ErrorKind::Exhausted);
        assert_eq!(
            err.to_string(),
            "failed to allocate for range 1: no IP addresses available in range set: 10.0.0.2-10.0.0.6"
        );
    }

    #[test]
    fn config_error_names_field_and_value() {
        let err = Error::config(
            "ipam.ranges[0][1].subnet",
            ConfigError::BadCidr { value: "10.0.0/24".into(), reason: "invalid IP address syntax".into() },
        );
        assert_eq!(
            err.to_string(),
            "ipam.ranges[0][1].subnet: invalid CIDR \"10.0.0/24\": invalid IP address syntax"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }

    #[test]
    fn host_bits_message_names_network() {
        let subnet: IpNet = "10.0.0.5/24".parse().unwrap();
        assert_eq!(
            ConfigError::HostBitsSet { subnet }.to_string(),
            "network 10.0.0.5/24 has host bits set: for a prefix length of 24 the network address is 10.0.0.0"
        );
    }

    #[test]
    fn many_joins_messages_and_takes_first_kind() {
        let err = Error::Many(vec![
            Error::NothingReserved { id: "a".into(), ifname: "eth0".into() },
            Error::io("remove", "/x", io::Error::other("boom")),
        ]);
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("; remove /x: boom"));
    }
}
