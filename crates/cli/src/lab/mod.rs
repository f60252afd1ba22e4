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
mod attach;
mod demo;
mod etcd;
mod exec;
mod health;
mod layout;
mod matrix;
mod names;
mod pods;
mod probe;
mod probe_cmd;
mod process;
mod registry;
mod server;
mod state;
mod status;
mod target;
mod teardown;
mod topology;
mod up;
mod wire;

use anyhow::Result;
use clap::{Args, Subcommand};

use names::{Names, PodRef};
use target::Target;
use wire::Protocol;

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
    /// Run a command inside a pod (NS/NAME), a node (node-N), outside, underlay or etcd.
    Exec(ExecArgs),
    /// Connect from one pod (or node-N, outside) to another (or to an address); exit 0 when
    /// connected, 1 when not, 2 when the probe could not be made.
    Probe(ProbeArgs),
    /// The all-pairs reachability table of the lab's pods.
    Matrix(MatrixArgs),
    /// Nodes with their subnets and agent health, the datastore, pods with their addresses.
    Status(StatusArgs),
    /// Stop or start a node's twilld.
    #[command(subcommand)]
    Agent(AgentCommand),
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
    },
    /// Delete a pod.
    Del { pod: PodRef },
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// NS/NAME, node-N, outside, underlay or etcd.
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
        LabCommand::Pod(PodCommand::Add { pod, node, labels }) => {
            pods::pod_add(&names, &pod, node, pods::parse_labels(&labels)?)
        }
        LabCommand::Pod(PodCommand::Del { pod }) => pods::pod_del(&names, &pod),
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
            print!("{}", matrix::render(&m));
            Ok(())
        }
        LabCommand::Status(a) => status::run(&names, a.json),
        LabCommand::Agent(AgentCommand::Start { node }) => agent::start_command(&names, node),
        LabCommand::Agent(AgentCommand::Stop { node }) => agent::stop_command(&names, node),
        LabCommand::Demo => demo::run(&names),
        LabCommand::Serve(args) => server::run(&args),
    }
}
