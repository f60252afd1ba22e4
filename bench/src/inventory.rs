//! What a fake host holds that pods can leave behind: links, qdiscs, nftables objects (the
//! reference's iptables rules are iptables-nft, so they appear here too), host-local
//! reservation files and result-cache entries. Leftovers are what exceeds a baseline taken
//! after a warm-up pod came and went — the bridge and the plugins' shared tables and chains
//! are node state, not leaks.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::chains::CHAINS;
use crate::node::Node;

/// Counts of nftables objects in a namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NftCounts {
    pub chains: usize,
    pub rules: usize,
    /// Elements of all sets and maps.
    pub elements: usize,
}

/// One snapshot of a fake host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    pub links: BTreeSet<String>,
    /// Qdiscs other than the implicit `noqueue`.
    pub qdiscs: usize,
    pub nft: NftCounts,
    pub reservations: usize,
    pub cache_entries: usize,
}

/// What a snapshot holds beyond the baseline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    pub links: Vec<String>,
    pub qdiscs: usize,
    pub chains: usize,
    pub rules: usize,
    pub elements: usize,
    pub reservations: usize,
    pub cache_entries: usize,
}

impl Leftovers {
    pub fn total(&self) -> usize {
        self.links.len()
            + self.qdiscs
            + self.chains
            + self.rules
            + self.elements
            + self.reservations
            + self.cache_entries
    }

    /// `none`, or e.g. `3 reservation files, 2 links (veth1, veth2)`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut count = |n: usize, what: &str| {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        };
        count(self.reservations, "reservation files");
        count(self.chains, "nft chains");
        count(self.rules, "nft rules");
        count(self.elements, "nft set elements");
        count(self.qdiscs, "qdiscs");
        count(self.cache_entries, "cache entries");
        if !self.links.is_empty() {
            let shown: Vec<&str> = self.links.iter().take(5).map(String::as_str).collect();
            parts.push(format!("{} links ({})", self.links.len(), shown.join(", ")));
        }
        if parts.is_empty() { "none".into() } else { parts.join(", ") }
    }
}

impl Inventory {
    /// Snapshots `node`'s fake host and directories.
    pub fn take(node: &Node) -> Result<Inventory> {
        let h = node.handle()?;
        let links = h.link_list()?.into_iter().map(|l| l.name).filter(|n| n != "lo").collect();
        let qdiscs = h.qdisc_list(None)?.iter().filter(|q| q.kind != "noqueue").count();
        let nft = count_nft(&nft_ruleset(node)?);
        let reservations =
            CHAINS.iter().map(|c| reservations(&node.dir().join("ipam").join(c.network()))).sum();
        let cache_entries = count_files(&node.dir().join("cache"));
        Ok(Inventory { links, qdiscs, nft, reservations, cache_entries })
    }

    /// Everything in `self` beyond `base`.
    pub fn since(&self, base: &Inventory) -> Leftovers {
        Leftovers {
            links: self.links.difference(&base.links).cloned().collect(),
            qdiscs: self.qdiscs.saturating_sub(base.qdiscs),
            chains: self.nft.chains.saturating_sub(base.nft.chains),
            rules: self.nft.rules.saturating_sub(base.nft.rules),
            elements: self.nft.elements.saturating_sub(base.nft.elements),
            reservations: self.reservations.saturating_sub(base.reservations),
            cache_entries: self.cache_entries.saturating_sub(base.cache_entries),
        }
    }
}

/// Leftovers after the kernel has had time to finish asynchronous teardown (a veth whose
/// namespace was deleted goes a little later): polls up to `settle`, returns the last count.
pub fn settle(node: &Node, base: &Inventory, settle: Duration) -> Result<Leftovers> {
    let deadline = Instant::now() + settle;
    loop {
        let left = Inventory::take(node)?.since(base);
        if left.total() == 0 || Instant::now() >= deadline {
            return Ok(left);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `nft -j list ruleset` inside the node's fake host.
fn nft_ruleset(node: &Node) -> Result<Value> {
    let mut cmd = Command::new("nft");
    cmd.args(["-j", "list", "ruleset"]);
    node.host().spawn_inside(&mut cmd);
    let out = cmd.output().context("run nft -j list ruleset")?;
    if !out.status.success() {
        bail!("nft list ruleset in {}: {}", node.host_name(), String::from_utf8_lossy(&out.stderr).trim());
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&out.stdout).context("parse nft -j output")
}

/// Counts chains, rules and set/map elements in `nft -j` output.
pub fn count_nft(ruleset: &Value) -> NftCounts {
    let mut counts = NftCounts::default();
    let items = ruleset.get("nftables").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for item in items {
        if item.get("chain").is_some() {
            counts.chains += 1;
        } else if item.get("rule").is_some() {
            counts.rules += 1;
        }
        for kind in ["set", "map"] {
            if let Some(elems) = item.get(kind).and_then(|s| s.get("elem")).and_then(Value::as_array) {
                counts.elements += elems.len();
            }
        }
    }
    counts
}

/// host-local reservation files in one network's data dir (not its lock or last-IP marks).
pub fn reservations(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != "lock" && !n.starts_with("last_reserved_ip") && !n.starts_with('.'))
        .count()
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nft_objects_are_counted() {
        let ruleset = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "t"}},
            {"chain": {"family": "inet", "table": "t", "name": "c"}},
            {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": []}},
            {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": []}},
            {"set": {"family": "inet", "table": "t", "name": "s", "elem": ["10.0.0.2", "10.0.0.3"]}},
            {"map": {"family": "inet", "table": "t", "name": "m", "elem": [[1, 2]]}},
            {"set": {"family": "inet", "table": "t", "name": "empty"}}
        ]});
        assert_eq!(count_nft(&ruleset), NftCounts { chains: 1, rules: 2, elements: 3 });
        assert_eq!(count_nft(&Value::Null), NftCounts::default());
    }

    #[test]
    fn leftovers_are_the_excess_over_the_baseline() {
        let base = Inventory { links: ["br".to_string()].into(), qdiscs: 1, ..Default::default() };
        let now = Inventory {
            links: ["br".to_string(), "veth1".to_string()].into(),
            qdiscs: 1,
            nft: NftCounts { chains: 0, rules: 2, elements: 0 },
            reservations: 1,
            cache_entries: 0,
        };
        let left = now.since(&base);
        assert_eq!(left.total(), 4);
        assert_eq!(left.describe(), "1 reservation files, 2 nft rules, 1 links (veth1)");
        assert_eq!(base.since(&base).describe(), "none");
    }
}
