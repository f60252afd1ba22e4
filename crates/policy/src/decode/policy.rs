//! `spec` of a NetworkPolicy: validation rules and defaults of the API server
//! (k8s.io/kubernetes pkg/apis/networking validation and v1 defaults).

use ipnet::IpNet;

use super::reader::{At, FieldError, Object};
use crate::model::{Direction, IpBlock, NetworkPolicy, Peer, PolicyPort, PortSpec, Protocol, Rule};
use crate::names;
use crate::selector::{LabelSelector, Operator, Requirement};

/// Decodes and validates `spec` (absent: an empty spec, which selects all pods of the
/// namespace and denies their ingress).
pub fn network_policy(root: &Object, namespace: &str, name: &str) -> Result<NetworkPolicy, FieldError> {
    let empty = serde_json::Value::Object(Default::default());
    let spec_at = root.get("spec").unwrap_or(At { path: "spec".into(), value: &empty });
    let spec = spec_at.object()?;
    spec.allow_only(&["podSelector", "policyTypes", "ingress", "egress"])?;
    let pod_selector = spec.get("podSelector").map(|s| selector(&s)).transpose()?.unwrap_or_default();
    let ingress = rules(&spec, Direction::Ingress)?;
    let egress = rules(&spec, Direction::Egress)?;
    let policy_types = policy_types(&spec, !egress.is_empty())?;
    Ok(NetworkPolicy {
        namespace: namespace.into(),
        name: name.into(),
        pod_selector,
        policy_types,
        ingress,
        egress,
    })
}

/// `policyTypes`, or when absent or empty the default: Ingress, plus Egress when there are
/// egress rules.
fn policy_types(spec: &Object, has_egress_rules: bool) -> Result<Vec<Direction>, FieldError> {
    let items = match spec.get("policyTypes") {
        Some(at) => at.items()?,
        None => Vec::new(),
    };
    if items.len() > 2 {
        let at = spec.require("policyTypes")?;
        return Err(at.err("may not specify more than two policyTypes"));
    }
    let mut types = Vec::new();
    for item in &items {
        types.push(match item.str()? {
            "Ingress" => Direction::Ingress,
            "Egress" => Direction::Egress,
            other => {
                return Err(item
                    .err(format!("unsupported value {other:?}: supported values: \"Ingress\", \"Egress\"")));
            }
        });
    }
    if types.is_empty() {
        types.push(Direction::Ingress);
        if has_egress_rules {
            types.push(Direction::Egress);
        }
    }
    types.sort();
    types.dedup();
    Ok(types)
}

