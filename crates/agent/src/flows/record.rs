//! One flow record: what the kernel logged (prefix, 5-tuple, time) joined with what the agent
//! knows (the catalogue of the table it applied, the pods of the cluster). Pure.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use fw::nflog::{Packet, Tuple};
use policy::{
    Decision, Direction, Endpoint, Family, FlowSite, FlowSites, FlowVerdict, PodRef, Protocol, World,
    evaluate_family,
};
use serde::{Deserialize, Serialize};

/// What `/flows`, `flows.jsonl` and `twill cluster flows -o json` carry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Position in this agent's stream since it started (gaps: records the ring dropped).
    pub seq: u64,
    /// Unix time in seconds (the packet's own timestamp when the kernel had one).
    pub time: f64,
    pub node: String,
    /// `allowed` or `denied`.
    pub verdict: String,
    /// `ingress` or `egress`; none for spoofed packets (dropped before any policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// `NetworkPolicy`, `none` (no policy selects the pod), `spoofchk`, or another tier.
    pub tier: String,
    /// The deciding policy, `NAMESPACE/NAME` (allowed by a rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The deciding rule's index in `direction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// Default deny: the policies that isolate the pod.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// `rule`, `default deny`, `no policy`, `spoofed ip4`, ...
    pub reason: String,
    pub proto: String,
    pub src: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<u16>,
    pub dst: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dport: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_pod: Option<String>,
}

impl FlowRecord {
    pub fn denied(&self) -> bool {
        self.verdict == FlowVerdict::Denied.as_str()
    }

    /// True when either end is a pod of namespace `ns`.
    pub fn in_namespace(&self, ns: &str) -> bool {
        let of =
            |p: &Option<String>| p.as_deref().and_then(|p| p.split_once('/')).is_some_and(|(n, _)| n == ns);
        of(&self.src_pod) || of(&self.dst_pod)
    }

    /// True when either end is the pod `NS/NAME`.
    pub fn involves(&self, pod: &str) -> bool {
        self.src_pod.as_deref() == Some(pod) || self.dst_pod.as_deref() == Some(pod)
    }
}

/// What the reader needs from the policy controller: the cluster it compiled and the
/// catalogue of the table it applied.
#[derive(Debug, Default)]
pub struct FlowView {
    pub node: String,
    pub world: World,
    pub sites: FlowSites,
    pub pods_by_ip: HashMap<IpAddr, PodRef>,
    /// Rules already resolved in this world: clients open many connections alike, and
    /// evaluating every policy again for each costs the reader more than the rest of a record.
    resolved: Mutex<HashMap<Resolution, Option<(String, usize)>>>,
}

/// What a rule resolution depends on besides the world: side, ends, protocol and port.
type Resolution = (Direction, IpAddr, IpAddr, u8, u16);

/// Resolutions kept per view before the cache starts over.
const RESOLVED_MAX: usize = 65_536;

impl FlowView {
    pub fn new(node: &str, world: World, sites: FlowSites) -> FlowView {
        let pods_by_ip =
            world.pods().flat_map(|p| p.ips.iter().map(move |ip| (*ip, p.key()))).collect::<HashMap<_, _>>();
        FlowView { node: node.to_string(), world, sites, pods_by_ip, resolved: Mutex::default() }
    }

    fn pod(&self, ip: IpAddr) -> Option<String> {
        self.pods_by_ip.get(&ip).map(|p| p.to_string())
    }
}

/// Why a logged packet makes no record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("log prefix {0:?} is not one of twill's")]
    UnknownPrefix(String),
    #[error("logged packet: {0}")]
    Tuple(#[from] fw::nflog::TupleError),
}

