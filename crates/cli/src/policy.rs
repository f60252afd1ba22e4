//! `twill policy explain NS/FROM NS/TO --port P [--protocol tcp|udp|sctp] [--ipv6]`: judges
//! one connection against the NetworkPolicies of the running lab (`TWILL_LAB_PREFIX`), read
//! from its datastore, and prints the decision with the policy and rule that made it on each
//! side — or that no policy selects the pod. The same records and the same semantics
//! (`twill_policy::evaluate`) as the agents enforce.

use ::policy::{Family, Protocol, evaluate, evaluate_family};
use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};

use crate::lab::cluster_world;

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    /// Explain whether a new connection is allowed, and which policy and rule decide.
    Explain(ExplainArgs),
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The client: NAMESPACE/POD or an IP address.
    pub from: String,
    /// The server: NAMESPACE/POD or an IP address.
    pub to: String,
    #[arg(long)]
    pub port: u16,
    /// tcp, udp or sctp (any case).
    #[arg(long, default_value = "tcp")]
    pub protocol: Protocol,
    /// Judge the IPv6 connection between two pods (ipBlocks see their IPv6 addresses).
    #[arg(long)]
    pub ipv6: bool,
}

pub fn run(cmd: PolicyCommand) -> Result<()> {
    let PolicyCommand::Explain(a) = cmd;
    explain(&cluster_world()?, &a)
}

/// Judges the connection `a` describes in `world` and prints the verdict.
pub fn explain(world: &::policy::World, a: &ExplainArgs) -> Result<()> {
    let from = world.endpoint(&a.from).map_err(|e| anyhow!("from: {e}"))?;
    let to = world.endpoint(&a.to).map_err(|e| anyhow!("to: {e}"))?;
    let verdict = match a.ipv6 {
        true => evaluate_family(world, &from, &to, a.port, a.protocol, Family::V6),
        false => evaluate(world, &from, &to, a.port, a.protocol),
    };
    println!("{verdict}");
    Ok(())
}
