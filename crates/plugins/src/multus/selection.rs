//! The pod's network selection: the `k8s.v1.cni.cncf.io/networks` annotation in its two
//! forms (Network Plumbing WG specification, section 4.1.2), read as Multus reads it:
//! - text: `name`, `ns/name`, `name@ifname`, `ns/name@ifname`, comma-separated; every part
//!   lower-case letters, digits and `-`, starting and ending with a letter or digit;
//! - JSON: a list of objects with `name` (required), `namespace`, `interface`, `ips`, `mac`,
//!   `default-route`, `portMappings`, `bandwidth` and `cni-args`.
//!
//! The JSON form is recognised by any of `[`, `{` or `"` in the value, as Multus does. Every
//! value is checked here, so a bad annotation fails the ADD before anything is attached.

use std::net::IpAddr;

use cni_spec::Error;
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Map, Value};

/// One selected network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    pub namespace: Option<String>,
    pub name: String,
    /// The interface to create (else `netN`).
    pub interface: Option<String>,
    /// Requested addresses, passed as the `ips` capability argument.
    pub ips: Vec<String>,
    /// Requested MAC, passed as the `mac` capability argument.
    pub mac: Option<String>,
    /// Gateways of the pod's default route, which moves to this attachment.
    pub default_route: Vec<IpAddr>,
    /// `portMappings` and `bandwidth` capability arguments for this attachment.
    pub port_mappings: Option<Value>,
    pub bandwidth: Option<Value>,
    /// Merged into every plugin's `args.cni` (CNI CONVENTIONS).
    pub cni_args: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize)]
struct Element {
    name: String,
    namespace: Option<String>,
    interface: Option<String>,
    #[serde(default)]
    ips: Vec<String>,
    mac: Option<String>,
    #[serde(rename = "default-route", default)]
    default_route: Vec<String>,
    #[serde(rename = "portMappings")]
    port_mappings: Option<Vec<Value>>,
    bandwidth: Option<Map<String, Value>>,
    #[serde(rename = "cni-args")]
    cni_args: Option<Map<String, Value>>,
    #[serde(rename = "infiniband-guid")]
    infiniband_guid: Option<String>,
    #[serde(rename = "ipam-claim-reference")]
    ipam_claim_reference: Option<String>,
}

/// What Multus accepts for each part of the text form.
fn text_part(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty() && s.chars().all(|c| ok(c) || c == '-') && s.starts_with(ok) && s.ends_with(ok)
}

/// Parses the annotation's value; `Err` carries a message for the caller to put in context.
pub fn parse(value: &str) -> Result<Vec<Selection>, String> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    if value.contains(['[', '{', '"']) {
        return parse_json(value);
    }
    value.split(',').map(|item| parse_text(item.trim())).collect()
}

fn parse_text(item: &str) -> Result<Selection, String> {
    let (namespace, rest) = match item.split('/').collect::<Vec<_>>()[..] {
        [name] => (None, name),
        [ns, name] => (Some(ns.trim()), name),
        _ => return Err(format!("{item:?}: more than one '/' (the form is [namespace/]name[@interface])")),
    };
    let (name, interface) = match rest.split('@').collect::<Vec<_>>()[..] {
        [name] => (name.trim(), None),
        [name, ifname] => (name.trim(), Some(ifname.trim())),
        _ => return Err(format!("{item:?}: more than one '@' (the form is [namespace/]name[@interface])")),
    };
    for part in namespace.into_iter().chain([name]).chain(interface) {
        if !text_part(part) {
            return Err(format!(
                "{item:?}: {part:?} must be lower-case letters, digits and '-', starting and ending with a letter or digit"
            ));
        }
    }
    let selection = Selection {
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        interface: interface.map(str::to_string),
        ..Selection::default()
    };
    check_interface(&selection)?;
    Ok(selection)
}

fn parse_json(value: &str) -> Result<Vec<Selection>, String> {
    let list: Vec<Value> =
        serde_json::from_str(value).map_err(|e| format!("not a JSON list of networks: {e}"))?;
    list.into_iter()
        .enumerate()
        .map(|(i, v)| {
            let element: Element = serde_json::from_value(v).map_err(|e| format!("network [{i}]: {e}"))?;
            selection(element).map_err(|e| format!("network [{i}] {e}"))
        })
        .collect()
}

fn selection(e: Element) -> Result<Selection, String> {
    let what = format!("({:?})", e.name);
    let bad = |msg: String| Err(format!("{what}: {msg}"));
    if e.name.is_empty() {
        return bad("\"name\" must not be empty".into());
    }
    if e.infiniband_guid.is_some() {
        return bad("\"infiniband-guid\" is not supported".into());
    }
    if e.ipam_claim_reference.is_some() {
        return bad("\"ipam-claim-reference\" is not supported".into());
    }
    if let Some(ns) = &e.namespace
        && !text_part(ns)
    {
        return bad(format!("namespace {ns:?} is not a namespace name"));
    }
    for ip in &e.ips {
        if ip.parse::<IpNet>().is_err() && ip.parse::<IpAddr>().is_err() {
            return bad(format!("ips: {ip:?} is neither an address nor an address/prefix"));
        }
    }
    if let Some(mac) = &e.mac
        && !is_mac(mac)
    {
        return bad(format!("mac: {mac:?} is not a MAC address (aa:bb:cc:dd:ee:ff)"));
    }
    let default_route = e
        .default_route
        .iter()
        .map(|g| g.parse::<IpAddr>().map_err(|_| format!("{what}: default-route: {g:?} is not an address")))
        .collect::<Result<Vec<_>, _>>()?;
    let s = Selection {
        namespace: e.namespace.filter(|n| !n.is_empty()),
        name: e.name,
        interface: e.interface.filter(|i| !i.is_empty()),
        ips: e.ips,
        mac: e.mac,
        default_route,
        port_mappings: e.port_mappings.map(Value::Array),
        bandwidth: e.bandwidth.map(Value::Object),
        cni_args: e.cni_args,
    };
    check_interface(&s).map_err(|m| format!("{what}: {m}"))?;
    Ok(s)
}

