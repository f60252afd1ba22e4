//! The interfaces of an interface plugin's attachment as links: CNI_IFNAME free in the
//! container before ADD creates it, their entries in the result, the container's link found
//! again for CHECK (at prevResult's index, with prevResult's MAC), and deleted on DEL.

use std::path::Path;

use cni_spec::{CniResult, Error, ErrorCode, Interface};
use netns::NetNs;
use nl::{Handle, Link};

use crate::kernel::{handle_in, nl_error};

/// Code 4: CNI_IFNAME already exists in the container, so ADD cannot create it.
pub fn name_taken(ifname: &str, ns: &NetNs) -> Error {
    Error::new(
        ErrorCode::InvalidEnvironment,
        format!("container interface {ifname} already exists in netns {}", ns.path().display()),
    )
}

/// Fails with [`name_taken`] when `ifname` exists in the container.
pub fn ensure_free(nl: &Handle, ns: &NetNs, ifname: &str) -> Result<(), Error> {
    match nl.link_get(ifname).map_err(nl_error)? {
        Some(_) => Err(name_taken(ifname, ns)),
        None => Ok(()),
    }
}

/// `link` as a result interface, in `sandbox` when it is inside the container.
pub fn entry(link: &Link, sandbox: Option<String>) -> Interface {
    Interface {
        name: link.name.clone(),
        mac: link.mac.map(|m| nl::format_mac(&m)),
        sandbox,
        ..Default::default()
    }
}

/// The container's `ifname`, which must exist.
pub fn container_link(nl: &Handle, ns: &NetNs, ifname: &str) -> Result<Link, Error> {
    nl.link_get(ifname)
        .map_err(nl_error)?
        .ok_or_else(|| Error::internal(format!("{ifname} does not exist in netns {}", ns.path().display())))
}

/// The index of the container interface in a previous result: `ifname` inside `netns`, as
/// the reference matches it.
pub fn prev_index(prev: &CniResult, ifname: &str, netns: &Path) -> Option<usize> {
    let netns = netns.display().to_string();
    prev.interfaces.iter().position(|i| i.name == ifname && i.sandbox.as_deref() == Some(netns.as_str()))
}

/// [`prev_index`] for CHECK, where the interface must be there.
pub fn prev_container_index(prev: &CniResult, ifname: &str, ns: &NetNs) -> Result<usize, Error> {
    prev_index(prev, ifname, ns.path()).ok_or_else(|| {
        Error::internal(format!("prevResult has no interface {ifname} in netns {}", ns.path().display()))
    })
}

/// CHECK: `link` carries the MAC `prev` reported for it (when it reported one).
pub fn check_mac(link: &Link, prev: &Interface) -> Result<(), Error> {
    match prev.mac.as_deref() {
        Some(want) if link.mac.map(|m| nl::format_mac(&m)).as_deref() != Some(&want.to_lowercase()) => {
            Err(Error::internal(format!("{} has not the MAC {want} of prevResult", link.name)))
        }
        _ => Ok(()),
    }
}

/// Deletes `ifname` in `ns` (a veth's peer goes with it); absent is fine.
pub fn delete(ns: &NetNs, ifname: &str) -> Result<(), Error> {
    let nl = handle_in(ns)?;
    match nl.link_get(ifname).map_err(nl_error)? {
        Some(link) => match nl.link_del(link.index) {
            Err(e) if !e.is_not_found() => Err(nl_error(e)),
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(mac: Option<[u8; 6]>) -> Link {
        Link {
            index: 2,
            name: "eth0".into(),
            kind: Some("veth".into()),
            mac,
            mtu: 1500,
            up: true,
            master: None,
            link: None,
            link_netnsid: None,
            promisc: false,
            txqlen: 1000,
            allmulti: false,
            alias: None,
        }
    }

    #[test]
    fn entry_formats_the_mac() {
        let e = entry(&link(Some([2, 0, 0, 0, 0, 0xab])), Some("/run/netns/x".into()));
        assert_eq!(e.mac.as_deref(), Some("02:00:00:00:00:ab"));
        assert_eq!((e.name.as_str(), e.sandbox.as_deref()), ("eth0", Some("/run/netns/x")));
    }

    #[test]
    fn prev_index_matches_name_and_sandbox() {
        let prev = CniResult {
            interfaces: vec![
                Interface { name: "eth0".into(), ..Default::default() },
                Interface { name: "eth0".into(), sandbox: Some("/run/netns/x".into()), ..Default::default() },
            ],
            ..Default::default()
        };
        assert_eq!(prev_index(&prev, "eth0", Path::new("/run/netns/x")), Some(1));
        assert_eq!(prev_index(&prev, "eth0", Path::new("/run/netns/y")), None);
    }

    #[test]
    fn mac_compares_case_insensitively() {
        let prev = |mac: &str| Interface { mac: Some(mac.into()), ..Default::default() };
        let l = link(Some([2, 0, 0, 0, 0, 0xab]));
        assert!(check_mac(&l, &prev("02:00:00:00:00:AB")).is_ok());
        assert!(check_mac(&l, &Interface::default()).is_ok());
        let e = check_mac(&l, &prev("02:00:00:00:00:01")).unwrap_err();
        assert_eq!(e.msg, "eth0 has not the MAC 02:00:00:00:00:01 of prevResult");
    }
}
