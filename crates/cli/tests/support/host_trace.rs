//! The real root network namespace around a podman test. podman runs its CNI plugins there,
//! so the test may create a bridge, veths, namespaces, firewall entries and files — and must
//! remove every one of them, also when it fails. [`HostSnapshot`] records what existed
//! before; [`HostSnapshot::leftovers`] lists what a removed container or network left
//! behind; [`HostSnapshot::restore`] removes only what appeared since the snapshot and
//! belongs to the test's networks. Everything else on the host is read, never written.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ipnet::IpNet;
use serde_json::Value;

/// Host-wide switches the bridge plugin turns on for a gateway (as the reference does).
const SYSCTLS: [&str; 2] = ["/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"];
/// libcni's cache and host-local's default data dir (podman sets neither).
pub const CNI_STATE: &str = "/var/lib/cni";
/// Directories plugins create on first use; removed afterwards only if the test made them.
const STATE_DIRS: [&str; 5] =
    ["/var/lib/cni/networks", "/var/lib/cni/results", "/var/lib/cni", "/run/cni/tuning", "/run/cni"];
/// podman names the namespaces it creates `/run/netns/netns-<uuid>`.
const PODMAN_NETNS_PREFIX: &str = "netns-";

/// A podman network made by a test: its name, the bridge podman chose and its subnets.
#[derive(Clone, Debug)]
pub struct TestNet {
    pub name: String,
    pub bridge: String,
    pub subnets: Vec<IpNet>,
}

impl TestNet {
    /// Text that appears in firewall state only because of this network: the owner tag
    /// prefix and the subnets' leading digits (`10.233.7.`, `fd00:233:7:`).
    fn markers(&self) -> Vec<String> {
        let mut m = vec![format!("\"{}/", self.name)];
        for net in &self.subnets {
            let text = net.network().to_string();
            m.push(match net {
                IpNet::V4(_) => text.rsplit_once('.').map(|(head, _)| format!("{head}.")).unwrap_or(text),
                IpNet::V6(_) => text.trim_end_matches(':').to_string() + ":",
            });
        }
        m
    }
}

