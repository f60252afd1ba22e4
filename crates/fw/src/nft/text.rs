//! The nft text form of tables, sets, elements and batches: what golden tests compare, what
//! `twill policy explain` and the docs show, and what `nft -f` reads (tests apply it to prove
//! that the netlink form means the same).

use std::fmt::Write;

use super::table::{BaseChain, Chain, Elem, ElemData, KeyPart, Set, Table};
use super::types::{DataType, Family, Value};

/// `10.0.0.0/8`, `10.0.0.1-10.0.0.9`, `80-90`: a range of addresses prints as a prefix when
/// its ends are aligned, as nft prints it.
pub fn key_part_text(part: &KeyPart) -> String {
    match part {
        KeyPart::Exact(v) => v.to_string(),
        KeyPart::Range(Value::Addr(lo), Value::Addr(hi)) => {
            let (lo_n, hi_n) = (addr_num(*lo), addr_num(*hi));
            let bits: u32 = if lo.is_ipv4() { 32 } else { 128 };
            let size = hi_n.wrapping_sub(lo_n);
            let aligned = size == u128::MAX
                || size.checked_add(1).is_some_and(|n| n.is_power_of_two() && lo_n.is_multiple_of(n));
            if hi_n >= lo_n && aligned {
                return format!("{lo}/{}", bits - size.count_ones().min(bits));
            }
            format!("{lo}-{hi}")
        }
        KeyPart::Range(lo, hi) => format!("{lo}-{hi}"),
    }
}

fn addr_num(ip: std::net::IpAddr) -> u128 {
    match ip {
        std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
        std::net::IpAddr::V6(a) => u128::from(a),
    }
}

/// `KEY [comment "C"] [: DATA]`.
pub fn elem_text(e: &Elem) -> String {
    let mut out: String = e.key.iter().map(key_part_text).collect::<Vec<_>>().join(" . ");
    if let Some(c) = &e.comment {
        let _ = write!(out, " comment \"{c}\"");
    }
    match &e.data {
        Some(ElemData::Values(vs)) => {
            let vs: Vec<String> = vs.iter().map(Value::to_string).collect();
            let _ = write!(out, " : {}", vs.join(" . "));
        }
        Some(ElemData::Verdict(v)) => {
            let _ = write!(out, " : {v}");
        }
        None => {}
    }
    out
}

/// `ipv4_addr . inet_service`, `ipv4_addr : verdict`.
pub fn set_type_text(set: &Set) -> String {
    let names = |ts: &[DataType]| ts.iter().map(|t| t.name()).collect::<Vec<_>>().join(" . ");
    match set.is_map() {
        true => format!("{} : {}", names(&set.key), names(&set.data)),
        false => names(&set.key),
    }
}

/// The priority as nft prints it: a standard name (plus an offset) where one applies.
pub fn priority_text(family: Family, base: &BaseChain) -> String {
    use super::table::Hook::*;
    let names: &[(&str, i32, bool)] = match family {
        Family::Bridge => &[
            ("dstnat", -300, base.hook == Prerouting),
            ("filter", -200, true),
            ("out", 100, base.hook == Output),
            ("srcnat", 300, base.hook == Postrouting),
        ],
        _ => &[
            ("raw", -300, true),
            ("mangle", -150, true),
            ("dstnat", -100, base.hook == Prerouting),
            ("filter", 0, true),
            ("security", 50, true),
            ("srcnat", 100, base.hook == Postrouting),
        ],
    };
    let best = names.iter().filter(|(_, _, ok)| *ok).min_by_key(|(_, p, _)| (base.priority - p).abs());
    match best {
        Some((name, p, _)) if base.priority == *p => name.to_string(),
        Some((name, p, _)) if (base.priority - p).abs() <= 10 && base.priority > *p => {
            format!("{name} + {}", base.priority - p)
        }
        Some((name, p, _)) if (base.priority - p).abs() <= 10 => format!("{name} - {}", p - base.priority),
        _ => base.priority.to_string(),
    }
}

/// `type filter hook forward priority filter; policy accept;`
pub fn hook_text(family: Family, base: &BaseChain) -> String {
    let device = base.device.as_ref().map(|d| format!(" device \"{d}\"")).unwrap_or_default();
    format!(
        "type {} hook {}{device} priority {}; policy {};",
        base.kind.name(),
        base.hook.name(),
        priority_text(family, base),
        if base.drop { "drop" } else { "accept" }
    )
}

