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
    Backend, BirdState, DatastoreKind, EtcdMember, EtcdState, LabOptions, LabState, NodeState, StateDir,
};
use super::topology::{self, MAX_NODES, MAX_RACKS, Role};
use super::{agent, bgp, datanet, etcd, layout, multus, pods, teardown, underlay};
use ::agent::bird::BirdFiles;

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
    /// Split the nodes over R underlay segments joined by a router namespace (with bgp, the
    /// router runs BIRD and the nodes peer with it).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=i64::from(MAX_RACKS)))]
    pub racks: u8,
    /// bgp: the outside host peers with the cluster and learns the pod subnets; no NAT
    /// either way.
    #[arg(long)]
    pub outside_bgp: bool,
    /// bgp: nodes 1..=K are route reflectors (node label twill.dev/route-reflector=true);
    /// the others peer only with them.
    #[arg(long, default_value_t = 0)]
    pub route_reflectors: u8,
    /// bgp: vxlan between racks, routes inside a rack (Calico's CrossSubnet).
    #[arg(long)]
    pub cross_subnet: bool,
    /// The nodes' lease TTL in seconds (twilld's `--lease-ttl-seconds`): how long a node
    /// that vanished keeps its subnet and routes.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(3..))]
    pub lease_ttl: u32,
    /// Members of the etcd cluster (with `--datastore etcd`; TLS with client certificates).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=i64::from(etcd::MAX_MEMBERS)))]
    pub etcd_members: u8,
    /// twilld's `--flow-logs` on every node: `off`, `denied` (twilld's default) or `all`
    /// (`twill lab flows` then shows allowed connections too).
    #[arg(long, value_parser = ["off", "denied", "all"])]
    pub flow_logs: Option<String>,
}

impl UpArgs {
    pub fn options(&self) -> LabOptions {
        LabOptions {
            racks: self.racks,
            outside_bgp: self.outside_bgp,
            route_reflectors: self.route_reflectors,
            cross_subnet: self.cross_subnet,
            etcd_members: self.etcd_members,
            lease_ttl: self.lease_ttl,
            flow_logs: self.flow_logs.clone(),
            ..LabOptions::flat(self.nodes, self.backend, self.datastore, self.ipv6)
        }
    }
}

/// Option combinations that cannot work, refused before anything is built.
pub fn check_options(o: &LabOptions) -> Result<()> {
    let bgp = o.backend == Backend::Bgp;
    if o.racks > o.nodes {
        bail!("--racks {} needs at least {} nodes (--nodes {})", o.racks, o.racks, o.nodes);
    }
    if o.racks > 0 && o.backend == Backend::HostGw {
        bail!("host-gw needs every node on one L2 segment; with --racks use --backend vxlan or bgp");
    }
    for (on, flag) in [
        (o.outside_bgp, "--outside-bgp"),
        (o.route_reflectors > 0, "--route-reflectors"),
        (o.cross_subnet, "--cross-subnet"),
    ] {
        if on && !bgp {
            bail!("{flag} needs --backend bgp");
        }
    }
    if o.route_reflectors > o.nodes {
        bail!("--route-reflectors {} is more than the {} nodes", o.route_reflectors, o.nodes);
    }
    if o.cross_subnet && o.racks < 2 {
        bail!("--cross-subnet needs --racks 2 or more (vxlan runs only between racks)");
    }
    Ok(())
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

/// Checks the options and finds the programs the lab will start before anything is built.
fn preflight(options: &LabOptions) -> Result<()> {
    check_options(options)?;
    agent::twilld_binary()?;
    if options.backend == Backend::Bgp {
        super::process::find_program("bird", "bird2")?;
    }
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
    let shape = options.shape();
    let hosts = topology::plan_hosts(names, &shape);
    let mut state = LabState {
        prefix: names.prefix().to_string(),
        nodes: hosts.iter().filter_map(|h| planned_node(&dir, &shape, h)).collect(),
        options,
        netns: Vec::new(),
        etcd: None,
        outside_server: None,
        birds: Vec::new(),
        pods: Default::default(),
    };
    sd.save(&state)?;
    underlay::apply_topology(names, &topology::segments(&shape), &hosts, &mut |name| {
        state.netns.push(name.to_string());
        sd.save(&state)
    })?;
    let racks = match shape.racks {
        0 => String::new(),
        r => format!(" in {r} racks behind router {}", topology::ROUTER_IP),
    };
    datanet::apply_data_network(names, &state.nodes)?;
    println!(
        "underlay {} with {} nodes{racks} (and their data network on {}), outside host {}",
        names.underlay(),
        state.options.nodes,
        datanet::DATA_IFACE,
        topology::OUTSIDE_IP
    );
    install_plugins(&layout::bin_dir(&dir))?;
    if with_etcd {
        start_etcd(names, sd, &mut state)?;
    }
    if state.options.backend == Backend::Bgp {
        start_bgp(names, sd, &mut state)?;
    }
    start_agents(sd, &mut state)?;
    if state.options.backend == Backend::Bgp {
        let took = bgp::wait_converged(&state)?;
        println!("BGP converged after {:.2}s", took.as_secs_f64());
    }
    multus::write_confs(&dir, &state)?;
    let outside = NetNs::open(netns::named_path(&names.outside()))?;
    state.outside_server = Some(pods::start_server(&outside, "outside", None, &dir.join("outside.log"))?);
    sd.save(&state)?;
    super::ready::underlay(&state)?;
    Ok(state)
}

fn planned_node(dir: &Path, shape: &topology::Shape, host: &topology::Host) -> Option<NodeState> {
    let Role::Node(index) = host.role else { return None };
    let node_dir = layout::node_dir(dir, index);
    Some(NodeState {
        index,
        name: format!("node-{index}"),
        netns: host.netns.clone(),
        ip: host.ip(),
        ip6: host.ip6(),
        rack: topology::rack_of(index, shape),
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

/// The BGPPeers in the datastore, then the router's and the outside host's BIRD, so the
/// nodes find their peers from their first configuration.
fn start_bgp(names: &Names, sd: &StateDir, state: &mut LabState) -> Result<()> {
    let peers = bgp::put_bgp_peers(&sd.dir, state)?;
    let mut speakers = Vec::new();
    if state.options.racks > 0 {
        speakers.push(("router", names.router(), bgp::plan_router(&state.options)));
    }
    if state.options.outside_bgp {
        speakers.push(("outside", names.outside(), bgp::plan_outside(&state.options)));
    }
    for (place, netns, config) in speakers {
        let dir = bgp::bird_dir(&sd.dir, place);
        let ns = NetNs::open(netns::named_path(&netns))?;
        state.birds.push(BirdState { place: place.into(), netns, dir: dir.clone(), proc: None });
        let proc = bgp::start_bird(&ns, &BirdFiles::new(&dir), &config)?;
        println!("BIRD of the {place} running (pid {}, {})", proc.pid, dir.display());
        if let Some(b) = state.birds.last_mut() {
            b.proc = Some(proc);
        }
        sd.save(state)?;
    }
    println!("{peers} BGPPeer(s) written to the datastore");
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
