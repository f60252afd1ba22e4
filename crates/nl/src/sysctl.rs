//! Network sysctls of a namespace (`ip netns exec NS sysctl -w net.ipv4.ip_forward=1`).
//!
//! Not netlink: `/proc/sys/net` shows the namespace of the thread that opens it, so reads and
//! writes happen on a fresh thread inside the namespace ([`netns::NetNs::run`]).

use std::path::{Path, PathBuf};

use netns::NetNs;

use crate::{Error, Result};

/// `/proc/sys/KEY` for a slash-separated key such as `net/ipv4/ip_forward` (the dotted
/// form is not accepted: interface names may contain dots).
fn key_path(key: &str) -> Result<PathBuf> {
    let bad = |reason| Error::invalid("sysctl key", key, reason);
    if !key.starts_with("net/") {
        return Err(bad("must start with net/ (only network sysctls are per namespace)"));
    }
    if key.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    if key.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(bad("has an empty, '.' or '..' component"));
    }
    Ok(PathBuf::from("/proc/sys").join(key))
}

fn sysctl_err(op: &'static str, key: &str, ns: &NetNs, source: std::io::Error) -> Error {
    Error::Sysctl { op, key: key.to_string(), ns: ns.path().to_path_buf(), source }
}

/// Reads `/proc/sys/KEY` inside `ns`, trailing newline removed.
pub fn sysctl_get(ns: &NetNs, key: &str) -> Result<String> {
    let path = key_path(key)?;
    ns.run(|| std::fs::read_to_string(&path))?
        .map(|s| s.trim_end_matches('\n').to_string())
        .map_err(|e| sysctl_err("read", key, ns, e))
}

/// Writes `value` to `/proc/sys/KEY` inside `ns`; returns the previous value.
pub fn sysctl_set(ns: &NetNs, key: &str, value: &str) -> Result<String> {
    let mut old = sysctl_set_all(ns, &[(key, value)])?;
    Ok(old.pop().unwrap_or_default())
}

/// Writes each `(KEY, value)` inside `ns`, in order, entering the namespace once; returns the
/// previous values. Stops at the first failure (the earlier writes stay).
pub fn sysctl_set_all(ns: &NetNs, settings: &[(&str, &str)]) -> Result<Vec<String>> {
    let paths = settings.iter().map(|(key, _)| key_path(key)).collect::<Result<Vec<_>>>()?;
    ns.run(|| {
        settings
            .iter()
            .zip(&paths)
            .map(|(&(key, value), path)| {
                let old = std::fs::read_to_string(path).map_err(|e| sysctl_err("read", key, ns, e))?;
                let old = old.trim_end_matches('\n');
                // Already so: nothing to write (a plugin's every ADD asks for forwarding).
                if old != value {
                    std::fs::write(path, value).map_err(|e| sysctl_err("write", key, ns, e))?;
                }
                Ok(old.to_string())
            })
            .collect()
    })?
}

/// IPv4 per-interface settings with the kernel's defaults for `conf/all` and `conf/default`
/// (`accept_source_route` is the one that differs). A new namespace copies both from the
/// initial namespace (`net.core.devconf_inherit_init_net` 0, the default), `ip_forward`
/// being `conf/all/forwarding`, and its `lo` copies `default`: a host that forwards, or runs
/// with `rp_filter`, hands that to every namespace made on it. `forwarding` comes first
/// because writing it also rewrites every link's.
const IPV4_CONF: &[(&str, &str, &str)] = &[
    ("forwarding", "0", "0"),
    ("rp_filter", "0", "0"),
    ("accept_local", "0", "0"),
    ("accept_redirects", "1", "1"),
    ("secure_redirects", "1", "1"),
    ("send_redirects", "1", "1"),
    ("shared_media", "1", "1"),
    ("accept_source_route", "0", "1"),
    ("arp_accept", "0", "0"),
    ("arp_announce", "0", "0"),
    ("arp_filter", "0", "0"),
    ("arp_ignore", "0", "0"),
    ("arp_notify", "0", "0"),
    ("arp_evict_nocarrier", "1", "1"),
    ("proxy_arp", "0", "0"),
    ("proxy_arp_pvlan", "0", "0"),
    ("route_localnet", "0", "0"),
    ("promote_secondaries", "0", "0"),
    ("src_valid_mark", "0", "0"),
    ("log_martians", "0", "0"),
    ("drop_gratuitous_arp", "0", "0"),
    ("drop_unicast_in_l2_multicast", "0", "0"),
    ("ignore_routes_with_linkdown", "0", "0"),
    ("bc_forwarding", "0", "0"),
    ("bootp_relay", "0", "0"),
    ("disable_policy", "0", "0"),
    ("disable_xfrm", "0", "0"),
];

/// The IPv6 settings that decide whether and how IPv6 works, with the kernel's defaults for
/// `conf/all` and `conf/default`; inherited only where `devconf_inherit_init_net` says so.
const IPV6_CONF: &[(&str, &str, &str)] = &[
    ("forwarding", "0", "0"),
    ("disable_ipv6", "0", "0"),
    ("accept_dad", "0", "1"),
    ("dad_transmits", "1", "1"),
    ("accept_ra", "1", "1"),
    ("proxy_ndp", "0", "0"),
];

/// Every `(key, value)` [`reset_inherited`] writes, in order.
pub fn inherited_defaults() -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for (family, table, devices) in
        [("ipv4", IPV4_CONF, &["all", "default", "lo"][..]), ("ipv6", IPV6_CONF, &["all", "default"][..])]
    {
        for (name, all, default) in table {
            for dev in devices {
                let value = if *dev == "all" { all } else { default };
                out.push((format!("net/{family}/conf/{dev}/{name}"), *value));
            }
        }
    }
    out
}

/// Puts the settings a new namespace inherits from the host back to the kernel's defaults,
/// so that a namespace standing for another machine (a test's, a lab node or pod) starts
/// like a freshly booted one whatever the host was set to. Keys this kernel does not have
/// were not inherited either and are skipped.
pub fn reset_inherited(ns: &NetNs) -> Result<()> {
    let all = inherited_defaults();
    ns.run(|| -> Result<()> {
        for (key, value) in &all {
            match std::fs::write(Path::new("/proc/sys").join(key), value) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other.map_err(|e| sysctl_err("write", key, ns, e))?,
            }
        }
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_confined_to_net() {
        assert_eq!(key_path("net/ipv4/ip_forward").unwrap(), PathBuf::from("/proc/sys/net/ipv4/ip_forward"));
        assert!(key_path("net/ipv4/conf/eth0.100/forwarding").is_ok());
        for bad in ["kernel/hostname", "net/../kernel/x", "net//x", "net/./x", "/net/x", "net/x/", "net/a\0b"]
        {
            assert!(key_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn inherited_defaults_start_with_forwarding_and_are_valid_keys() {
        let all = inherited_defaults();
        assert_eq!(all[0], ("net/ipv4/conf/all/forwarding".to_string(), "0"));
        assert!(all.contains(&("net/ipv4/conf/default/accept_source_route".to_string(), "1")));
        assert!(all.contains(&("net/ipv4/conf/lo/rp_filter".to_string(), "0")));
        assert!(all.contains(&("net/ipv6/conf/default/accept_dad".to_string(), "1")));
        assert!(all.iter().all(|(k, _)| key_path(k).is_ok()), "{all:?}");
    }
}
