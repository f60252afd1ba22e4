//! `sbr` (source-based routing): traffic from each of the interface's addresses is routed by
//! its own table — a rule `from ADDR lookup TABLE` per address, the interface's routes moved
//! from the main table into those tables — inside the container. Options and semantics
//! follow the reference plugin; see docs/plugins/sbr.md.

mod apply;
mod conf;
mod plan;

use std::collections::BTreeSet;
use std::net::IpAddr;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, NetConf};
use netns::NetNs;
use nl::{Handle, Link};

use crate::kernel::{container_netns, container_netns_if_present, handle_in, nl_error};
use crate::meta;
use crate::undo::{Undo, first_error};
use conf::SbrConf;

pub struct Sbr;

fn container_link(nl: &Handle, ns: &NetNs, ifname: &str) -> Result<Link, Error> {
    nl.link_get(ifname).map_err(nl_error)?.ok_or_else(|| {
        Error::internal(format!("sbr: {ifname} does not exist in netns {}", ns.path().display()))
    })
}

impl Plugin for Sbr {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let sc = SbrConf::parse(conf)?;
        let result = meta::prev_result(conf)?;
        let ips = plan::own_ips(&result, &args.ifname)?;
        let ns = container_netns(args)?;
        let nl = handle_in(&ns)?;
        apply::with_netns_lock(ns.path(), || {
            let link = container_link(&nl, &ns, &args.ifname)?;
            let rules = nl.rule_list(None).map_err(nl_error)?;
            let routes = nl.route_list(None, None).map_err(nl_error)?;
            let link_routes: Vec<_> = routes
                .iter()
                .filter(|r| r.oif == Some(link.index) && r.table == Some(nl::route::TABLE_MAIN))
                .cloned()
                .collect();
            let mut plan =
                plan::plan(&sc, &ips, link.index, &link_routes, &plan::used_tables(&rules, &routes));
            if let Some(table) = sc.table {
                plan.tables.iter_mut().for_each(|t| t.table = table);
            }
            let mut undo = Undo::new();
            apply::apply(&nl, &plan, sc.table.is_none(), &mut undo)?;
            undo.commit();
            Ok(())
        })?;
        Ok(result)
    }

    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let sc = SbrConf::parse(conf)?;
        let result = meta::prev_result(conf)?;
        let ips = plan::own_ips(&result, &args.ifname)?;
        let ns = container_netns(args)?;
        let nl = handle_in(&ns)?;
        let link = container_link(&nl, &ns, &args.ifname)?;
        let want: Vec<_> =
            ips.iter().map(|ip| (ip.address, sc.gateway_for(ip.address.addr()).or(ip.gateway))).collect();
        apply::check(&nl, &link, &want, sc.table)
    }

    /// Removes the rules of the interface's addresses (those it holds now and those
    /// prevResult names) and their tables' routes. Nothing to do without the container or
    /// the interface; a fixed `table` is the only option that matters.
    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let Some(ns) = container_netns_if_present(args) else { return Ok(()) };
        let nl = handle_in(&ns)?;
        // Read leniently: DEL also cleans up after an ADD that failed on the configuration.
        let fixed = conf.raw.get("table").and_then(|t| t.as_u64()).and_then(|t| u32::try_from(t).ok());
        apply::with_netns_lock(ns.path(), || {
            let Some(link) = nl.link_get(&args.ifname).map_err(nl_error)? else { return Ok(()) };
            let mut addrs: BTreeSet<IpAddr> =
                nl.addr_list(Some(link.index)).map_err(nl_error)?.iter().map(|a| a.net.addr()).collect();
            if let Ok(Some(prev)) = conf.prev_result()
                && let Ok(ips) = plan::own_ips(&prev, &args.ifname)
            {
                addrs.extend(ips.iter().map(|ip| ip.address.addr()));
            }
            first_error(apply::teardown(&nl, &link, &addrs, fixed))
        })
    }

    /// Everything sbr makes lives in the container's namespace and goes with it.
    fn gc(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        cni_spec::valid_attachments(conf).map(drop)
    }

    fn status(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        SbrConf::parse(conf).map(drop)
    }
}
