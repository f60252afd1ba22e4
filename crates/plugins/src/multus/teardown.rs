//! DEL and GC, from the delegate cache alone: neither the definitions nor the datastore are
//! needed. DEL runs every delegate's DEL in reverse order and carries on past failures; the
//! cache then goes, or keeps just the delegates whose DEL failed, so the runtime's next DEL
//! retries exactly those. Without a cache (an ADD that never ran, a wiped `cniDir`), DEL
//! falls back to the networks the config attaches to every pod, resolved without the
//! datastore.

use std::collections::BTreeMap;

use cni_exec::Runtime;
use cni_skel::CmdArgs;
use cni_spec::{Attachment, Error, NetConf};

use super::add::{always_attached, cluster_network};
use super::cache::{self, Cache, Entry};
use super::conf::MultusConf;
use super::journal;
use super::log::Log;
use super::plan::{self, Delegate};
use super::pod;
use super::resolve::NetworkConfig;
use super::store::DatastoreCluster;
use super::{delegate_error, runtime, runtime_conf};

/// DEL of every delegate of `entry`, in reverse; the ones that failed, with why.
pub fn detach(rt: &Runtime, entry: &Entry, netns: &str, log: &Log) -> Vec<(Delegate, Error)> {
    let mut failed = Vec::new();
    for d in entry.delegates.iter().rev() {
        let rtc = runtime_conf(&entry.container_id, netns, &entry.cni_args, d);
        let outcome =
            d.network().loaded().and_then(|l| rt.del(&l, &rtc).map_err(|e| delegate_error(d, "del", &e)));
        if let Err(e) = outcome {
            log.error(&e.msg);
            failed.push((d.clone(), e));
        }
    }
    failed
}

/// The attachment to delete when nothing was cached: the always-attached networks.
fn fallback(args: &CmdArgs, netconf: &NetConf, conf: &MultusConf) -> Result<Entry, Error> {
    let pod = pod::identity(args);
    let mut local = DatastoreCluster::new(None);
    let cluster = cluster_network(conf, &mut local, true)?;
    let always = always_attached(conf, &pod, &mut local, true).unwrap_or_else(|e| {
        conf.log.error(&format!("DEL without a cache: {}", e.msg));
        Vec::new()
    });
    Ok(Entry {
        kind: cache::KIND.into(),
        network: netconf.name.clone(),
        container_id: args.container_id.clone(),
        if_name: args.ifname.clone(),
        netns: String::new(),
        cni_args: args.args.clone(),
        pod: pod.qualified(),
        delegates: plan::plan(&args.ifname, cluster, always, Vec::new(), &serde_json::Map::new())?,
    })
}

/// Deletes one cached attachment (or the fallback), keeping what failed for a retry.
fn delete_attachment(
    rt: &Runtime,
    cache: &Cache,
    conf: &MultusConf,
    entry: Entry,
    netns: &str,
) -> Result<(), Error> {
    let failed = detach(rt, &entry, netns, &conf.log);
    let journal = journal::locate(conf, journal::cluster_config(&entry.delegates))
        .map(|s| s.forget(&entry.network, &entry.container_id, &entry.if_name).map(drop))
        .unwrap_or(Ok(()));
    if failed.is_empty() {
        cache.remove(&entry.network, &entry.container_id, &entry.if_name)?;
        return journal;
    }
    let remaining: Vec<Delegate> = entry
        .delegates
        .iter()
        .filter(|d| failed.iter().any(|(f, _)| f.ifname == d.ifname))
        .cloned()
        .collect();
    let first = failed[0].1.clone();
    let all: Vec<String> = failed.into_iter().map(|(_, e)| e.msg).collect();
    cache.put(&Entry { delegates: remaining, ..entry })?;
    Err(Error { msg: all.join("; "), ..first })
}

pub fn del(args: &CmdArgs, netconf: &NetConf) -> Result<(), Error> {
    let conf = MultusConf::parse(netconf)?;
    let cache = Cache::new(&conf.cni_dir);
    let netns = args.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let entry = match cache.get(&netconf.name, &args.container_id, &args.ifname)? {
        Some(e) => Entry { cni_args: args.args.clone(), ..e },
        None => {
            conf.log.verbose(&format!(
                "DEL {}/{}: no cached attachment, deleting the configured networks",
                args.container_id, args.ifname
            ));
            fallback(args, netconf, &conf)?
        }
    };
    delete_attachment(&runtime(&conf, args), &cache, &conf, entry, &netns)
}

/// GC: deletes the cached attachments the runtime no longer has, then sends GC to every
/// delegate network with the attachments that stay (the runtime side also removes that
/// network's stale results). Errors are collected; everything is tried.
pub fn gc(args: &CmdArgs, netconf: &NetConf) -> Result<(), Error> {
    let conf = MultusConf::parse(netconf)?;
    let valid = cni_spec::valid_attachments(netconf)?.ok_or_else(|| {
        Error::invalid_config("multus: GC needs the list of valid attachments (cni.dev/valid-attachments)")
    })?;
    let is_valid =
        |cid: &str, ifname: &str| valid.iter().any(|a| a.container_id == cid && a.ifname == ifname);
    let cache = Cache::new(&conf.cni_dir);
    let rt = runtime(&conf, args);
    let (entries, unreadable) = cache.list(&netconf.name)?;
    let mut errors: Vec<String> = unreadable;
    let mut networks: BTreeMap<String, (NetworkConfig, Vec<Attachment>)> = BTreeMap::new();
    for e in entries {
        if !is_valid(&e.container_id, &e.if_name) {
            let netns = e.netns.clone();
            errors.extend(delete_attachment(&rt, &cache, &conf, e, &netns).err().map(|e| e.msg));
            continue;
        }
        for d in &e.delegates {
            let slot = networks.entry(d.name().to_string()).or_insert_with(|| (d.network(), Vec::new()));
            slot.1.push(Attachment { container_id: e.container_id.clone(), ifname: d.ifname.clone() });
        }
    }
    let mut local = DatastoreCluster::new(None);
    let configured = cluster_network(&conf, &mut local, true).ok();
    if let Some(c) = &configured {
        networks.entry(c.net.name().to_string()).or_insert_with(|| (c.net.clone(), Vec::new()));
    }
    for (name, (net, keep)) in &networks {
        let outcome = net.loaded().and_then(|l| rt.gc(&l, keep).map_err(|e| Error::internal(e.to_string())));
        errors.extend(outcome.err().map(|e| format!("gc network {name}: {}", e.msg)));
    }
    if let Some(sink) = journal::locate(&conf, configured.as_ref().map(|c| &c.net.config)) {
        errors.extend(sink.retain(&netconf.name, is_valid).err().map(|e| e.msg));
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(Error::internal(format!("multus: GC: {}", errors.join("; ")))),
    }
}
