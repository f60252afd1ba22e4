//! twill's CNI plugins, shipped as multi-call binaries that act as the plugin they are
//! invoked as: installed under the reference names (`bridge`, `host-local`, `loopback`, ...),
//! every existing conflist keeps working. Each plugin is a thin module: parse its config,
//! plan (pure), apply (kernel effects), answer.
//!
//! Node-local plugins are `twill-cni` ([`NAMES`], [`run_from_args`]); the plugins that talk
//! to the cluster datastore are `twill-cni-cluster` ([`CLUSTER_NAMES`],
//! [`run_cluster_from_args`]), so that the etcd client (tokio, tonic, rustls) is linked into
//! them alone and every other plugin's process stays as small as it was
//! (docs/adr/0013-cluster-plugins-in-their-own-binary.md).

mod bandwidth;
mod bridge;
mod container;
mod delegate;
mod firewall;
#[cfg(test)]
mod fixture;
mod host_local;
mod iface;
mod kernel;
mod loopback;
mod mac;
mod macvlan;
mod masq;
mod meta;
mod owner;
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

/// Every plugin name this binary answers to.
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

/// The plugin names `twill-cni-cluster` answers to.
pub const CLUSTER_NAMES: &[&str] = &["whereabouts"];

/// The plugin called `name`, if twill provides it.
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

/// The cluster plugin called `name`, if twill provides it.
pub fn cluster_plugin_by_name(name: &str) -> Option<Box<dyn Plugin>> {
    match name {
        "whereabouts" => Some(Box::new(whereabouts::Whereabouts)),
        _ => None,
    }
}

/// `twill-cni`'s entry point: picks the plugin from the executable name (or, when run as
/// `twill-cni`, from the first argument), runs one CNI invocation and exits with its code.
pub fn run_from_args() -> ! {
    run_multi_call("twill-cni", NAMES, plugin_by_name)
}

/// `twill-cni-cluster`'s entry point, the same way.
pub fn run_cluster_from_args() -> ! {
    run_multi_call("twill-cni-cluster", CLUSTER_NAMES, cluster_plugin_by_name)
}

fn run_multi_call(binary: &str, names: &[&str], by_name: fn(&str) -> Option<Box<dyn Plugin>>) -> ! {
    let mut argv = std::env::args();
    let invoked = argv.next().unwrap_or_default();
    let base = invoked.rsplit('/').next().unwrap_or_default().to_string();
    let name = if base == binary { argv.next().unwrap_or_default() } else { base };
    let code = match by_name(&name) {
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
            let err = cni_spec::Error::invalid_env(format!(
                "{binary} has no plugin named {name:?}; it provides {}",
                names.join(", ")
            ));
            println!("{}", err.to_json(cni_spec::Version::V1_1_0.as_str()));
            1
        }
    };
    std::process::exit(code)
}