fn rules(spec: &Object, dir: Direction) -> Result<Vec<Rule>, FieldError> {
    let Some(list) = spec.get(dir.field()) else { return Ok(Vec::new()) };
    let peer_key = match dir {
        Direction::Ingress => "from",
        Direction::Egress => "to",
    };
    let mut out = Vec::new();
    for item in list.items()? {
        let rule = item.object()?;
        rule.allow_only(&[peer_key, "ports"])?;
        let peers = match rule.get(peer_key) {
            Some(at) => at.items()?.iter().map(peer).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let ports = match rule.get("ports") {
            Some(at) => at.items()?.iter().map(port).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        out.push(Rule { peers, ports });
    }
    Ok(out)
}

fn peer(at: &At) -> Result<Peer, FieldError> {
    let obj = at.object()?;
    obj.allow_only(&["podSelector", "namespaceSelector", "ipBlock"])?;
    let pods = obj.get("podSelector").map(|s| selector(&s)).transpose()?;
    let namespaces = obj.get("namespaceSelector").map(|s| selector(&s)).transpose()?;
    match obj.get("ipBlock") {
        None if pods.is_none() && namespaces.is_none() => Err(at.err("must specify a peer")),
        None => Ok(Peer::Pods { namespaces, pods }),
        Some(_) if pods.is_some() || namespaces.is_some() => Err(at.err(
            "may not specify more than 1 peer type: ipBlock excludes podSelector and namespaceSelector",
        )),
        Some(block) => ip_block(&block).map(Peer::IpBlock),
    }
}

fn ip_block(at: &At) -> Result<IpBlock, FieldError> {
    let obj = at.object()?;
    obj.allow_only(&["cidr", "except"])?;
    let cidr_at = obj.require("cidr")?;
    let cidr = parse_cidr(&cidr_at)?;
    let mut except = Vec::new();
    if let Some(list) = obj.get("except") {
        for item in list.items()? {
            let e = parse_cidr(&item)?;
            // Same check as the API server: inside `cidr` and strictly narrower.
            if !cidr.contains(&e.network()) || e.prefix_len() <= cidr.prefix_len() {
                return Err(item.err(format!("{e} must be a strict subset of `cidr` {cidr}")));
            }
            except.push(e);
        }
    }
    Ok(IpBlock { cidr, except })
}

/// A CIDR; host bits are accepted (the API server parses sloppily) and cleared.
pub(super) fn parse_cidr(at: &At) -> Result<IpNet, FieldError> {
    let s = at.str()?;
    s.parse::<IpNet>()
        .map(|n| n.trunc())
        .map_err(|_| at.err(format!("{s:?} must be a valid CIDR (e.g. 10.0.0.0/16 or fd00::/64)")))
}

fn port(at: &At) -> Result<PolicyPort, FieldError> {
    let obj = at.object()?;
    obj.allow_only(&["protocol", "port", "endPort"])?;
    let protocol = match obj.get("protocol") {
        None => Protocol::Tcp,
        Some(p) => {
            let s = p.str()?;
            Protocol::parse(s).ok_or_else(|| {
                p.err(format!("unsupported value {s:?}: supported values: \"TCP\", \"UDP\", \"SCTP\""))
            })?
        }
    };
    let port = match (obj.get("port"), obj.get("endPort")) {
        (None, None) => None,
        (None, Some(end)) => return Err(end.err("may not be specified without `port`")),
        (Some(p), end) if p.value.is_string() => {
            if let Some(end) = end {
                return Err(end.err("may not be specified when `port` is a name"));
            }
            let name = p.str()?;
            names::port_name(name).map_err(|m| p.err(m))?;
            Some(PortSpec::Named(name.into()))
        }
        (Some(p), None) => Some(PortSpec::Number(port_number(&p)?)),
        (Some(p), Some(end)) => {
            let (start, last) = (port_number(&p)?, port_number(&end)?);
            if last < start {
                return Err(end.err(format!("{last} must be greater than or equal to `port` ({start})")));
            }
            Some(PortSpec::Range(start, last))
        }
    };
    Ok(PolicyPort { protocol, port })
}

fn port_number(at: &At) -> Result<u16, FieldError> {
    // int_in bounds the value to u16's range, so the conversion cannot fail.
    at.int_in(1, 65535).map(|n| u16::try_from(n).unwrap_or(u16::MAX))
}

/// A label selector, validated.
pub fn selector(at: &At) -> Result<LabelSelector, FieldError> {
    let obj = at.object()?;
    obj.allow_only(&["matchLabels", "matchExpressions"])?;
    let match_labels = obj.get("matchLabels").map(|m| m.string_map()).transpose()?.unwrap_or_default();
    let mut match_expressions = Vec::new();
    if let Some(list) = obj.get("matchExpressions") {
        for item in list.items()? {
            let e = item.object()?;
            e.allow_only(&["key", "operator", "values"])?;
            let key = e.require("key")?.str()?.to_string();
            let op_at = e.require("operator")?;
            let op = op_at.str()?;
            let operator = Operator::parse(op).ok_or_else(|| {
                op_at.err(format!(
                    "unsupported value {op:?}: supported values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\""
                ))
            })?;
            let values = e.get("values").map(|v| v.strings()).transpose()?.unwrap_or_default();
            match_expressions.push(Requirement { key, operator, values });
        }
    }
    let sel = LabelSelector { match_labels, match_expressions };
    sel.validate()
        .map_err(|e| FieldError { field: format!("{}.{}", at.path, e.field), message: e.message })?;
    Ok(sel)
}