fn render_set(out: &mut String, set: &Set) {
    let keyword = if set.is_map() { "map" } else { "set" };
    let _ = writeln!(out, "\t{keyword} {} {{\n\t\ttype {}", set.name, set_type_text(set));
    if set.interval {
        out.push_str("\t\tflags interval\n");
    }
    let elems: Vec<String> = set.elems.iter().map(elem_text).collect();
    match elems.as_slice() {
        [] => {}
        [one] => {
            let _ = writeln!(out, "\t\telements = {{ {one} }}");
        }
        many => {
            let _ = writeln!(out, "\t\telements = {{\n\t\t\t{}\n\t\t}}", many.join(",\n\t\t\t"));
        }
    }
    out.push_str("\t}\n");
}

fn render_chain(out: &mut String, family: Family, chain: &Chain) {
    let _ = writeln!(out, "\tchain {} {{", chain.name);
    if let Some(base) = &chain.base {
        let _ = writeln!(out, "\t\t{}", hook_text(family, base));
    }
    if let Some(comment) = &chain.comment {
        let _ = writeln!(out, "\t\tcomment \"{comment}\"");
    }
    for rule in &chain.rules {
        let _ = writeln!(out, "\t\t{rule}");
    }
    out.push_str("\t}\n");
}

impl Table {
    /// The `table FAMILY NAME { ... }` block, as `nft -f` reads it.
    pub fn text(&self) -> String {
        let mut out = format!("table {} {} {{\n", self.family, self.name);
        for set in &self.sets {
            render_set(&mut out, set);
        }
        for chain in &self.chains {
            render_chain(&mut out, self.family, chain);
        }
        out.push_str("}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::rule::{Field, Match, Rule};
    use crate::nft::table::{ChainType, Hook};
    use crate::nft::types::Verdict;

    #[test]
    fn ranges_print_as_prefixes_when_aligned() {
        let r = |lo: &str, hi: &str| {
            key_part_text(&KeyPart::Range(Value::Addr(lo.parse().unwrap()), Value::Addr(hi.parse().unwrap())))
        };
        assert_eq!(r("10.0.0.0", "10.255.255.255"), "10.0.0.0/8");
        assert_eq!(r("10.0.0.1", "10.0.0.9"), "10.0.0.1-10.0.0.9");
        assert_eq!(r("0.0.0.0", "255.255.255.255"), "0.0.0.0/0");
        assert_eq!(r("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), "::/0");
        assert_eq!(key_part_text(&KeyPart::Range(Value::Port(80), Value::Port(90))), "80-90");
    }

    #[test]
    fn priorities_use_standard_names() {
        let base =
            |hook, priority| BaseChain { kind: ChainType::Filter, hook, priority, drop: false, device: None };
        assert_eq!(priority_text(Family::Inet, &base(Hook::Forward, 1)), "filter + 1");
        assert_eq!(priority_text(Family::Inet, &base(Hook::Prerouting, -100)), "dstnat");
        assert_eq!(priority_text(Family::Inet, &base(Hook::Output, -100)), "-100");
        assert_eq!(priority_text(Family::Inet, &base(Hook::Postrouting, 100)), "srcnat");
        assert_eq!(priority_text(Family::Bridge, &base(Hook::Prerouting, -300)), "dstnat");
    }

    #[test]
    fn table_block() {
        let mut t = Table::new(Family::Inet, "t");
        t.sets.push(Set::map("m", &[DataType::Ipv4Addr], &[DataType::Verdict]).with_elems(vec![
                Elem::new(vec![KeyPart::addr("10.0.0.1".parse().unwrap())])
                    .with_comment("x/a")
                    .mapped_to(ElemData::Verdict(Verdict::Jump("c".into()))),
            ]));
        let mut c = Chain::new(
            "c",
            vec![Rule::verdict(vec![Match::in_set(&[Field::IpSaddr], "s")], Verdict::Accept)],
        );
        c.comment = Some("hi".into());
        t.chains.push(c);
        assert_eq!(
            t.text(),
            "table inet t {\n\tmap m {\n\t\ttype ipv4_addr : verdict\n\t\telements = { 10.0.0.1 comment \"x/a\" : jump c }\n\t}\n\
             \tchain c {\n\t\tcomment \"hi\"\n\t\tip saddr @s accept\n\t}\n}\n"
        );
    }
}
