//! `host-local`: addresses from configured ranges, reserved on local disk in the reference
//! plugin's exact layout (the allocator and the store are the `ipam` crate), so a node can
//! switch between the reference binary and twill with reservations in place. Adds GC and
//! STATUS, which the reference lacks. See docs/plugins/host-local.md.

mod conf;
mod error;
mod result;
mod store;

use std::net::IpAddr;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, NetConf};

use conf::{HostLocalConf, StoreConf};
use store::{check_free, check_usable, has_reservations_dir, with_store};

pub struct HostLocal;

impl Plugin for HostLocal {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let hl = HostLocalConf::parse(conf, args)?;
        result::check_representable(&hl)?;
        let dns = result::read_dns(hl.ipam.resolv_conf.as_deref())?;
        let at = StoreConf { data_dir: hl.ipam.data_dir.clone(), network: hl.ipam.name.clone() };
        let allocs = with_store(&at, |store| {
            ipam::allocate(store, &hl.ipam, &args.container_id, &args.ifname, &hl.requested)
        })?;
        Ok(result::build(hl.version, &allocs, &hl.routes, dns))
    }

    /// The reference only asks whether the attachment holds any address. With a
    /// `prevResult`, twill checks that each of its addresses inside this network's ranges is
    /// reserved for the attachment.
    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let hl = HostLocalConf::parse(conf, args)?;
        let ours: Vec<IpAddr> = conf
            .prev_result()?
            .map(|prev| prev.ips.iter().map(|ip| ip.address.addr()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|ip| hl.ipam.range_sets.iter().any(|set| set.contains(*ip)))
            .collect();
        let at = StoreConf { data_dir: hl.ipam.data_dir.clone(), network: hl.ipam.name.clone() };
        with_store(&at, |store| ipam::check(store, &args.container_id, &args.ifname, &ours))
    }

    /// Frees every address of (container id, ifname); nothing reserved is success.
    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let at = StoreConf::parse(conf)?;
        if !has_reservations_dir(&at) {
            return Ok(());
        }
        with_store(&at, |store| ipam::release(store, &args.container_id, &args.ifname)).map(drop)
    }

    /// Frees every reservation whose attachment is not in `cni.dev/valid-attachments`: after
    /// a node reboot or a runtime that lost its state, the reference leaks these forever.
    fn gc(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let at = StoreConf::parse(conf)?;
        // Without the list every reservation would look stale; refuse rather than free all.
        let valid = cni_spec::valid_attachments(conf)?.ok_or_else(|| {
            Error::invalid_config("GC needs the cni.dev/valid-attachments list; nothing was freed")
        })?;
        if !has_reservations_dir(&at) {
            return Ok(());
        }
        let valid: Vec<(String, String)> = valid.into_iter().map(|a| (a.container_id, a.ifname)).collect();
        let freed = with_store(&at, |store| ipam::gc(store, &valid))?;
        if !freed.is_empty() {
            let list: Vec<String> = freed.iter().map(IpAddr::to_string).collect();
            eprintln!("host-local: network {}: gc freed {}", at.network, list.join(" "));
        }
        Ok(())
    }

    /// ADD can be served when the config is valid, the data dir usable and every range set
    /// has a free address (code 50 otherwise). Ranges that only the `ipRanges` capability
    /// brings are known at ADD only.
    fn status(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let at = StoreConf::parse(conf)?;
        check_usable(&at)?;
        match HostLocalConf::parse(conf, args) {
            Ok(hl) => check_free(&at, &hl.ipam),
            Err(_) if ranges_come_with_add(conf) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The config names no range of its own and takes them from the runtime at ADD.
fn ranges_come_with_add(conf: &NetConf) -> bool {
    let own = conf.ipam.as_ref().is_some_and(|i| i.contains_key("subnet") || i.contains_key("ranges"));
    !own && conf.capabilities.get("ipRanges") == Some(&true)
}

#[cfg(test)]
#[path = "plugin_tests.rs"]
mod tests;
