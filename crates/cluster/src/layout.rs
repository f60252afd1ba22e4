//! Where things live in the datastore (docs/agent.md has the full table):
//!
//! ```text
//! /twill/nodes/NAME          NodeRecord, attached to the node's lease
//! /twill/subnets/CIDR        SubnetOwner, attached to the owner's lease; CIDR with '/' as '-'
//!                            (10.244.1.0-24, fd00:10:244:1::-64), as flannel spells it
//! /twill/pods/NS/NAME        PodRecord        (published by the pod's node, from its journal)
//! /twill/podmeta/NS/NAME     PodMeta          (labels, annotations, ports: `twill cluster`)
//! /twill/namespaces/NAME     NamespaceRecord  (`twill cluster apply|label`)
//! /twill/policies/NS/NAME    PolicyRecord     (`twill cluster apply`)
//! /twill/adminpolicies/NAME  AdminPolicyRecord (AdminNetworkPolicy: `twill cluster apply`)
//! /twill/baselinepolicies/default  AdminPolicyRecord (BaselineAdminNetworkPolicy)
//! /twill/bgppeers/NAME       BgpPeerRecord    (`twill cluster apply`)
//! /twill/netattachdefs/NS/NAME  NetAttachDef (`twill cluster apply`; read by the multus plugin)
//! /twill/ipam/NET/ips/CIDR/IP   IpReservation  (the `whereabouts` IPAM plugin, by CAS; NET is
//!                            the config's `network_name`, `_` when unset; CIDR as for subnets)
//! /twill/ipam/NET/claims/IP  IpReservation    (the same, per address across the network's
//!                            ranges: what keeps overlapping ranges from giving one IP twice)
//! ```

use ipnet::IpNet;

use crate::record::RecordError;

pub const ROOT: &str = "/twill/";
pub const NODES: &str = "/twill/nodes/";
pub const SUBNETS: &str = "/twill/subnets/";
pub const PODS: &str = "/twill/pods/";
pub const POD_META: &str = "/twill/podmeta/";
pub const NAMESPACES: &str = "/twill/namespaces/";
pub const POLICIES: &str = "/twill/policies/";
pub const ADMIN_POLICIES: &str = "/twill/adminpolicies/";
pub const BASELINE_POLICIES: &str = "/twill/baselinepolicies/";
pub const BGPPEERS: &str = "/twill/bgppeers/";
pub const NET_ATTACH_DEFS: &str = "/twill/netattachdefs/";
pub const IPAM: &str = "/twill/ipam/";
/// The key component of the unnamed network (not a valid name, so no `network_name` meets it).
pub const UNNAMED_NETWORK: &str = "_";

/// Names (nodes, namespaces, pods, policies) are Kubernetes-style: 1–253 bytes of lower-case
/// letters, digits, `-` and `.`, starting and ending with a letter or digit. That keeps them
/// one path component in every key.
pub fn check_name(what: &'static str, name: &str) -> Result<(), RecordError> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let ok_end = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let reason = if name.is_empty() || name.len() > 253 {
        "must be 1 to 253 characters"
    } else if !name.chars().all(ok_char) {
        "may contain only lower-case letters, digits, '-' and '.'"
    } else if !ok_end(name.chars().next()) || !ok_end(name.chars().last()) {
        "must start and end with a letter or digit"
    } else {
        return Ok(());
    };
    Err(RecordError::InvalidName { what, name: name.to_string(), reason })
}

pub fn node_key(name: &str) -> String {
    format!("{NODES}{name}")
}

/// `/twill/subnets/10.244.1.0-24`.
pub fn subnet_key(net: IpNet) -> String {
    format!("{SUBNETS}{}-{}", net.network(), net.prefix_len())
}

/// The subnet a `/twill/subnets/...` key names.
pub fn subnet_of_key(key: &str) -> Option<IpNet> {
    let (addr, len) = key.strip_prefix(SUBNETS)?.rsplit_once('-')?;
    let net = IpNet::new(addr.parse().ok()?, len.parse().ok()?).ok()?;
    (net.trunc() == net).then_some(net)
}

pub fn pod_key(namespace: &str, name: &str) -> String {
    format!("{PODS}{namespace}/{name}")
}

pub fn pod_meta_key(namespace: &str, name: &str) -> String {
    format!("{POD_META}{namespace}/{name}")
}

