//! What should exist for one pod, as data: the fixed table (built once per node), and the
//! owner-tagged elements of one attachment. Pure functions; `nft.rs` applies them.
//!
//! The table `inet twill_portmap` never changes with pods:
//! - `prerouting` (traffic from elsewhere) and `output` (from the node itself) jump to
//!   `hostports` for destinations that are the node's own addresses (`fib daddr type local`);
//! - `hostports` DNATs through maps keyed by `[hostIP .] protocol . hostPort` with the value
//!   `podIP . containerPort`, one pair of maps per family (and per distinct `conditionsV4`/
//!   `conditionsV6`, a "variant" whose rules carry the conditions);
//! - `postrouting` masquerades DNATed connections whose `source . destination` is in `masq4`/
//!   `masq6`: `podSubnet . podIP` (hairpin, `snat`), `127.0.0.0/8 . podIP` (the node reaching
//!   the pod through localhost) or `0.0.0.0/0 . podIP` (`masqAll`).

use std::net::IpAddr;

use cni_spec::CniResult;
use fw::{Batch, Element};
use ipnet::IpNet;

use super::conf::{Mapping, PortmapConf, Protocol};
use super::host::UdpFlow;

pub const TABLE: &str = "twill_portmap";

/// The pod addresses portmap forwards to: the first of each family in prevResult.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodIps {
    pub v4: Option<IpNet>,
    pub v6: Option<IpNet>,
}

impl PodIps {
    /// As the reference: addresses on an interface that is not `ifname` in a sandbox are
    /// skipped; addresses without an interface index count.
    pub fn from_result(prev: &CniResult, ifname: &str) -> PodIps {
        let mut ips = PodIps::default();
        for ip in &prev.ips {
            let foreign = ip.interface.and_then(|i| prev.interfaces.get(i)).is_some_and(|iface| {
                iface.name != ifname || iface.sandbox.as_deref().is_none_or(str::is_empty)
            });
            let slot = if ip.address.addr().is_ipv4() { &mut ips.v4 } else { &mut ips.v6 };
            if !foreign && slot.is_none() {
                *slot = Some(ip.address);
            }
        }
        ips
    }

    fn each(&self) -> impl Iterator<Item = (bool, IpNet)> {
        [(false, self.v4), (true, self.v6)].into_iter().filter_map(|(v6, ip)| Some((v6, ip?)))
    }
}

/// A set of extra match expressions (`conditionsV4`/`conditionsV6`) with its own maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub v6: bool,
    pub conditions: String,
    /// Suffix of the variant's map names: a hash of the conditions.
    pub id: String,
}

impl Variant {
    fn of(v6: bool, conditions: &[String]) -> Option<Variant> {
        if conditions.is_empty() {
            return None;
        }
        let conditions = conditions.join(" ");
        let id = fw::stable_name("", &conditions);
        Some(Variant { v6, conditions, id })
    }
}

/// One element of the table: a map element when `data` is set, else a set element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub set: String,
    pub key: String,
    pub data: Option<String>,
}

/// Everything one attachment adds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub owner: String,
    pub dnat: Vec<Entry>,
    pub masq: Vec<Entry>,
    pub variants: Vec<Variant>,
    /// The pod's IPv4 address when the node must route 127/8 to it (`route_localnet`).
    pub localnet: Option<IpAddr>,
    /// The pod addresses that have mappings.
    pub pods: Vec<IpNet>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.dnat.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.dnat.iter().chain(&self.masq)
    }
}

/// The elements `owner` needs for `conf.mappings` to reach `ips`.
pub fn plan(conf: &PortmapConf, ips: &PodIps, owner: &str) -> Plan {
    let mut plan = Plan { owner: owner.to_string(), ..Plan::default() };
    for (v6, net) in ips.each() {
        let variant = Variant::of(v6, conf.conditions(v6));
        let before = plan.dnat.len();
        for m in conf.mappings.iter().filter(|m| m.applies_to(v6)) {
            // `hostIP: 0.0.0.0` and no hostIP give the same IPv4 entry.
            let entry = dnat_entry(m, net.addr(), v6, variant.as_ref());
            if !plan.dnat.contains(&entry) {
                plan.dnat.push(entry);
            }
        }
        if plan.dnat.len() == before {
            continue;
        }
        plan.pods.push(net);
        if conf.snat {
            plan.masq.extend(masq_keys(conf.masq_all, net).into_iter().map(|key| Entry {
                set: format!("masq{}", fam(v6)),
                key,
                data: None,
            }));
            if !v6 {
                plan.localnet = Some(net.addr());
            }
        }
        plan.variants.extend(variant);
    }
    plan
}

