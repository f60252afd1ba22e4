//! Who owns firewall state: one attachment of one network, written as the tag
//! `network/containerID/ifname` on every nftables element and iptables rule a plugin makes,
//! so DEL finds what an attachment owns and GC what no valid attachment owns.

use cni_spec::Attachment;

/// The owner tag of one attachment.
pub fn tag(network: &str, container_id: &str, ifname: &str) -> String {
    format!("{network}/{container_id}/{ifname}")
}

/// Whether an owner tag belongs to `network` and names an attachment not in `valid`.
pub fn is_stale(owner: &str, network: &str, valid: &[Attachment]) -> bool {
    let mut parts = owner.splitn(3, '/');
    let (Some(net), Some(id), Some(ifname)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    net == network && !valid.iter().any(|a| a.container_id == id && a.ifname == ifname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_owners() {
        let valid = vec![Attachment { container_id: "keep".into(), ifname: "eth0".into() }];
        assert!(is_stale("net/gone/eth0", "net", &valid));
        assert!(!is_stale("net/keep/eth0", "net", &valid));
        assert!(is_stale("net/keep/eth1", "net", &valid));
        assert!(!is_stale("other/gone/eth0", "net", &valid));
        assert!(!is_stale("garbage", "net", &valid));
    }

    #[test]
    fn tag_is_network_container_ifname() {
        assert_eq!(tag("net", "c1", "eth0"), "net/c1/eth0");
    }
}
