//! `twill lab`: a multi-node cluster built from network namespaces on this machine — an
//! underlay switch, node namespaces each running twilld, an "outside" host standing in for the
//! internet, and pods attached by twill's CNI plugins through the runtime side. It is the
//! demo, the integration test bed and the benchmark bed, and it never touches the host's own
//! interfaces, routes or firewall: everything lives in namespaces it made, and `lab down`
//! removes them (also after a crash).
//!
//! Several labs can exist side by side: `TWILL_LAB_PREFIX` (default `twl`) names a lab's
//! namespaces (`PREFIX-node-1`, ...) and its state directory (`/run/twill-lab[-PREFIX]`).

mod agent;
mod apply;
mod attach;
mod bgp;
mod cluster;
mod datanet;
mod demo;
mod enforce;
mod etcd;
mod etcd_cmd;
mod exec;
mod flows;
mod health;
mod label;
mod layout;
mod matrix;
mod multus;
mod names;
mod pods;
mod probe;
mod probe_cmd;
mod process;
mod ready;
mod registry;
mod server;
mod state;
mod status;
mod target;
mod teardown;
mod topology;
mod underlay;
mod up;
mod wire;

use anyhow::Result;
use clap::{Args, Subcommand};
use policy::NsName;

use names::{Names, PodRef};
use target::Target;
use wire::Protocol;

pub use cluster::cluster_world;

/// Where the Debian reference plugins live; the lab links those twill does not provide.
pub const REFERENCE_PLUGINS: &str = "/usr/lib/cni";

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Build a lab: underlay switch, N node namespaces each running twilld, an outside host.
    Up(up::UpArgs),
    /// Stop every process the lab started, remove its namespaces and state (also after a crash).
    Down,
    /// Kubernetes-style namespaces for the lab's pods.
    #[command(subcommand)]
    Ns(NsCommand),
    /// Pods: namespaces attached by twill's CNI plugins, each serving on TCP/UDP ports 80 and 81.
    #[command(subcommand)]
    Pod(PodCommand),
    /// Run a command inside a pod (NS/NAME), a node (node-N), outside, underlay, etcd or router.
    Exec(ExecArgs),
    /// Connect from one pod (or node-N, outside) to another (or to an address); exit 0 when
    /// connected, 1 when not, 2 when the probe could not be made.
    Probe(ProbeArgs),
    /// The all-pairs reachability table of the lab's pods.
    Matrix(MatrixArgs),
    /// Create or update NetworkPolicies and Namespaces from Kubernetes YAML (one or many
    /// documents); waits until every node enforces them.
    Apply(FileArgs),
    /// Delete the NetworkPolicies (and pod-less Namespaces) of a Kubernetes YAML file.
    Delete(FileArgs),
    /// The flow records of the lab's nodes: `twill cluster flows` through each node's
    /// twilld inside its namespace.
    Flows(crate::flows::FlowsArgs),
    /// NetworkPolicies in the lab's datastore.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Nodes with their subnets and agent health, the datastore, pods with their addresses.
    Status(StatusArgs),
    /// Stop or start a node's twilld.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Outages of the lab's etcd: stop, kill, start, freeze or thaw a member.
    #[command(subcommand)]
    Etcd(etcd_cmd::EtcdCommand),
    /// Bring up a 3-node lab, add pods, show the reachability matrix, take it down.
    Demo,
    /// The server every lab pod runs (started by `lab pod add`).
    #[command(hide = true)]
    Serve(server::ServeArgs),
}

