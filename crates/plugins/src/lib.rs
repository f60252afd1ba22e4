//! twill's CNI plugins, shipped as one multi-call binary (`twill-cni`) that acts as the
//! plugin it is invoked as: installed under the reference names (`bridge`, `host-local`,
//! `loopback`, ...), every existing conflist keeps working. Each plugin is a thin module:
//! parse its config, plan (pure), apply (kernel effects), answer.

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
    "whereabouts",
];

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
        "whereabouts" => Some(Box::new(whereabouts::Whereabouts)),
        _ => None,
    }
}

/// The binary's entry point: picks the plugin from the executable name (or, when run as
/// `twill-cni`, from the first argument), runs one CNI invocation and exits with its code.
pub fn run_from_args() -> ! {
    let mut argv = std::env::args();
    let invoked = argv.next().unwrap_or_default();
    let base = invoked.rsplit('/').next().unwrap_or_default().to_string();
    let name = if base == "twill-cni" { argv.next().unwrap_or_default() } else { base };
    let code = match plugin_by_name(&name) {
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
                "twill-cni has no plugin named {name:?}; it provides {}",
                NAMES.join(", ")
            ));
            println!("{}", err.to_json(cni_spec::Version::V1_1_0.as_str()));
            1
        }
    };
    std::process::exit(code)
}
