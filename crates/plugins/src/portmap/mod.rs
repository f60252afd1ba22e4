//! `portmap`: forwards host ports to a pod, chained after an interface plugin (it reads the
//! pod's addresses from prevResult and passes that result on unchanged). The mappings come
//! from the `portMappings` capability. Options and semantics follow the reference plugin;
//! see docs/plugins/portmap.md.
//!
//! Unlike the reference, which adds rules per pod and contends on the xtables lock
//! (kubernetes#92811, plugins#510), the default nftables backend keeps one table whose rules
//! never change: a pod is a handful of owner-tagged map elements, added or removed in one
//! transaction, so the cost does not grow with pods or mappings. A pod without mappings
//! costs nothing: no firewall call on any verb (plugins#464).

mod conditions;
mod conf;
mod host;
mod ipt;
mod nft;
mod plan;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, NetConf};
use fw::ct::UdpFlow;
use fw::nft::Conn;

use crate::kernel::nft_conn;
use crate::undo::Undo;
use crate::{meta, owner};
pub use conf::PortmapConf;
use fw::Backend;
use plan::{Plan, PodIps, plan};

pub struct Portmap;

impl Plugin for Portmap {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let pc = PortmapConf::parse(conf)?;
        let prev = conf.prev_result()?.ok_or_else(|| {
            Error::invalid_config("portmap must be called as a chained plugin: prevResult is missing")
        })?;
        let p = planned(&pc, &prev, args);
        if p.is_empty() {
            return Ok(prev);
        }
        let mut conn = nft_conn()?;
        setup(&mut conn, &pc, &p)?;
        let mut undo = Undo::new();
        undo.push("remove port mappings", || {
            nft_conn().and_then(|mut c| teardown(&mut c, &pc, &p)).map(drop)
        });
        if let Some(pod) = p.localnet {
            host::enable_localnet(pod)?;
        }
        undo.commit();
        let families: Vec<bool> = p.pods.iter().map(|p| p.addr().is_ipv6()).collect();
        host::flush_udp(&mut conn, &host::udp_ports(&pc, &families));
        Ok(prev)
    }

    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let pc = PortmapConf::parse(conf)?;
        let prev = meta::prev_result_for_check(conf)?;
        let p = planned(&pc, &prev, args);
        if p.is_empty() {
            return Ok(());
        }
        match pc.backend {
            Backend::Nftables => nft::check(&mut nft_conn()?, &p),
            Backend::Iptables => ipt::check(&pc, &p.owner, &p.pods),
        }
    }

    /// Without mappings in runtimeConfig there is nothing to remove and no firewall call:
    /// the spec makes runtimes pass the ADD's capability arguments on DEL too (libcni and
    /// twill's runtime keep them in the cache for DELs they synthesize), and GC removes
    /// whatever a runtime breaking that rule leaves behind. The elements are found by the
    /// mappings and prevResult's addresses, without listing the table.
    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let pc = PortmapConf::parse(conf)?;
        if pc.mappings.is_empty() {
            return Ok(());
        }
        let prev = conf.prev_result().ok().flatten().unwrap_or_default();
        let p = planned(&pc, &prev, args);
        let mut conn = nft_conn()?;
        let flows = teardown(&mut conn, &pc, &p)?;
        host::flush_udp(&mut conn, &flows);
        Ok(())
    }

    fn gc(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let pc = PortmapConf::parse(conf)?;
        let valid = cni_spec::valid_attachments(conf)?.unwrap_or_default();
        let mut conn = nft_conn()?;
        let flows = match pc.backend {
            Backend::Nftables => nft::gc(&mut conn, &pc.network, &valid)?,
            Backend::Iptables => ipt::gc(&pc.network, &valid).map(|()| Vec::new())?,
        };
        host::flush_udp(&mut conn, &flows);
        Ok(())
    }

    fn status(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        PortmapConf::parse(conf).map(drop)
    }
}

/// The plan for this attachment.
fn planned(pc: &PortmapConf, prev: &CniResult, args: &CmdArgs) -> Plan {
    let owner = owner::tag(&pc.network, &args.container_id, &args.ifname);
    plan(pc, &PodIps::from_result(prev, &args.ifname), &owner)
}

fn setup(conn: &mut Conn, pc: &PortmapConf, p: &Plan) -> Result<(), Error> {
    match pc.backend {
        Backend::Nftables => nft::setup(conn, p),
        Backend::Iptables => ipt::setup(pc, &p.owner, &p.pods).inspect_err(|_| {
            let _ = ipt::teardown(&p.owner);
        }),
    }
}

/// Removes the attachment's forwarding; returns the UDP flows to forget.
fn teardown(conn: &mut Conn, pc: &PortmapConf, p: &Plan) -> Result<Vec<UdpFlow>, Error> {
    match pc.backend {
        Backend::Nftables => nft::teardown(conn, p),
        // Which pod the rules pointed to is not kept: forget the host ports in both families.
        Backend::Iptables => ipt::teardown(&p.owner).map(|()| host::udp_ports(pc, &[false, true])),
    }
}

#[cfg(test)]
mod tests;