#[derive(Subcommand, Debug)]
pub enum NsCommand {
    /// Add (or relabel) a namespace.
    Add {
        name: String,
        /// Labels, k=v,k2=v2.
        #[arg(long, default_value = "")]
        labels: String,
    },
    /// Change a namespace's labels: k=v sets, k- removes.
    Label {
        name: String,
        #[arg(required = true)]
        changes: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum PodCommand {
    /// Create a pod on a node (default: the node with the fewest pods).
    Add {
        pod: PodRef,
        /// Node index, 1..=N.
        #[arg(long)]
        node: Option<u8>,
        /// Labels, k=v,k2=v2.
        #[arg(long, default_value = "")]
        labels: String,
        /// NetworkAttachmentDefinitions to attach besides the cluster network: the
        /// `k8s.v1.cni.cncf.io/networks` annotation (`data`, `ns/data@net5,side`, or the JSON form).
        #[arg(long)]
        networks: Option<String>,
        /// An annotation, k=v (repeatable).
        #[arg(long = "annotation", value_name = "K=V")]
        annotations: Vec<String>,
    },
    /// Delete a pod.
    Del { pod: PodRef },
    /// Change a pod's labels: k=v sets, k- removes.
    Label {
        pod: PodRef,
        #[arg(required = true)]
        changes: Vec<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Delete a NetworkPolicy.
    Delete {
        /// NAMESPACE/NAME.
        policy: NsName,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List the NetworkPolicies (NAMESPACE/NAME).
    List,
}

#[derive(Args, Debug)]
pub struct FileArgs {
    /// A Kubernetes YAML file (`-` for standard input).
    #[arg(short = 'f', long = "filename")]
    pub file: String,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Return at once instead of waiting until every node's agent enforces the change.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// NS/NAME, node-N, outside, underlay, etcd or router.
    pub place: Target,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// NS/NAME, node-N or outside.
    pub from: Target,
    /// NS/NAME, node-N, outside, or an IP address.
    pub to: String,
    #[arg(long)]
    pub port: u16,
    #[arg(long, value_enum, default_value = "tcp")]
    pub protocol: Protocol,
    /// Use IPv6 addresses (labs started with --ipv6).
    #[arg(long)]
    pub ipv6: bool,
}

#[derive(Args, Debug)]
pub struct MatrixArgs {
    #[arg(long, default_value_t = 80)]
    pub port: u16,
    #[arg(long, value_enum, default_value = "tcp")]
    pub protocol: Protocol,
    /// Use IPv6 addresses (labs started with --ipv6).
    #[arg(long)]
    pub ipv6: bool,
    /// Print JSON (rows as strings of marks, and every cell's reason) instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Start the node's twilld (after it stopped or was killed) and wait until it is ready.
    Start {
        #[arg(long)]
        node: u8,
    },
    /// Stop the node's twilld with SIGTERM (it leaves the cluster).
    Stop {
        #[arg(long)]
        node: u8,
    },
}

pub fn run(cmd: LabCommand) -> Result<()> {
    let names = match &cmd {
        // The server runs inside a pod and needs no lab.
        LabCommand::Serve(args) => return server::run(args),
        _ => Names::from_env()?,
    };
    match cmd {
        LabCommand::Up(args) => up::run(&names, &args),
        LabCommand::Down => teardown::run(&names),
        LabCommand::Ns(NsCommand::Add { name, labels }) => {
            pods::ns_add(&names, &name, pods::parse_labels(&labels)?)
        }
        LabCommand::Pod(PodCommand::Add { pod, node, labels, networks, annotations }) => {
            let annotations = pods::parse_annotations(&annotations, networks.as_deref())?;
            pods::pod_add(&names, &pod, node, pods::parse_labels(&labels)?, annotations)
        }
        LabCommand::Pod(PodCommand::Del { pod }) => pods::pod_del(&names, &pod),
        LabCommand::Ns(NsCommand::Label { name, changes, wait }) => {
            label::ns_label(&names, &name, &changes, !wait.no_wait)
        }
        LabCommand::Pod(PodCommand::Label { pod, changes, wait }) => {
            label::pod_label(&names, &pod, &changes, !wait.no_wait)
        }
        LabCommand::Apply(a) => apply::apply_file(&names, &a.file, !a.wait.no_wait),
        LabCommand::Delete(a) => apply::delete_file(&names, &a.file, !a.wait.no_wait),
        LabCommand::Policy(PolicyCommand::Delete { policy, wait }) => {
            apply::policy_delete(&names, &policy, !wait.no_wait)
        }
        LabCommand::Policy(PolicyCommand::List) => apply::policy_list(&names),
        LabCommand::Exec(args) => std::process::exit(exec::run(&names, &args.place, &args.command)?),
        LabCommand::Probe(a) => match probe_cmd::show(&names, &a.from, &a.to, a.port, a.protocol, a.ipv6) {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => {
                eprintln!("twill lab probe: {e:#}");
                std::process::exit(2)
            }
        },
        LabCommand::Matrix(a) => {
            let m = matrix::measure(&state::load_running(&names)?, a.port, a.protocol, a.ipv6)?;
            match a.json {
                true => println!("{}", serde_json::to_string_pretty(&matrix::to_json(&m))?),
                false => print!("{}", matrix::render(&m)),
            }
            Ok(())
        }
        LabCommand::Status(a) => status::run(&names, a.json),
        LabCommand::Flows(a) => flows::run(&names, &a),
        LabCommand::Agent(AgentCommand::Start { node }) => agent::start_command(&names, node),
        LabCommand::Agent(AgentCommand::Stop { node }) => agent::stop_command(&names, node),
        LabCommand::Etcd(cmd) => etcd_cmd::run(&names, &cmd),
        LabCommand::Demo => demo::run(&names),
        LabCommand::Serve(args) => server::run(&args),
    }
}
