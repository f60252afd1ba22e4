//! `macvlan`: the pod gets a macvlan of a host interface (the master) with its own MAC,
//! created directly in the pod's namespace; addresses come from IPAM when there is an `ipam`
//! section, otherwise the link is only brought up (layer 2). Options and semantics follow
//! the reference plugin; see docs/plugins/macvlan.md.

mod conf;
mod link;
mod master;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, ErrorCode, NetConf};
use netns::NetNs;

use crate::container::{apply_iface, check_iface, plan_iface};
use crate::delegate::{
    has_ipam, ipam_add_with_undo, ipam_check, ipam_del, ipam_gc, ipam_status, prefer_conf_dns,
};
use crate::kernel::{
    container_netns, container_netns_if_present, fw_error, handle_in, host_handle, nl_error,
};
use crate::undo::{Undo, first_error};
use crate::{iface, meta};
pub use conf::MacvlanConf;
use master::resolve_master;

/// The macvlan is the only interface of a macvlan result.
const CONTAINER_IFACE: usize = 0;

pub struct Macvlan;

impl Plugin for Macvlan {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let mc = MacvlanConf::parse(conf, args)?;
        let cont_ns = container_netns(args)?;
        let (host, cont) = (host_handle()?, handle_in(&cont_ns)?);
        let master = master_of(&host, &cont, &cont_ns, &mc)?;
        let mut undo = Undo::new();
        let mv = link::create(&host, &cont, &cont_ns, &master, &mc, &args.ifname)?;
        undo.push_link_del("macvlan", &cont, &mv);
        link::configure(&cont, &mv, &mc)?;
        let mut result = CniResult {
            cni_version: conf.version()?,
            interfaces: vec![iface::entry(&mv, Some(cont_ns.path().display().to_string()))],
            ..Default::default()
        };
        if mc.has_ipam {
            let ipam = ipam_add_with_undo(args, conf, &mut undo)?;
            (result.ips, result.routes, result.dns) = (ipam.ips, ipam.routes, ipam.dns);
            for ip in &mut result.ips {
                ip.interface = Some(CONTAINER_IFACE);
            }
            // Unsolicited neighbour advertisements when an IPv6 address comes up, the IPv6 twin
            // of arp_notify; best effort, as in the reference.
            let _ = nl::sysctl_set(&cont_ns, &format!("net/ipv6/conf/{}/ndisc_notify", mv.name), "1");
            apply_iface(&cont_ns, &cont, &mv, &plan_iface(&result, CONTAINER_IFACE), false)?;
            if mc.spoof_check {
                let ips: Vec<_> = result.ips.iter().map(|ip| ip.address.addr()).collect();
                guard_in_pod(&cont_ns, &args.ifname, mv.mac.unwrap_or_default(), &ips)?;
            }
        } else {
            cont.link_set_up(mv.index, true).map_err(nl_error)?;
        }
        prefer_conf_dns(&mut result, conf);
        undo.commit();
        Ok(result)
    }

    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let mc = MacvlanConf::parse(conf, args)?;
        let prev = meta::prev_result_for_check(conf)?;
        if mc.has_ipam {
            ipam_check(args, conf)?;
        }
        let cont_ns = container_netns(args)?;
        let (host, cont) = (host_handle()?, handle_in(&cont_ns)?);
        let master = master_of(&host, &cont, &cont_ns, &mc)?;
        let idx = iface::prev_container_index(&prev, &args.ifname, &cont_ns)?;
        let mv = iface::container_link(&cont, &cont_ns, &args.ifname)?;
        link::check(&cont, &mv, &master, &mc)?;
        iface::check_mac(&mv, &prev.interfaces[idx])?;
        check_iface(&cont, &mv, &plan_iface(&prev, idx))
    }

    /// Needs no valid config beyond `ipam`: whatever else changed, the link and the addresses
    /// must still be freed.
    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let mut errors = Vec::new();
        if let Some(ns) = container_netns_if_present(args) {
            // The spoof check's tables live in the pod's namespace; lenient, as DEL must be.
            if conf.raw.get("spoofchk").and_then(|v| v.as_bool()) == Some(true) {
                errors.extend(unguard_pod(&ns).err());
            }
            errors.extend(iface::delete(&ns, &args.ifname).err());
        }
        if has_ipam(conf) {
            errors.extend(ipam_del(args, conf).err());
        }
        first_error(errors)
    }

    fn gc(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        // The macvlans live and die with their pods' namespaces; only IPAM keeps state.
        if has_ipam(conf) { ipam_gc(args, conf) } else { Ok(()) }
    }

    /// ADD can be served when IPAM can, and a master on the host exists (one inside the
    /// container cannot be looked at without a container).
    fn status(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let mc = MacvlanConf::parse(conf, args)?;
        if mc.has_ipam {
            ipam_status(args, conf)?;
        }
        if !mc.link_in_container {
            resolve_master(&host_handle()?, &mc, "the host netns")
                .map_err(|e| Error::new(ErrorCode::NotAvailable, e.msg))?;
        }
        Ok(())
    }
}

/// Puts the spoof check's table into the pod's namespace (replacing any, so a repeated ADD
/// is fine), in one batch.
fn guard_in_pod(ns: &NetNs, ifname: &str, mac: [u8; 6], ips: &[std::net::IpAddr]) -> Result<(), Error> {
    let mut batch = fw::nft::Batch::new();
    batch.replace_table(&crate::guard::pod_table(ifname, mac, ips));
    let mut conn = fw::nft::Conn::in_netns(ns).map_err(fw_error)?;
    conn.apply(&batch).map_err(fw_error)
}

/// Removes the spoof check's table from the pod's namespace.
fn unguard_pod(ns: &NetNs) -> Result<(), Error> {
    let mut batch = fw::nft::Batch::new();
    batch.delete_table(&crate::guard::pod_table("", [0; 6], &[]).id());
    let mut conn = fw::nft::Conn::in_netns(ns).map_err(fw_error)?;
    conn.apply(&batch).map_err(fw_error)
}

/// The master, looked up where the config says it lives.
fn master_of(
    host: &nl::Handle,
    cont: &nl::Handle,
    cont_ns: &NetNs,
    mc: &MacvlanConf,
) -> Result<nl::Link, Error> {
    if mc.link_in_container {
        resolve_master(cont, mc, &format!("netns {}", cont_ns.path().display()))
    } else {
        resolve_master(host, mc, "the host netns")
    }
}
