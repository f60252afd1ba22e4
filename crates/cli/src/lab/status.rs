//! `twill lab status`: the nodes with their pod subnets (read from the network list each
//! node's twilld wrote) and agent health, the datastore, the pods with their addresses and,
//! with the bgp backend, every BGP session (each node's from its twilld's `/bgp`, the
//! router's and outside host's from their BIRD's control socket); as tables, or as JSON for
//! scripts (`--json`).

use anyhow::Result;
use serde_json::{Value, json};

use std::collections::BTreeMap;

use cluster::{PodRecord, Registry};

use super::agent::{self, datastore_url};
use super::bgp;
use super::names::Names;
use super::state::{self, Backend, LabState, NodeState};
use super::{layout, registry};

/// The network list every node's twilld writes: the cluster network.
pub const CLUSTER_NETWORK: &str = "twill";

pub fn run(names: &Names, as_json: bool) -> Result<()> {
    let state = state::load_running(names)?;
    let report = report(names, &state);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

/// The pod subnets in a node's `twill` network list, empty when it has none yet.
fn node_subnets(node: &NodeState) -> Vec<String> {
    cni_exec::load_network(&node.conf_dir, CLUSTER_NETWORK)
        .ok()
        .and_then(|l| serde_json::from_slice::<Value>(&l.bytes).ok())
        .map(|v| subnets_in(&v))
        .unwrap_or_default()
}

/// Every `"subnet"` string anywhere in a network list (host-local's `ranges` or `subnet`).
fn subnets_in(v: &Value) -> Vec<String> {
    match v {
        Value::Object(m) => m
            .iter()
            .flat_map(|(k, v)| match (k.as_str(), v) {
                ("subnet", Value::String(s)) => vec![s.clone()],
                _ => subnets_in(v),
            })
            .collect(),
        Value::Array(a) => a.iter().flat_map(subnets_in).collect(),
        _ => Vec::new(),
    }
}

/// What the datastore says: namespaces with their labels, and the published pods by
/// `NS/NAME`; an error note instead when it cannot be read.
fn cluster_view(dir: &std::path::Path, state: &LabState) -> (Value, BTreeMap<String, PodRecord>) {
    let read = registry::with_store(dir, state, |s| {
        let namespaces = Registry::new(s).namespaces()?.items;
        let (records, _) = ::agent::policy::read_records(s)?;
        Ok((namespaces, records.pods))
    });
    match read {
        Ok((namespaces, pods)) => {
            let ns: BTreeMap<String, _> =
                namespaces.into_iter().map(|n| (n.name.clone(), n.labels)).collect();
            let pods = pods.into_iter().map(|p| (format!("{}/{}", p.namespace, p.name), p)).collect();
            (json!(ns), pods)
        }
        Err(e) => (json!({ "error": format!("{e:#}") }), BTreeMap::new()),
    }
}

fn report(names: &Names, state: &LabState) -> Value {
    let dir = names.state_dir();
    let (namespaces, published) = cluster_view(&dir, state);
    let tls = super::etcd::tls_files(&dir, state);
    let nodes: Vec<Value> = state
        .nodes
        .iter()
        .map(|n| {
            json!({
                "name": n.name, "netns": n.netns, "ip": n.ip, "ip6": n.ip6,
                "subnets": node_subnets(n),
                "cni_conf_dir": n.conf_dir,
                "cni_bin_dir": layout::bin_dir(&dir),
                "network": CLUSTER_NETWORK,
                "multus_network": super::multus::NETWORK,
                "data_iface": super::datanet::DATA_IFACE,
                "multus_conf_dir": super::multus::conf_dir(&dir, n),
                "agent_pid": n.agent.as_ref().map(|p| p.pid),
                "agent_running": n.agent.as_ref().is_some_and(|p| p.is_running()),
                "ready": agent::is_ready(n),
                "log": n.agent.as_ref().map(|p| p.log.clone()),
                "rack": n.rack,
                "bgp": (state.options.backend == Backend::Bgp).then(|| agent::bgp_status(n)),
            })
        })
        .collect();
    let pods: Vec<Value> = state
        .pods
        .values()
        .map(|p| {
            let record = published.get(&p.pod_ref().to_string());
            json!({
                "pod": p.pod_ref().to_string(), "node": format!("node-{}", p.node), "netns": p.netns,
                "ips": p.ips,
                "labels": record.map(|r| json!(r.labels)).unwrap_or(Value::Null),
                "annotations": record.map(|r| json!(r.annotations)).unwrap_or(Value::Null),
                "network_status": record.map(|r| json!(r.network_status)).unwrap_or(Value::Null),
                "published": record.is_some(),
                "server_pid": p.server.as_ref().map(|s| s.pid),
                "server_running": p.server.as_ref().is_some_and(|s| s.is_running()),
            })
        })
        .collect();
    json!({
        "prefix": state.prefix,
        "state_dir": dir,
        "backend": state.options.backend.as_str(),
        "datastore": datastore_url(&dir, &state.options),
        "etcd_cacert": tls.cacert,
        "etcd_cert": tls.cert,
        "etcd_key": tls.key,
        "ipv6": state.options.ipv6,
        "etcd": state.etcd.as_ref().map(|e| e.members.iter().map(|m| json!({
            "netns": m.netns, "url": m.url,
            "pid": m.proc.as_ref().map(|p| p.pid),
            "running": m.proc.as_ref().is_some_and(|p| p.is_running()),
        })).collect::<Vec<_>>()),
        "outside_server_pid": state.outside_server.as_ref().map(|p| p.pid),
        "racks": state.options.racks,
        "nodes": nodes,
        "birds": birds(state),
        "namespaces": namespaces,
        "pods": pods,
    })
}

/// The router's and the outside host's BIRD, with their sessions.
fn birds(state: &LabState) -> Vec<Value> {
    state
        .birds
        .iter()
        .map(|b| {
            let sessions = bgp::sessions(&b.dir);
            json!({
                "place": b.place, "netns": b.netns,
                "pid": b.proc.as_ref().map(|p| p.pid),
                "running": b.proc.as_ref().is_some_and(|p| p.is_running()),
                "sessions": sessions.as_ref().ok(),
                "error": sessions.as_ref().err().map(|e| format!("{e:#}")),
            })
        })
        .collect()
}

/// A value as one table cell: strings bare, null as `-`, lists joined with `,`.
fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        Value::Array(a) => {
            let parts: Vec<String> =
                a.iter().map(|x| x.as_str().map(String::from).unwrap_or(x.to_string())).collect();
            if parts.is_empty() { "-".into() } else { parts.join(",") }
        }
        other => other.to_string(),
    }
}