fn fam(v6: bool) -> char {
    if v6 { '6' } else { '4' }
}

/// `hostip4`, `port6`, `port4_<variant>`...
pub fn map_name(kind: &str, v6: bool, variant: Option<&Variant>) -> String {
    match variant {
        Some(v) => format!("{kind}{}_{}", fam(v6), v.id),
        None => format!("{kind}{}", fam(v6)),
    }
}

fn dnat_entry(m: &Mapping, pod: IpAddr, v6: bool, variant: Option<&Variant>) -> Entry {
    let (kind, key) = match m.dst() {
        Some(dst) => ("hostip", format!("{dst} . {} . {}", m.protocol.name(), m.host_port)),
        None => ("port", format!("{} . {}", m.protocol.name(), m.host_port)),
    };
    Entry { set: map_name(kind, v6, variant), key, data: Some(format!("{pod} . {}", m.container_port)) }
}

/// Sources whose DNATed connections to the pod leave masqueraded. Prefixes are written as
/// nft prints them back (a full-length prefix is a plain address), so CHECK can compare.
fn masq_keys(masq_all: bool, net: IpNet) -> Vec<String> {
    let pod = net.addr();
    let prefix =
        |n: IpNet| if n.prefix_len() == n.max_prefix_len() { n.addr().to_string() } else { n.to_string() };
    match (masq_all, pod.is_ipv4()) {
        (true, true) => vec![format!("0.0.0.0/0 . {pod}")],
        (true, false) => vec![format!("::/0 . {pod}")],
        (false, true) => vec![format!("{} . {pod}", prefix(net.trunc())), format!("127.0.0.0/8 . {pod}")],
        (false, false) => vec![format!("{} . {pod}", prefix(net.trunc()))],
    }
}

/// The two DNAT rules of one family and variant, in `hostports`.
fn dnat_rules(v6: bool, variant: Option<&Variant>) -> [String; 2] {
    let (ip, nfproto) = if v6 { ("ip6", "ipv6") } else { ("ip", "ipv4") };
    let cond = variant.map(|v| format!("{} ", v.conditions)).unwrap_or_default();
    let hostip = map_name("hostip", v6, variant);
    let port = map_name("port", v6, variant);
    [
        format!("{cond}dnat {ip} to {ip} daddr . meta l4proto . th dport map @{hostip}"),
        format!("meta nfproto {nfproto} {cond}dnat {ip} to meta l4proto . th dport map @{port}"),
    ]
}

fn map_defs(v6: bool, variant: Option<&Variant>) -> [String; 2] {
    let addr = if v6 { "ipv6_addr" } else { "ipv4_addr" };
    [
        format!(
            "map {} {{ type {addr} . inet_proto . inet_service : {addr} . inet_service; }}",
            map_name("hostip", v6, variant)
        ),
        format!(
            "map {} {{ type inet_proto . inet_service : {addr} . inet_service; }}",
            map_name("port", v6, variant)
        ),
    ]
}

/// The fixed table. The output hook's priority is a number: nft 1.0.6 accepts `dstnat` only
/// for prerouting.
pub fn table_definition() -> String {
    let mut text = format!("table inet {TABLE} {{\n");
    for v6 in [false, true] {
        for def in map_defs(v6, None) {
            text += &format!("  {def}\n");
        }
    }
    text += "  set masq4 { type ipv4_addr . ipv4_addr; flags interval; }\n";
    text += "  set masq6 { type ipv6_addr . ipv6_addr; flags interval; }\n";
    text += "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n";
    text += "    fib daddr type local jump hostports\n  }\n";
    text += "  chain output {\n    type nat hook output priority -100; policy accept;\n";
    text += "    fib daddr type local jump hostports\n  }\n";
    text += "  chain hostports {\n";
    for v6 in [false, true] {
        for rule in dnat_rules(v6, None) {
            text += &format!("    {rule}\n");
        }
    }
    text += "  }\n";
    text += "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n";
    text += "    ct status dnat ip saddr . ip daddr @masq4 masquerade\n";
    text += "    ct status dnat ip6 saddr . ip6 daddr @masq6 masquerade\n  }\n}";
    text
}

