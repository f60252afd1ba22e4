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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cni_spec::CniResult;
use fw::ct::UdpFlow;
use fw::nft::{
    Batch, Chain, ChainType, DataType, Elem, ElemData, Family, Field, Hook, KeyPart, Match, Op, Rule, Set,
    Stmt, Table, TableId, Value, Verdict,
};
use ipnet::IpNet;

use super::conf::{Mapping, PortmapConf, Protocol};

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

/// A set of extra matches (`conditionsV4`/`conditionsV6`) with its own maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    pub v6: bool,
    pub conditions: Vec<Match>,
    /// Suffix of the variant's map names: a hash of the conditions as written.
    pub id: String,
}

impl Variant {
    fn of(v6: bool, written: &[String], conditions: &[Match]) -> Option<Variant> {
        if conditions.is_empty() {
            return None;
        }
        let id = fw::stable_name("", &written.join(" "));
        Some(Variant { v6, conditions: conditions.to_vec(), id })
    }
}

/// One element of the table, and the set or map it goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub set: String,
    pub elem: Elem,
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
        let matches = if v6 { &conf.matches_v6 } else { &conf.matches_v4 };
        let variant = Variant::of(v6, conf.conditions(v6), matches);
        let before = plan.dnat.len();
        for m in conf.mappings.iter().filter(|m| m.applies_to(v6)) {
            // `hostIP: 0.0.0.0` and no hostIP give the same IPv4 entry.
            let entry = dnat_entry(m, net.addr(), v6, variant.as_ref(), owner);
            if !plan.dnat.contains(&entry) {
                plan.dnat.push(entry);
            }
        }
        if plan.dnat.len() == before {
            continue;
        }
        plan.pods.push(net);
        if conf.snat {
            let set = format!("masq{}", fam(v6));
            let keys = masq_keys(conf.masq_all, net);
            plan.masq.extend(
                keys.into_iter()
                    .map(|key| Entry { set: set.clone(), elem: Elem::new(key).with_comment(owner) }),
            );
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

fn dnat_entry(m: &Mapping, pod: IpAddr, v6: bool, variant: Option<&Variant>, owner: &str) -> Entry {
    let proto = KeyPart::Exact(Value::Proto(m.protocol.number()));
    let port = KeyPart::Exact(Value::Port(m.host_port));
    let (kind, key) = match m.dst() {
        Some(dst) => ("hostip", vec![KeyPart::addr(dst), proto, port]),
        None => ("port", vec![proto, port]),
    };
    let data = ElemData::Values(vec![Value::Addr(pod), Value::Port(m.container_port)]);
    Entry { set: map_name(kind, v6, variant), elem: Elem::new(key).with_comment(owner).mapped_to(data) }
}

/// Sources whose DNATed connections to the pod leave masqueraded.
fn masq_keys(masq_all: bool, net: IpNet) -> Vec<Vec<KeyPart>> {
    let pod = KeyPart::addr(net.addr());
    let any = |v4: bool| match v4 {
        true => KeyPart::net(IpNet::new_assert(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)),
        false => KeyPart::net(IpNet::new_assert(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)),
    };
    let loopback = KeyPart::net(IpNet::new_assert(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8));
    match (masq_all, net.addr().is_ipv4()) {
        (true, v4) => vec![vec![any(v4), pod]],
        (false, true) => vec![vec![KeyPart::net(net.trunc()), pod.clone()], vec![loopback, pod]],
        (false, false) => vec![vec![KeyPart::net(net.trunc()), pod]],
    }
}

fn map_decls(v6: bool, variant: Option<&Variant>) -> [Set; 2] {
    let addr = if v6 { DataType::Ipv6Addr } else { DataType::Ipv4Addr };
    let (proto, port) = (DataType::InetProto, DataType::InetService);
    [
        Set::map(map_name("hostip", v6, variant), &[addr, proto, port], &[addr, port]),
        Set::map(map_name("port", v6, variant), &[proto, port], &[addr, port]),
    ]
}

/// The two DNAT rules of one family and variant, in `hostports`.
fn dnat_rules(v6: bool, variant: Option<&Variant>) -> [Rule; 2] {
    let (daddr, nfproto) = if v6 { (Field::Ip6Daddr, 10) } else { (Field::IpDaddr, 2) };
    let cond = variant.map(|v| v.conditions.clone()).unwrap_or_default();
    let dnat = |key: &[Field], map: String| Stmt::DnatMap { v6, key: key.to_vec(), map };
    let nf = Match::eq(Field::NfProto, Value::NfProto(nfproto));
    [
        Rule::new(
            cond.clone(),
            vec![dnat(&[daddr, Field::L4Proto, Field::ThDport], map_name("hostip", v6, variant))],
        ),
        Rule::new(
            [vec![nf], cond].concat(),
            vec![dnat(&[Field::L4Proto, Field::ThDport], map_name("port", v6, variant))],
        ),
    ]
}

/// The fixed table. The output hook's priority is a number: nft 1.0.6 accepts `dstnat` only
/// for prerouting.
pub fn table() -> Table {
    let mut t = Table::new(Family::Inet, TABLE);
    for v6 in [false, true] {
        t.sets.extend(map_decls(v6, None));
    }
    for (v, addr) in [('4', DataType::Ipv4Addr), ('6', DataType::Ipv6Addr)] {
        t.sets.push(Set::new(format!("masq{v}"), &[addr, addr]).intervals());
    }
    let local = || {
        vec![Rule::verdict(
            vec![Match::eq(Field::FibDaddrType, Value::FibAddrType(2))],
            Verdict::Jump("hostports".into()),
        )]
    };
    t.chains.push(Chain::hooked("prerouting", ChainType::Nat, Hook::Prerouting, -100, local()));
    t.chains.push(Chain::hooked("output", ChainType::Nat, Hook::Output, -100, local()));
    t.chains.push(Chain::new(
        "hostports",
        [false, true].into_iter().flat_map(|v6| dnat_rules(v6, None)).collect(),
    ));
    let masq = |fields: &[Field], set: &str| {
        let dnatted = Match::AnyOf { field: Field::CtStatus, bits: 32 };
        Rule::new(vec![dnatted, Match::in_set(fields, set)], vec![Stmt::Masquerade])
    };
    let post = vec![
        masq(&[Field::IpSaddr, Field::IpDaddr], "masq4"),
        masq(&[Field::Ip6Saddr, Field::Ip6Daddr], "masq6"),
    ];
    t.chains.push(Chain::hooked("postrouting", ChainType::Nat, Hook::Postrouting, 100, post));
    t
}

/// Every set and map an attachment may use: the table's and its variants'.
pub fn sets(variants: &[Variant]) -> Vec<Set> {
    let mut out = table().sets;
    for v in variants {
        out.extend(map_decls(v.v6, Some(v)));
    }
    out
}

/// The maps and rules of a variant, added to an existing table.
pub fn variant_batch(v: &Variant) -> Batch {
    let id = TableId::new(Family::Inet, TABLE);
    let mut batch = Batch::new();
    for set in map_decls(v.v6, Some(v)) {
        batch.push(Op::AddSet(id.clone(), set));
    }
    for rule in dnat_rules(v.v6, Some(v)) {
        batch.push(Op::AddRule(id.clone(), "hostports".into(), rule));
    }
    batch
}

/// One transaction adding every element of the plan. With `create`, a DNAT key that exists
/// fails it (a host port held by someone, or by us: told apart by reading the keys back).
/// Masquerade elements are always `add`ed: pods of one subnet may share them only if they
/// share an address.
pub fn add_batch(plan: &Plan, create: bool) -> Batch {
    let id = TableId::new(Family::Inet, TABLE);
    let mut batch = Batch::new();
    for set in sets(&plan.variants) {
        let of = |entries: &[Entry]| {
            entries.iter().filter(|e| e.set == set.name).map(|e| e.elem.clone()).collect::<Vec<_>>()
        };
        match create {
            true => batch.create_elems(&id, &set, of(&plan.dnat)),
            false => batch.add_elems(&id, &set, of(&plan.dnat)),
        };
        batch.add_elems(&id, &set, of(&plan.masq));
    }
    batch
}

/// A DNAT key for people: `tcp/8080`, `tcp/8080 on 10.0.0.1`.
pub fn describe(key: &[KeyPart]) -> String {
    let text: Vec<String> = key.iter().map(fw::nft::text::key_part_text).collect();
    match text.as_slice() {
        [proto, port] => format!("{proto}/{port}"),
        [ip, proto, port] => format!("{proto}/{port} on {ip}"),
        _ => text.join(" . "),
    }
}

/// The UDP flows removed DNAT elements stood for (host port, pod address): their conntrack
/// entries must go, or traffic keeps flowing to a gone pod.
pub fn udp_flows(removed: &[Elem]) -> Vec<UdpFlow> {
    let mut flows: Vec<UdpFlow> = removed
        .iter()
        .filter_map(|e| {
            let [.., KeyPart::Exact(Value::Proto(proto)), KeyPart::Exact(Value::Port(port))] =
                e.key.as_slice()
            else {
                return None;
            };
            let Some(ElemData::Values(data)) = &e.data else { return None };
            let Some(Value::Addr(pod)) = data.first() else { return None };
            (*proto == Protocol::Udp.number()).then_some(UdpFlow {
                port: *port,
                v6: pod.is_ipv6(),
                pod: Some(*pod),
            })
        })
        .collect();
    flows.sort();
    flows.dedup();
    flows
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
