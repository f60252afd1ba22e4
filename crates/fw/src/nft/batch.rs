//! A batch: changes to nf_tables that the kernel commits together or not at all. Built by pure
//! functions, sent as ONE netlink transaction ([`super::Conn::apply`]), and printable as the
//! nft statements that would do the same ([`Batch::text`]).

use std::fmt::Write;

use super::rule::Rule;
use super::table::{Chain, Elem, Set, Table, TableId};
use super::text::{elem_text, hook_text, set_type_text};

/// One change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Creates the table unless it exists.
    AddTable(TableId),
    DeleteTable(TableId),
    /// Creates the chain (its rules are separate [`Op::AddRule`]s).
    AddChain(TableId, Chain),
    /// Creates the set with its elements.
    AddSet(TableId, Set),
    AddRule(TableId, String, Rule),
    /// Adds elements to `set` (a declaration: its elements are ignored). With `create`, an
    /// element whose key exists fails the batch; without, an identical one is left alone.
    AddElems {
        table: TableId,
        set: Set,
        elems: Vec<Elem>,
        create: bool,
    },
    /// Deletes elements (by key); a missing one fails the batch.
    DelElems {
        table: TableId,
        set: Set,
        elems: Vec<Elem>,
    },
}

impl Op {
    /// What the change is, for error messages: `add element to set inet twill_masq masq4`.
    pub fn describe(&self) -> String {
        match self {
            Op::AddTable(t) => format!("add table {t}"),
            Op::DeleteTable(t) => format!("delete table {t}"),
            Op::AddChain(t, c) => format!("add chain {t} {}", c.name),
            Op::AddSet(t, s) => format!("add set {t} {}", s.name),
            Op::AddRule(t, c, r) => format!("add rule {t} {c} {r}"),
            Op::AddElems { table, set, elems, create } => {
                let verb = if *create { "create" } else { "add" };
                format!("{verb} element {table} {} {{ {} }}", set.name, elems_summary(elems))
            }
            Op::DelElems { table, set, elems } => {
                format!("delete element {table} {} {{ {} }}", set.name, elems_summary(elems))
            }
        }
    }
}

fn elems_summary(elems: &[Elem]) -> String {
    let shown: Vec<String> = elems.iter().take(3).map(|e| elem_text(&e.key_only())).collect();
    match elems.len() {
        n if n > 3 => format!("{}, ... ({n} elements)", shown.join(", ")),
        _ => shown.join(", "),
    }
}

/// Changes applied in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn push(&mut self, op: Op) -> &mut Batch {
        self.ops.push(op);
        self
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Appends another batch's changes.
    pub fn extend(&mut self, other: Batch) -> &mut Batch {
        self.ops.extend(other.ops);
        self
    }

    /// Creates `table` with everything in it: chains first (so jumps from map elements
    /// resolve), then sets and their elements, then rules (which look sets up).
    pub fn add_table(&mut self, table: &Table) -> &mut Batch {
        let id = table.id();
        self.push(Op::AddTable(id.clone()));
        for chain in &table.chains {
            self.push(Op::AddChain(id.clone(), Chain { rules: Vec::new(), ..chain.clone() }));
        }
        for set in &table.sets {
            self.push(Op::AddSet(id.clone(), set.clone()));
        }
        for chain in &table.chains {
            for rule in &chain.rules {
                self.push(Op::AddRule(id.clone(), chain.name.clone(), rule.clone()));
            }
        }
        self
    }

    /// Deletes the table, whether or not it exists (`add` first, so the delete cannot fail).
    pub fn delete_table(&mut self, id: &TableId) -> &mut Batch {
        self.push(Op::AddTable(id.clone())).push(Op::DeleteTable(id.clone()))
    }

    /// Replaces whatever table of that name there is with `table`, atomically: no packet sees
    /// the table half-built or absent.
    pub fn replace_table(&mut self, table: &Table) -> &mut Batch {
        self.delete_table(&table.id()).add_table(table)
    }

    pub fn add_elems(&mut self, table: &TableId, set: &Set, elems: Vec<Elem>) -> &mut Batch {
        self.elems(table, set, elems, false)
    }

    pub fn create_elems(&mut self, table: &TableId, set: &Set, elems: Vec<Elem>) -> &mut Batch {
        self.elems(table, set, elems, true)
    }

    fn elems(&mut self, table: &TableId, set: &Set, elems: Vec<Elem>, create: bool) -> &mut Batch {
        if elems.is_empty() {
            return self;
        }
        self.push(Op::AddElems { table: table.clone(), set: set.decl(), elems, create })
    }

    pub fn del_elems(&mut self, table: &TableId, set: &Set, elems: Vec<Elem>) -> &mut Batch {
        if elems.is_empty() {
            return self;
        }
        let elems = elems.iter().map(Elem::key_only).collect();
        self.push(Op::DelElems { table: table.clone(), set: set.decl(), elems })
    }

    /// The batch as nft statements, one per line (`nft -f` reads them as one transaction).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for op in &self.ops {
            let _ = writeln!(out, "{}", op_text(op));
        }
        out
    }
}

