//! `whereabouts`: cluster-wide IPAM, a drop-in for the Whereabouts plugin, on the cluster
//! datastore (`file:DIR` with flock, or etcd with TLS). Addresses are unique across every
//! node sharing the datastore: each ADD reserves them in one compare-and-swap transaction
//! (`cluster::ippool`), with no leader election and no lock that a crashed plugin could
//! leave behind. DEL frees, CHECK verifies, GC (1.1.0) frees this node's reservations of
//! attachments the runtime no longer has, STATUS tells whether the datastore answers and
//! the ranges have room; twilld's reconciler frees what nobody else will. See
//! docs/plugins/whereabouts.md.
//!
//! | code | meaning |
//! |------|---------|
//! | 1    | more than one address per family for a cniVersion before 0.3.0 |
//! | 4    | `CNI_ARGS` `IP=`/`GATEWAY=` malformed |
//! | 5    | the datastore failed otherwise (TLS refused, unreadable files) |
//! | 6    | the flat file is not a JSON object |
//! | 7    | invalid `ipam` config, datastore or flat file path; GC without a valid-attachment list |
//! | 11   | the datastore is unreachable, or allocations kept colliding until the deadline |
//! | 50   | STATUS: the datastore is unreachable or a range is full |
//! | 100  | a range has no free address |
//! | 102  | CHECK: the attachment's addresses are not reserved for it |

mod conf;
mod datastore;
mod flat;
mod log;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::Datastore;
use cluster::ippool::{self, AllocRequest, Holder, IpPoolError};
use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, ErrorCode, IpConfig, NetConf};

use conf::{WhereaboutsConf, merged_ipam, network_name};
use log::Log;

pub use flat::DEFAULT_PATHS;

/// A range has no free address left.
pub const RANGE_EXHAUSTED: u32 = 100;
/// CHECK: the attachment's addresses are not reserved for it.
pub const NOT_RESERVED: u32 = 102;
/// How long an ADD keeps trying when other allocations keep winning (Whereabouts: 2 min).
const ADD_DEADLINE: Duration = Duration::from_secs(60);

pub struct Whereabouts;

fn defaults() -> Vec<&'static Path> {
    DEFAULT_PATHS.iter().map(Path::new).collect()
}

fn open(d: &cluster::DatastoreConf) -> Result<Arc<dyn Datastore>, Error> {
    d.open().map_err(|e| to_cni(IpPoolError::Store(e), d))
}

/// The one place a pool error becomes a CNI error.
fn to_cni(e: IpPoolError, d: &cluster::DatastoreConf) -> Error {
    let code = match &e {
        _ if e.is_unavailable() => ErrorCode::TryAgainLater,
        IpPoolError::Exhausted { .. } => ErrorCode::Plugin(RANGE_EXHAUSTED),
        IpPoolError::Contended { .. } => ErrorCode::TryAgainLater,
        IpPoolError::NetworkName { .. } | IpPoolError::DuplicateRange { .. } => ErrorCode::InvalidConfig,
        IpPoolError::Store(_) | IpPoolError::Record(_) => ErrorCode::Io,
    };
    let msg = match code {
        ErrorCode::TryAgainLater if e.is_unavailable() => {
            format!("whereabouts: datastore {d} is unreachable: {e}")
        }
        _ => format!("whereabouts: {e}"),
    };
    Error::new(code, msg)
}

/// `NAMESPACE/NAME` of the pod, as twill-pod names it.
fn pod_ref(args: &CmdArgs) -> String {
    let (ns, name) = crate::twill_pod::pod_identity(args);
    format!("{ns}/{name}")
}

fn node(ipam: &serde_json::Map<String, serde_json::Value>) -> Result<String, Error> {
    datastore::node_name(ipam, std::env::var("NODENAME").ok())
}

/// The result: allocated addresses in range order (with the gateway of their family), then
/// the static ones.
fn build_result(wc: &WhereaboutsConf, ips: &[IpAddr]) -> CniResult {
    let mut out: Vec<IpConfig> = wc
        .ranges
        .iter()
        .zip(ips)
        .map(|(r, ip)| IpConfig {
            address: r.address(*ip),
            gateway: wc.gateway.filter(|g| g.is_ipv4() == ip.is_ipv4()),
            interface: None,
        })
        .collect();
    out.extend(wc.addresses.iter().map(|a| IpConfig {
        address: a.address,
        gateway: a.gateway,
        interface: None,
    }));
    CniResult {
        cni_version: wc.version,
        interfaces: Vec::new(),
        ips: out,
        routes: wc.routes.clone(),
        dns: wc.dns.clone(),
    }
}

/// Refuses, before anything is reserved, a result its cniVersion cannot carry.
fn check_representable(wc: &WhereaboutsConf) -> Result<(), Error> {
    let stand_ins: Vec<IpAddr> = wc.ranges.iter().map(|r| r.window().0).collect();
    let result = build_result(wc, &stand_ins);
    let v4 = result.ips.iter().filter(|i| i.address.addr().is_ipv4()).count();
    if wc.version < cni_spec::Version::V0_3_0 && (v4 > 1 || result.ips.len() - v4 > 1) {
        return Err(Error::incompatible(format!(
            "CNI version {} does not support more than 1 address per family",
            wc.version.as_str()
        )));
    }
    result.to_json(wc.version).map(drop)
}

