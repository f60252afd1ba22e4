//! What every plugin needs from the kernel side: the container's namespace from CNI_NETNS,
//! the host's namespace and netlink handles, the host's forwarding switches, and one place
//! where kernel failures (netlink, nftables, iptables) become CNI errors.

use std::net::IpAddr;
use std::path::Path;

use cni_skel::CmdArgs;
use cni_spec::{Error, ErrorCode};
use netns::NetNs;
use nl::Handle;

/// Opens CNI_NETNS. A missing or non-netns path is code 3: the container is unknown, so the
/// runtime has nothing to clean up for it.
pub fn container_netns(args: &CmdArgs) -> Result<NetNs, Error> {
    let path =
        args.netns.as_ref().ok_or_else(|| Error::invalid_env("CNI_NETNS is required for this command"))?;
    NetNs::open(path).map_err(|e| {
        Error::new(ErrorCode::UnknownContainer, format!("open netns {}", path.display()))
            .with_details(e.to_string())
    })
}

/// Like [`container_netns`], but `None` when the namespace is gone (DEL must still succeed).
pub fn container_netns_if_present(args: &CmdArgs) -> Option<NetNs> {
    args.netns.as_ref().filter(|p| !p.as_os_str().is_empty()).and_then(|p| NetNs::open(p).ok())
}

/// The plugin's own (host) namespace.
pub fn host_netns() -> Result<NetNs, Error> {
    NetNs::current().map_err(|e| Error::internal(e.to_string()))
}

/// A netlink handle inside `ns`.
pub fn handle_in(ns: &NetNs) -> Result<Handle, Error> {
    Handle::in_netns(ns).map_err(nl_error)
}

/// A netlink handle in the plugin's own (host) namespace.
pub fn host_handle() -> Result<Handle, Error> {
    Handle::new().map_err(nl_error)
}

/// Turns on forwarding in `host` for the families of `addrs`.
pub fn enable_forwarding(host: &NetNs, addrs: impl IntoIterator<Item = IpAddr>) -> Result<(), Error> {
    let (mut v4, mut v6) = (false, false);
    for addr in addrs {
        (v4, v6) = (v4 || addr.is_ipv4(), v6 || addr.is_ipv6());
    }
    if v4 {
        nl::sysctl_set(host, "net/ipv4/ip_forward", "1").map_err(nl_error)?;
    }
    if v6 {
        nl::sysctl_set(host, "net/ipv6/conf/all/forwarding", "1").map_err(nl_error)?;
    }
    Ok(())
}

/// No IPv6 link-local address on a host link that carries no IPv6 of its own (a bridge port,
/// an IFB): see [`Handle::link_set_addr_gen_none`]. Must come before the link is up. A host
/// without IPv6 (EAFNOSUPPORT) has nothing to turn off.
pub fn no_link_local(nl: &Handle, index: u32) -> Result<(), Error> {
    match nl.link_set_addr_gen_none(index) {
        Err(e) if e.errno() == Some(libc::EAFNOSUPPORT) => Ok(()),
        other => other.map_err(nl_error),
    }
}

/// A kernel failure as a CNI error: EAGAIN/EBUSY say "try again later" (code 11), everything
/// else is an internal failure (999) whose message names the operation and object.
pub fn nl_error(e: nl::Error) -> Error {
    let code = match e.errno() {
        Some(libc::EAGAIN) | Some(libc::EBUSY) => ErrorCode::TryAgainLater,
        _ => ErrorCode::Internal,
    };
    Error::new(code, e.to_string())
}

/// An nf_tables failure (its message names the change the kernel refused) as an internal
/// failure; EAGAIN/EBUSY (a concurrent transaction) as "try again later".
pub fn fw_error(e: fw::nft::Error) -> Error {
    let code = match e.errno() {
        Some(libc::EAGAIN) | Some(libc::EBUSY) => ErrorCode::TryAgainLater,
        _ => ErrorCode::Internal,
    };
    Error::new(code, e.to_string())
}

/// A netlink connection to nf_tables (and conntrack) in the plugin's own (host) namespace.
pub fn nft_conn() -> Result<fw::nft::Conn, Error> {
    fw::nft::Conn::open().map_err(fw_error)
}

/// An iptables tool failure (its message names the tool and carries its stderr) as an
/// internal failure.
pub fn iptables_error(e: fw::iptables::Error) -> Error {
    Error::internal(e.to_string())
}

/// Runs `f` under twill's firewall lock, for check-then-create steps that must not race
/// between concurrent plugin runs.
pub fn fw_locked<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    fw::with_lock(Path::new(fw::LOCK), f).map_err(fw_error)?
}
