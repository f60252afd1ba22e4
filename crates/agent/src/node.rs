//! This node's own kernel settings and surroundings: IP forwarding, its IPv6 underlay
//! address, the CNI plugins the written config refers to.

use std::net::IpAddr;
use std::path::Path;

use netns::NetNs;

/// The plugins `10-twill.conflist` and `99-loopback.conflist` name.
pub const PLUGINS: [&str; 4] = ["bridge", "host-local", "portmap", "loopback"];

/// The forwarding sysctls a node needs.
pub fn forwarding_keys(ipv6: bool) -> Vec<&'static str> {
    let mut keys = vec!["net/ipv4/ip_forward"];
    if ipv6 {
        keys.push("net/ipv6/conf/all/forwarding");
    }
    keys
}

/// Turns forwarding on in `ns`; returns the keys that were off.
pub fn ensure_forwarding(ns: &NetNs, ipv6: bool) -> Result<Vec<&'static str>, nl::Error> {
    let mut changed = Vec::new();
    for key in forwarding_keys(ipv6) {
        // sysctl_set writes only a different value and returns what was there.
        if nl::sysctl_set(ns, key, "1")? != "1" {
            changed.push(key);
        }
    }
    Ok(changed)
}

/// A global IPv6 address of the underlay, to publish as the IPv6 next hop for host-gw.
pub fn underlay_ip6(underlay: &str) -> Option<IpAddr> {
    let h = nl::Handle::new().ok()?;
    let link = h.link_get(underlay).ok()??;
    h.addr_list(Some(link.index))
        .ok()?
        .into_iter()
        .find(|a| a.net.addr().is_ipv6() && a.scope == 0)
        .map(|a| a.net.addr())
}

/// The plugins missing from `bin_dir`.
pub fn missing_plugins(bin_dir: &Path) -> Vec<&'static str> {
    PLUGINS.into_iter().filter(|p| !bin_dir.join(p).is_file()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_keys_per_family() {
        assert_eq!(forwarding_keys(false), vec!["net/ipv4/ip_forward"]);
        assert_eq!(forwarding_keys(true).len(), 2);
    }

    #[test]
    fn missing_plugins_are_listed() {
        let dir = std::env::temp_dir().join(format!("twill-agent-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("bridge"), b"").unwrap();
        assert_eq!(missing_plugins(&dir), vec!["host-local", "portmap", "loopback"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
