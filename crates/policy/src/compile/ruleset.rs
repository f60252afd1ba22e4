//! A compiled ruleset as data (sets, maps, chains) and its nft text.

use std::fmt::Write;

/// The table family: one table serves IPv4 and IPv6.
pub const FAMILY: &str = "inet";
/// The table every node's policy lives in.
pub const TABLE: &str = "twill_policy";

/// The contents of `table inet twill_policy`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub sets: Vec<Set>,
    pub chains: Vec<Chain>,
}

/// A named set or verdict map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub name: String,
    /// `ipv4_addr`, `inet_proto . inet_service`, `ipv4_addr : verdict` (a map), ...
    pub typ: String,
    pub interval: bool,
    /// In nft syntax; a map element is `KEY : VERDICT`.
    pub elements: Vec<String>,
}

/// A chain: a base chain has a hook line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    /// `type filter hook forward priority filter; policy accept;` for a base chain.
    pub hook: Option<String>,
    pub comment: Option<String>,
    pub rules: Vec<String>,
}

impl Set {
    pub fn new(name: String, typ: &str, interval: bool, elements: Vec<String>) -> Set {
        Set { name, typ: typ.into(), interval, elements }
    }

    pub fn is_map(&self) -> bool {
        self.typ.contains(" : ")
    }

    /// The key of an element, what deleting it takes: without a map element's ` : VERDICT`
    /// and without ` comment "..."`.
    pub fn key_of<'a>(&self, element: &'a str) -> &'a str {
        let key = match self.is_map() {
            true => element.split_once(" : ").map_or(element, |(k, _)| k),
            false => element,
        };
        key.split_once(" comment ").map_or(key, |(k, _)| k)
    }

    /// The declaration without elements: what must match for an element-only update.
    pub fn shape(&self) -> (&str, &str, bool) {
        (&self.name, &self.typ, self.interval)
    }
}

impl Ruleset {
    pub fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.name == name)
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    /// How many set and map elements it holds.
    pub fn element_count(&self) -> usize {
        self.sets.iter().map(|s| s.elements.len()).sum()
    }

    /// The full `table inet twill_policy { ... }` definition, as `nft -f` reads it.
    pub fn text(&self) -> String {
        let mut out = format!("table {FAMILY} {TABLE} {{\n");
        for set in &self.sets {
            render_set(&mut out, set);
        }
        for chain in &self.chains {
            render_chain(&mut out, chain);
        }
        out.push_str("}\n");
        out
    }
}

fn render_set(out: &mut String, set: &Set) {
    let keyword = if set.is_map() { "map" } else { "set" };
    let _ = writeln!(out, "\t{keyword} {} {{\n\t\ttype {}", set.name, set.typ);
    if set.interval {
        out.push_str("\t\tflags interval\n");
    }
    match set.elements.as_slice() {
        [] => {}
        [one] => {
            let _ = writeln!(out, "\t\telements = {{ {one} }}");
        }
        many => {
            out.push_str("\t\telements = {\n");
            let _ = writeln!(out, "\t\t\t{}", many.join(",\n\t\t\t"));
            out.push_str("\t\t}\n");
        }
    }
    out.push_str("\t}\n");
}

fn render_chain(out: &mut String, chain: &Chain) {
    let _ = writeln!(out, "\tchain {} {{", chain.name);
    if let Some(hook) = &chain.hook {
        let _ = writeln!(out, "\t\t{hook}");
    }
    if let Some(comment) = &chain.comment {
        let _ = writeln!(out, "\t\tcomment {}", quote(comment));
    }
    for rule in &chain.rules {
        let _ = writeln!(out, "\t\t{rule}");
    }
    out.push_str("\t}\n");
}

/// An nft string literal. Kubernetes names never hold quotes or backslashes; dropping them
/// keeps any other text from breaking the ruleset.
pub fn quote(s: &str) -> String {
    let clean: String = s.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect();
    // nft limits comments to 128 bytes.
    let mut end = clean.len().min(127);
    while !clean.is_char_boundary(end) {
        end -= 1;
    }
    format!("\"{}\"", &clean[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sets_maps_and_chains() {
        let rs = Ruleset {
            sets: vec![
                Set::new("s".into(), "ipv4_addr", true, vec!["10.0.0.0/8".into(), "11.0.0.1".into()]),
                Set::new("m".into(), "ipv4_addr : verdict", false, vec!["10.0.0.1 : jump c".into()]),
                Set::new("e".into(), "ipv6_addr", false, vec![]),
            ],
            chains: vec![Chain {
                name: "c".into(),
                hook: None,
                comment: Some("x/a \"quoted\"".into()),
                rules: vec!["drop".into()],
            }],
        };
        let want = "table inet twill_policy {
\tset s {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = {
\t\t\t10.0.0.0/8,
\t\t\t11.0.0.1
\t\t}
\t}
\tmap m {
\t\ttype ipv4_addr : verdict
\t\telements = { 10.0.0.1 : jump c }
\t}
\tset e {
\t\ttype ipv6_addr
\t}
\tchain c {
\t\tcomment \"x/a quoted\"
\t\tdrop
\t}
}
";
        assert_eq!(rs.text(), want);
        assert_eq!(rs.element_count(), 3);
        assert_eq!(rs.sets[1].key_of("10.0.0.1 : jump c"), "10.0.0.1");
        assert_eq!(rs.sets[1].key_of("10.0.0.1 comment \"x/a\" : jump c"), "10.0.0.1");
        assert_eq!(rs.sets[0].key_of("10.0.0.0/8"), "10.0.0.0/8");
    }

    #[test]
    fn comments_are_bounded() {
        assert_eq!(quote(&"é".repeat(100)).len(), 2 + 126);
    }
}
