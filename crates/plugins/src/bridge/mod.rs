//! `bridge`: a Linux bridge on the host, a veth pair per pod with the host end on the bridge,
//! addresses from the IPAM delegate, optional gateway addresses, masquerading and MAC spoof
//! protection. Options and semantics follow the reference plugin; see docs/plugins/bridge.md.

mod conf;
mod filter;
mod gateway;
mod setup;
mod vlan;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, Interface, NetConf};
use nl::{Handle, Link};

use crate::container::{apply_iface, check_iface, plan_iface};
use crate::delegate::{ipam_add_with_undo, ipam_check, ipam_del, ipam_gc, ipam_status, prefer_conf_dns};
use crate::kernel::{container_netns, container_netns_if_present, handle_in, host_handle, nl_error};
use crate::undo::{Undo, first_error};
use crate::{iface, meta, owner, veth};
pub use conf::BridgeConf;
use gateway::{CONTAINER_IFACE, plan_gateways};

pub struct Bridge;

impl Plugin for Bridge {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let bc = BridgeConf::parse(conf, args)?;
        let cont_ns = container_netns(args)?;
        let (host, cont) = (host_handle()?, handle_in(&cont_ns)?);
        let br = setup::ensure_bridge(&host, &bc)?;
        if bc.uses_vlans() {
            vlan::enable_filtering(&host, &br)?;
        }
        let owner = owner::tag(&bc.network, &args.container_id, &args.ifname);
        let mut undo = Undo::new();
        let pair = veth::create_pair(&host, &cont, &cont_ns, &args.ifname, bc.mtu, bc.mac)?;
        undo.push_link_del("veth", &host, &pair.host);
        setup::attach_port(&host, &pair.host, &br, &bc)?;
        vlan::apply_port(&host, &pair.host, &vlan::plan_port(&bc))?;
        let sandbox = Some(cont_ns.path().display().to_string());
        let mut result = CniResult {
            cni_version: conf.version()?,
            interfaces: vec![
                iface::entry(&br, None),
                iface::entry(&pair.host, None),
                iface::entry(&pair.container, sandbox),
            ],
            ..Default::default()
        };
        if bc.has_ipam {
            let ipam = ipam_add_with_undo(args, conf, &mut undo)?;
            (result.ips, result.routes, result.dns) = (ipam.ips, ipam.routes, ipam.dns);
            let gws = plan_gateways(&mut result, &bc);
            apply_iface(&cont_ns, &cont, &pair.container, &plan_iface(&result, CONTAINER_IFACE), bc.dad)?;
            let gw_link = if bc.is_gateway && bc.vlan != 0 {
                let link = vlan::ensure_gateway_iface(&host, &br, bc.vlan)?;
                result.interfaces.push(iface::entry(&link, None));
                link
            } else {
                br.clone()
            };
            setup::ensure_gateways(&host, &gw_link, &gws, bc.force_address)?;
        } else if !bc.disable_container_interface {
            cont.link_set_up(pair.container.index, true).map_err(nl_error)?;
        }
        let mac = pair.container.mac.unwrap_or_default();
        filter::setup(&bc, &owner, &pair.host.name, mac, &result.ips, &mut undo)?;
        // Enslaving changes the bridge's MAC; report what the links carry now.
        refresh_macs(&host, &mut result.interfaces[..2])?;
        prefer_conf_dns(&mut result, conf);
        undo.commit();
        Ok(result)
    }

    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let bc = BridgeConf::parse(conf, args)?;
        let prev = meta::prev_result_for_check(conf)?;
        if bc.has_ipam {
            ipam_check(args, conf)?;
        }
        let cont_ns = container_netns(args)?;
        let (host, cont) = (host_handle()?, handle_in(&cont_ns)?);
        let br = host
            .link_get(&bc.bridge)
            .map_err(nl_error)?
            .ok_or_else(|| Error::internal(format!("bridge {} does not exist", bc.bridge)))?;
        let idx =
            prev.interfaces.iter().position(|i| i.name == args.ifname && i.sandbox.is_some()).ok_or_else(
                || Error::internal(format!("prevResult has no interface {} in a sandbox", args.ifname)),
            )?;
        let link = iface::container_link(&cont, &cont_ns, &args.ifname)?;
        iface::check_mac(&link, &prev.interfaces[idx])?;
        check_port(&host, &br, &link)?;
        check_iface(&cont, &link, &plan_iface(&prev, idx))
    }

    /// The veth's deletion starts first, on its own thread: the kernel spends an RCU grace
    /// period (about 17 ms) on it, during which the filter state is removed. The addresses
    /// are released last, so a pod that gets one of them next never meets our interface or
    /// has its elements taken for ours.
    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let bc = BridgeConf::parse(conf, args)?;
        let owner = owner::tag(&bc.network, &args.container_id, &args.ifname);
        let prev = conf.prev_result().ok().flatten();
        let keys = filter::PodKeys::from_prev(prev.as_ref(), &bc.bridge, &args.ifname);
        std::thread::scope(|s| {
            let veth =
                container_netns_if_present(args).map(|ns| s.spawn(move || iface::delete(&ns, &args.ifname)));
            let filtered = filter::teardown(&bc, &owner, &keys);
            let deleted = veth.map_or(Ok(()), |t| {
                t.join().unwrap_or_else(|_| Err(Error::internal("deleting the pod's interface panicked")))
            });
            let released = if bc.has_ipam { ipam_del(args, conf) } else { Ok(()) };
            first_error([deleted, filtered, released].into_iter().filter_map(Result::err).collect())
        })
    }

    fn gc(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let bc = BridgeConf::parse(conf, args)?;
        let valid = cni_spec::valid_attachments(conf)?.unwrap_or_default();
        let mut errors = Vec::new();
        if bc.has_ipam {
            errors.extend(ipam_gc(args, conf).err());
        }
        errors.extend(filter::gc(&bc, &valid).err());
        first_error(errors)
    }

    fn status(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let bc = BridgeConf::parse(conf, args)?;
        if bc.has_ipam { ipam_status(args, conf) } else { Ok(()) }
    }
}

fn refresh_macs(host: &Handle, ifaces: &mut [Interface]) -> Result<(), Error> {
    for i in ifaces {
        if let Some(link) = host.link_get(&i.name).map_err(nl_error)? {
            i.mac = link.mac.map(|m| nl::format_mac(&m));
        }
    }
    Ok(())
}

fn check_port(host: &Handle, br: &Link, cont_link: &Link) -> Result<(), Error> {
    let peer = cont_link.link.and_then(|i| host.link_by_index(i).ok().flatten());
    match peer {
        Some(p) if p.master == Some(br.index) => Ok(()),
        Some(p) => {
            Err(Error::internal(format!("host veth {} is not attached to bridge {}", p.name, br.name)))
        }
        None => Err(Error::internal(format!("the host end of {} is gone", cont_link.name))),
    }
}