fn op_text(op: &Op) -> String {
    let elems = |es: &[Elem]| es.iter().map(elem_text).collect::<Vec<_>>().join(", ");
    match op {
        Op::AddTable(t) => format!("add table {t}"),
        Op::DeleteTable(t) => format!("delete table {t}"),
        Op::AddChain(t, c) => {
            let mut body = String::new();
            if let Some(base) = &c.base {
                let _ = write!(body, " {}", hook_text(t.family, base));
            }
            if let Some(comment) = &c.comment {
                let _ = write!(body, " comment \"{comment}\";");
            }
            match body.is_empty() {
                true => format!("add chain {t} {}", c.name),
                false => format!("add chain {t} {} {{{body} }}", c.name),
            }
        }
        Op::AddSet(t, s) => {
            let keyword = if s.is_map() { "map" } else { "set" };
            let flags = if s.interval { " flags interval;" } else { "" };
            let mut text = format!("add {keyword} {t} {} {{ type {};{flags} }}", s.name, set_type_text(s));
            if !s.elems.is_empty() {
                let _ = write!(text, "\nadd element {t} {} {{ {} }}", s.name, elems(&s.elems));
            }
            text
        }
        Op::AddRule(t, c, r) => format!("add rule {t} {c} {r}"),
        Op::AddElems { table, set, elems: es, create } => {
            let verb = if *create { "create" } else { "add" };
            format!("{verb} element {table} {} {{ {} }}", set.name, elems(es))
        }
        Op::DelElems { table, set, elems: es } => {
            format!("delete element {table} {} {{ {} }}", set.name, elems(es))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::rule::{Field, Match, Stmt};
    use crate::nft::table::{ChainType, Hook, KeyPart};
    use crate::nft::types::{DataType, Family};

    fn table() -> Table {
        let mut t = Table::new(Family::Inet, "t");
        t.sets.push(Set::new("masq4", &[DataType::Ipv4Addr]));
        t.chains.push(Chain::hooked(
            "postrouting",
            ChainType::Nat,
            Hook::Postrouting,
            100,
            vec![Rule::new(vec![Match::in_set(&[Field::IpSaddr], "masq4")], vec![Stmt::Masquerade])],
        ));
        t
    }

    #[test]
    fn replacing_a_table_is_add_delete_then_everything() {
        let mut b = Batch::new();
        b.replace_table(&table());
        assert_eq!(
            b.text(),
            "add table inet t\ndelete table inet t\nadd table inet t\n\
             add chain inet t postrouting { type nat hook postrouting priority srcnat; policy accept; }\n\
             add set inet t masq4 { type ipv4_addr; }\n\
             add rule inet t postrouting ip saddr @masq4 masquerade\n"
        );
    }

    #[test]
    fn element_changes() {
        let t = table();
        let set = t.set("masq4").unwrap();
        let e = Elem::new(vec![KeyPart::addr("10.1.0.5".parse().unwrap())]).with_comment("n/c/eth0");
        let mut b = Batch::new();
        b.add_elems(&t.id(), set, vec![e.clone()]).del_elems(&t.id(), set, vec![e]).add_elems(
            &t.id(),
            set,
            vec![],
        );
        assert_eq!(
            b.text(),
            "add element inet t masq4 { 10.1.0.5 comment \"n/c/eth0\" }\ndelete element inet t masq4 { 10.1.0.5 }\n"
        );
        assert_eq!(b.ops()[1].describe(), "delete element inet t masq4 { 10.1.0.5 }");
    }
}
