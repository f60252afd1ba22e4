//! CHECK and STATUS. CHECK asks every delegate of the cached attachment to verify it against
//! its cached result (delegates configured before 0.4.0 have no CHECK and are skipped, as the
//! runtime side skips them). STATUS is "could an ADD work now": the readiness indicator file
//! exists, the datastore answers (when one is configured: ADD reads it), and every network
//! attached to each pod says it is ready.

use std::time::Duration;

use cni_skel::CmdArgs;
use cni_spec::{Error, ErrorCode, NetConf};

use super::add::{always_attached, cluster_network};
use super::cache::Cache;
use super::conf::MultusConf;
use super::pod::Pod;
use super::store::DatastoreCluster;
use super::{delegate_error, runtime, runtime_conf, wait_ready};

pub fn check(args: &CmdArgs, netconf: &NetConf) -> Result<(), Error> {
    let conf = MultusConf::parse(netconf)?;
    let entry =
        Cache::new(&conf.cni_dir).get(&netconf.name, &args.container_id, &args.ifname)?.ok_or_else(|| {
            Error::invalid_config(format!(
                "multus: no attachment {}/{} of network {} in {}",
                args.container_id,
                args.ifname,
                netconf.name,
                conf.cni_dir.display()
            ))
        })?;
    let rt = runtime(&conf, args);
    let netns = args.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    for d in &entry.delegates {
        let loaded = d.network().loaded()?;
        let version = rt.version_of(&loaded).map_err(|e| delegate_error(d, "check", &e))?;
        if !version.supports_check() {
            continue;
        }
        let rtc = runtime_conf(&entry.container_id, &netns, &args.args, d);
        rt.check(&loaded, &rtc).map_err(|e| delegate_error(d, "check", &e))?;
    }
    Ok(())
}

fn not_available(msg: String) -> Error {
    Error::new(ErrorCode::NotAvailable, msg)
}

pub fn status(args: &CmdArgs, netconf: &NetConf) -> Result<(), Error> {
    let conf = MultusConf::parse(netconf)?;
    wait_ready(conf.readiness_indicator_file.as_deref(), Duration::ZERO).map_err(|e| not_available(e.msg))?;
    let mut cluster = DatastoreCluster::new(conf.datastore.clone());
    if conf.datastore.is_some() {
        cluster.check().map_err(|e| not_available(e.msg))?;
    }
    // Any pod outside the system namespaces gets these.
    let pod = Pod { namespace: String::new(), name: String::new(), known: false };
    let mut nets = vec![cluster_network(&conf, &mut cluster, false)?];
    nets.extend(always_attached(&conf, &pod, &mut cluster, false)?);
    let rt = runtime(&conf, args);
    for r in &nets {
        let loaded = r.net.loaded()?;
        rt.status(&loaded).map_err(|e| {
            let cni = e.to_cni();
            Error { msg: format!("multus: network {}: {}", r.status_name, cni.msg), ..cni }
        })?;
    }
    Ok(())
}
