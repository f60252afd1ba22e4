//! IPAM under contention: cluster-wide allocation (`whereabouts` on etcd with TLS, and on
//! the file store) by three nodes at once, against `host-local` on one node (twill's and the
//! reference's), in the same run. Each round every target allocates the same number of
//! addresses from one /24 with the same total concurrency — three node identities
//! (`node_name`) × W workers for whereabouts, 3·W workers on one node for host-local — then
//! frees them; the target going first rotates per round.
//!
//! The IPAM plugins are executed directly (process start included, as a runtime pays it)
//! inside one bench namespace that also runs the etcd member on its loopback, so the
//! "nodes" differ in identity, not in namespace: what is measured is allocation, and the
//! datastore round trips a node makes, on this machine's two cores.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cni_exec::{Exec, InvokeArgs, RawExec};
use netns::NetNs;
use serde_json::{Value, json};
use testkit::{EtcdCluster, EtcdOpts, ServerTls};

use crate::lab::Lab;
use crate::provision::{Impl, Provision};
use crate::signals;

const ETCD_PORT: u16 = 23799;
const NODES: usize = 3;

#[derive(Clone, Copy, Debug)]
pub struct IpamConf {
    pub allocs: usize,
    pub rounds: usize,
    pub workers_per_node: usize,
}

/// What is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    ReferenceHostLocal,
    TwillHostLocal,
    WhereaboutsEtcd1,
    WhereaboutsEtcd3,
    WhereaboutsFile3,
}

pub const TARGETS: [Target; 5] = [
    Target::ReferenceHostLocal,
    Target::TwillHostLocal,
    Target::WhereaboutsEtcd1,
    Target::WhereaboutsEtcd3,
    Target::WhereaboutsFile3,
];

impl Target {
    pub fn label(self) -> &'static str {
        match self {
            Target::ReferenceHostLocal => "reference `host-local`, 1 node",
            Target::TwillHostLocal => "twill `host-local`, 1 node",
            Target::WhereaboutsEtcd1 => "twill `whereabouts`, etcd (TLS), 1 node",
            Target::WhereaboutsEtcd3 => "twill `whereabouts`, etcd (TLS), 3 nodes",
            Target::WhereaboutsFile3 => "twill `whereabouts`, file store, 3 nodes",
        }
    }

    pub fn nodes(self) -> usize {
        match self {
            Target::WhereaboutsEtcd3 | Target::WhereaboutsFile3 => NODES,
            _ => 1,
        }
    }

    fn plugin(self) -> &'static str {
        match self {
            Target::ReferenceHostLocal | Target::TwillHostLocal => "host-local",
            _ => "whereabouts",
        }
    }

    fn imp(self) -> Impl {
        match self {
            Target::ReferenceHostLocal => Impl::Reference,
            _ => Impl::Twill,
        }
    }
}

/// Samples of one target over all rounds.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    pub adds: Vec<Duration>,
    pub dels: Vec<Duration>,
    /// Allocations per second, per round (wall time of the round's ADD phase).
    pub add_rate: Vec<f64>,
    pub del_rate: Vec<f64>,
    pub duplicates: usize,
    pub errors: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct IpamResult {
    pub conf: IpamConf,
    pub samples: Vec<(Target, Samples)>,
}

/// The bench namespace, the etcd member in it and the files each target uses.
struct Bed {
    ns: Arc<NetNs>,
    netns_path: PathBuf,
    dir: PathBuf,
    _etcd: EtcdCluster,
    pki: cluster::pki::Pki,
}

fn bed(lab: &Lab) -> Result<Bed> {
    let (name, ns) = lab.create_ns("ipam")?;
    let dir = lab.dir().join("ipam");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("whereabouts.conf"), "{}")?;
    let pki = cluster::pki::generate(&dir.join("pki"), &["127.0.0.1".into()]).context("etcd PKI")?;
    let tls = ServerTls {
        ca: pki.ca.clone(),
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_auth: true,
    };
    let opts = EtcdOpts { members: 1, hosts: Some(vec![("127.0.0.1".into(), ETCD_PORT)]), tls: Some(tls) };
    let etcd = EtcdCluster::start_with(opts, Some(&ns));
    Ok(Bed { ns: Arc::new(ns), netns_path: netns::named_path(&name), dir, _etcd: etcd, pki })
}

/// The config the plugin reads, for round `round`'s fresh pool.
fn stdin(t: Target, bed: &Bed, round: usize, node: usize) -> Value {
    let subnet = format!("10.{}.{}.0/24", 90 + t as usize, round % 250);
    let ipam = match t {
        Target::ReferenceHostLocal | Target::TwillHostLocal => json!({
            "type": "host-local", "subnet": subnet, "dataDir": bed.dir.join(format!("hl-{t:?}")),
        }),
        Target::WhereaboutsFile3 => json!({
            "type": "whereabouts", "range": subnet, "datastore": format!("file:{}", bed.dir.join("ds").display()),
            "node_name": format!("node-{node}"), "configuration_path": bed.dir.join("whereabouts.conf"),
        }),
        _ => json!({
            "type": "whereabouts", "range": subnet, "datastore": "etcd", "etcd_host": format!("127.0.0.1:{ETCD_PORT}"),
            "etcd_ca_cert_file": bed.pki.ca, "etcd_cert_file": bed.pki.client_cert, "etcd_key_file": bed.pki.client_key,
            "node_name": format!("node-{node}"), "configuration_path": bed.dir.join("whereabouts.conf"),
        }),
    };
    json!({"cniVersion": "1.0.0", "name": "ipambench", "type": t.plugin(), "ipam": ipam})
}

