//! `twill cni add|check|del|gc|status|version`: cnitool's contract. The environment carries
//! what cnitool reads: NETCONFPATH (default /etc/cni/net.d), CNI_PATH, CNI_IFNAME (default
//! eth0), CNI_ARGS, CAP_ARGS (JSON capability arguments), CNI_CONTAINERID (default derived
//! from the netns path) and CNI_CACHE_DIR (default /var/lib/cni).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use cni_exec::{LoadedList, Runtime, RuntimeConf};
use cni_spec::{Attachment, parse_cni_args};

#[derive(Subcommand)]
pub enum CniCommand {
    /// Attach NETNS to NETWORK and print the result.
    Add { network: String, netns: String },
    /// Verify an attachment against its cached result.
    Check { network: String, netns: String },
    /// Detach NETNS from NETWORK.
    Del { network: String, netns: String },
    /// Remove every cached attachment of NETWORK not listed with --valid, then send GC.
    Gc {
        network: String,
        /// A valid attachment as CONTAINERID/IFNAME; repeat for several.
        #[arg(long = "valid")]
        valid: Vec<String>,
    },
    /// Ask NETWORK's plugins whether they are ready for ADD.
    Status { network: String },
    /// Print a plugin's VERSION answer.
    Version { plugin: String },
}

pub fn run(cmd: CniCommand) -> Result<()> {
    let runtime = Runtime::new(cni_path(), env_or("CNI_CACHE_DIR", cni_exec::DEFAULT_CACHE_DIR));
    match cmd {
        CniCommand::Add { network, netns } => {
            let (net, rt) = (load(&network)?, runtime_conf(&netns)?);
            match runtime.add(&net, &rt) {
                Ok(result) => {
                    let version = runtime.version_of(&net)?;
                    println!("{}", serde_json::to_string_pretty(&result.to_json(version)?)?);
                    Ok(())
                }
                Err(e) => {
                    // A runtime deletes what a failed ADD may have left behind; so do we.
                    if let Err(del) = runtime.del(&net, &rt) {
                        eprintln!("twill: cleanup after failed add: {del}");
                    }
                    Err(e.into())
                }
            }
        }
        CniCommand::Check { network, netns } => Ok(runtime.check(&load(&network)?, &runtime_conf(&netns)?)?),
        CniCommand::Del { network, netns } => Ok(runtime.del(&load(&network)?, &runtime_conf(&netns)?)?),
        CniCommand::Gc { network, valid } => {
            let valid = valid.iter().map(|v| parse_attachment(v)).collect::<Result<Vec<_>>>()?;
            let report = runtime.gc(&load(&network)?, &valid)?;
            for a in &report.deleted {
                println!("deleted stale attachment {} {}", a.container_id, a.ifname);
            }
            Ok(())
        }
        CniCommand::Status { network } => {
            if runtime.status(&load(&network)?)? {
                println!("network {network} is ready");
            } else {
                println!("network {network} is assumed ready (its cniVersion predates STATUS)");
            }
            Ok(())
        }
        CniCommand::Version { plugin } => {
            let info = runtime.version_info(&plugin)?;
            println!("{} supports CNI {}", plugin, info.supported_versions.join(", "));
            Ok(())
        }
    }
}

fn load(network: &str) -> Result<LoadedList> {
    let dir = PathBuf::from(env_or("NETCONFPATH", cni_exec::DEFAULT_CONF_DIR));
    Ok(cni_exec::load_network(&dir, network)?)
}

fn cni_path() -> Vec<PathBuf> {
    std::env::var_os("CNI_PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default()
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

/// A namespace given by name lives under /run/netns, as `ip netns` puts it.
fn netns_path(netns: &str) -> String {
    if netns.starts_with('/') { netns.to_string() } else { format!("/run/netns/{netns}") }
}

fn runtime_conf(netns: &str) -> Result<RuntimeConf> {
    let netns = netns_path(netns);
    let args = parse_cni_args(&std::env::var("CNI_ARGS").unwrap_or_default())?;
    let capability_args = match std::env::var("CAP_ARGS") {
        Ok(text) if !text.is_empty() => {
            serde_json::from_str(&text).context("CAP_ARGS is not a JSON object")?
        }
        _ => serde_json::Map::new(),
    };
    let container_id = std::env::var("CNI_CONTAINERID")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| format!("twill-{:016x}", fnv1a(netns.as_bytes())));
    Ok(RuntimeConf { container_id, netns, ifname: env_or("CNI_IFNAME", "eth0"), args, capability_args })
}

fn parse_attachment(text: &str) -> Result<Attachment> {
    match text.split_once('/') {
        Some((id, ifname)) if !id.is_empty() && !ifname.is_empty() => {
            Ok(Attachment { container_id: id.into(), ifname: ifname.into() })
        }
        _ => bail!("--valid {text:?}: expected CONTAINERID/IFNAME"),
    }
}

/// A stable short id for a netns path (cnitool derives its container id the same way).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}
