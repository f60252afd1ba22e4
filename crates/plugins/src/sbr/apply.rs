//! Carrying out an sbr plan inside the container (rules, routes), undoing it on failure,
//! removing it on DEL and checking it.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

use cni_spec::Error;
use ipnet::IpNet;
use nl::{Handle, Link, Route, Rule};

use super::plan::{SbrPlan, TablePlan};
use crate::kernel::nl_error;
use crate::undo::Undo;

/// Serialises sbr runs on one container (as the reference does, with a lock on the netns
/// file): table choice reads the rules, then adds to them.
pub fn with_netns_lock<T>(netns: &Path, f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    let lock_err = |e: std::io::Error| Error::io(format!("sbr: lock {}: {e}", netns.display()));
    let file = std::fs::File::open(netns).map_err(lock_err)?;
    file.lock().map_err(lock_err)?;
    f()
}

/// The `from ADDR lookup TABLE` rule of an address.
fn rule_of(addr: &IpNet, table: u32) -> Rule {
    Rule::from_addr(addr.addr(), table)
}

/// Adds the rule of every table; when `with_routes`, also the table's routes, then moves the
/// interface's routes out of the main table. Every step registers its undo.
pub fn apply<'a>(
    nl: &'a Handle,
    plan: &SbrPlan,
    with_routes: bool,
    undo: &mut Undo<'a>,
) -> Result<(), Error> {
    for t in &plan.tables {
        let rule = rule_of(&t.addr, t.table);
        nl.rule_add(&rule).map_err(nl_error)?;
        undo.push(format!("delete rule for {}", t.addr), move || nl.rule_del(&rule).map_err(nl_error));
        if with_routes {
            add_table_routes(nl, t, undo)?;
        }
    }
    if !with_routes {
        return Ok(());
    }
    for hint in &plan.hints {
        // The reference only warns when a hint cannot be set.
        if let Err(e) = nl.route_replace(hint) {
            eprintln!("sbr: source hint: {e}");
        }
    }
    for r in &plan.remove {
        match nl.route_del(r) {
            Ok(()) => {
                let back = r.clone();
                undo.push(format!("restore route {}", r.dst), move || {
                    nl.route_replace(&back).map_err(nl_error)
                });
            }
            // A hint may have replaced it already.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(nl_error(e)),
        }
    }
    Ok(())
}

fn add_table_routes<'a>(nl: &'a Handle, t: &TablePlan, undo: &mut Undo<'a>) -> Result<(), Error> {
    for r in &t.routes {
        // Copies may repeat the default route just added: replace, as the reference does.
        nl.route_replace(r).map_err(nl_error)?;
        let added = r.clone();
        undo.push(format!("delete route {} table {}", r.dst, t.table), move || {
            nl.route_del(&added).map_err(nl_error)
        });
    }
    Ok(())
}

/// Rules whose source is one of `addrs` (as a host prefix), in `table` when given.
pub fn rules_for(nl: &Handle, addrs: &BTreeSet<IpAddr>, table: Option<u32>) -> Result<Vec<Rule>, Error> {
    let rules = nl.rule_list(None).map_err(nl_error)?;
    Ok(rules
        .into_iter()
        .filter(|r| r.src.is_some_and(|s| s.prefix_len() == s.max_prefix_len() && addrs.contains(&s.addr())))
        .filter(|r| table.is_none_or(|t| r.table == t))
        .collect())
}

/// DEL: the rules of `addrs`, and (unless the table is the administrator's) the routes via
/// `link` in their tables. Failures are collected.
pub fn teardown(nl: &Handle, link: &Link, addrs: &BTreeSet<IpAddr>, fixed_table: Option<u32>) -> Vec<Error> {
    let rules = match rules_for(nl, addrs, fixed_table) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    let mut errors = Vec::new();
    for rule in &rules {
        if let Err(e) = nl.rule_del(rule).filter_absent() {
            errors.push(e);
        }
    }
    if fixed_table.is_some() {
        return errors;
    }
    let tables: BTreeSet<u32> = rules.iter().map(|r| r.table).collect();
    match nl.route_list(None, None) {
        Ok(routes) => {
            for r in routes
                .iter()
                .filter(|r| r.oif == Some(link.index) && r.table.is_some_and(|t| tables.contains(&t)))
            {
                if let Err(e) = nl.route_del(r).filter_absent() {
                    errors.push(e);
                }
            }
        }
        Err(e) => errors.push(nl_error(e)),
    }
    errors
}

trait FilterAbsent {
    fn filter_absent(self) -> Result<(), Error>;
}

impl FilterAbsent for nl::Result<()> {
    fn filter_absent(self) -> Result<(), Error> {
        match self {
            Err(e) if !e.is_not_found() => Err(nl_error(e)),
            _ => Ok(()),
        }
    }
}

/// CHECK: every address has its rule; without a fixed table, its table routes via `link`,
/// including a default route when a gateway is known.
pub fn check(
    nl: &Handle,
    link: &Link,
    want: &[(IpNet, Option<IpAddr>)],
    fixed_table: Option<u32>,
) -> Result<(), Error> {
    let addrs: BTreeSet<IpAddr> = want.iter().map(|(a, _)| a.addr()).collect();
    let rules = rules_for(nl, &addrs, fixed_table)?;
    let routes: Vec<Route> = nl.route_list(None, None).map_err(nl_error)?;
    for (addr, gw) in want {
        let rule =
            rules.iter().find(|r| r.src.is_some_and(|s| s.addr() == addr.addr())).ok_or_else(|| {
                let table = fixed_table.map(|t| format!(" in table {t}")).unwrap_or_default();
                Error::internal(format!("sbr: no rule from {}{table}", addr.addr()))
            })?;
        if fixed_table.is_some() {
            continue;
        }
        let in_table: Vec<&Route> =
            routes.iter().filter(|r| r.table == Some(rule.table) && r.oif == Some(link.index)).collect();
        if in_table.is_empty() {
            return Err(Error::internal(format!("sbr: table {} has no route via {}", rule.table, link.name)));
        }
        if let Some(gw) = gw
            && !in_table.iter().any(|r| r.dst.prefix_len() == 0 && r.gw == Some(*gw))
        {
            return Err(Error::internal(format!("sbr: table {} has no default route via {gw}", rule.table)));
        }
    }
    Ok(())
}