/// One verb on `id`; the address of an ADD.
fn call(
    bed: &Bed,
    bin: &Path,
    t: Target,
    verb: &'static str,
    id: &str,
    conf: &[u8],
) -> Result<Option<IpAddr>, String> {
    let exec = RawExec { netns: Some(bed.ns.clone()) };
    let args = InvokeArgs {
        command: verb,
        container_id: id.to_string(),
        netns: bed.netns_path.display().to_string(),
        ifname: "net1".into(),
        // As CRI runtimes pass them; the reference refuses unknown args without IgnoreUnknown.
        args: vec![
            ("IgnoreUnknown".into(), "1".into()),
            ("K8S_POD_NAMESPACE".into(), "bench".into()),
            ("K8S_POD_NAME".into(), id.to_string()),
        ],
        path: vec![bin.to_path_buf()],
    };
    let out = exec.exec(&bin.join(t.plugin()), conf, &args).map_err(|e| e.to_string())?;
    if verb != "ADD" {
        return Ok(None);
    }
    let v: Value = serde_json::from_slice(&out).map_err(|e| format!("result: {e}"))?;
    let addr = v["ips"][0]["address"].as_str().unwrap_or_default();
    let ip =
        addr.split('/').next().and_then(|a| a.parse().ok()).ok_or_else(|| format!("no address in {v}"))?;
    Ok(Some(ip))
}

/// One call's time and outcome (the address of an ADD).
type Call = (Duration, Result<Option<IpAddr>, String>);

/// Every worker of every node takes the next index until `n` are done; returns each call's
/// time and result, and the phase's wall time.
fn phase(
    t: Target,
    workers: usize,
    n: usize,
    job: impl Fn(usize, usize) -> Result<Option<IpAddr>, String> + Sync,
) -> (Vec<Call>, Duration) {
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(n));
    let started = Instant::now();
    let (next, out_ref, job) = (&next, &out, &job);
    std::thread::scope(|s| {
        for node in 0..t.nodes() {
            for _ in 0..workers * NODES / t.nodes() {
                s.spawn(move || {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= n || signals::interrupted() {
                            return;
                        }
                        let at = Instant::now();
                        let r = job(node, k);
                        out_ref.lock().unwrap_or_else(|e| e.into_inner()).push((at.elapsed(), r));
                    }
                });
            }
        }
    });
    (out.into_inner().unwrap_or_else(|e| e.into_inner()), started.elapsed())
}

fn round(bed: &Bed, prov: &Provision, conf: IpamConf, t: Target, r: usize, s: &mut Samples) {
    let bin = prov.bin_dir(t.imp());
    let confs: Vec<Vec<u8>> =
        (0..t.nodes()).map(|node| stdin(t, bed, r, node).to_string().into_bytes()).collect();
    let id = |k: usize| format!("r{r}-{k}");
    let (adds, took) = phase(t, conf.workers_per_node, conf.allocs, |node, k| {
        call(bed, bin, t, "ADD", &id(k), &confs[node])
    });
    let mut ips = BTreeSet::new();
    for (d, res) in &adds {
        match res {
            Ok(Some(ip)) => {
                s.adds.push(*d);
                s.duplicates += usize::from(!ips.insert(*ip));
            }
            Ok(None) => {}
            Err(e) => s.errors.push(format!("ADD: {e}")),
        }
    }
    s.add_rate.push(ips.len() as f64 / took.as_secs_f64());
    let (dels, took) = phase(t, conf.workers_per_node, conf.allocs, |node, k| {
        call(bed, bin, t, "DEL", &id(k), &confs[node])
    });
    for (d, res) in &dels {
        match res {
            Ok(_) => s.dels.push(*d),
            Err(e) => s.errors.push(format!("DEL: {e}")),
        }
    }
    s.del_rate.push(conf.allocs as f64 / took.as_secs_f64());
}

pub fn run(lab: &Lab, prov: &Provision, conf: IpamConf) -> Result<IpamResult> {
    let bed = bed(lab)?;
    let mut samples: Vec<(Target, Samples)> = TARGETS.iter().map(|t| (*t, Samples::default())).collect();
    for r in 0..conf.rounds {
        for i in 0..TARGETS.len() {
            let at = (i + r) % TARGETS.len();
            let (t, s) = &mut samples[at];
            eprintln!("twill-bench: ipam round {}/{}: {}", r + 1, conf.rounds, t.label());
            round(&bed, prov, conf, *t, r, s);
            if signals::interrupted() {
                anyhow::bail!("interrupted");
            }
        }
    }
    Ok(IpamResult { conf, samples })
}
