//! `twill cluster get nodes|namespaces|pods|networkpolicies|adminnetworkpolicies|
//! baselineadminnetworkpolicies|nets|bgppeers|ippools [-n NS]
//! [-o wide|json|yaml]`: tables like kubectl's, or the records as JSON or YAML (pods with the
//! operator's labels, annotations and ports laid over what their node published, and their
//! network-status; ippools in `super::ippools`). With the bgp backend, `get nodes -o wide`
//! shows each node's AS and BGP sessions as of its last renewal.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use clap::Args;
use cluster::bgppeer::{BGPPEERS, BgpPeerRecord};
use cluster::multinet::DefinitionConfig;
use cluster::{
    AdminPolicyRecord, NamespaceRecord, NetAttachDef, NodeRecord, PodRecord, PolicyRecord, Registry,
};
use policy::Tier;
use serde::Serialize;

use super::{Connection, ippools};

#[derive(Args, Debug)]
pub struct GetArgs {
    /// nodes (no), namespaces (ns), pods (po), networkpolicies (netpol),
    /// adminnetworkpolicies (anp), baselineadminnetworkpolicies (banp),
    /// network-attachment-definitions (nets, net-attach-def), bgppeers, ippools.
    pub kind: String,
    /// Only this namespace (pods, networkpolicies, nets).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// wide, json or yaml (default: a table).
    #[arg(short = 'o', long)]
    pub output: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Table,
    Wide,
    Json,
    Yaml,
}

fn format(o: Option<&str>) -> Result<Format> {
    Ok(match o {
        None => Format::Table,
        Some("wide") => Format::Wide,
        Some("json") => Format::Json,
        Some("yaml") => Format::Yaml,
        Some(other) => bail!("-o {other}: expected wide, json or yaml"),
    })
}

pub fn run(conn: &Connection, args: &GetArgs) -> Result<()> {
    let fmt = format(args.output.as_deref())?;
    let store = conn.open()?;
    let reg = Registry::new(store.as_ref());
    let ns = args.namespace.as_deref();
    match args.kind.as_str() {
        "nodes" | "node" | "no" => show(fmt, &reg.nodes()?.items, node_row, NODE_HEAD),
        "namespaces" | "namespace" | "ns" => show(fmt, &reg.namespaces()?.items, ns_row, NS_HEAD),
        "pods" | "pod" | "po" => {
            let (records, _) = agent::policy::read_records(store.as_ref())?;
            let pods: Vec<PodRecord> =
                records.pods.into_iter().filter(|p| ns.is_none_or(|n| p.namespace == n)).collect();
            show(fmt, &pods, pod_row, POD_HEAD)
        }
        "networkpolicies" | "networkpolicy" | "netpol" => {
            let items: Vec<PolicyRecord> =
                reg.policies()?.items.into_iter().filter(|p| ns.is_none_or(|n| p.namespace == n)).collect();
            show(fmt, &items, policy_row, POLICY_HEAD)
        }
        "adminnetworkpolicies" | "adminnetworkpolicy" | "anp" => {
            let mut items = reg.admin_policies(Tier::Admin)?.items;
            items.sort_by_key(|p| (p.spec.get("priority").and_then(|v| v.as_i64()), p.name.clone()));
            show(fmt, &items, admin_row, ADMIN_HEAD)
        }
        "baselineadminnetworkpolicies" | "baselineadminnetworkpolicy" | "banp" => {
            show(fmt, &reg.admin_policies(Tier::Baseline)?.items, admin_row, ADMIN_HEAD)
        }
        "bgppeers" | "bgppeer" => {
            let mut items: Vec<BgpPeerRecord> = reg.list(BGPPEERS)?.items;
            // A BGP password is a secret: shown as set, never printed.
            for p in items.iter_mut().filter(|p| p.spec.password.is_some()) {
                p.spec.password = Some("<hidden>".into());
            }
            show(fmt, &items, bgppeer_row, BGPPEER_HEAD)
        }
        "network-attachment-definitions"
        | "network-attachment-definition"
        | "net-attach-def"
        | "nets"
        | "networkattachmentdefinitions"
        | "networkattachmentdefinition" => {
            let items: Vec<NetAttachDef> = reg
                .net_attach_defs()?
                .items
                .into_iter()
                .filter(|d| ns.is_none_or(|n| d.namespace == n))
                .collect();
            show(fmt, &items, nad_row, NAD_HEAD)
        }
        "ippools" | "ippool" => {
            let pools = ippools::read(store.as_ref())?;
            match fmt {
                Format::Json => println!("{}", serde_json::to_string_pretty(&pools)?),
                Format::Yaml => print!("{}", serde_norway::to_string(&pools)?),
                Format::Table | Format::Wide => {
                    let wide = fmt == Format::Wide;
                    let (base, extra) = ippools::HEAD;
                    let head = columns(
                        base.iter().map(|s| s.to_string()).collect(),
                        extra.iter().map(|s| s.to_string()).collect(),
                        wide,
                    );
                    let mut rows = vec![head];
                    rows.extend(ippools::rows(&pools, ago).into_iter().map(|(b, e)| columns(b, e, wide)));
                    print!("{}", table(&rows));
                }
            }
            Ok(())
        }
        other => bail!(
            "unknown kind {other:?}: nodes, namespaces, pods, networkpolicies, adminnetworkpolicies (anp), \
             baselineadminnetworkpolicies (banp), nets, bgppeers or ippools"
        ),
    }
}

