//! `twill cluster get ippools [-o wide|json|yaml]`: the cluster-wide IPAM pools (the
//! `whereabouts` plugin's) and their reservations — what `kubectl get ippools -o yaml`
//! shows of Whereabouts. A table row per reservation; JSON/YAML a document per pool.

use std::net::IpAddr;

use anyhow::Result;
use cluster::Datastore;
use cluster::ippool::{self, PoolView};
use ipnet::IpNet;
use serde::Serialize;

/// One pool as printed.
#[derive(Debug, Serialize)]
pub struct Pool {
    /// `network_name`; empty for the unnamed network.
    pub network: String,
    pub range: IpNet,
    pub reservations: Vec<Reservation>,
    /// Keys whose records do not decode (their addresses stay taken).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Reservation {
    pub ip: IpAddr,
    pub pod: String,
    pub node: String,
    pub container_id: String,
    pub ifname: String,
    pub cni_network: String,
    pub since: u64,
}

fn pool(p: PoolView) -> Pool {
    let reservations = p
        .reservations
        .into_iter()
        .map(|s| {
            let (r, h) = (&s.record, s.record.holder.clone());
            Reservation {
                ip: r.ip,
                pod: h.pod,
                node: h.node,
                container_id: h.container_id,
                ifname: h.ifname,
                cni_network: h.cni_network,
                since: r.since,
            }
        })
        .collect();
    Pool { network: p.network, range: p.range, reservations, unreadable: p.unreadable }
}

/// Every pool holding a reservation.
pub fn read(store: &dyn Datastore) -> Result<Vec<Pool>> {
    Ok(ippool::pools(store)?.into_iter().map(pool).collect())
}

pub const HEAD: (&[&str], &[&str]) =
    (&["NETWORK", "RANGE", "IP", "POD", "NODE", "SINCE"], &["CONTAINER", "IFNAME", "CNI-NETWORK"]);

/// One row per reservation, `(pool, reservation)` pairs flattened for the table.
pub fn rows(pools: &[Pool], ago: fn(u64) -> String) -> Vec<(Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    for p in pools {
        let network = if p.network.is_empty() { "<none>".to_string() } else { p.network.clone() };
        for r in &p.reservations {
            let base = vec![
                network.clone(),
                p.range.to_string(),
                r.ip.to_string(),
                r.pod.clone(),
                r.node.clone(),
                ago(r.since),
            ];
            out.push((base, vec![r.container_id.clone(), r.ifname.clone(), r.cni_network.clone()]));
        }
        for key in &p.unreadable {
            let base = vec![network.clone(), p.range.to_string(), format!("<unreadable {key}>")];
            out.push((base, vec![]));
        }
    }
    out
}
