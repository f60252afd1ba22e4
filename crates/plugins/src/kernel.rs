//! What every plugin needs from the kernel side: the container's namespace from CNI_NETNS,
//! netlink handles, and one place where kernel failures become CNI errors.

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

/// A netlink handle inside `ns`.
pub fn handle_in(ns: &NetNs) -> Result<Handle, Error> {
    Handle::in_netns(ns).map_err(nl_error)
}

/// A netlink handle in the plugin's own (host) namespace.
pub fn host_handle() -> Result<Handle, Error> {
    Handle::new().map_err(nl_error)
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