impl Plugin for Whereabouts {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let wc = WhereaboutsConf::parse(conf, args, &defaults())?;
        let log = Log::from_ipam(&wc.ipam);
        wc.notes.iter().for_each(|n| log.info(n));
        check_representable(&wc)?;
        let d = wc.datastore()?;
        let store = open(&d)?;
        let holder = Holder {
            pod: pod_ref(args),
            container_id: args.container_id.clone(),
            ifname: args.ifname.clone(),
            node: node(&wc.ipam)?,
            cni_network: wc.cni_network.clone(),
        };
        let req = AllocRequest {
            network: &wc.network,
            ranges: &wc.ranges,
            overlapping: wc.overlapping,
            holder,
            deadline: Instant::now() + ADD_DEADLINE,
        };
        let ips = ippool::allocate(store.as_ref(), &req).map_err(|e| to_cni(e, &d))?;
        log.debug(&format!("ADD {}/{}: {ips:?}", args.container_id, args.ifname));
        Ok(build_result(&wc, &ips))
    }

    /// Every range holds a reservation for the attachment, and every address of
    /// `prevResult` inside the ranges is one of them.
    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let wc = WhereaboutsConf::parse(conf, args, &defaults())?;
        let d = wc.datastore()?;
        let store = open(&d)?;
        let held = ippool::held(store.as_ref(), &wc.network, &args.container_id, &args.ifname)
            .map_err(|e| to_cni(e, &d))?;
        let not_reserved =
            |what: String| Error::new(ErrorCode::Plugin(NOT_RESERVED), format!("whereabouts: {what}"));
        for r in &wc.ranges {
            if !held.iter().any(|s| s.record.range == r.subnet()) {
                return Err(not_reserved(format!(
                    "no address of range {} is reserved for {}/{}",
                    r.subnet(),
                    args.container_id,
                    args.ifname
                )));
            }
        }
        let prev = conf.prev_result()?.map(|p| p.ips).unwrap_or_default();
        for ip in prev.iter().map(|i| i.address.addr()) {
            let ours = wc.ranges.iter().any(|r| r.subnet().contains(&ip));
            if ours && !held.iter().any(|s| s.record.ip == ip) {
                return Err(not_reserved(format!(
                    "{ip} is not reserved for {}/{}",
                    args.container_id, args.ifname
                )));
            }
        }
        Ok(())
    }

    /// Frees the attachment's addresses in the network, whatever ranges the config has now.
    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let ipam = merged_ipam(conf, &defaults())?;
        let network = network_name(&ipam)?;
        let d = datastore::datastore(&ipam)?;
        let store = open(&d)?;
        let freed = ippool::release(store.as_ref(), &network, &args.container_id, &args.ifname)
            .map_err(|e| to_cni(e, &d))?;
        Log::from_ipam(&ipam).debug(&format!("DEL {}/{}: freed {freed:?}", args.container_id, args.ifname));
        Ok(())
    }

    /// Frees this node's reservations of this network whose attachment is not valid.
    fn gc(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let ipam = merged_ipam(conf, &defaults())?;
        let valid = cni_spec::valid_attachments(conf)?.ok_or_else(|| {
            Error::invalid_config("GC needs the cni.dev/valid-attachments list; nothing was freed")
        })?;
        let network = network_name(&ipam)?;
        let d = datastore::datastore(&ipam)?;
        let store = open(&d)?;
        let valid: Vec<(String, String)> = valid.into_iter().map(|a| (a.container_id, a.ifname)).collect();
        let freed = ippool::gc(store.as_ref(), &network, &conf.name, &node(&ipam)?, &valid)
            .map_err(|e| to_cni(e, &d))?;
        if !freed.is_empty() {
            let list: Vec<String> = freed.iter().map(IpAddr::to_string).collect();
            Log::from_ipam(&ipam).info(&format!("network {}: gc freed {}", conf.name, list.join(" ")));
        }
        Ok(())
    }

    /// Ready when the datastore answers and every range has a free address.
    fn status(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let not_available = |msg: String| Error::new(ErrorCode::NotAvailable, format!("whereabouts: {msg}"));
        let wc = WhereaboutsConf::parse(conf, args, &defaults())?;
        let d = wc.datastore()?;
        let store = d.open().map_err(|e| not_available(format!("datastore {d}: {e}")))?;
        let view = ippool::network_view(store.as_ref(), &wc.network)
            .map_err(|e| not_available(format!("datastore {d} is unreachable: {e}")))?;
        for r in &wc.ranges {
            if r.free(&view.taken(r.subnet(), wc.overlapping)) == 0 {
                return Err(not_available(format!("range {r} ({}) is full", r.subnet())));
            }
        }
        Ok(())
    }
}