fn render(r: &Value) -> String {
    let s = cell;
    let mut out = format!(
        "lab {} ({}): backend {}, datastore {}, IPv6 {}\n",
        s(&r["prefix"]),
        s(&r["state_dir"]),
        s(&r["backend"]),
        s(&r["datastore"]),
        if r["ipv6"] == true { "on" } else { "off" }
    );
    for etcd in r["etcd"].as_array().into_iter().flatten() {
        let up = if etcd["running"] == true { "running" } else { "NOT RUNNING" };
        out.push_str(&format!(
            "etcd {} in {}: pid {} {up}\n",
            s(&etcd["url"]),
            s(&etcd["netns"]),
            s(&etcd["pid"])
        ));
    }
    render_nodes(r, &mut out);
    render_bgp(r, &mut out);
    render_pods(r, &mut out);
    out
}

fn render_nodes(r: &Value, out: &mut String) {
    let s = cell;
    out.push_str(&format!("\n{:<8} {:<22} {:<13} {:<32} {}\n", "NODE", "NETNS", "IP", "SUBNETS", "TWILLD"));
    for n in r["nodes"].as_array().into_iter().flatten() {
        let health = match (n["agent_running"] == true, n["ready"] == true) {
            (true, true) => "ready",
            (true, false) => "NOT READY",
            (false, _) => "NOT RUNNING",
        };
        out.push_str(&format!(
            "{:<8} {:<22} {:<13} {:<32} pid {} {health}{}\n",
            s(&n["name"]),
            s(&n["netns"]),
            s(&n["ip"]),
            s(&n["subnets"]),
            s(&n["agent_pid"]),
            bgp_summary(&n["bgp"])
        ));
    }
}

