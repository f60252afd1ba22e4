//! Multi-network pods: what multus costs on top of the networks it attaches. One pod gets the
//! cluster network (the minimal chain: bridge + host-local) and two secondaries — a macvlan
//! on a `data0` master and a second bridge, both NetworkAttachmentDefinitions in a file
//! datastore that the pod's annotation (its PodMeta, read from the same datastore) selects.
//! Each iteration, in the same fake host and interleaved (the one going first alternates):
//! - multus: ADD and DEL of the pod through the runtime side, multus executing the delegates;
//! - alone: the same three networks ADDed (eth0, net1, net2) and DELed by the runtime side
//!   directly — the sum of the delegates run alone.
//!
//! Twice: with twill's delegates (which multus runs in its own process, ADR 0014) and with
//! the reference bridge, macvlan and host-local, which multus executes like any runtime.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cluster::{DatastoreConf, EtcdTls, PodMeta, Registry};
use cni_exec::{LoadedList, RawExec, Runtime, RuntimeConf};
use cni_spec::NetConfList;
use netns::NetNs;
use serde_json::{Value, json};

use crate::chains::Chain;
use crate::lab::Lab;
use crate::provision::{CNI_VERSION, Impl, Provision, order};
use crate::signals;

/// Whose delegate plugins multus runs.
pub type Delegates = Impl;

/// A series gives up after this many failed pods.
const MAX_FAILURES: usize = 3;
const POD_NS: &str = "bench";
const POD: &str = "p";

