//! `twill lab up`: underlay and machines, the plugins in the lab's bin dir, the datastore,
//! one twilld per node, and the outside host's server. Every namespace and process is
//! recorded in the state the moment it exists, so a failure half-way — or a crash followed
//! by `twill lab down` — removes exactly what was made.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;
use netns::NetNs;

use super::names::Names;
use super::state::{
    Backend, DatastoreKind, EtcdMember, EtcdState, LabOptions, LabState, NodeState, StateDir,
};
use super::topology::{self, MAX_NODES, Role};
use super::{agent, etcd, layout, pods, teardown};

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// How many nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_NODES)))]
    pub nodes: u8,
    /// How nodes reach each other's pod subnets.
    #[arg(long, value_enum, default_value = "host-gw")]
    pub backend: Backend,
    /// Where the agents keep cluster state: a shared directory, or an etcd server on the
    /// underlay.
    #[arg(long, value_enum, default_value = "file")]
    pub datastore: DatastoreKind,
    /// Dual-stack: IPv6 on the underlay and an IPv6 pod network too.
    #[arg(long)]
    pub ipv6: bool,
    /// The nodes' lease TTL in seconds (twilld's `--lease-ttl-seconds`): how long a node
    /// that vanished keeps its subnet and routes.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(3..))]
    pub lease_ttl: u32,
    /// Members of the etcd cluster (with `--datastore etcd`; TLS with client certificates).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=i64::from(etcd::MAX_MEMBERS)))]
    pub etcd_members: u8,
}

impl UpArgs {
    pub fn options(&self) -> LabOptions {
        LabOptions {
            nodes: self.nodes,
            backend: self.backend,
            datastore: self.datastore,
            ipv6: self.ipv6,
            etcd_members: self.etcd_members,
            lease_ttl: self.lease_ttl,
        }
    }
}

pub fn run(names: &Names, args: &UpArgs) -> Result<()> {
    up(names, args.options())?;
    println!(
        "lab {} is up; try `twill lab pod add default/a`, `twill lab status`, `twill lab down`",
        names.prefix()
    );
    Ok(())
}

/// Builds the lab; on failure tears down what was built and reports the failure.
pub fn up(names: &Names, options: LabOptions) -> Result<LabState> {
    refuse_existing(names)?;
    preflight(&options)?;
    let sd = StateDir::lock(names, true)?;
    match build(names, &sd, options) {
        Ok(state) => Ok(state),
        Err(e) => {
            eprintln!("twill lab up failed; removing what was built");
            if let Err(e2) = teardown::down(names, &sd) {
                eprintln!("twill lab up: {e2:#}");
            }
            Err(e.context("the lab could not be built (what was built is removed)"))
        }
    }
}

fn refuse_existing(names: &Names) -> Result<()> {
    let dir = names.state_dir();
    let leftovers = teardown::existing_netns(names)?;
    if dir.join("state.json").exists() || !leftovers.is_empty() {
        bail!(
            "a lab named {} already exists ({}{}); remove it first with `twill lab down`",
            names.prefix(),
            dir.display(),
            if leftovers.is_empty() {
                String::new()
            } else {
                format!(", namespaces {}", leftovers.join(" "))
            }
        );
    }
    Ok(())
}

/// Finds the programs the lab will start before anything is built.
fn preflight(options: &LabOptions) -> Result<()> {
    agent::twilld_binary()?;
    for file in [plugins::BINARY, plugins::CLUSTER_BINARY] {
        crate::install::binary(file)?;
    }
    if options.datastore == DatastoreKind::Etcd {
        super::process::find_program("etcd", "etcd-server")?;
    }
    Ok(())
}

