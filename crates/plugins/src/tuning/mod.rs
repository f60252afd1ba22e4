//! `tuning`: sets network sysctls and link attributes (MAC, MTU, promiscuous and
//! all-multicast mode, transmit queue length) of CNI_IFNAME inside the container, and puts
//! them back on DEL from a backup file. Options and semantics follow the reference plugin;
//! see docs/plugins/tuning.md.

mod allowlist;
mod attrs;
mod backup;
mod conf;
mod sysctls;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error};
use netns::NetNs;
use nl::{Handle, Link};

use crate::kernel::{container_netns, container_netns_if_present, handle_in, nl_error};
use crate::meta;
use crate::owner;
use crate::undo::{Undo, first_error};
use backup::Backup;
pub use conf::TuningConf;
use sysctls::Setting;

pub struct Tuning;

/// The sysctls of `conf` for `ifname`, checked against the rules and the allowlist.
fn settings(conf: &TuningConf, ifname: &str, allowlist_path: &str) -> Result<Vec<Setting>, Error> {
    let settings = conf
        .sysctl
        .iter()
        .map(|(key, value)| {
            Ok(Setting { key: key.clone(), path: conf::sysctl_path(key, ifname)?, value: value.clone() })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if !settings.is_empty()
        && let Some(list) = allowlist::load(allowlist_path)?
    {
        let keys: Vec<&str> = settings.iter().map(|s| s.key.as_str()).collect();
        allowlist::check(&keys, &list)?;
    }
    Ok(settings)
}

fn container_link(nl: &Handle, ns: &NetNs, ifname: &str) -> Result<Link, Error> {
    nl.link_get(ifname).map_err(nl_error)?.ok_or_else(|| {
        Error::internal(format!("tuning: {ifname} does not exist in netns {}", ns.path().display()))
    })
}

/// Everything `b` recorded, put back; failures are collected.
fn restore_all(ns: &NetNs, nl: &Handle, link: &Link, b: &Backup) -> Vec<Error> {
    let mut errors = sysctls::restore(ns, &b.sysctl);
    errors.extend(attrs::restore(nl, link, b));
    errors
}

impl Plugin for Tuning {
    fn add(&self, args: &CmdArgs, conf: &cni_spec::NetConf) -> Result<CniResult, Error> {
        let tc = TuningConf::parse(conf, args)?;
        let mut result = meta::prev_result(conf)?;
        let settings = settings(&tc, &args.ifname, allowlist::ALLOWLIST)?;
        if settings.is_empty() && !tc.changes_link() {
            return Ok(result);
        }
        let ns = container_netns(args)?;
        let nl = handle_in(&ns)?;
        let link = container_link(&nl, &ns, &args.ifname)?;
        let saved = Backup {
            sysctl: sysctls::read(&ns, &settings)?,
            owner: Some(owner::tag(&conf.name, &args.container_id, &args.ifname)),
            ..attrs::plan_backup(&tc, &link)
        };
        let file = backup::path(&tc.data_dir, &args.container_id, &args.ifname);
        backup::write(&file, &saved)?;
        let mut undo = Undo::new();
        undo.push(format!("remove {}", file.display()), || backup::remove(&file));
        // Restoring what was not changed yet is harmless, so one step undoes any prefix.
        undo.push("restore the interface", || first_error(restore_all(&ns, &nl, &link, &saved)));
        sysctls::apply(&ns, &settings)?;
        attrs::apply(&nl, &link, &tc)?;
        if let Some(mac) = tc.mac {
            for iface in result.interfaces.iter_mut().filter(|i| i.name == args.ifname && i.sandbox.is_some())
            {
                iface.mac = Some(nl::format_mac(&mac));
            }
        }
        undo.commit();
        Ok(result)
    }

    fn check(&self, args: &CmdArgs, conf: &cni_spec::NetConf) -> Result<(), Error> {
        let tc = TuningConf::parse(conf, args)?;
        meta::prev_result(conf)?;
        let settings = settings(&tc, &args.ifname, allowlist::ALLOWLIST)?;
        let ns = container_netns(args)?;
        let nl = handle_in(&ns)?;
        let link = container_link(&nl, &ns, &args.ifname)?;
        sysctls::check(&ns, &settings)?;
        attrs::check(&link, &tc)
    }

    /// Restores from the backup and removes it. Without the container or its interface
    /// there is nothing to restore, and the backup goes. Only `dataDir` of the
    /// configuration matters.
    fn del(&self, args: &CmdArgs, conf: &cni_spec::NetConf) -> Result<(), Error> {
        let file = backup::path(&conf::data_dir(conf), &args.container_id, &args.ifname);
        let saved = match backup::read(&file) {
            Ok(Some(saved)) => saved,
            Ok(None) => return Ok(()),
            Err(e) => {
                eprintln!("tuning: dropping unreadable backup: {e}");
                return backup::remove(&file);
            }
        };
        if let Some(ns) = container_netns_if_present(args) {
            let nl = handle_in(&ns)?;
            if let Some(link) = nl.link_get(&args.ifname).map_err(nl_error)? {
                first_error(restore_all(&ns, &nl, &link, &saved))?;
            }
        }
        backup::remove(&file)
    }

    /// Backups of this network's attachments that are not valid any more are removed (their
    /// interfaces went with their containers; there is nothing left to restore). Backups
    /// without an owner (written by the reference) are left to DEL.
    fn gc(&self, _args: &CmdArgs, conf: &cni_spec::NetConf) -> Result<(), Error> {
        let valid = cni_spec::valid_attachments(conf)?.unwrap_or_default();
        let stale = |b: &Backup| b.owner.as_deref().is_some_and(|o| owner::is_stale(o, &conf.name, &valid));
        let errors = backup::list(&conf::data_dir(conf))?
            .into_iter()
            .filter(|(_, saved)| stale(saved))
            .filter_map(|(file, _)| backup::remove(&file).err());
        first_error(errors.collect())
    }

    fn status(&self, args: &CmdArgs, conf: &cni_spec::NetConf) -> Result<(), Error> {
        TuningConf::parse(conf, args).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_resolve_ifname_and_honour_the_allowlist() {
        let tc = TuningConf {
            sysctl: vec![("net.ipv4.conf.IFNAME.arp_notify".into(), "1".into())],
            ..Default::default()
        };
        let s = settings(&tc, "eth0", "/nonexistent/allowlist.conf").unwrap();
        assert_eq!(s[0].path, "net/ipv4/conf/eth0/arp_notify");
        let dir = std::env::temp_dir().join(format!("twill-tuning-allow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("allowlist.conf");
        std::fs::write(&list, "^net\\.core\\.somaxconn$\n").unwrap();
        let err = settings(&tc, "eth0", list.to_str().unwrap()).unwrap_err();
        assert_eq!(err.code.code(), 7);
        std::fs::write(&list, "^net\\.ipv4\\.conf\\.IFNAME\\.[a-z_]+$\n").unwrap();
        assert!(settings(&tc, "eth0", list.to_str().unwrap()).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