/// What the root namespace held before the test.
#[derive(Debug)]
pub struct HostSnapshot {
    links: BTreeSet<String>,
    tables: BTreeSet<(String, String)>,
    chains: BTreeSet<(String, String, String)>,
    netns: BTreeSet<String>,
    sysctls: Vec<(&'static str, String)>,
    dirs: Vec<(&'static str, bool)>,
}

impl HostSnapshot {
    pub fn take() -> HostSnapshot {
        HostSnapshot {
            links: links().into_iter().map(|(name, _, _)| name).collect(),
            tables: tables(),
            chains: chains(),
            netns: podman_netns(),
            sysctls: SYSCTLS.iter().map(|k| (*k, read_trimmed(k))).collect(),
            dirs: STATE_DIRS.iter().map(|d| (*d, Path::new(d).exists())).collect(),
        }
    }

    /// Everything `net` still leaves on the host: veths that were not there before, ports on
    /// its bridge, the bridge itself when `removed`, reservations, cached results, firewall
    /// state naming it, podman namespaces. Empty means clean.
    pub fn leftovers(&self, net: &TestNet, removed: bool) -> Vec<String> {
        let mut found = Vec::new();
        let now = links();
        let bridge = now.iter().find(|(name, _, _)| *name == net.bridge).map(|(_, index, _)| *index);
        if removed && bridge.is_some() {
            found.push(format!("bridge {} still exists", net.bridge));
        }
        for (name, _, master) in &now {
            if bridge.is_some() && *master == bridge {
                found.push(format!("link {name} is still a port of {}", net.bridge));
            } else if name.starts_with("veth") && !self.links.contains(name) {
                found.push(format!("veth {name} appeared during the test and is still there"));
            }
        }
        found.extend(reservations(&net.name).into_iter().map(|f| format!("reservation {f}")));
        found.extend(cached_results(&net.name).into_iter().map(|f| format!("cached result {f}")));
        let ruleset = nft(&["list", "ruleset"]);
        for marker in net.markers() {
            for line in ruleset.lines().filter(|l| l.contains(&marker)) {
                found.push(format!("firewall entry mentioning {marker}: {}", line.trim()));
            }
        }
        for ns in podman_netns().difference(&self.netns) {
            found.push(format!("podman namespace /run/netns/{ns}"));
        }
        found
    }

    /// Removes what the test created: `nets`' bridges, podman's namespaces, new firewall
    /// tables and chains, the state files of `nets`, new state dirs; restores the sysctls.
    /// Returns what it removed, for the log.
    pub fn restore(&self, nets: &[TestNet]) -> Vec<String> {
        let mut did = Vec::new();
        for ns in podman_netns().difference(&self.netns) {
            if netns::delete_named(ns).is_ok() {
                did.push(format!("netns {ns}"));
            }
        }
        for (name, _, _) in links() {
            if !self.links.contains(&name) && nets.iter().any(|n| n.bridge == name) {
                run_quiet("ip", &["link", "del", &name]);
                did.push(format!("link {name}"));
            }
        }
        did.extend(self.restore_firewall());
        for (key, before) in &self.sysctls {
            if read_trimmed(key) != *before && std::fs::write(key, before).is_ok() {
                did.push(format!("{key} back to {before}"));
            }
        }
        for net in nets {
            remove_state(&net.name);
        }
        for (dir, existed) in &self.dirs {
            // Only empty ones: anything else in them is not ours to judge.
            if !existed && std::fs::remove_dir(dir).is_ok() {
                did.push(format!("dir {dir}"));
            }
        }
        did
    }

    /// New tables go whole; new chains in tables that existed go with the rules jumping to
    /// them (the reference firewall's CNI-FORWARD in a pre-existing `ip filter`).
    fn restore_firewall(&self) -> Vec<String> {
        let mut did = Vec::new();
        for (family, table) in tables().difference(&self.tables) {
            run_quiet("nft", &["delete", "table", family, table]);
            did.push(format!("nft table {family} {table}"));
        }
        let new_chains: Vec<_> = chains().difference(&self.chains).cloned().collect();
        for (family, table, chain) in
            new_chains.iter().filter(|(f, t, _)| self.tables.contains(&(f.clone(), t.clone())))
        {
            for (in_chain, handle) in jumps_to(family, table, chain) {
                run_quiet("nft", &["delete", "rule", family, table, &in_chain, "handle", &handle]);
            }
            run_quiet("nft", &["flush", "chain", family, table, chain]);
        }
        for (family, table, chain) in
            new_chains.iter().filter(|(f, t, _)| self.tables.contains(&(f.clone(), t.clone())))
        {
            run_quiet("nft", &["delete", "chain", family, table, chain]);
            did.push(format!("nft chain {family} {table} {chain}"));
        }
        did
    }

    /// Differences to the snapshot that remain after [`HostSnapshot::restore`].
    pub fn differences(&self) -> Vec<String> {
        let mut diff = Vec::new();
        let now: BTreeSet<String> = links().into_iter().map(|(name, _, _)| name).collect();
        diff.extend(now.difference(&self.links).map(|l| format!("new link {l}")));
        diff.extend(tables().difference(&self.tables).map(|(f, t)| format!("new nft table {f} {t}")));
        diff.extend(chains().difference(&self.chains).map(|(f, t, c)| format!("new nft chain {f} {t} {c}")));
        diff.extend(podman_netns().difference(&self.netns).map(|n| format!("new netns {n}")));
        for (key, before) in &self.sysctls {
            let now = read_trimmed(key);
            if now != *before {
                diff.push(format!("{key} is {now}, was {before}"));
            }
        }
        diff
    }
}

/// (name, index, master index) of every link in this process's (the root) namespace.
fn links() -> Vec<(String, u32, Option<u32>)> {
    let h = nl::Handle::in_netns(&netns::NetNs::current().expect("open own netns")).expect("netlink handle");
    h.link_list().expect("list links").into_iter().map(|l| (l.name, l.index, l.master)).collect()
}

/// Reservation files (not `lock`, not `last_reserved_ip.*`) of `network` in the default dir.
pub fn reservations(network: &str) -> Vec<String> {
    names_in(&Path::new(CNI_STATE).join("networks").join(network))
        .into_iter()
        .filter(|n| n != "lock" && !n.starts_with("last_reserved_ip"))
        .collect()
}

/// Removes the reservations and cached results of the test network `network`; says what
/// there was (left by an earlier run that was killed before its clean-up).
pub fn remove_state(network: &str) -> Vec<String> {
    let dir = Path::new(CNI_STATE).join("networks").join(network);
    let mut removed: Vec<String> =
        reservations(network).into_iter().map(|r| format!("reservation {r}")).collect();
    let _ = std::fs::remove_dir_all(dir);
    for file in cached_results(network) {
        if std::fs::remove_file(Path::new(CNI_STATE).join("results").join(&file)).is_ok() {
            removed.push(format!("cached result {file}"));
        }
    }
    removed
}

/// libcni cache files of `network` (`NETWORK-CONTAINERID-IFNAME`).
fn cached_results(network: &str) -> Vec<String> {
    let prefix = format!("{network}-");
    names_in(&Path::new(CNI_STATE).join("results")).into_iter().filter(|n| n.starts_with(&prefix)).collect()
}

fn names_in(dir: &PathBuf) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn podman_netns() -> BTreeSet<String> {
    names_in(&PathBuf::from(netns::NETNS_RUN_DIR))
        .into_iter()
        .filter(|n| n.starts_with(PODMAN_NETNS_PREFIX))
        .collect()
}

fn tables() -> BTreeSet<(String, String)> {
    nft_objects(&["list", "tables"], "table").iter().map(|t| (text(&t["family"]), text(&t["name"]))).collect()
}

fn chains() -> BTreeSet<(String, String, String)> {
    nft_objects(&["list", "chains"], "chain")
        .iter()
        .map(|c| (text(&c["family"]), text(&c["table"]), text(&c["name"])))
        .collect()
}

/// (chain, handle) of the rules of `table` that jump or go to `target`.
fn jumps_to(family: &str, table: &str, target: &str) -> Vec<(String, String)> {
    nft_objects(&["-a", "list", "table", family, table], "rule")
        .iter()
        .filter(|r| {
            r["expr"].as_array().into_iter().flatten().any(|e| {
                e["jump"]["target"].as_str() == Some(target) || e["goto"]["target"].as_str() == Some(target)
            })
        })
        .map(|r| (text(&r["chain"]), r["handle"].to_string()))
        .collect()
}

/// The `kind` objects of `nft -j ARGS`.
fn nft_objects(args: &[&str], kind: &str) -> Vec<Value> {
    let out = nft(&[&["-j"], args].concat());
    let parsed: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    parsed["nftables"].as_array().into_iter().flatten().filter_map(|o| o.get(kind).cloned()).collect()
}

fn nft(args: &[&str]) -> String {
    let out = Command::new("nft").args(args).output().unwrap_or_else(|e| panic!("run nft {args:?}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_quiet(program: &str, args: &[&str]) {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => eprintln!("cleanup: {program} {args:?}: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => eprintln!("cleanup: {program} {args:?}: {e}"),
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_string()).unwrap_or_default()
}
