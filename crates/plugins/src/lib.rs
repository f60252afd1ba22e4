//! twill's CNI plugins, shipped as multi-call binaries that act as the plugin they are
//! invoked as: installed under the reference names (`bridge`, `host-local`, `loopback`, ...),
//! every existing conflist keeps working. Each plugin is a thin module: parse its config,
//! plan (pure), apply (kernel effects), answer.
//!
//! Node-local plugins are `twill-cni` ([`NAMES`], [`run_from_args`]); the plugins that talk
//! to the cluster datastore are `twill-cni-cluster` ([`CLUSTER_NAMES`],
//! [`run_cluster_from_args`]), so that the etcd client (tokio, tonic, rustls) is linked into
//! them alone and every other plugin's process stays as small as it was
//! (docs/adr/0014-multus-reads-the-datastore-from-its-own-binary.md).

mod bandwidth;
mod bridge;
mod container;
mod delegate;
mod firewall;
#[cfg(test)]
mod fixture;
mod guard;
mod host_local;
mod iface;
mod kernel;
mod loopback;
mod mac;
mod macvlan;
mod masq;
mod meta;
mod multus;
mod owner;
mod podnft;
mod portmap;
mod ptp;
mod sbr;
mod sha512;
mod spoof;
mod static_ipam;
mod tuning;
mod twill_pod;
mod undo;
mod veth;
mod whereabouts;

use cni_skel::Plugin;

pub use delegate::{ipam_add, ipam_check, ipam_del, ipam_gc, ipam_status};

/// The node-local plugins: `twill-cni` answers to these names.
pub const NAMES: &[&str] = &[
    "bandwidth",
    "bridge",
    "firewall",
    "host-local",
    "loopback",
    "macvlan",
    "portmap",
    "ptp",
    "sbr",
    "static",
    "tuning",
    "twill-pod",
];

/// The plugins that read the cluster datastore: `twill-cni-cluster` answers to these (and to
/// every name of [`NAMES`]). They live in their own binary so that the datastore client
/// (gRPC, TLS) never weighs on the node-local plugins' processes (docs/adr/0014).
pub const CLUSTER_NAMES: &[&str] = &["multus", "multus-shim", "whereabouts"];

/// The node-local plugin binary.
pub const BINARY: &str = "twill-cni";
/// The cluster-aware plugin binary.
pub const CLUSTER_BINARY: &str = "twill-cni-cluster";

/// The binary that provides the plugin `name`, if twill has it.
pub fn binary_of(name: &str) -> Option<&'static str> {
    if NAMES.contains(&name) {
        Some(BINARY)
    } else if CLUSTER_NAMES.contains(&name) {
        Some(CLUSTER_BINARY)
    } else {
        None
    }
}

/// The node-local plugin called `name`, if twill provides it.
pub fn plugin_by_name(name: &str) -> Option<Box<dyn Plugin>> {
    match name {
        "bandwidth" => Some(Box::new(bandwidth::Bandwidth)),
        "bridge" => Some(Box::new(bridge::Bridge)),
        "firewall" => Some(Box::new(firewall::Firewall)),
        "host-local" => Some(Box::new(host_local::HostLocal)),
        "loopback" => Some(Box::new(loopback::Loopback)),
        "macvlan" => Some(Box::new(macvlan::Macvlan)),
        "portmap" => Some(Box::new(portmap::Portmap)),
        "ptp" => Some(Box::new(ptp::Ptp)),
        "sbr" => Some(Box::new(sbr::Sbr)),
        "static" => Some(Box::new(static_ipam::Static)),
        "tuning" => Some(Box::new(tuning::Tuning)),
        "twill-pod" => Some(Box::new(twill_pod::TwillPod)),
        _ => None,
    }
}

/// Any plugin of `twill-cni-cluster`: the cluster-aware ones and every node-local one.
fn cluster_plugin_by_name(name: &str) -> Option<Box<dyn Plugin>> {
    match name {
        // Multus's thick-plugin shim name: twill's multus is one thin plugin either way.
        "multus" | "multus-shim" => Some(Box::new(multus::Multus)),
        "whereabouts" => Some(Box::new(whereabouts::Whereabouts)),
        other => plugin_by_name(other),
    }
}

/// `twill-cni`'s entry point: picks the plugin from the executable name (or, when run as
/// `twill-cni`, from the first argument), runs one CNI invocation and exits with its code.
pub fn run_from_args() -> ! {
    run_as(BINARY, plugin_by_name, NAMES)
}

/// `twill-cni-cluster`'s entry point, likewise.
pub fn run_cluster_from_args() -> ! {
    run_as(CLUSTER_BINARY, cluster_plugin_by_name, CLUSTER_NAMES)
}

fn run_as(binary: &str, lookup: fn(&str) -> Option<Box<dyn Plugin>>, names: &[&str]) -> ! {
    let mut argv = std::env::args();
    let invoked = argv.next().unwrap_or_default();
    let base = invoked.rsplit('/').next().unwrap_or_default().to_string();
    let name = if base == binary { argv.next().unwrap_or_default() } else { base };
    let code = match lookup(&name) {
        Some(plugin) => {
            let about = format!("twill {name} plugin v{}", env!("CARGO_PKG_VERSION"));
            cni_skel::run(
                plugin.as_ref(),
                &about,
                &cni_skel::ProcessEnv,
                &mut std::io::stdin().lock(),
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
            )
        }
        None => {
            let elsewhere = binary_of(&name).map(|b| format!(" ({name} is in {b})")).unwrap_or_default();
            let err = cni_spec::Error::invalid_env(format!(
                "{binary} has no plugin named {name:?}{elsewhere}; it provides {}",
                names.join(", ")
            ));
            println!("{}", err.to_json(cni_spec::Version::V1_1_0.as_str()));
            1
        }
    };
    std::process::exit(code)
}
