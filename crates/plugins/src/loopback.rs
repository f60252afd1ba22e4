//! `loopback`: brings `lo` up in the container. DEL brings it down when the namespace still
//! exists; a namespace that is gone has nothing left to undo.

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, Interface, IpConfig, NetConf};

use crate::kernel::{container_netns, container_netns_if_present, handle_in, nl_error};

pub struct Loopback;

impl Plugin for Loopback {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let ns = container_netns(args)?;
        let nl = handle_in(&ns)?;
        let lo = lo_link(&nl)?;
        nl.link_set_up(lo.index, true).map_err(nl_error)?;
        // Chained after another plugin, loopback passes the previous result on unchanged.
        if let Some(prev) = conf.prev_result()? {
            return Ok(prev);
        }
        let addrs = nl.addr_list(Some(lo.index)).map_err(nl_error)?;
        // A result that only says "lo, up" is what the reference gives; we also report its
        // addresses so a chain after us sees what the interface holds.
        Ok(CniResult {
            cni_version: conf.version()?,
            interfaces: vec![Interface {
                name: "lo".into(),
                mac: Some("00:00:00:00:00:00".into()),
                sandbox: Some(ns.path().display().to_string()),
                ..Default::default()
            }],
            ips: addrs
                .iter()
                .map(|a| IpConfig { address: a.net, gateway: None, interface: Some(0) })
                .collect(),
            ..Default::default()
        })
    }

    fn check(&self, args: &CmdArgs, _conf: &NetConf) -> Result<(), Error> {
        let ns = container_netns(args)?;
        let lo = lo_link(&handle_in(&ns)?)?;
        if !lo.up {
            return Err(Error::internal(format!("lo in netns {} is down", ns.path().display())));
        }
        Ok(())
    }

    fn del(&self, args: &CmdArgs, _conf: &NetConf) -> Result<(), Error> {
        let Some(ns) = container_netns_if_present(args) else { return Ok(()) };
        let nl = handle_in(&ns)?;
        if let Some(lo) = nl.link_get("lo").map_err(nl_error)? {
            nl.link_set_up(lo.index, false).map_err(nl_error)?;
        }
        Ok(())
    }

    fn gc(&self, _args: &CmdArgs, _conf: &NetConf) -> Result<(), Error> {
        // loopback keeps no state outside the container's namespace.
        Ok(())
    }

    fn status(&self, _args: &CmdArgs, _conf: &NetConf) -> Result<(), Error> {
        Ok(())
    }
}

fn lo_link(nl: &nl::Handle) -> Result<nl::Link, Error> {
    nl.link_get("lo")
        .map_err(nl_error)?
        .ok_or_else(|| Error::internal("no lo interface in the container netns"))
}