fn render_pods(r: &Value, out: &mut String) {
    let s = cell;
    let pods = r["pods"].as_array().cloned().unwrap_or_default();
    if pods.is_empty() {
        out.push_str("\nno pods (twill lab pod add NS/NAME)\n");
        return;
    }
    out.push_str(&format!("\n{:<24} {:<8} {:<36} {}\n", "POD", "NODE", "IPS", "SERVER"));
    for p in &pods {
        let up = if p["server_running"] == true { "running" } else { "NOT RUNNING" };
        out.push_str(&format!(
            "{:<24} {:<8} {:<36} pid {} {up}\n",
            s(&p["pod"]),
            s(&p["node"]),
            s(&p["ips"]),
            s(&p["server_pid"])
        ));
    }
}

/// `, bgp 2/3 up` for a node of the bgp backend.
fn bgp_summary(bgp: &Value) -> String {
    let Some(sessions) = bgp["sessions"].as_array() else {
        return if bgp.is_null() { String::new() } else { ", bgp unknown".into() };
    };
    let up = sessions.iter().filter(|s| s["established"] == true).count();
    format!(", bgp {up}/{} up", sessions.len())
}

/// Every BGP session: the nodes', then the router's and the outside host's.
fn render_bgp(r: &Value, out: &mut String) {
    let mut rows: Vec<(String, &Value)> = Vec::new();
    let mut problems = Vec::new();
    for n in r["nodes"].as_array().into_iter().flatten().filter(|n| !n["bgp"].is_null()) {
        let name = n["name"].as_str().unwrap_or_default().to_string();
        match n["bgp"]["sessions"].as_array() {
            Some(list) => rows.extend(list.iter().map(|s| (name.clone(), s))),
            None => problems.push(format!("{name}: {}", n["bgp"]["error"].as_str().unwrap_or("no answer"))),
        }
        if let Some(e) = n["bgp"]["error"].as_str().filter(|_| n["bgp"]["sessions"].is_array()) {
            problems.push(format!("{name}: {e}"));
        }
    }
    for b in r["birds"].as_array().into_iter().flatten() {
        let place = b["place"].as_str().unwrap_or_default().to_string();
        match b["sessions"].as_array() {
            Some(list) => rows.extend(list.iter().map(|s| (place.clone(), s))),
            None => problems.push(format!("{place}: {}", b["error"].as_str().unwrap_or("no answer"))),
        }
    }
    if rows.is_empty() && problems.is_empty() {
        return;
    }
    out.push_str(&format!(
        "\n{:<8} {:<26} {:<16} {:<28} {:>7} {:>9}\n",
        "BGP", "PEER", "NEIGHBOR", "STATE", "LEARNED", "ANNOUNCED"
    ));
    for (at, s) in rows {
        let text = |k: &str| s[k].as_str().map(String::from).unwrap_or_else(|| s[k].to_string());
        out.push_str(&format!(
            "{:<8} {:<26} {:<16} {:<28} {:>7} {:>9}\n",
            at,
            text("peer"),
            text("neighbor"),
            text("state"),
            text("routes_learned"),
            text("routes_announced")
        ));
    }
    for p in problems {
        out.push_str(&format!("BGP state unavailable: {p}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_found_in_host_local_ranges_and_plain_subnet() {
        let list = json!({"name": "twill", "plugins": [
            {"type": "bridge", "ipam": {"type": "host-local",
              "ranges": [[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]]}},
            {"type": "portmap"},
            {"type": "x", "ipam": {"subnet": "10.9.0.0/16"}}
        ]});
        assert_eq!(subnets_in(&list), ["10.244.1.0/24", "fd00:10:244:1::/64", "10.9.0.0/16"]);
        assert!(subnets_in(&json!({"plugins": []})).is_empty());
    }
}
