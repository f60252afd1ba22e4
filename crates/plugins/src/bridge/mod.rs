//! `bridge`: a Linux bridge on the host, a veth pair per pod with the host end on the bridge,
//! addresses from the IPAM delegate, optional gateway addresses, masquerading and MAC spoof
//! protection. Options and semantics follow the reference plugin; see docs/plugins/bridge.md.

mod conf;
mod gateway;
mod setup;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, ErrorCode, Interface, NetConf};

use crate::container::{apply_iface, check_iface, plan_iface};
use crate::delegate::{ipam_add, ipam_check, ipam_del, ipam_gc, ipam_status};
use crate::kernel::{container_netns, container_netns_if_present, handle_in, host_handle, nl_error};
use crate::undo::Undo;
use crate::{masq, spoof, veth};
pub use conf::BridgeConf;
use gateway::{CONTAINER_IFACE, plan_gateways};

pub struct Bridge;

impl Plugin for Bridge {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let bc = BridgeConf::parse(conf, args)?;
        refuse_vlans(&bc)?;
        let cont_ns = container_netns(args)?;
        let (host, cont) = (host_handle()?, handle_in(&cont_ns)?);
        let br = setup::ensure_bridge(&host, &bc)?;
        let owner = masq::owner(&bc.network, &args.container_id, &args.ifname);
        let mut undo = Undo::new();
        let pair = veth::create_pair(&host, &cont, &cont_ns, &args.ifname, bc.mtu, bc.mac)?;
        let (host_ref, host_index) = (&host, pair.host.index);
        undo.push(format!("delete veth {}", pair.host.name), move || {
            host_ref.link_del(host_index).map_err(nl_error)
        });
        setup::attach_port(&host, &pair.host, &br, &bc)?;
        let cont_mac = pair.container.mac.map(|m| nl::format_mac(&m)).unwrap_or_default();
        if bc.mac_spoof_check {
            spoof::setup(&owner, &pair.host.name, &cont_mac)?;
            let owner = owner.clone();
            undo.push("remove mac spoof check", move || spoof::teardown(&owner));
        }
        let mut result = CniResult {
            cni_version: conf.version()?,
            interfaces: vec![
                iface(&br, None),
                iface(&pair.host, None),
                Interface {
                    sandbox: Some(cont_ns.path().display().to_string()),
                    ..iface(&pair.container, None)
                },
            ],
            ..Default::default()
        };
        if bc.has_ipam {
            let ipam = ipam_add(args, conf)?;
            undo.push("release addresses", || ipam_del(args, conf));
            if ipam.ips.is_empty() {
                return Err(Error::internal("IPAM plugin returned no IP configuration"));
            }
            (result.ips, result.routes, result.dns) = (ipam.ips, ipam.routes, ipam.dns);
            let gws = plan_gateways(&mut result, &bc);
            let plan = plan_iface(&result, CONTAINER_IFACE);
            apply_iface(&cont_ns, &cont, &pair.container, &plan, bc.dad)?;
            for gw in &gws {
                setup::ensure_gateway_addr(&host, &br, *gw, bc.force_address)?;
            }
            setup::enable_forwarding(&gws)?;
            if let Some(backend) = bc.ip_masq {
                let ips: Vec<_> = result.ips.iter().map(|ip| ip.address).collect();
                masq::setup(backend, &owner, &ips)?;
                undo.push("remove masquerading", move || masq::teardown(backend, &owner));
            }
        } else if !bc.disable_container_interface {
            cont.link_set_up(pair.container.index, true).map_err(nl_error)?;
        }
        // Enslaving changes the bridge's MAC; report what the links carry now.
        refresh_macs(&host, &mut result.interfaces[..2])?;
        if let Some(dns) = conf.dns.clone().filter(|d| !d.is_empty()) {
            result.dns = dns;
        }
        undo.commit();
        Ok(result)
    }

    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let bc = BridgeConf::parse(conf, args)?;
        let prev = conf
            .prev_result()?
            .ok_or_else(|| Error::invalid_config("CHECK needs prevResult from the runtime"))?;
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
        let link = cont.link_get(&args.ifname).map_err(nl_error)?.ok_or_else(|| {
            Error::internal(format!("{} does not exist in netns {}", args.ifname, cont_ns.path().display()))
        })?;
        if let Some(want) = prev.interfaces[idx].mac.as_deref()
            && link.mac.map(|m| nl::format_mac(&m)).as_deref() != Some(&want.to_lowercase())
        {
            return Err(Error::internal(format!("{} has not the MAC {want} of prevResult", args.ifname)));
        }
        check_port(&host, &br, &link)?;
        check_iface(&cont, &link, &plan_iface(&prev, idx))
    }

    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let bc = BridgeConf::parse(conf, args)?;
        let owner = masq::owner(&bc.network, &args.container_id, &args.ifname);
        let mut errors = Vec::new();
        if bc.has_ipam {
            errors.extend(ipam_del(args, conf).err());
        }
        if let Some(ns) = container_netns_if_present(args) {
            errors.extend(delete_link(&ns, &args.ifname).err());
        }
        if let Some(backend) = bc.ip_masq {
            errors.extend(masq::teardown(backend, &owner).err());
        }
        if bc.mac_spoof_check {
            errors.extend(spoof::teardown(&owner).err());
        }
        first_of(errors)
    }

    fn gc(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let bc = BridgeConf::parse(conf, args)?;
        let valid = cni_spec::valid_attachments(conf)?.unwrap_or_default();
        let mut errors = Vec::new();
        if bc.has_ipam {
            errors.extend(ipam_gc(args, conf).err());
        }
        if let Some(backend) = bc.ip_masq {
            errors.extend(masq::gc(backend, &bc.network, &valid).err());
        }
        if bc.mac_spoof_check {
            errors.extend(spoof::gc(&bc.network, &valid).err());
        }
        first_of(errors)
    }

    fn status(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let bc = BridgeConf::parse(conf, args)?;
        if bc.has_ipam { ipam_status(args, conf) } else { Ok(()) }
    }
}

