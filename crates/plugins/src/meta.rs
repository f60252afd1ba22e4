//! What chained ("meta") plugins share: they run after an interface plugin, read its result
//! (`prevResult`), change something about the attachment and hand the result on as their
//! own. Chaining exists since spec 0.3.0, so that is where they start. Every plugin's CHECK
//! reads `prevResult` too.

use cni_spec::{CniResult, Error, NetConf, Version};
use netns::NetNs;
use nl::{Handle, Link};

use crate::kernel::nl_error;

/// The spec versions a chained plugin answers.
pub const CHAINED_VERSIONS: [Version; 5] =
    [Version::V0_3_0, Version::V0_3_1, Version::V0_4_0, Version::V1_0_0, Version::V1_1_0];

/// `prevResult`, read in the configuration's version; its absence is code 7.
pub fn prev_result(conf: &NetConf) -> Result<CniResult, Error> {
    conf.prev_result()?.ok_or_else(|| {
        Error::invalid_config(format!(
            "{} must be called as a chained plugin: the configuration has no prevResult",
            conf.plugin_type
        ))
    })
}

/// CHECK's `prevResult`, which the runtime always passes; its absence is code 7.
pub fn prev_result_for_check(conf: &NetConf) -> Result<CniResult, Error> {
    conf.prev_result()?.ok_or_else(|| Error::invalid_config("CHECK needs prevResult from the runtime"))
}

/// The host end of the veth whose container end is `ifname`; `None` when the interface is
/// gone or is not a veth with a peer in the host.
pub fn veth_peer(host: &Handle, cont: &Handle, ifname: &str) -> Result<Option<Link>, Error> {
    let Some(link) = cont.link_get(ifname).map_err(nl_error)? else { return Ok(None) };
    if link.kind.as_deref() != Some("veth") {
        return Ok(None);
    }
    let Some(peer_index) = link.link else { return Ok(None) };
    let peer = host.link_by_index(peer_index).map_err(nl_error)?;
    // Indexes are per namespace: the link found must point back at the container end.
    Ok(peer.filter(|p| p.link == Some(link.index) && p.kind.as_deref() == Some("veth")))
}

/// The host-side veth of the attachment, as the reference finds it: the peer of `ifname`
/// inside the container, which must also be an interface of `result` outside any sandbox.
pub fn host_veth(
    host: &Handle,
    cont: &Handle,
    cont_ns: &NetNs,
    ifname: &str,
    result: &CniResult,
) -> Result<Link, Error> {
    let peer = veth_peer(host, cont, ifname)?.ok_or_else(|| {
        Error::internal(format!(
            "container interface {ifname} in netns {} has no veth peer in the host",
            cont_ns.path().display()
        ))
    })?;
    if !result.interfaces.iter().any(|i| i.sandbox.is_none() && i.name == peer.name) {
        return Err(Error::internal(format!(
            "the host end {} of {ifname} is not among prevResult's host interfaces",
            peer.name
        )));
    }
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_prev_result_is_code_7_naming_the_plugin() {
        let conf = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"sbr"}"#).unwrap();
        let err = prev_result(&conf).unwrap_err();
        assert_eq!(err.code.code(), 7);
        assert!(err.msg.starts_with("sbr must be called as a chained plugin"), "{err}");
    }

    #[test]
    fn check_without_prev_result_is_code_7() {
        let conf = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"n","type":"bridge"}"#).unwrap();
        let err = prev_result_for_check(&conf).unwrap_err();
        assert_eq!((err.code.code(), err.msg.as_str()), (7, "CHECK needs prevResult from the runtime"));
    }

    #[test]
    fn prev_result_is_read_in_the_config_version() {
        let conf = NetConf::parse(
            br#"{"cniVersion":"0.3.1","name":"n","type":"sbr","prevResult":{"cniVersion":"0.3.1",
                "ips":[{"version":"4","address":"10.1.0.5/24"}]}}"#,
        )
        .unwrap();
        let r = prev_result(&conf).unwrap();
        assert_eq!(r.cni_version, Version::V0_3_1);
        assert_eq!(r.ips[0].address.to_string(), "10.1.0.5/24");
    }
}
