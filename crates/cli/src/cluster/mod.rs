//! `twill cluster`: the cluster's command line (what calicoctl is to Calico), against any
//! datastore — `--datastore file:DIR | etcd:http[s]://HOST:PORT[,...]` with the etcd TLS
//! files, or the same from `TWILL_DATASTORE`, `TWILL_ETCD_CACERT`, `TWILL_ETCD_CERT`,
//! `TWILL_ETCD_KEY`. Objects are written through `twill_cluster::ops`, the code `twill lab`
//! uses too, so there is one way for state to reach the datastore.

mod flows;
mod get;
mod ippools;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use cluster::manifest::{Manifest, read_manifests};
use cluster::ops::{self, Outcome};
use cluster::{Datastore, DatastoreConf, EtcdTls};

use crate::policy::ExplainArgs;

/// Where the datastore is; every subcommand takes these.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// `file:DIR` or `etcd:http[s]://HOST:PORT[,http[s]://HOST2:PORT...]`.
    #[arg(long, global = true, env = "TWILL_DATASTORE")]
    pub datastore: Option<String>,
    /// CA certificate (PEM) of the etcd members.
    #[arg(long, global = true, env = "TWILL_ETCD_CACERT")]
    pub etcd_cacert: Option<PathBuf>,
    /// Client certificate (PEM) for etcd.
    #[arg(long, global = true, env = "TWILL_ETCD_CERT")]
    pub etcd_cert: Option<PathBuf>,
    /// Key of the client certificate (PEM).
    #[arg(long, global = true, env = "TWILL_ETCD_KEY")]
    pub etcd_key: Option<PathBuf>,
}

impl Connection {
    pub fn conf(&self) -> Result<DatastoreConf> {
        let Some(value) = &self.datastore else {
            bail!("no datastore: give --datastore file:DIR|etcd:URL[,URL...] or set TWILL_DATASTORE")
        };
        let tls = EtcdTls {
            cacert: self.etcd_cacert.clone(),
            cert: self.etcd_cert.clone(),
            key: self.etcd_key.clone(),
        };
        Ok(DatastoreConf::parse(value, tls)?)
    }

    /// Opens the datastore and proves it answers (TLS accepted), with errors that say why.
    pub fn open(&self) -> Result<Arc<dyn Datastore>> {
        let conf = self.conf()?;
        let store = conf.open()?;
        store.check()?;
        Ok(store)
    }
}

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Create or replace the objects of a manifest (YAML or JSON, many documents): NetworkPolicy,
    /// Namespace, Pod (labels, annotations, named ports), NetworkAttachmentDefinition. All or
    /// nothing.
    Apply(FileArg),
    /// Delete the objects of a manifest.
    Delete(FileArg),
    /// List nodes, namespaces, pods, networkpolicies, nets (NetworkAttachmentDefinitions),
    /// bgppeers or ippools (cluster-wide IP reservations).
    Get(get::GetArgs),
    /// Change labels: `label namespace NAME k=v k2-`, `label pod NS/NAME k=v k2-`.
    Label {
        /// `namespace` (ns) or `pod` (po).
        kind: String,
        /// The namespace's name, or NAMESPACE/POD.
        name: String,
        /// `k=v` sets, `k-` removes.
        #[arg(required = true)]
        changes: Vec<String>,
    },
    /// Explain whether a new connection is allowed, and which policy and rule decide.
    Explain(ExplainArgs),
    /// What the nodes' filters decided: new connections allowed or denied (with the policy
    /// and rule) and spoofed packets dropped, from every twilld's /flows (docs/flows.md).
    Flows(flows::ClusterFlowsArgs),
}

#[derive(Args, Debug)]
pub struct FileArg {
    /// A manifest file, `-` for standard input.
    #[arg(short = 'f', long = "filename")]
    pub file: String,
}

pub fn run(args: ClusterArgs) -> Result<()> {
    match args.command {
        ClusterCommand::Apply(f) => apply_file(&args.conn, &f.file),
        ClusterCommand::Delete(f) => delete_file(&args.conn, &f.file),
        ClusterCommand::Get(g) => get::run(&args.conn, &g),
        ClusterCommand::Label { kind, name, changes } => label(&args.conn, &kind, &name, &changes),
        ClusterCommand::Flows(f) => flows::flows(&args.conn, &f),
        ClusterCommand::Explain(e) => {
            let store = args.conn.open()?;
            let world = cluster_world(store.as_ref())?;
            crate::policy::explain(&world, &e)
        }
    }
}

/// `apply -f`: prints `KIND NAME created|configured|unchanged` per object.
pub fn apply_file(conn: &Connection, path: &str) -> Result<()> {
    let objects = read_manifests(path)?;
    let store = conn.open()?;
    report(&objects, &ops::apply(store.as_ref(), &objects)?);
    Ok(())
}

/// `delete -f`: every object of the file that exists is deleted; the others are named.
pub fn delete_file(conn: &Connection, path: &str) -> Result<()> {
    let objects = read_manifests(path)?;
    let store = conn.open()?;
    let outcomes = ops::delete(store.as_ref(), &objects)?;
    report(&objects, &outcomes);
    let missing: Vec<String> = objects
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == Outcome::NotFound)
        .map(|(m, _)| m.describe())
        .collect();
    if !missing.is_empty() {
        bail!("not found: {}", missing.join(", "));
    }
    Ok(())
}

fn report(objects: &[Manifest], outcomes: &[Outcome]) {
    for (m, o) in objects.iter().zip(outcomes) {
        if *o != Outcome::NotFound {
            println!("{} {}", m.describe(), o.as_str());
        }
    }
}

/// `label namespace NAME ...` / `label pod NS/NAME ...`.
pub fn label(conn: &Connection, kind: &str, name: &str, changes: &[String]) -> Result<()> {
    let changes = ops::parse_label_changes(changes)?;
    let store = conn.open()?;
    match kind {
        "namespace" | "namespaces" | "ns" => {
            ops::label_namespace(store.as_ref(), name, &changes)?;
            println!("namespace {name} labeled");
        }
        "pod" | "pods" | "po" => {
            let (ns, pod) = name.split_once('/').context("a pod is named NAMESPACE/NAME")?;
            ops::label_pod(store.as_ref(), ns, pod, &changes)?;
            println!("pod {name} labeled");
        }
        other => bail!("cannot label {other:?}: namespace or pod"),
    }
    Ok(())
}

/// The cluster as NetworkPolicy sees it, read from `store`; unusable records are reported on
/// stderr and left out.
pub fn cluster_world(store: &dyn Datastore) -> Result<policy::World> {
    let (mut records, _) = agent::policy::read_records(store)?;
    let nodes = cluster::Registry::new(store).nodes()?;
    records.nodes = nodes.items;
    let (world, problems) = agent::policy::build_world(&records);
    for p in problems {
        eprintln!("twill: ignoring {p}");
    }
    Ok(world)
}