fn check_interface(s: &Selection) -> Result<(), String> {
    match &s.interface {
        Some(i) => cni_spec::validate_ifname(i).map_err(|e| format!("interface {i:?}: {}", e.msg)),
        None => Ok(()),
    }
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The annotation's value parsed, or a code 7 error naming the pod and the annotation.
pub fn parse_annotation(pod: &str, key: &str, value: &str) -> Result<Vec<Selection>, Error> {
    parse(value).map_err(|e| Error::invalid_config(format!("multus: pod {pod}: annotation {key}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(ns: Option<&str>, name: &str, ifname: Option<&str>) -> Selection {
        Selection {
            namespace: ns.map(String::from),
            name: name.into(),
            interface: ifname.map(String::from),
            ..Selection::default()
        }
    }

    #[test]
    fn text_form() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(
            parse("macvlan-conf-1, testns1/macvlan-conf-3,a@macvlan1 , ns/b@eth1").unwrap(),
            vec![
                sel(None, "macvlan-conf-1", None),
                sel(Some("testns1"), "macvlan-conf-3", None),
                sel(None, "a", Some("macvlan1")),
                sel(Some("ns"), "b", Some("eth1")),
            ]
        );
    }

    #[test]
    fn bad_text_says_which_item_and_why() {
        for (value, want) in [
            ("a/b/c", "more than one '/'"),
            ("a@b@c", "more than one '@'"),
            ("Macvlan", "\"Macvlan\" must be lower-case"),
            ("a,,b", "\"\" must be lower-case"),
            ("a@-x", "\"-x\""),
            ("a.b", "\"a.b\""),
            ("a@averyveryverylongname", "interface \"averyveryverylongname\""),
        ] {
            let e = parse(value).unwrap_err();
            assert!(e.contains(want), "{value}: {e}");
        }
    }

    #[test]
    fn json_form_with_every_field() {
        let v = r#"[{"name": "data", "namespace": "x", "interface": "data1",
            "ips": ["10.10.0.5/16"], "mac": "02:00:00:00:00:05", "default-route": ["10.10.0.1"],
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
            "bandwidth": {"ingressRate": 1000, "ingressBurst": 100, "egressRate": 1000, "egressBurst": 100},
            "cni-args": {"foo": "bar"}, "future-key": 1}, {"name": "b"}]"#;
        let s = parse(v).unwrap();
        assert_eq!(s.len(), 2);
        let d = &s[0];
        assert_eq!(
            (d.namespace.as_deref(), d.name.as_str(), d.interface.as_deref()),
            (Some("x"), "data", Some("data1"))
        );
        assert_eq!(d.ips, ["10.10.0.5/16"]);
        assert_eq!(d.default_route, ["10.10.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(d.port_mappings.as_ref().unwrap()[0]["hostPort"], 8080);
        assert_eq!(d.bandwidth.as_ref().unwrap()["egressRate"], 1000);
        assert_eq!(d.cni_args.as_ref().unwrap()["foo"], "bar");
        assert_eq!(s[1], sel(None, "b", None));
    }

    #[test]
    fn bad_json_says_which_element_and_field() {
        for (value, want) in [
            ("[{", "not a JSON list"),
            (r#"{"name": "a"}"#, "not a JSON list"),
            (r#"[{"namespace": "x"}]"#, "network [0]: missing field `name`"),
            (r#"[{"name": ""}]"#, "\"name\" must not be empty"),
            (r#"[{"name": "a"}, {"name": "b", "ips": ["10.0.0.300"]}]"#, "network [1] (\"b\"): ips:"),
            (r#"[{"name": "a", "mac": "02:00"}]"#, "mac: \"02:00\""),
            (r#"[{"name": "a", "default-route": ["gw"]}]"#, "default-route: \"gw\""),
            (r#"[{"name": "a", "interface": "a/b"}]"#, "interface \"a/b\""),
            (r#"[{"name": "a", "ips": "10.0.0.1"}]"#, "network [0]: invalid type"),
            (r#"[{"name": "a", "infiniband-guid": "x"}]"#, "not supported"),
            (r#"[{"name": "a", "namespace": "X"}]"#, "namespace \"X\""),
        ] {
            let e = parse(value).unwrap_err();
            assert!(e.contains(want), "{value}: {e}");
        }
    }

    #[test]
    fn errors_name_pod_and_annotation() {
        let e = parse_annotation("x/a", "k8s.v1.cni.cncf.io/networks", "A").unwrap_err();
        assert_eq!(e.code.code(), 7);
        assert!(
            e.msg.starts_with("multus: pod x/a: annotation k8s.v1.cni.cncf.io/networks: \"A\""),
            "{}",
            e.msg
        );
    }
}
