//! Tables, chains, sets and set elements as plain data: what a ruleset is, independent of
//! how it reaches the kernel (netlink, [`super::wire`]) or a reader (nft text, [`super::text`]).

use std::net::IpAddr;

use ipnet::IpNet;

use super::rule::Rule;
use super::types::{DataType, Family, Value, Verdict};

/// The hook a base chain is attached to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
    /// netdev family: frames leaving a device (any socket, packet sockets included).
    Egress,
}

impl Hook {
    /// The hook's number in `family`: `NF_INET_*` (the bridge family uses the same
    /// numbers), `NF_ARP_*` for the arp family.
    pub fn number(self, family: Family) -> u32 {
        if family == Family::Arp {
            return match self {
                Hook::Input => 0,
                _ => 1,
            };
        }
        match self {
            Hook::Egress => 1,
            Hook::Prerouting => 0,
            Hook::Input => 1,
            Hook::Forward => 2,
            Hook::Output => 3,
            Hook::Postrouting => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
            Hook::Egress => "egress",
        }
    }
}

/// A base chain's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChainType {
    Filter,
    Nat,
}

impl ChainType {
    pub fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
        }
    }
}

/// What makes a chain a base chain: where packets enter it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BaseChain {
    pub kind: ChainType,
    pub hook: Hook,
    pub priority: i32,
    /// The verdict for packets no rule decided: accept unless `drop`.
    pub drop: bool,
    /// The device of a netdev-family chain.
    pub device: Option<String>,
}

/// A chain and its rules.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseChain>,
    pub comment: Option<String>,
    pub rules: Vec<Rule>,
}

impl Chain {
    /// A regular chain (reached by jumps).
    pub fn new(name: impl Into<String>, rules: Vec<Rule>) -> Chain {
        Chain { name: name.into(), base: None, comment: None, rules }
    }

    /// A base chain with policy accept.
    pub fn hooked(
        name: impl Into<String>,
        kind: ChainType,
        hook: Hook,
        priority: i32,
        rules: Vec<Rule>,
    ) -> Chain {
        let base = Some(BaseChain { kind, hook, priority, drop: false, device: None });
        Chain { name: name.into(), base, comment: None, rules }
    }

    /// The chain without its rules: what must match for an element-only update.
    pub fn shape(&self) -> (&str, Option<&BaseChain>, Option<&str>) {
        (&self.name, self.base.as_ref(), self.comment.as_deref())
    }
}

/// One field of an element's key: a value, or an inclusive range of values in an interval
/// set (a prefix is a range whose ends are aligned).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyPart {
    Exact(Value),
    Range(Value, Value),
}

impl KeyPart {
    /// An address or a prefix: a plain address for a full-length prefix, as nft prints it.
    pub fn net(net: IpNet) -> KeyPart {
        if net.prefix_len() == net.max_prefix_len() {
            return KeyPart::Exact(Value::Addr(net.addr()));
        }
        KeyPart::Range(Value::Addr(net.network()), Value::Addr(net.broadcast()))
    }

    pub fn addr(ip: IpAddr) -> KeyPart {
        KeyPart::Exact(Value::Addr(ip))
    }

    /// The lowest and highest value.
    pub fn bounds(&self) -> (&Value, &Value) {
        match self {
            KeyPart::Exact(v) => (v, v),
            KeyPart::Range(lo, hi) => (lo, hi),
        }
    }

    pub fn data_type(&self) -> DataType {
        self.bounds().0.data_type()
    }

    /// The prefix this range of addresses is, when its ends are aligned.
    pub fn as_prefix(&self) -> Option<IpNet> {
        let KeyPart::Range(Value::Addr(lo), Value::Addr(hi)) = self else { return None };
        (0..=if lo.is_ipv4() { 32 } else { 128 })
            .filter_map(|len| IpNet::new(*lo, len).ok())
            .find(|net| net.network() == *lo && net.broadcast() == *hi)
    }
}

/// What a map element maps its key to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ElemData {
    Values(Vec<Value>),
    Verdict(Verdict),
}

/// One element of a set or map.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Elem {
    pub key: Vec<KeyPart>,
    pub comment: Option<String>,
    pub data: Option<ElemData>,
}

