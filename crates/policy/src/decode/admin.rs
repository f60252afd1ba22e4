//! `spec` of an AdminNetworkPolicy or BaselineAdminNetworkPolicy
//! (`policy.networking.k8s.io/v1alpha1`), validated as the CRD's schema and CEL rules do:
//! priority 0–1000, a subject of exactly one kind, at most 100 rules per direction, peers and
//! ports per rule, 25 CIDRs per `networks` peer, rule names of at most 100 characters, actions
//! by tier, and no named port beside a `networks` or `nodes` peer.
//!
//! `domainNames` (experimental, needs DNS interception) is refused as unsupported (ADR 0016).

use super::policy::{parse_cidr, selector};
use super::reader::{At, FieldError, Object};
use crate::admin::{
    Action, AdminPeer, AdminPolicy, AdminPort, AdminRule, MAX_ITEMS, MAX_NETWORKS, MAX_PRIORITY, Subject,
    Tier,
};
use crate::model::{Direction, Protocol};
use crate::names;

/// Decodes `spec` of a policy of `tier` named `name`.
pub fn admin_policy(root: &Object, tier: Tier, name: &str) -> Result<AdminPolicy, FieldError> {
    let spec = root.require("spec")?.object()?;
    let priority = match tier {
        Tier::Admin => {
            spec.allow_only(&["priority", "subject", "ingress", "egress"])?;
            let at = spec.require("priority")?;
            // int_in bounds the value to 0..=1000.
            u32::try_from(at.int_in(0, i64::from(MAX_PRIORITY))?).unwrap_or(MAX_PRIORITY)
        }
        Tier::Baseline => {
            spec.allow_only(&["subject", "ingress", "egress"])?;
            0
        }
    };
    let subject = subject(&spec.require("subject")?)?;
    let ingress = rules(&spec, tier, Direction::Ingress)?;
    let egress = rules(&spec, tier, Direction::Egress)?;
    Ok(AdminPolicy { tier, name: name.to_string(), priority, subject, ingress, egress })
}

fn subject(at: &At) -> Result<Subject, FieldError> {
    let obj = at.object()?;
    obj.allow_only(&["namespaces", "pods"])?;
    match (obj.get("namespaces"), obj.get("pods")) {
        (Some(ns), None) => Ok(Subject::Namespaces(selector(&ns)?)),
        (None, Some(pods)) => {
            let (namespaces, pods) = namespaced_pod(&pods)?;
            Ok(Subject::Pods { namespaces, pods })
        }
        _ => Err(at.err("must specify exactly one of `namespaces` or `pods`")),
    }
}

/// `{namespaceSelector, podSelector}`, both required.
fn namespaced_pod(at: &At) -> Result<(crate::LabelSelector, crate::LabelSelector), FieldError> {
    let obj = at.object()?;
    obj.allow_only(&["namespaceSelector", "podSelector"])?;
    Ok((selector(&obj.require("namespaceSelector")?)?, selector(&obj.require("podSelector")?)?))
}

/// A list of at most [`MAX_ITEMS`] entries, at least `min`.
fn bounded<'a>(at: &At<'a>, min: usize) -> Result<Vec<At<'a>>, FieldError> {
    let items = at.items()?;
    if items.len() > MAX_ITEMS {
        return Err(at.err(format!("must have at most {MAX_ITEMS} items, not {}", items.len())));
    }
    if items.len() < min {
        return Err(at.err(format!("must have at least {min} item")));
    }
    Ok(items)
}

