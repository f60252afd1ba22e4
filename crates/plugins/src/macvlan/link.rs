//! The macvlan link itself: born inside the container namespace under CNI_IFNAME, and
//! checked against the config later.

use cni_spec::Error;
use netns::NetNs;
use nl::{Handle, Link};

use super::conf::{MacvlanConf, mode_name};
use crate::iface;
use crate::kernel::nl_error;

/// Creates the macvlan on `master`. With a host master it is created from the host with the
/// container namespace as target, so it never appears on the host. rtnetlink checks the name
/// in the target namespace, so CNI_IFNAME may equal a host interface's name (the e2e tests
/// use a master called eth0) and the reference's temporary name plus rename is not needed.
/// An existing CNI_IFNAME in the container is code 4, as for veths.
pub fn create(
    host: &Handle,
    cont: &Handle,
    cont_ns: &NetNs,
    master: &Link,
    conf: &MacvlanConf,
    ifname: &str,
) -> Result<Link, Error> {
    iface::ensure_free(cont, cont_ns, ifname)?;
    let added = if conf.link_in_container {
        cont.macvlan_add(ifname, master.index, conf.mode, conf.mtu, conf.mac, None)
    } else {
        host.macvlan_add(ifname, master.index, conf.mode, conf.mtu, conf.mac, Some(cont_ns))
    };
    match added {
        Err(e) if e.is_exists() && cont.link_get(ifname).map_err(nl_error)?.is_some() => {
            return Err(iface::name_taken(ifname, cont_ns));
        }
        Err(e) => return Err(nl_error(e)),
        Ok(()) => {}
    }
    cont.link_get(ifname)
        .map_err(nl_error)?
        .ok_or_else(|| Error::internal(format!("macvlan {ifname} vanished after creation")))
}

/// Sets the options that are not part of creation.
pub fn configure(cont: &Handle, link: &Link, conf: &MacvlanConf) -> Result<(), Error> {
    if let Some(len) = conf.bc_queue_len {
        cont.macvlan_set_bc_queue_len(link.index, len).map_err(nl_error)?;
    }
    Ok(())
}

/// CHECK: the link is a macvlan in the configured mode on `master`.
pub fn check(cont: &Handle, link: &Link, master: &Link, conf: &MacvlanConf) -> Result<(), Error> {
    let info = cont
        .macvlan_get(link.index)
        .map_err(nl_error)?
        .ok_or_else(|| Error::internal(format!("container interface {} is not a macvlan", link.name)))?;
    if info.mode != Some(conf.mode) {
        let have = info.mode.map(mode_name).unwrap_or("unknown");
        return Err(Error::internal(format!(
            "macvlan {} is in mode {have}, the config says {}",
            link.name,
            mode_name(conf.mode)
        )));
    }
    if link.link != Some(master.index) {
        return Err(Error::internal(format!("macvlan {} is not on master {}", link.name, master.name)));
    }
    Ok(())
}