/// The record of `packet` (`seq` and `now` given by the caller), or why there is none.
pub fn build_record(view: &FlowView, packet: &Packet, seq: u64, now: f64) -> Result<FlowRecord, RecordError> {
    let tuple = Tuple::parse(&packet.payload)?;
    let time = packet
        .timestamp
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(now, |d| d.as_secs_f64());
    let mut r = FlowRecord {
        seq,
        time,
        node: view.node.clone(),
        verdict: FlowVerdict::Denied.as_str().into(),
        direction: None,
        tier: "spoofchk".into(),
        policy: None,
        rule: None,
        policies: Vec::new(),
        reason: String::new(),
        proto: tuple.proto_name(),
        src: tuple.src,
        sport: tuple.sport,
        dst: tuple.dst,
        dport: tuple.dport,
        // A forged source names somebody else: only the destination is attributed.
        src_pod: None,
        dst_pod: view.pod(tuple.dst),
    };
    if let Some(kind) = packet.prefix.strip_prefix("twill denied spoof ") {
        r.reason = format!("spoofed {kind}");
        return Ok(r);
    }
    let site =
        view.sites.get(&packet.prefix).ok_or_else(|| RecordError::UnknownPrefix(packet.prefix.clone()))?;
    r.src_pod = view.pod(tuple.src);
    r.verdict = site.verdict.as_str().into();
    r.direction = Some(site.direction.field().into());
    r.tier = site.tier.clone();
    r.reason = site.reason.into();
    r.policies = site.policies.clone();
    if let (Some(rule), [policy]) = (site.rule, &site.policies[..]) {
        // A tier whose rules compile one by one: the kernel named the rule.
        (r.policy, r.rule) = (Some(policy.clone()), Some(rule));
        r.policies.clear();
    } else if site.verdict == FlowVerdict::Allowed && !site.policies.is_empty() {
        decider(view, site, &tuple, &mut r);
    }
    Ok(r)
}

/// Fills in the NetworkPolicy rule that allowed the connection: the first matching rule by
/// the semantics the group's sets were compiled from.
fn decider(view: &FlowView, site: &FlowSite, tuple: &Tuple, r: &mut FlowRecord) {
    // Rules with ports name TCP, UDP or SCTP; any other protocol passes only a rule without
    // ports, which TCP port 0 matches the same way.
    let (protocol, port) = match tuple.proto {
        17 => (Protocol::Udp, tuple.dport.unwrap_or(0)),
        132 => (Protocol::Sctp, tuple.dport.unwrap_or(0)),
        6 => (Protocol::Tcp, tuple.dport.unwrap_or(0)),
        _ => (Protocol::Tcp, 0),
    };
    let key = (site.direction, tuple.src, tuple.dst, tuple.proto, port);
    let cached = view.resolved.lock().ok().and_then(|c| c.get(&key).cloned());
    let resolved = cached.unwrap_or_else(|| {
        let found = first_rule(view, site.direction, tuple, protocol, port);
        if let Ok(mut c) = view.resolved.lock() {
            if c.len() >= RESOLVED_MAX {
                c.clear();
            }
            c.insert(key, found.clone());
        }
        found
    });
    match resolved {
        Some((policy, rule)) => {
            (r.policy, r.rule) = (Some(policy), Some(rule));
            r.policies.clear();
        }
        // The cluster changed between the packet and this read.
        None => r.reason = "rule (not resolved: the cluster changed since)".into(),
    }
}

/// The first rule that allows `tuple` on side `dir`, by [`evaluate_family`].
fn first_rule(
    view: &FlowView,
    dir: Direction,
    tuple: &Tuple,
    protocol: Protocol,
    port: u16,
) -> Option<(String, usize)> {
    let end = |ip: IpAddr| view.pods_by_ip.get(&ip).map_or(Endpoint::Ip(ip), |p| Endpoint::Pod(p.clone()));
    let verdict =
        evaluate_family(&view.world, &end(tuple.src), &end(tuple.dst), port, protocol, Family::of(tuple.src));
    let mut decision = match dir {
        Direction::Ingress => verdict.ingress,
        Direction::Egress => verdict.egress,
    };
    // An AdminNetworkPolicy Pass hands the connection to NetworkPolicy: its rule decided.
    while let Decision::Passed { then, .. } = decision {
        decision = *then;
    }
    match decision {
        Decision::Allowed(rules) => rules.first().map(|r| (r.policy.to_string(), r.index)),
        _ => None,
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