/// ADD+DEL of one pod, both ways.
#[derive(Clone, Debug, Default)]
pub struct MultusSeries {
    pub multus: Vec<Duration>,
    pub alone: Vec<Duration>,
    pub failures: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct MultusResult {
    pub iterations: usize,
    pub series: BTreeMap<Delegates, MultusSeries>,
}

/// One fake host with multus, its delegates and the data network's master.
struct Bed<'l> {
    lab: &'l Lab,
    tag: &'static str,
    names: Vec<String>,
    runtime: Runtime,
    multus: LoadedList,
    /// The three networks with their interfaces, as the runtime would run them itself.
    alone: Vec<(LoadedList, &'static str)>,
}

fn list(value: &Value) -> Result<LoadedList> {
    let bytes = serde_json::to_vec(value)?;
    let parsed = if value.get("plugins").is_some() {
        NetConfList::parse(&bytes)
    } else {
        NetConfList::from_conf(&bytes)
    };
    Ok(LoadedList { list: parsed.context("parse a bench network")?, bytes, source: PathBuf::new() })
}

/// The two secondaries' configs (as their NetworkAttachmentDefinitions hold them).
fn secondaries(ipam: &Path) -> [(&'static str, Value); 2] {
    [
        (
            "data",
            json!({"cniVersion": CNI_VERSION, "name": "twb-data", "type": "macvlan", "master": "data0", "mode": "bridge",
            "ipam": {"type": "host-local", "dataDir": ipam, "ranges": [[{"subnet": "10.77.0.0/16"}]]}}),
        ),
        (
            "side",
            json!({"cniVersion": CNI_VERSION, "name": "twb-side", "type": "bridge", "bridge": "twb-side0",
            "ipam": {"type": "host-local", "dataDir": ipam, "ranges": [[{"subnet": "10.78.0.0/16"}]]}}),
        ),
    ]
}

/// The bin dir multus runs from: twill's multus, and `delegates`' bridge, macvlan, host-local.
fn bin_dir(prov: &Provision, delegates: Delegates, dir: &Path) -> Result<PathBuf> {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::os::unix::fs::symlink(prov.bin_dir(Impl::Twill).join("multus"), bin.join("multus"))?;
    for name in ["bridge", "macvlan", "host-local"] {
        let target = match delegates {
            Impl::Twill => prov.bin_dir(Impl::Twill).join(name),
            Impl::Reference => prov.reference_dir.join(name),
        };
        std::os::unix::fs::symlink(&target, bin.join(name))
            .with_context(|| format!("link {}", target.display()))?;
    }
    Ok(bin)
}

/// The datastore: both definitions, and the pod's annotation selecting them.
fn datastore(dir: &Path, ipam: &Path) -> Result<String> {
    let url = format!("file:{}", dir.join("datastore").display());
    let store = DatastoreConf::parse(&url, EtcdTls::default())?.open()?;
    let nads: Vec<cluster::manifest::Manifest> = secondaries(ipam)
        .into_iter()
        .map(|(name, config)| {
            cluster::manifest::Manifest::NetAttachDef(cluster::NetAttachDef {
                namespace: POD_NS.into(),
                name: name.into(),
                config: config.to_string(),
            })
        })
        .collect();
    cluster::ops::apply(store.as_ref(), &nads)?;
    let meta = PodMeta {
        namespace: POD_NS.into(),
        name: POD.into(),
        annotations: [(cluster::multinet::NETWORKS_ANNOTATION.to_string(), "data,side".to_string())].into(),
        ..PodMeta::default()
    };
    Registry::new(store.as_ref()).put_pod_meta(&meta)?;
    Ok(url)
}

/// `data0` in the host, its peer `wire0` in the wire namespace, both up.
fn data_master(host: &NetNs, wire: &NetNs) -> Result<()> {
    let h = nl::Handle::in_netns(host)?;
    h.veth_add("data0", "wire0", Some(wire), None, None, None)?;
    for (handle, name) in [(&h, "data0"), (&nl::Handle::in_netns(wire)?, "wire0")] {
        let link = handle.link_get(name)?.with_context(|| format!("{name} vanished"))?;
        handle.link_set_up(link.index, true)?;
    }
    Ok(())
}

impl<'l> Bed<'l> {
    /// Namespaces go with the bed, or with the lab when building it fails half-way.
    fn new(lab: &'l Lab, prov: &Provision, delegates: Delegates) -> Result<Bed<'l>> {
        let tag = match delegates {
            Impl::Twill => "mu-tw",
            Impl::Reference => "mu-ref",
        };
        let (host_name, host) = lab.create_ns(&format!("{tag}-host"))?;
        let (wire_name, wire) = lab.create_ns(&format!("{tag}-wire"))?;
        data_master(&host, &wire)?;
        let dir = lab.dir().join(tag);
        let ipam = dir.join("ipam");
        let bin = bin_dir(prov, delegates, &dir)?;
        let cluster = Chain::Minimal.conflist(&ipam);
        let conf = json!({"cniVersion": CNI_VERSION, "name": "twb-multus", "type": "multus",
            "delegates": [cluster], "cniDir": dir.join("multus"), "datastore": datastore(&dir, &ipam)?});
        let [(_, data), (_, side)] = secondaries(&ipam);
        let exec = Box::new(RawExec::in_netns(NetNs::open(host.path())?));
        Ok(Bed {
            lab,
            tag,
            names: vec![host_name, wire_name],
            runtime: Runtime::with_exec(vec![bin], dir.join("cache"), exec),
            multus: list(&conf)?,
            alone: vec![(list(&cluster)?, "eth0"), (list(&data)?, "net1"), (list(&side)?, "net2")],
        })
    }

    fn rt(&self, id: &str, netns: &str, ifname: &str) -> RuntimeConf {
        RuntimeConf {
            container_id: id.into(),
            netns: netns.into(),
            ifname: ifname.into(),
            // As a kubelet's runtime passes them; the reference plugins refuse unknown
            // arguments without IgnoreUnknown.
            args: vec![
                ("IgnoreUnknown".into(), "1".into()),
                ("K8S_POD_NAMESPACE".into(), POD_NS.into()),
                ("K8S_POD_NAME".into(), POD.into()),
            ],
            capability_args: Default::default(),
        }
    }

    /// One pod through multus (`multus` true) or through the delegates alone; the time of
    /// ADD and DEL only (namespaces are made and removed around it).
    fn pod(&self, multus: bool, i: usize) -> Result<Result<Duration, String>> {
        let id = format!("{}{i}", if multus { "m" } else { "a" });
        let (ns_name, _) = self.lab.create_ns(&format!("{}-{id}", self.tag))?;
        let netns = netns::named_path(&ns_name).display().to_string();
        let started = Instant::now();
        let outcome = if multus {
            let rt = self.rt(&id, &netns, "eth0");
            self.runtime.add(&self.multus, &rt).and_then(|_| self.runtime.del(&self.multus, &rt))
        } else {
            self.alone_pod(&id, &netns)
        };
        let took = started.elapsed();
        self.lab.remove_ns(&ns_name);
        Ok(outcome.map(|()| took).map_err(|e| e.to_string()))
    }

    fn alone_pod(&self, id: &str, netns: &str) -> Result<(), cni_exec::Error> {
        for (net, ifname) in &self.alone {
            self.runtime.add(net, &self.rt(id, netns, ifname))?;
        }
        for (net, ifname) in self.alone.iter().rev() {
            self.runtime.del(net, &self.rt(id, netns, ifname))?;
        }
        Ok(())
    }
}

impl Drop for Bed<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            self.lab.remove_ns(n);
        }
    }
}

pub fn run(lab: &Lab, prov: &Provision, iterations: usize, warmup: usize) -> Result<MultusResult> {
    let beds = [Bed::new(lab, prov, Impl::Twill)?, Bed::new(lab, prov, Impl::Reference)?];
    let mut result = MultusResult { iterations, ..Default::default() };
    for i in 0..warmup + iterations {
        signals::check()?;
        for delegates in order(i) {
            let series = result.series.entry(delegates).or_default();
            if series.failures.len() >= MAX_FAILURES {
                continue;
            }
            let bed = &beds[delegates.index()];
            // Which of the two goes first alternates every other iteration, independently.
            for multus in if (i / 2) % 2 == 0 { [true, false] } else { [false, true] } {
                match bed.pod(multus, i)? {
                    Ok(t) if i >= warmup && multus => series.multus.push(t),
                    Ok(t) if i >= warmup => series.alone.push(t),
                    Ok(_) => {}
                    Err(e) => {
                        series.failures.push(format!("{}: {e}", if multus { "multus" } else { "alone" }))
                    }
                }
            }
        }
        if (i + 1) % 25 == 0 {
            eprintln!("  multus: {}/{} iterations", i + 1, warmup + iterations);
        }
    }
    Ok(result)
}