pub fn namespace_key(name: &str) -> String {
    format!("{NAMESPACES}{name}")
}

pub fn policy_key(namespace: &str, name: &str) -> String {
    format!("{POLICIES}{namespace}/{name}")
}

/// Where the admin policies of `tier` live.
pub fn admin_policies_prefix(tier: policy::Tier) -> &'static str {
    match tier {
        policy::Tier::Admin => ADMIN_POLICIES,
        policy::Tier::Baseline => BASELINE_POLICIES,
    }
}

/// `/twill/adminpolicies/NAME`, `/twill/baselinepolicies/default`.
pub fn admin_policy_key(tier: policy::Tier, name: &str) -> String {
    format!("{}{name}", admin_policies_prefix(tier))
}

/// `/twill/bgppeers/NAME`.
pub fn bgppeer_key(name: &str) -> String {
    format!("{BGPPEERS}{name}")
}

/// `/twill/netattachdefs/NS/NAME`.
pub fn net_attach_def_key(namespace: &str, name: &str) -> String {
    format!("{NET_ATTACH_DEFS}{namespace}/{name}")
}

/// `/twill/ipam/NET/`: everything of one IPAM network, read in one listing.
pub fn ipam_network_prefix(network: &str) -> String {
    let net = if network.is_empty() { UNNAMED_NETWORK } else { network };
    format!("{IPAM}{net}/")
}

/// `/twill/ipam/NET/ips/10.10.0.0-24/10.10.0.7`.
pub fn ip_reservation_key(network: &str, range: IpNet, ip: std::net::IpAddr) -> String {
    format!("{}ips/{}-{}/{ip}", ipam_network_prefix(network), range.network(), range.prefix_len())
}

/// `/twill/ipam/NET/claims/10.10.0.7`.
pub fn ip_claim_key(network: &str, ip: std::net::IpAddr) -> String {
    format!("{}claims/{ip}", ipam_network_prefix(network))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_keys_round_trip() {
        for cidr in ["10.244.1.0/24", "fd00:10:244:1::/64", "10.0.0.0/8"] {
            let net: IpNet = cidr.parse().unwrap();
            assert_eq!(subnet_of_key(&subnet_key(net)), Some(net), "{cidr}");
        }
        assert_eq!(subnet_key("10.244.1.0/24".parse().unwrap()), "/twill/subnets/10.244.1.0-24");
        assert_eq!(subnet_key("fd00:10:244:1::/64".parse().unwrap()), "/twill/subnets/fd00:10:244:1::-64");
        for bad in [
            "/twill/subnets/10.244.1.1-24",
            "/twill/subnets/x-24",
            "/twill/nodes/a-1",
            "/twill/subnets/1.2.3.0",
        ] {
            assert_eq!(subnet_of_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn record_keys() {
        assert_eq!(node_key("node-1"), "/twill/nodes/node-1");
        assert_eq!(pod_key("default", "web-1"), "/twill/pods/default/web-1");
        assert_eq!(namespace_key("default"), "/twill/namespaces/default");
        assert_eq!(policy_key("default", "deny-all"), "/twill/policies/default/deny-all");
        assert_eq!(net_attach_def_key("x", "data"), "/twill/netattachdefs/x/data");
        assert_eq!(admin_policy_key(policy::Tier::Admin, "deny-y"), "/twill/adminpolicies/deny-y");
        assert_eq!(admin_policy_key(policy::Tier::Baseline, "default"), "/twill/baselinepolicies/default");
        let ip = "fd00::7".parse().unwrap();
        assert_eq!(
            ip_reservation_key("", "fd00::/64".parse().unwrap(), ip),
            "/twill/ipam/_/ips/fd00::-64/fd00::7"
        );
        assert_eq!(ip_claim_key("blue", ip), "/twill/ipam/blue/claims/fd00::7");
    }

    #[test]
    fn names_are_one_path_component() {
        for good in ["node-1", "a", "n1.example", "0"] {
            assert!(check_name("node", good).is_ok(), "{good}");
        }
        for bad in ["", "a/b", "Node", "-a", "a-", "a_b", "..", &"x".repeat(254)] {
            assert!(check_name("node", bad).is_err(), "{bad}");
        }
    }
}