/// This kernel has no bridge VLAN filtering, and twill's nl layer does not program it yet.
fn refuse_vlans(bc: &BridgeConf) -> Result<(), Error> {
    if bc.uses_vlans() {
        return Err(Error::new(
            ErrorCode::UnsupportedField,
            "vlan and vlanTrunk are not implemented by twill's bridge plugin (bridge VLAN filtering)",
        ));
    }
    Ok(())
}

fn iface(link: &nl::Link, sandbox: Option<String>) -> Interface {
    Interface {
        name: link.name.clone(),
        mac: link.mac.map(|m| nl::format_mac(&m)),
        sandbox,
        ..Default::default()
    }
}

fn refresh_macs(host: &nl::Handle, ifaces: &mut [Interface]) -> Result<(), Error> {
    for i in ifaces {
        if let Some(link) = host.link_get(&i.name).map_err(nl_error)? {
            i.mac = link.mac.map(|m| nl::format_mac(&m));
        }
    }
    Ok(())
}

fn check_port(host: &nl::Handle, br: &nl::Link, cont_link: &nl::Link) -> Result<(), Error> {
    let peer = cont_link.link.and_then(|i| host.link_by_index(i).ok().flatten());
    match peer {
        Some(p) if p.master == Some(br.index) => Ok(()),
        Some(p) => {
            Err(Error::internal(format!("host veth {} is not attached to bridge {}", p.name, br.name)))
        }
        None => Err(Error::internal(format!("the host end of {} is gone", cont_link.name))),
    }
}

/// Deletes `ifname` in `ns` (the veth peer goes with it); absent is fine.
pub fn delete_link(ns: &netns::NetNs, ifname: &str) -> Result<(), Error> {
    let nl = handle_in(ns)?;
    match nl.link_get(ifname).map_err(nl_error)? {
        Some(link) => match nl.link_del(link.index) {
            Err(e) if !e.is_not_found() => Err(nl_error(e)),
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

/// DEL and GC keep going and report the first failure.
pub fn first_of(errors: Vec<Error>) -> Result<(), Error> {
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