fn build(names: &Names, sd: &StateDir, options: LabOptions) -> Result<LabState> {
    let dir = sd.dir.clone();
    let with_etcd = options.datastore == DatastoreKind::Etcd;
    let members = if with_etcd { options.etcd_members } else { 0 };
    let hosts = topology::plan_hosts(names, options.nodes, options.ipv6, members);
    let mut state = LabState {
        prefix: names.prefix().to_string(),
        nodes: hosts.iter().filter_map(|h| planned_node(&dir, h)).collect(),
        options,
        netns: Vec::new(),
        etcd: None,
        outside_server: None,
        pods: Default::default(),
    };
    sd.save(&state)?;
    topology::apply_topology(names, &hosts, &mut |name| {
        state.netns.push(name.to_string());
        sd.save(&state)
    })?;
    println!(
        "underlay {} with {} nodes, outside host {}",
        names.underlay(),
        state.options.nodes,
        topology::OUTSIDE_IP
    );
    install_plugins(&layout::bin_dir(&dir))?;
    if with_etcd {
        start_etcd(names, sd, &mut state)?;
    }
    start_agents(sd, &mut state)?;
    let outside = NetNs::open(netns::named_path(&names.outside()))?;
    state.outside_server = Some(pods::start_server(&outside, "outside", None, &dir.join("outside.log"))?);
    sd.save(&state)?;
    Ok(state)
}

fn planned_node(dir: &Path, host: &topology::Host) -> Option<NodeState> {
    let Role::Node(index) = host.role else { return None };
    let node_dir = layout::node_dir(dir, index);
    Some(NodeState {
        index,
        name: format!("node-{index}"),
        netns: host.netns.clone(),
        ip: host.ip,
        ip6: host.ip6,
        conf_dir: node_dir.join("net.d"),
        agent_dir: node_dir.join("agent"),
        agent: None,
    })
}

/// twill's plugin binaries under every name twill provides, the reference plugins for any
/// other name a network list might use.
fn install_plugins(bin: &Path) -> Result<()> {
    let ours = crate::install::all_names();
    crate::install::install(bin, &ours)?;
    let Ok(reference) = std::fs::read_dir(crate::lab::REFERENCE_PLUGINS) else { return Ok(()) };
    for entry in reference.flatten() {
        let name = entry.file_name();
        if ours.iter().any(|n| name == *n) {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), bin.join(&name))
            .with_context(|| format!("link {} into {}", entry.path().display(), bin.display()))?;
    }
    Ok(())
}

/// Makes the lab's PKI and starts every etcd member, recording each process at once.
fn start_etcd(names: &Names, sd: &StateDir, state: &mut LabState) -> Result<()> {
    let members = state.options.etcd_members;
    etcd::make_pki(&sd.dir, members)?;
    state.etcd = Some(EtcdState { members: Vec::new() });
    for i in 1..=members {
        let ns = NetNs::open(netns::named_path(&names.etcd_member(i)))?;
        let proc = etcd::start(&ns, &sd.dir, i, members)?;
        let member = EtcdMember { netns: names.etcd_member(i), url: etcd::client_url(i), proc: Some(proc) };
        if let Some(e) = state.etcd.as_mut() {
            e.members.push(member);
        }
        sd.save(state)?;
    }
    let ns = NetNs::open(netns::named_path(&names.etcd_member(1)))?;
    let procs: Vec<_> =
        state.etcd.iter().flat_map(|e| e.members.iter().filter_map(|m| m.proc.as_ref())).collect();
    etcd::wait_ready(&ns, &agent::datastore_conf(&sd.dir, state)?, &procs)?;
    let urls = etcd::client_urls(members).join(",");
    println!(
        "etcd ready: {members} member(s) at {urls} (TLS, client certificates in {})",
        etcd::pki_dir(&sd.dir).display()
    );
    Ok(())
}

/// Starts every node's agent, then waits for all of them in parallel.
fn start_agents(sd: &StateDir, state: &mut LabState) -> Result<()> {
    for i in 0..state.nodes.len() {
        let proc = agent::start(&sd.dir, state, &state.nodes[i])?;
        state.nodes[i].agent = Some(proc);
        sd.save(state)?;
    }
    wait_agents(state)
}

/// Waits until every recorded agent is ready.
pub fn wait_agents(state: &LabState) -> Result<()> {
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let waits: Vec<_> = state
            .nodes
            .iter()
            .filter_map(|n| n.agent.as_ref().map(|p| (n, p)))
            .map(|(n, p)| s.spawn(move || agent::wait_ready(n, p)))
            .collect();
        waits.into_iter().map(|h| h.join().unwrap_or_else(|_| bail!("readiness wait panicked"))).collect()
    });
    results.into_iter().collect::<Result<Vec<()>>>()?;
    println!("twilld ready on {} nodes", state.nodes.len());
    Ok(())
}
