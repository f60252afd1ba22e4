//! Network sysctls of a namespace (`ip netns exec NS sysctl -w net.ipv4.ip_forward=1`).
//!
//! Not netlink: `/proc/sys/net` shows the namespace of the thread that opens it, so reads and
//! writes happen on a fresh thread inside the namespace ([`netns::NetNs::run`]).

use std::path::PathBuf;

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
    let path = key_path(key)?;
    ns.run(|| -> Result<String> {
        let old = std::fs::read_to_string(&path).map_err(|e| sysctl_err("read", key, ns, e))?;
        std::fs::write(&path, value).map_err(|e| sysctl_err("write", key, ns, e))?;
        Ok(old.trim_end_matches('\n').to_string())
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
}
