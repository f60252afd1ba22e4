//! What one ADD will attach, decided before anything is attached (pure): the cluster network
//! on the runtime's interface, then the always-attached networks (`delegates[1..]` or
//! `defaultNetworks`), then the pod's selections — each with its interface (`netN` unless
//! named, N counting every attachment), its capability arguments and its `cni-args`. Two
//! attachments on one interface, or two default routes of one family, are refused here
//! (Multus: "multus does not support ECMP for default-route").

use std::net::IpAddr;

use cni_spec::Error;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::resolve::{NetworkConfig, Resolved};
use super::selection::Selection;

/// One attachment: a network, the interface it makes, and what the runtime side passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delegate {
    /// Its `name` in network-status: the network's name, or `ns/name` of a definition.
    pub status_name: String,
    pub ifname: String,
    /// The conf or conflist, `cni-args` merged in.
    pub config: Map<String, Value>,
    pub conflist: bool,
    /// The cluster network: its result is the one the runtime gets.
    #[serde(default)]
    pub cluster: bool,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub capability_args: Map<String, Value>,
    /// The pod's default route goes through this attachment, via these gateways.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_route: Vec<IpAddr>,
}

impl Delegate {
    pub fn network(&self) -> NetworkConfig {
        NetworkConfig { config: self.config.clone(), conflist: self.conflist }
    }

    pub fn name(&self) -> &str {
        self.config.get("name").and_then(Value::as_str).unwrap_or_default()
    }

    /// `ns/name (net1)` for messages.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.status_name, self.ifname)
    }
}

/// Merges `args` into a plugin's `args.cni` (later keys win), as Multus injects `cni-args`.
fn inject_cni_args(plugin: &mut Map<String, Value>, args: &Map<String, Value>) {
    let outer = plugin.entry("args").or_insert_with(|| Value::Object(Map::new()));
    if !outer.is_object() {
        *outer = Value::Object(Map::new());
    }
    if let Value::Object(outer) = outer {
        let cni = outer.entry("cni").or_insert_with(|| Value::Object(Map::new()));
        if !cni.is_object() {
            *cni = Value::Object(Map::new());
        }
        if let Value::Object(cni) = cni {
            cni.extend(args.clone());
        }
    }
}

fn with_cni_args(mut net: NetworkConfig, args: Option<&Map<String, Value>>) -> NetworkConfig {
    let Some(args) = args else { return net };
    if !net.conflist {
        inject_cni_args(&mut net.config, args);
        return net;
    }
    if let Some(Value::Array(plugins)) = net.config.get_mut("plugins") {
        for p in plugins.iter_mut() {
            if let Value::Object(p) = p {
                inject_cni_args(p, args);
            }
        }
    }
    net
}

/// The capability arguments a selection asks for.
fn selection_caps(s: &Selection) -> Map<String, Value> {
    let mut caps = Map::new();
    if !s.ips.is_empty() {
        caps.insert("ips".into(), Value::from(s.ips.clone()));
    }
    if let Some(mac) = &s.mac {
        caps.insert("mac".into(), Value::String(mac.clone()));
    }
    if let Some(p) = &s.port_mappings {
        caps.insert("portMappings".into(), p.clone());
    }
    if let Some(b) = &s.bandwidth {
        caps.insert("bandwidth".into(), b.clone());
    }
    caps
}

/// Every attachment of one ADD, in ADD order. `runtime_caps` are the capability arguments the
/// runtime gave multus: they go to the cluster network, as Multus hands it portMappings and
/// bandwidth.
pub fn plan(
    ifname: &str,
    cluster: Resolved,
    always: Vec<Resolved>,
    selected: Vec<(Selection, Resolved)>,
    runtime_caps: &Map<String, Value>,
) -> Result<Vec<Delegate>, Error> {
    let mut out = vec![Delegate {
        status_name: cluster.status_name,
        ifname: ifname.to_string(),
        config: cluster.net.config,
        conflist: cluster.net.conflist,
        cluster: true,
        capability_args: runtime_caps.clone(),
        default_route: Vec::new(),
    }];
    for r in always {
        let ifname = format!("net{}", out.len());
        out.push(Delegate {
            status_name: r.status_name,
            ifname,
            config: r.net.config,
            conflist: r.net.conflist,
            cluster: false,
            capability_args: Map::new(),
            default_route: Vec::new(),
        });
    }
    for (s, r) in selected {
        let ifname = s.interface.clone().unwrap_or_else(|| format!("net{}", out.len()));
        let net = with_cni_args(r.net, s.cni_args.as_ref());
        out.push(Delegate {
            status_name: r.status_name,
            ifname,
            config: net.config,
            conflist: net.conflist,
            cluster: false,
            capability_args: selection_caps(&s),
            default_route: s.default_route.clone(),
        });
    }
    check(&out)?;
    Ok(out)
}