type Row = (Vec<String>, Vec<String>);

fn show<T: Serialize>(fmt: Format, items: &[T], row: fn(&T) -> Row, head: (&[&str], &[&str])) -> Result<()> {
    match fmt {
        Format::Json => println!("{}", serde_json::to_string_pretty(items)?),
        Format::Yaml => print!("{}", serde_norway::to_string(items)?),
        Format::Table | Format::Wide => {
            let wide = fmt == Format::Wide;
            let mut rows = vec![columns(
                head.0.iter().map(|s| s.to_string()).collect(),
                head.1.iter().map(|s| s.to_string()).collect(),
                wide,
            )];
            rows.extend(items.iter().map(|i| {
                let (base, extra) = row(i);
                columns(base, extra, wide)
            }));
            print!("{}", table(&rows));
        }
    }
    Ok(())
}

fn columns(mut base: Vec<String>, extra: Vec<String>, wide: bool) -> Vec<String> {
    if wide {
        base.extend(extra);
    }
    base
}

/// Left-aligned columns, three spaces apart, as kubectl prints them.
fn table(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> =
            r.iter().enumerate().map(|(c, s)| format!("{s:<w$}", w = widths[c])).collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

fn none_if_empty(s: String) -> String {
    if s.is_empty() { "<none>".to_string() } else { s }
}

fn ago(unix: u64) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    match unix {
        0 => "<unknown>".to_string(),
        t => format!("{}s ago", now.saturating_sub(t)),
    }
}

fn join<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    none_if_empty(items.into_iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","))
}

const NODE_HEAD: (&[&str], &[&str]) = (
    &["NAME", "ADDRESS", "SUBNETS", "BACKEND", "HEALTH", "HEARTBEAT"],
    &["ADDRESS6", "VTEP-MAC", "LEASE-EXPIRES", "BGP-AS", "BGP-SESSIONS"],
);

fn node_row(n: &NodeRecord) -> Row {
    let base = vec![
        n.name.clone(),
        n.node_ip.to_string(),
        join([Some(n.subnet), n.subnet6].into_iter().flatten()),
        n.backend.to_string(),
        none_if_empty(n.health.clone()),
        ago(n.heartbeat),
    ];
    let extra = vec![
        n.node_ip6.map(|i| i.to_string()).unwrap_or_else(|| "<none>".into()),
        n.vtep_mac.clone().unwrap_or_else(|| "<none>".into()),
        n.expires.to_string(),
        n.bgp.map(|b| b.asn.to_string()).unwrap_or_else(|| "<none>".into()),
        n.bgp.map(bgp_sessions).unwrap_or_else(|| "<none>".into()),
    ];
    (base, extra)
}

/// `2/3 up`, and `, reflector` for a route reflector: as of the node's last renewal.
fn bgp_sessions(b: cluster::record::NodeBgp) -> String {
    let role = if b.route_reflector { ", reflector" } else { "" };
    format!("{}/{} up{role}", b.sessions_up, b.sessions)
}

const NS_HEAD: (&[&str], &[&str]) = (&["NAME", "LABELS"], &[]);

fn ns_row(n: &NamespaceRecord) -> Row {
    (vec![n.name.clone(), join(n.labels.iter().map(|(k, v)| format!("{k}={v}")))], vec![])
}

const POD_HEAD: (&[&str], &[&str]) =
    (&["NAMESPACE", "NAME", "NODE", "IPS", "LABELS"], &["CONTAINER", "IFNAME", "NETWORK", "NETNS", "SINCE"]);

