//! br_netfilter: pods on one Linux bridge talk through the bridge, not through the routing
//! code, and reach the `inet` forward hook only when `net.bridge.bridge-nf-call-iptables`
//! (and `-ip6tables`) are on in the bridge's namespace (docs/policy.md, "Hook placement").
//! With them off, same-node pods would silently ignore every policy.

use netns::NetNs;

/// The sysctls that send bridged IPv4 and IPv6 traffic through the `inet` hooks.
pub const BRIDGE_NF_KEYS: [&str; 2] =
    ["net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables"];

/// Why bridged traffic cannot be filtered.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error(
        "{key} is unavailable in {}, so pods on a bridge are NOT isolated by NetworkPolicy \
         (load br_netfilter: modprobe br_netfilter): {source}",
        .ns.display()
    )]
    Unavailable { key: &'static str, ns: std::path::PathBuf, source: nl::Error },
    #[error("turn on {key} in {}: {source}", .ns.display())]
    Set { key: &'static str, ns: std::path::PathBuf, source: nl::Error },
}

/// Turns the sysctls on in `ns`; returns those that were off.
pub fn ensure_bridge_netfilter(ns: &NetNs) -> Result<Vec<&'static str>, BridgeError> {
    let path = || ns.path().to_path_buf();
    let mut changed = Vec::new();
    for key in BRIDGE_NF_KEYS {
        let now =
            nl::sysctl_get(ns, key).map_err(|source| BridgeError::Unavailable { key, ns: path(), source })?;
        if now != "1" {
            nl::sysctl_set(ns, key, "1").map_err(|source| BridgeError::Set { key, ns: path(), source })?;
            changed.push(key);
        }
    }
    Ok(changed)
}