/// The maps and rules of a variant, appended to an existing table.
pub fn variant_definition(v: &Variant) -> Batch {
    let mut batch = Batch::new();
    for def in map_defs(v.v6, Some(v)) {
        batch.add(format!("add {}", def.replacen("map ", &format!("map inet {TABLE} "), 1)));
    }
    for rule in dnat_rules(v.v6, Some(v)) {
        batch.add(format!("add rule inet {TABLE} hostports {rule}"));
    }
    batch
}

/// `create` fails on any existing key (so a host port held by another attachment is
/// noticed); `add` tolerates identical elements (a repeated ADD of the same attachment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Create,
    Add,
}

/// One transaction adding every element of the plan. Masquerade elements are always
/// `add`ed: pods of one subnet may share them only if they share an address.
pub fn add_batch(plan: &Plan, verb: Verb) -> Batch {
    let mut batch = Batch::new();
    let owner = &plan.owner;
    for e in &plan.dnat {
        let verb = if verb == Verb::Create { "create" } else { "add" };
        let data = e.data.as_deref().unwrap_or_default();
        batch.add(format!(
            "{verb} element inet {TABLE} {} {{ {} comment \"{owner}\" : {data} }}",
            e.set, e.key
        ));
    }
    for e in &plan.masq {
        batch.add(format!("add element inet {TABLE} {} {{ {} comment \"{owner}\" }}", e.set, e.key));
    }
    batch
}

/// One transaction deleting `elements`.
pub fn delete_batch(elements: &[Element]) -> Batch {
    let mut batch = Batch::new();
    for el in elements {
        batch.add(format!("delete element inet {TABLE} {} {{ {} }}", el.set, el.text));
    }
    batch
}

fn same_slot(e: &Entry, el: &Element) -> bool {
    el.set == e.set && el.text == e.key
}

/// Planned entries that are not in the table exactly as planned (owner and data included).
pub fn missing<'a>(plan: &'a Plan, existing: &[Element]) -> Vec<&'a Entry> {
    plan.entries()
        .filter(|e| {
            !existing.iter().any(|el| {
                same_slot(e, el) && el.comment.as_deref() == Some(plan.owner.as_str()) && el.data == e.data
            })
        })
        .collect()
}

/// DNAT entries whose key is held by another attachment (or by this one for another target):
/// the entry and the holder's owner tag.
pub fn conflicts<'a>(plan: &'a Plan, existing: &'a [Element]) -> Vec<(&'a Entry, &'a Element)> {
    let mut out = Vec::new();
    for e in &plan.dnat {
        for el in existing.iter().filter(|el| same_slot(e, el)) {
            if el.comment.as_deref() != Some(plan.owner.as_str()) || el.data != e.data {
                out.push((e, el));
            }
        }
    }
    out
}

/// A DNAT entry for people: `tcp/8080 on 10.0.0.1` from its key.
pub fn describe(key: &str) -> String {
    let parts: Vec<&str> = key.split(" . ").collect();
    match parts.as_slice() {
        [proto, port] => format!("{proto}/{port}"),
        [ip, proto, port] => format!("{proto}/{port} on {ip}"),
        _ => key.to_string(),
    }
}

/// The UDP flows removed DNAT elements stood for (host port, pod address): their conntrack
/// entries must go, or traffic keeps flowing to a gone pod.
pub fn udp_flows(removed: &[Element]) -> Vec<UdpFlow> {
    let mut flows: Vec<UdpFlow> = removed
        .iter()
        .filter_map(|el| {
            let key: Vec<&str> = el.text.split(" . ").collect();
            let [.., proto, port] = key.as_slice() else { return None };
            let pod: IpAddr = el.data.as_deref()?.split(" . ").next()?.parse().ok()?;
            (*proto == Protocol::Udp.name()).then_some(())?;
            Some(UdpFlow { port: port.parse().ok()?, v6: pod.is_ipv6(), pod: Some(pod) })
        })
        .collect();
    flows.sort();
    flows.dedup();
    flows
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
