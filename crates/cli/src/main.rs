//! `twill`: run CNI network lists against namespaces (what cnitool is for Go), install the
//! plugin binary under the reference names, and run the demo.

mod cluster;
mod cni;
mod demo;
mod flows;
mod install;
mod lab;
mod policy;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "twill", version, about = "twill container networking")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a network list's plugins for one attachment (the runtime side of CNI).
    #[command(subcommand)]
    Cni(cni::CniCommand),
    /// Install the plugin binary into a CNI bin directory under every plugin name.
    Install(install::InstallArgs),
    /// Create a namespace, attach it with twill's plugins, show it, and remove everything.
    Demo(demo::DemoArgs),
    /// A multi-node cluster built from network namespaces on this machine.
    #[command(subcommand)]
    Lab(lab::LabCommand),
    /// The cluster's objects in its datastore: apply, delete, get, label, explain.
    Cluster(cluster::ClusterArgs),
    /// NetworkPolicy of the running lab: explain decisions.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
}

fn main() {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Cni(cmd) => cni::run(cmd),
        Command::Install(args) => install::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Lab(cmd) => lab::run(cmd),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Cluster(args) => cluster::run(args),
    };
    if let Err(e) = outcome {
        eprintln!("twill: {e:#}");
        std::process::exit(1);
    }
}
