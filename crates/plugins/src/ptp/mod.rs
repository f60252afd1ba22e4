//! `ptp`: a veth pair per pod with no bridge; the host routes each pod address to its veth
//! and answers for the pod's gateway on it, so pods reach each other and the world through
//! the host's routing table. Options and semantics follow the reference plugin; see
//! docs/plugins/ptp.md.

mod conf;
mod plan;
mod setup;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, Interface, NetConf};
use netns::NetNs;

use crate::bridge::{delete_link, first_of};
use crate::container::{check_iface, plan_iface};
use crate::delegate::{ipam_add, ipam_check, ipam_del, ipam_gc, ipam_status};
use crate::kernel::{container_netns, container_netns_if_present, handle_in, host_handle, nl_error};
use crate::undo::Undo;
use crate::{masq, veth};
pub use conf::PtpConf;
use plan::{CONTAINER_IFACE, plan_gateways};

pub struct Ptp;

impl Plugin for Ptp {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let pc = PtpConf::parse(conf)?;
        let cont_ns = container_netns(args)?;
        let (host, cont) = (host_handle()?, handle_in(&cont_ns)?);
        let owner = masq::owner(&pc.network, &args.container_id, &args.ifname);
        let mut undo = Undo::new();
        // Addresses first, so that undoing releases them only after their routes are gone.
        let ipam = ipam_add(args, conf)?;
        undo.push("release addresses", || ipam_del(args, conf));
        if ipam.ips.is_empty() {
            return Err(Error::internal("IPAM plugin returned no IP configuration"));
        }
        let pair = veth::create_pair(&host, &cont, &cont_ns, &args.ifname, pc.mtu, None)?;
        let (host_ref, host_index) = (&host, pair.host.index);
        undo.push(format!("delete veth {}", pair.host.name), move || {
            host_ref.link_del(host_index).map_err(nl_error)
        });
        let sandbox = cont_ns.path().display().to_string();
        let mut result = CniResult {
            cni_version: conf.version()?,
            interfaces: vec![iface(&pair.host, None), iface(&pair.container, Some(sandbox))],
            ips: ipam.ips,
            routes: ipam.routes,
            dns: ipam.dns,
        };
        plan_gateways(&mut result)?;
        let host_ns = NetNs::current().map_err(|e| Error::internal(e.to_string()))?;
        setup::enable_forwarding(&host_ns, &result)?;
        setup::apply_container(&cont_ns, &cont, &pair.container, &result, CONTAINER_IFACE)?;
        setup::apply_host(&host_ns, &host, &pair.host, &result, CONTAINER_IFACE)?;
        if let Some(backend) = pc.ip_masq {
            let ips: Vec<_> = result.ips.iter().map(|ip| ip.address).collect();
            masq::setup(backend, &owner, &ips)?;
            undo.push("remove masquerading", move || masq::teardown(backend, &owner));
        }
        // The config's dns wins only when it says something, so IPAM may provide it instead.
        if let Some(dns) = conf.dns.clone().filter(|d| !d.is_empty()) {
            result.dns = dns;
        }
        undo.commit();
        Ok(result)
    }

    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        PtpConf::parse(conf)?;
        let prev = conf
            .prev_result()?
            .ok_or_else(|| Error::invalid_config("CHECK needs prevResult from the runtime"))?;
        ipam_check(args, conf)?;
        let cont_ns = container_netns(args)?;
        let (host, cont) = (host_handle()?, handle_in(&cont_ns)?);
        let idx = container_index(&prev, args).ok_or_else(|| {
            Error::internal(format!(
                "prevResult has no interface {} in netns {}",
                args.ifname,
                cont_ns.path().display()
            ))
        })?;
        let link = cont.link_get(&args.ifname).map_err(nl_error)?.ok_or_else(|| {
            Error::internal(format!("{} does not exist in netns {}", args.ifname, cont_ns.path().display()))
        })?;
        if link.kind.as_deref() != Some("veth") {
            return Err(Error::internal(format!("{} is not a veth", args.ifname)));
        }
        if let Some(want) = prev.interfaces[idx].mac.as_deref()
            && link.mac.map(|m| nl::format_mac(&m)).as_deref() != Some(&want.to_lowercase())
        {
            return Err(Error::internal(format!("{} has not the MAC {want} of prevResult", args.ifname)));
        }
        check_iface(&cont, &link, &plan_iface(&prev, idx))?;
        setup::check_routes(&host, &cont, &link, &prev, idx)
    }

    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let pc = PtpConf::parse(conf)?;
        let mut errors = Vec::new();
        // Host state goes before the addresses are released, so a pod that gets one of them
        // next never has its route or veth taken for ours.
        match container_netns_if_present(args) {
            Some(ns) => errors.extend(delete_link(&ns, &args.ifname).err()),
            None => {
                if let Ok(Some(prev)) = conf.prev_result()
                    && let Some(idx) = container_index(&prev, args)
                {
                    let torn = host_handle().and_then(|h| setup::teardown_host(&h, &prev, idx));
                    errors.extend(torn.err());
                }
            }
        }
        if let Some(backend) = pc.ip_masq {
            let owner = masq::owner(&pc.network, &args.container_id, &args.ifname);
            errors.extend(masq::teardown(backend, &owner).err());
        }
        errors.extend(ipam_del(args, conf).err());
        first_of(errors)
    }

    fn gc(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let pc = PtpConf::parse(conf)?;
        let valid = cni_spec::valid_attachments(conf)?.unwrap_or_default();
        let mut errors = Vec::new();
        errors.extend(ipam_gc(args, conf).err());
        if let Some(backend) = pc.ip_masq {
            errors.extend(masq::gc(backend, &pc.network, &valid).err());
        }
        first_of(errors)
    }

    fn status(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        PtpConf::parse(conf)?;
        ipam_status(args, conf)
    }
}

fn iface(link: &nl::Link, sandbox: Option<String>) -> Interface {
    Interface {
        name: link.name.clone(),
        mac: link.mac.map(|m| nl::format_mac(&m)),
        sandbox,
        ..Default::default()
    }
}

/// The container veth in a previous result: CNI_IFNAME inside CNI_NETNS, as the reference
/// matches it.
fn container_index(prev: &CniResult, args: &CmdArgs) -> Option<usize> {
    let netns = args.netns.as_ref()?.display().to_string();
    prev.interfaces.iter().position(|i| i.name == args.ifname && i.sandbox.as_deref() == Some(netns.as_str()))
}
