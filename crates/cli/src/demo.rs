//! `twill demo`: the newcomer's first run until the lab exists. It builds a fake host and a
//! pod out of network namespaces (the real host is never touched), installs the plugin binary
//! into a temporary CNI bin dir, attaches the pod through the runtime side with a
//! bridge + host-local + portmap network list, prints the result and the pod's addresses,
//! then detaches and removes everything — also when a step fails.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use cni_exec::{LoadedList, RawExec, Runtime, RuntimeConf};
use cni_spec::{NetConfList, Version};
use netns::NetNs;
use serde_json::json;

#[derive(Args)]
pub struct DemoArgs {
    /// cniVersion of the demo network list (default: the highest all its plugins support).
    #[arg(long)]
    pub cni_version: Option<String>,
}

const HOST: &str = "twill-demo-host";
const POD: &str = "twill-demo-pod";

/// Namespaces and files the demo made; dropping it removes them.
struct Scene {
    dir: PathBuf,
}

impl Drop for Scene {
    fn drop(&mut self) {
        for name in [POD, HOST] {
            if let Err(e) = netns::delete_named(name) {
                eprintln!("twill demo: remove netns {name}: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn run(args: &DemoArgs) -> Result<()> {
    // A crashed earlier demo may have left its namespaces: start clean.
    for name in [POD, HOST] {
        netns::delete_named(name).with_context(|| format!("remove stale netns {name}"))?;
    }
    let scene = Scene { dir: std::env::temp_dir().join(format!("twill-demo-{}", std::process::id())) };
    let host = netns::create_named(HOST).context("create the fake host namespace")?;
    netns::create_named(POD).context("create the pod namespace")?;
    println!("created namespaces {HOST} (the node) and {POD} (the pod)");
    let bin = scene.dir.join("bin");
    let sources = populate_bin_dir(&bin)?;
    for (name, source) in &sources {
        println!("  plugin {name:<10} -> {source}");
    }
    let runtime = Runtime::with_exec(vec![bin], scene.dir.join("cache"), Box::new(RawExec::in_netns(host)));
    let version = match &args.cni_version {
        Some(v) => Version::parse(v)?,
        None => common_version(&runtime)?,
    };
    let net = network(&scene.dir, version)?;
    let mut caps = serde_json::Map::new();
    caps.insert("portMappings".into(), json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]));
    let rt = RuntimeConf {
        container_id: "demo-pod".into(),
        netns: netns::named_path(POD).display().to_string(),
        ifname: "eth0".into(),
        args: vec![],
        capability_args: caps,
    };
    let lo = loopback_network(&scene.dir, version)?;
    println!("\n$ twill cni add lo {POD}");
    runtime.add(&lo, &rt).context("bring up the pod's loopback")?;
    println!("\n$ twill cni add demo {POD}   (cniVersion {version})");
    let result = runtime.add(&net, &rt).context("attach the pod")?;
    println!("{}", serde_json::to_string_pretty(&result.to_json(version)?)?);
    println!("\naddresses inside {POD}:");
    print_addresses(&netns::named_path(POD))?;
    if let Some(gw) = result.ips.first().and_then(|ip| ip.gateway) {
        let reached = ping_from_pod(&gw.to_string())?;
        println!("\nping from the pod to its gateway {gw}: {}", if reached { "ok" } else { "FAILED" });
    }
    let checked = if version.supports_check() { Some(runtime.check(&net, &rt)) } else { None };
    match &checked {
        Some(Ok(())) => println!("\n$ twill cni check demo {POD}: ok"),
        Some(Err(e)) => println!("\n$ twill cni check demo {POD}: FAILED: {e}"),
        None => println!("\n(cniVersion {version} has no CHECK)"),
    }
    runtime.del(&net, &rt).context("detach the pod")?;
    runtime.del(&lo, &rt).context("take down the pod's loopback")?;
    println!("\n$ twill cni del demo {POD}: ok");
    drop(scene);
    println!("removed the namespaces and temporary files: nothing is left behind");
    match checked {
        Some(Err(e)) => Err(anyhow::Error::new(e).context("the attachment failed its CHECK")),
        _ => Ok(()),
    }
}

/// twill-cni under every name twill provides; the reference plugins for the rest.
fn populate_bin_dir(bin: &Path) -> Result<Vec<(String, String)>> {
    let ours: Vec<&str> = plugins::NAMES.iter().copied().filter(|n| NEEDED.contains(n)).collect();
    crate::install::install(bin, &ours)?;
    let mut sources = Vec::new();
    for name in NEEDED {
        if ours.contains(name) {
            sources.push((name.to_string(), "twill".to_string()));
            continue;
        }
        let reference = Path::new("/usr/lib/cni").join(name);
        anyhow::ensure!(
            reference.is_file(),
            "twill does not provide {name} yet and the reference plugin {} is missing (scripts/install-deps.sh installs it)",
            reference.display()
        );
        std::os::unix::fs::symlink(&reference, bin.join(name))?;
        sources.push((name.to_string(), format!("reference {}", reference.display())));
    }
    Ok(sources)
}

const NEEDED: &[&str] = &["bridge", "host-local", "portmap", "loopback"];

fn loopback_network(dir: &Path, version: Version) -> Result<LoadedList> {
    let list = json!({"cniVersion": version.as_str(), "name": "lo", "plugins": [{"type": "loopback"}]});
    let bytes = serde_json::to_vec(&list)?;
    Ok(LoadedList { list: NetConfList::parse(&bytes)?, bytes, source: dir.join("lo.conflist") })
}

/// One ping from inside the pod (the only traffic the demo sends, to a namespace it made).
fn ping_from_pod(dst: &str) -> Result<bool> {
    let pod = NetNs::open(netns::named_path(POD))?;
    let mut cmd = std::process::Command::new("ping");
    cmd.args(["-c", "1", "-W", "1", dst])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    pod.spawn_inside(&mut cmd);
    Ok(cmd.status().context("run ping (iputils-ping)")?.success())
}

/// The highest spec version every plugin of the demo answers to in VERSION.
fn common_version(runtime: &Runtime) -> Result<Version> {
    let mut common: Vec<Version> = Version::ALL.to_vec();
    for name in NEEDED {
        let info = runtime.version_info(name).with_context(|| format!("ask {name} for its versions"))?;
        common.retain(|v| info.supported_versions.iter().any(|s| s == v.as_str()));
    }
    common.last().copied().context("the demo's plugins share no CNI version")
}

fn network(dir: &Path, version: Version) -> Result<LoadedList> {
    let list = json!({
        "cniVersion": version.as_str(),
        "name": "demo",
        "plugins": [
            {"type": "bridge", "bridge": "twill0", "isGateway": true, "isDefaultGateway": true, "ipMasq": true,
             "ipam": {"type": "host-local", "dataDir": dir.join("ipam"),
                      "ranges": [[{"subnet": "10.244.0.0/24"}], [{"subnet": "fd00:244::/64"}]]}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    });
    let bytes = serde_json::to_vec(&list)?;
    Ok(LoadedList { list: NetConfList::parse(&bytes)?, bytes, source: dir.join("demo.conflist") })
}

fn print_addresses(ns_path: &Path) -> Result<()> {
    let ns = NetNs::open(ns_path)?;
    let nl = nl::Handle::in_netns(&ns)?;
    for link in nl.link_list()? {
        let addrs: Vec<String> = nl.addr_list(Some(link.index))?.iter().map(|a| a.net.to_string()).collect();
        let state = if link.up { "UP" } else { "DOWN" };
        println!("  {:<6} {:<5} {}", link.name, state, addrs.join(" "));
    }
    for route in nl.route_list(None, None)? {
        if route.table.unwrap_or(254) == 254 {
            let via = route.gw.map(|g| format!(" via {g}")).unwrap_or_default();
            println!("  route {}{via}", route.dst);
        }
    }
    Ok(())
}