fn pod_row(p: &PodRecord) -> Row {
    let base = vec![
        p.namespace.clone(),
        p.name.clone(),
        p.node.clone(),
        join(&p.ips),
        join(p.labels.iter().map(|(k, v)| format!("{k}={v}"))),
    ];
    let extra = vec![
        none_if_empty(p.container_id.clone()),
        none_if_empty(p.ifname.clone()),
        none_if_empty(p.network.clone()),
        none_if_empty(p.netns.clone()),
        ago(p.since),
    ];
    (base, extra)
}

const BGPPEER_HEAD: (&[&str], &[&str]) = (&["NAME", "PEER-IP", "AS", "NODE-SELECTOR"], &["PASSWORD"]);

fn bgppeer_row(p: &BgpPeerRecord) -> Row {
    let selector = p.spec.node_selector.as_ref().map(|s| serde_json::to_string(s).unwrap_or_default());
    let password = if p.spec.password.is_some() { "<hidden>" } else { "<none>" };
    let base = vec![
        p.name.clone(),
        p.spec.peer_ip.to_string(),
        p.spec.as_number.to_string(),
        selector.unwrap_or_else(|| "<all nodes>".into()),
    ];
    (base, vec![password.to_string()])
}

const POLICY_HEAD: (&[&str], &[&str]) = (&["NAMESPACE", "NAME", "POD-SELECTOR"], &["SPEC"]);

fn policy_row(p: &PolicyRecord) -> Row {
    let selector = p.spec.get("podSelector").map(|s| s.to_string()).unwrap_or_else(|| "{}".into());
    (vec![p.namespace.clone(), p.name.clone(), selector], vec![p.spec.to_string()])
}

const ADMIN_HEAD: (&[&str], &[&str]) = (&["NAME", "PRIORITY", "INGRESS", "EGRESS"], &["SPEC"]);

/// Name, priority (none for the baseline) and rule counts, like kubectl's printer columns.
fn admin_row(p: &AdminPolicyRecord) -> Row {
    let priority = p.spec.get("priority").map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let count = |dir: &str| p.spec.get(dir).and_then(|r| r.as_array()).map_or(0, Vec::len).to_string();
    (vec![p.name.clone(), priority, count("ingress"), count("egress")], vec![p.spec.to_string()])
}

const NAD_HEAD: (&[&str], &[&str]) = (&["NAMESPACE", "NAME", "NETWORK", "PLUGINS"], &["CONFIG"]);

/// The network's name and its plugin types, or where an empty config sends multus.
fn nad_row(d: &NetAttachDef) -> Row {
    let (network, plugins) = match d.definition() {
        Ok(DefinitionConfig::ConfDirFile) => (d.name.clone(), "<file in multus confDir>".to_string()),
        Ok(DefinitionConfig::Inline { config, .. }) => {
            let name = config.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
            let types: Vec<&str> = match config.get("plugins").and_then(|p| p.as_array()) {
                Some(list) => list.iter().filter_map(|p| p.get("type").and_then(|t| t.as_str())).collect(),
                None => config.get("type").and_then(|t| t.as_str()).into_iter().collect(),
            };
            (name, types.join(","))
        }
        Err(e) => ("<invalid>".to_string(), e),
    };
    (vec![d.namespace.clone(), d.name.clone(), network, plugins], vec![none_if_empty(d.config.clone())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_like_kubectl() {
        let rows = vec![vec!["NAME".into(), "IPS".into()], vec!["a-long-name".into(), "10.0.0.1".into()]];
        assert_eq!(table(&rows), "NAME          IPS\na-long-name   10.0.0.1\n");
        assert!(format(Some("xml")).is_err());
    }

    #[test]
    fn definitions_show_their_network_and_plugins() {
        let d =
            |config: &str| NetAttachDef { namespace: "x".into(), name: "data".into(), config: config.into() };
        let (base, _) = nad_row(&d(r#"{"cniVersion":"1.0.0","type":"macvlan","master":"data0"}"#));
        assert_eq!(base, ["x", "data", "data", "macvlan"]);
        let (base, _) = nad_row(&d(
            r#"{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"},{"type":"tuning"}]}"#,
        ));
        assert_eq!(base[2..], ["n", "bridge,tuning"]);
        let (base, extra) = nad_row(&d(""));
        assert_eq!((base[3].as_str(), extra[0].as_str()), ("<file in multus confDir>", "<none>"));
    }
}