impl Elem {
    pub fn new(key: Vec<KeyPart>) -> Elem {
        Elem { key, comment: None, data: None }
    }

    pub fn with_comment(mut self, comment: impl Into<String>) -> Elem {
        self.comment = Some(comment.into());
        self
    }

    pub fn mapped_to(mut self, data: ElemData) -> Elem {
        self.data = Some(data);
        self
    }

    /// The element as a deletion names it: the key alone.
    pub fn key_only(&self) -> Elem {
        Elem::new(self.key.clone())
    }
}

/// A named set or map (a map has value types, a verdict map the type `verdict`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Set {
    pub name: String,
    pub key: Vec<DataType>,
    pub data: Vec<DataType>,
    pub interval: bool,
    pub elems: Vec<Elem>,
}

impl Set {
    pub fn new(name: impl Into<String>, key: &[DataType]) -> Set {
        Set { name: name.into(), key: key.to_vec(), data: Vec::new(), interval: false, elems: Vec::new() }
    }

    /// A map to values of `data` (`[DataType::Verdict]` for a verdict map).
    pub fn map(name: impl Into<String>, key: &[DataType], data: &[DataType]) -> Set {
        Set { data: data.to_vec(), ..Set::new(name, key) }
    }

    pub fn intervals(mut self) -> Set {
        self.interval = true;
        self
    }

    pub fn with_elems(mut self, elems: Vec<Elem>) -> Set {
        self.elems = elems;
        self
    }

    pub fn is_map(&self) -> bool {
        !self.data.is_empty()
    }

    pub fn is_vmap(&self) -> bool {
        self.data == [DataType::Verdict]
    }

    /// The declaration without its elements.
    pub fn decl(&self) -> Set {
        Set { elems: Vec::new(), ..self.clone() }
    }
}

/// A table: sets first (rules look them up), then chains.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Table {
    pub family: Family,
    pub name: String,
    pub sets: Vec<Set>,
    pub chains: Vec<Chain>,
}

impl Table {
    pub fn new(family: Family, name: impl Into<String>) -> Table {
        Table { family, name: name.into(), sets: Vec::new(), chains: Vec::new() }
    }

    pub fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.name == name)
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// How many set and map elements it holds.
    pub fn element_count(&self) -> usize {
        self.sets.iter().map(|s| s.elems.len()).sum()
    }

    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }

    /// Where the table is: family and name.
    pub fn id(&self) -> TableId {
        TableId { family: self.family, name: self.name.clone() }
    }
}

/// A table's family and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId {
    pub family: Family,
    pub name: String,
}

impl TableId {
    pub fn new(family: Family, name: impl Into<String>) -> TableId {
        TableId { family, name: name.into() }
    }
}

impl std::fmt::Display for TableId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.family, self.name)
    }
}

/// A comment as nft and the kernel accept it: no quotes, backslashes or control characters
/// (they would end the string in nft's syntax) and at most 127 bytes (nft's limit).
pub fn clean_comment(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect();
    let mut end = clean.len().min(127);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    clean[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nets_are_ranges_unless_full_length() {
        assert_eq!(KeyPart::net("10.1.0.5/32".parse().unwrap()), KeyPart::addr("10.1.0.5".parse().unwrap()));
        assert_eq!(
            KeyPart::net("10.1.0.5/24".parse().unwrap()),
            KeyPart::Range(
                Value::Addr("10.1.0.0".parse().unwrap()),
                Value::Addr("10.1.0.255".parse().unwrap())
            )
        );
    }

    #[test]
    fn aligned_ranges_are_prefixes() {
        assert_eq!(
            KeyPart::net("10.0.0.0/8".parse().unwrap()).as_prefix(),
            Some("10.0.0.0/8".parse().unwrap())
        );
        let odd = KeyPart::Range(
            Value::Addr("10.0.0.1".parse().unwrap()),
            Value::Addr("10.0.0.9".parse().unwrap()),
        );
        assert_eq!(odd.as_prefix(), None);
    }

    #[test]
    fn comments_are_cleaned_and_bounded() {
        assert_eq!(clean_comment("x/a \"q\"\\\n"), "x/a q");
        assert_eq!(clean_comment(&"é".repeat(100)).len(), 126);
    }
}