fn rules(spec: &Object, tier: Tier, dir: Direction) -> Result<Vec<AdminRule>, FieldError> {
    let Some(list) = spec.get(dir.field()) else { return Ok(Vec::new()) };
    let peer_key = match dir {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    let mut out = Vec::new();
    for item in bounded(&list, 0)? {
        let rule = item.object()?;
        rule.allow_only(&["name", "action", peer_key, "ports"])?;
        let name = match rule.get("name") {
            Some(at) if at.str()?.chars().count() > 100 => {
                return Err(at.err("may not be more than 100 characters"));
            }
            Some(at) => at.str()?.to_string(),
            None => String::new(),
        };
        let action = action(&rule.require("action")?, tier)?;
        let peers_at = rule.require(peer_key)?;
        let peers = bounded(&peers_at, 1)?.iter().map(|p| peer(p, dir)).collect::<Result<Vec<_>, _>>()?;
        let ports = match rule.get("ports") {
            Some(at) => bounded(&at, 1)?.iter().map(port).collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let named = ports.iter().any(|p| matches!(p, AdminPort::Named(_)));
        if named && peers.iter().any(|p| matches!(p, AdminPeer::Networks(_) | AdminPeer::Nodes(_))) {
            let at = rule.require("ports")?;
            return Err(at.err(
                "a named port cannot be used with a `networks` or `nodes` peer: they have no named ports",
            ));
        }
        out.push(AdminRule { name, action, peers, ports });
    }
    Ok(out)
}

fn action(at: &At, tier: Tier) -> Result<Action, FieldError> {
    let s = at.str()?;
    match (s, tier) {
        ("Allow", _) => Ok(Action::Allow),
        ("Deny", _) => Ok(Action::Deny),
        ("Pass", Tier::Admin) => Ok(Action::Pass),
        (other, Tier::Admin) => {
            Err(at
                .err(format!("unsupported value {other:?}: supported values: \"Allow\", \"Deny\", \"Pass\"")))
        }
        (other, Tier::Baseline) => {
            Err(at.err(format!("unsupported value {other:?}: supported values: \"Allow\", \"Deny\"")))
        }
    }
}

fn peer(at: &At, dir: Direction) -> Result<AdminPeer, FieldError> {
    let obj = at.object()?;
    match dir {
        Direction::Ingress => obj.allow_only(&["namespaces", "pods"])?,
        Direction::Egress => obj.allow_only(&["namespaces", "pods", "nodes", "networks", "domainNames"])?,
    }
    let mut found = Vec::new();
    for key in ["namespaces", "pods", "nodes", "networks", "domainNames"] {
        if let Some(value) = obj.get(key) {
            found.push((key, value));
        }
    }
    let (key, value) = match found.len() {
        1 => found.remove(0),
        _ => return Err(at.err("must specify exactly one peer type")),
    };
    match key {
        "namespaces" => Ok(AdminPeer::Namespaces(selector(&value)?)),
        "pods" => namespaced_pod(&value).map(|(namespaces, pods)| AdminPeer::Pods { namespaces, pods }),
        "networks" => networks(&value),
        "nodes" => Ok(AdminPeer::Nodes(selector(&value)?)),
        _ => Err(value.err("not supported by twill: domain names need DNS interception (ADR 0016)")),
    }
}

fn networks(at: &At) -> Result<AdminPeer, FieldError> {
    let items = at.items()?;
    if items.is_empty() || items.len() > MAX_NETWORKS {
        return Err(at.err(format!("must have 1 to {MAX_NETWORKS} CIDRs, not {}", items.len())));
    }
    let mut nets = Vec::new();
    for item in &items {
        let net = parse_cidr(item)?;
        if nets.contains(&net) {
            return Err(item.err(format!("duplicate value {net}")));
        }
        nets.push(net);
    }
    Ok(AdminPeer::Networks(nets))
}

fn port(at: &At) -> Result<AdminPort, FieldError> {
    let obj = at.object()?;
    obj.allow_only(&["portNumber", "namedPort", "portRange"])?;
    match (obj.get("portNumber"), obj.get("namedPort"), obj.get("portRange")) {
        (Some(n), None, None) => {
            let n = n.object()?;
            n.allow_only(&["protocol", "port"])?;
            Ok(AdminPort::Number(protocol(&n)?, port_number(&n.require("port")?)?))
        }
        (None, Some(name_at), None) => {
            let name = name_at.str()?;
            names::port_name(name).map_err(|m| name_at.err(m))?;
            Ok(AdminPort::Named(name.to_string()))
        }
        (None, None, Some(r)) => {
            let r = r.object()?;
            r.allow_only(&["protocol", "start", "end"])?;
            let start = port_number(&r.require("start")?)?;
            let end_at = r.require("end")?;
            let end = port_number(&end_at)?;
            if end <= start {
                return Err(end_at.err(format!("{end} must be greater than `start` ({start})")));
            }
            Ok(AdminPort::Range(protocol(&r)?, start, end))
        }
        _ => Err(at.err("must specify exactly one of `portNumber`, `namedPort` or `portRange`")),
    }
}

/// `protocol`, TCP when absent.
fn protocol(obj: &Object) -> Result<Protocol, FieldError> {
    let Some(at) = obj.get("protocol") else { return Ok(Protocol::Tcp) };
    let s = at.str()?;
    Protocol::parse(s).ok_or_else(|| {
        at.err(format!("unsupported value {s:?}: supported values: \"TCP\", \"UDP\", \"SCTP\""))
    })
}

fn port_number(at: &At) -> Result<u16, FieldError> {
    // int_in bounds the value to u16's range, so the conversion cannot fail.
    at.int_in(1, 65535).map(|n| u16::try_from(n).unwrap_or(u16::MAX))
}