fn check(delegates: &[Delegate]) -> Result<(), Error> {
    for (i, d) in delegates.iter().enumerate() {
        if let Some(other) = delegates[..i].iter().find(|o| o.ifname == d.ifname) {
            return Err(Error::invalid_config(format!(
                "multus: {} and {} would both be interface {}; name one with @IFNAME or \"interface\"",
                other.status_name, d.status_name, d.ifname
            )));
        }
    }
    for (family, v4) in [("IPv4", true), ("IPv6", false)] {
        let gws: Vec<String> = delegates
            .iter()
            .flat_map(|d| {
                d.default_route
                    .iter()
                    .filter(|g| g.is_ipv4() == v4)
                    .map(move |g| format!("{g} ({})", d.status_name))
            })
            .collect();
        if gws.len() > 1 {
            return Err(Error::invalid_config(format!(
                "multus: more than one {family} default-route ({}): default routes over several attachments (ECMP) are not supported",
                gws.join(", ")
            )));
        }
    }
    Ok(())
}

/// The families (IPv4, IPv6) whose default route some attachment claims with
/// `default-route`: every attachment then drops its own default routes of that family, and
/// the claiming one adds the requested gateway instead.
pub fn claimed_families(delegates: &[Delegate]) -> (bool, bool) {
    let claimed = |v4: bool| delegates.iter().any(|d| d.default_route.iter().any(|g| g.is_ipv4() == v4));
    (claimed(true), claimed(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolved(name: &str, config: Value) -> Resolved {
        let Value::Object(config) = config else { panic!() };
        Resolved {
            status_name: name.into(),
            net: NetworkConfig { conflist: config.contains_key("plugins"), config },
        }
    }

    fn sel(name: &str) -> Selection {
        Selection { name: name.into(), ..Selection::default() }
    }

    fn cluster() -> Resolved {
        resolved(
            "twill",
            json!({"cniVersion": "1.0.0", "name": "twill", "plugins": [{"type": "bridge"}, {"type": "portmap"}]}),
        )
    }

    fn data(name: &str) -> Resolved {
        resolved(&format!("x/{name}"), json!({"cniVersion": "1.0.0", "name": name, "type": "macvlan"}))
    }

    #[test]
    fn interfaces_count_every_attachment() {
        let caps = json!({"portMappings": [{"hostPort": 1, "containerPort": 2}]});
        let mut named = sel("b");
        named.interface = Some("data9".into());
        let p = plan(
            "eth0",
            cluster(),
            vec![data("always")],
            vec![(sel("a"), data("a")), (named, data("b")), (sel("c"), data("c"))],
            caps.as_object().unwrap(),
        )
        .unwrap();
        let ifs: Vec<&str> = p.iter().map(|d| d.ifname.as_str()).collect();
        assert_eq!(ifs, ["eth0", "net1", "net2", "data9", "net4"]);
        assert!(p[0].cluster && !p[1].cluster);
        assert_eq!(
            p[0].capability_args,
            *caps.as_object().unwrap(),
            "the runtime's arguments go to the cluster network"
        );
        assert!(p[2].capability_args.is_empty());
    }

    #[test]
    fn selections_carry_capability_and_cni_args() {
        let mut s = sel("a");
        s.ips = vec!["10.10.0.9/16".into()];
        s.mac = Some("02:00:00:00:00:09".into());
        s.cni_args = Some(json!({"foo": "bar"}).as_object().unwrap().clone());
        let list = resolved(
            "x/l",
            json!({"cniVersion": "1.0.0", "name": "l", "plugins": [{"type": "macvlan", "args": {"cni": {"keep": 1}}}, {"type": "tuning"}]}),
        );
        let p =
            plan("eth0", cluster(), vec![], vec![(s.clone(), data("a")), (s, list)], &Map::new()).unwrap();
        assert_eq!(
            Value::Object(p[1].capability_args.clone()),
            json!({"ips": ["10.10.0.9/16"], "mac": "02:00:00:00:00:09"})
        );
        assert_eq!(p[1].config["args"], json!({"cni": {"foo": "bar"}}));
        assert_eq!(p[2].config["plugins"][0]["args"], json!({"cni": {"keep": 1, "foo": "bar"}}));
        assert_eq!(p[2].config["plugins"][1]["args"], json!({"cni": {"foo": "bar"}}));
        assert!(p[0].config.get("args").is_none(), "cni-args belong to the selection only");
    }

    #[test]
    fn clashes_are_refused_before_anything_is_attached() {
        let mut a = sel("a");
        a.interface = Some("eth0".into());
        let e = plan("eth0", cluster(), vec![], vec![(a, data("a"))], &Map::new()).unwrap_err();
        assert!(e.msg.contains("twill and x/a would both be interface eth0"), "{}", e.msg);
        let mut a = sel("a");
        a.default_route = vec!["10.10.0.1".parse().unwrap()];
        let mut b = sel("b");
        b.default_route = vec!["10.20.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
        let e = plan("eth0", cluster(), vec![], vec![(a.clone(), data("a")), (b, data("b"))], &Map::new())
            .unwrap_err();
        assert!(
            e.msg.contains("more than one IPv4 default-route (10.10.0.1 (x/a), 10.20.0.1 (x/b))"),
            "{}",
            e.msg
        );
        let p = plan("eth0", cluster(), vec![], vec![(a, data("a"))], &Map::new()).unwrap();
        assert_eq!(claimed_families(&p), (true, false));
    }
}
