//! `ptp`: a veth pair per pod with no bridge; the host routes each pod address to its veth
//! and answers for the pod's gateway on it, so pods reach each other and the world through
//! the host's routing table. Options and semantics follow the reference plugin; see
//! docs/plugins/ptp.md.

mod conf;
mod filter;
mod plan;
mod setup;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, NetConf};

use crate::container::{check_iface, plan_iface};
use crate::delegate::{ipam_add_with_undo, ipam_check, ipam_del, ipam_gc, ipam_status, prefer_conf_dns};
use crate::kernel::{
    container_netns, container_netns_if_present, enable_forwarding, handle_in, host_handle, host_netns,
};
use crate::undo::{Undo, first_error};
use crate::{iface, meta, owner, veth};
pub use conf::PtpConf;
use plan::{CONTAINER_IFACE, plan_gateways};

pub struct Ptp;

impl Plugin for Ptp {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let pc = PtpConf::parse(conf)?;
        let cont_ns = container_netns(args)?;
        let (host, cont) = (host_handle()?, handle_in(&cont_ns)?);
        let owner = owner::tag(&pc.network, &args.container_id, &args.ifname);
        let mut undo = Undo::new();
        // Addresses first, so that undoing releases them only after their routes are gone.
        let ipam = ipam_add_with_undo(args, conf, &mut undo)?;
        let pair = veth::create_pair(&host, &cont, &cont_ns, &args.ifname, pc.mtu, None)?;
        undo.push_link_del("veth", &host, &pair.host);
        let sandbox = cont_ns.path().display().to_string();
        let mut result = CniResult {
            cni_version: conf.version()?,
            interfaces: vec![iface::entry(&pair.host, None), iface::entry(&pair.container, Some(sandbox))],
            ips: ipam.ips,
            routes: ipam.routes,
            dns: ipam.dns,
        };
        plan_gateways(&mut result)?;
        let host_ns = host_netns()?;
        enable_forwarding(&host_ns, result.ips.iter().map(|ip| ip.address.addr()))?;
        setup::apply_container(&cont_ns, &cont, &pair.container, &result, CONTAINER_IFACE)?;
        setup::apply_host(&host_ns, &host, &pair.host, &result, CONTAINER_IFACE)?;
        filter::setup(&pc, &owner, &pair.host.name, &result.ips, &mut undo)?;
        prefer_conf_dns(&mut result, conf);
        undo.commit();
        Ok(result)
    }

    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        PtpConf::parse(conf)?;
        let prev = meta::prev_result_for_check(conf)?;
        ipam_check(args, conf)?;
        let cont_ns = container_netns(args)?;
        let (host, cont) = (host_handle()?, handle_in(&cont_ns)?);
        let idx = iface::prev_container_index(&prev, &args.ifname, &cont_ns)?;
        let link = iface::container_link(&cont, &cont_ns, &args.ifname)?;
        if link.kind.as_deref() != Some("veth") {
            return Err(Error::internal(format!("{} is not a veth", args.ifname)));
        }
        iface::check_mac(&link, &prev.interfaces[idx])?;
        check_iface(&cont, &link, &plan_iface(&prev, idx))?;
        setup::check_routes(&host, &cont, &link, &prev, idx)
    }

    /// The veth's deletion (or, without the namespace, the host side's) starts first, on its
    /// own thread: it costs the kernel an RCU grace period, during which masquerading and
    /// the spoof check are removed. The addresses are released last, so a pod that gets one of them next never
    /// has its route or veth taken for ours.
    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let pc = PtpConf::parse(conf)?;
        let prev = conf.prev_result().ok().flatten();
        let keys = filter::keys(prev.as_ref());
        std::thread::scope(|s| {
            let netns = container_netns_if_present(args);
            let prev = prev.as_ref();
            let links = s.spawn(move || match netns {
                Some(ns) => iface::delete(&ns, &args.ifname),
                None => match prev.and_then(|p| Some((p, container_index(p, args)?))) {
                    Some((p, idx)) => host_handle().and_then(|h| setup::teardown_host(&h, p, idx)),
                    None => Ok(()),
                },
            });
            let owner = owner::tag(&pc.network, &args.container_id, &args.ifname);
            let filtered = filter::teardown(&pc, &owner, keys);
            let deleted =
                links.join().unwrap_or_else(|_| Err(Error::internal("deleting the pod's veth panicked")));
            let released = ipam_del(args, conf);
            first_error([deleted, filtered, released].into_iter().filter_map(Result::err).collect())
        })
    }

    fn gc(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let pc = PtpConf::parse(conf)?;
        let valid = cni_spec::valid_attachments(conf)?.unwrap_or_default();
        let mut errors = Vec::new();
        errors.extend(ipam_gc(args, conf).err());
        errors.extend(filter::gc(&pc, &valid).err());
        first_error(errors)
    }

    fn status(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        PtpConf::parse(conf)?;
        ipam_status(args, conf)
    }
}

/// The container veth in a previous result: CNI_IFNAME inside CNI_NETNS.
fn container_index(prev: &CniResult, args: &CmdArgs) -> Option<usize> {
    iface::prev_index(prev, &args.ifname, args.netns.as_ref()?)
}
