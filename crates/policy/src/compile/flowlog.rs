//! Flow logs from the policy table: `log group N prefix "..."` statements on the rules that
//! decide a new connection, and the catalogue ([`FlowSites`]) that turns a prefix back into
//! what decided.
//!
//! Only new connections reach the rules that log: the base chains accept established and
//! related packets and drop invalid ones first. A prefix is short and stable —
//! `twill VERDICT DIRECTION SITE`, SITE a hash of the deciding chain's name (a group's
//! chain: the policies selecting the pod) — because the kernel keeps at most 127 bytes of it
//! and a message read after a recompile must still find its site while the groups stay.
//!
//! A group's sets are the union of its policies' rules, so the kernel knows that some rule of
//! the group allowed a connection, not which: such sites have no `rule`, and the reader
//! resolves it with [`crate::evaluate`], the semantics the sets were compiled from. Tiers whose
//! rules compile one by one (AdminNetworkPolicy) give their sites an exact rule.

use std::collections::BTreeMap;

use fw::nft::{Match, Rule, Set, Stmt};

use super::groups::fnv1a;
use super::ruleset::addr_type;
use super::{DIRECTIONS, FAMILIES, peer_field, suffix};
use crate::model::{Direction, Family, Pod, PolicyRef};

/// The nfnetlink_log group every twill table logs to (policy, spoof checks).
pub const FLOW_LOG_GROUP: u16 = fw::nflog::TWILL_GROUP;
/// The tier of Kubernetes NetworkPolicy.
pub const TIER_NETWORK_POLICY: &str = "NetworkPolicy";
/// The "tier" of a connection no policy governs.
pub const TIER_NONE: &str = "none";

/// What the policy table logs: nothing, new connections it refuses, or every new connection
/// of a local pod (those no policy selects too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowLogs {
    #[default]
    Off,
    Denied,
    All,
}

impl std::str::FromStr for FlowLogs {
    type Err = String;

    fn from_str(s: &str) -> Result<FlowLogs, String> {
        match s {
            "off" => Ok(FlowLogs::Off),
            "denied" => Ok(FlowLogs::Denied),
            "all" => Ok(FlowLogs::All),
            _ => Err(format!("flow logs {s:?}: expected off, denied or all")),
        }
    }
}

/// Allowed or denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FlowVerdict {
    Allowed,
    Denied,
}

impl FlowVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            FlowVerdict::Allowed => "allowed",
            FlowVerdict::Denied => "denied",
        }
    }
}

/// What one logging rule stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowSite {
    pub verdict: FlowVerdict,
    pub direction: Direction,
    /// [`TIER_NETWORK_POLICY`], [`TIER_NONE`], or another tier's name.
    pub tier: String,
    /// The deciding policy, or (default deny, group allowances) the policies selecting the pod,
    /// as people name them: `NAMESPACE/NAME` for NetworkPolicy, `NAME` for cluster-scoped
    /// tiers.
    pub policies: Vec<String>,
    /// The deciding rule's index in `direction`, when the kernel knows it.
    pub rule: Option<usize>,
    /// `rule`, `default deny` or `no policy`.
    pub reason: &'static str,
}

/// The sites of one compiled table, by prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowSites {
    pub mode: FlowLogs,
    pub sites: BTreeMap<String, FlowSite>,
}

impl FlowSites {
    pub fn new(mode: FlowLogs) -> FlowSites {
        FlowSites { mode, sites: BTreeMap::new() }
    }

    pub fn get(&self, prefix: &str) -> Option<&FlowSite> {
        self.sites.get(prefix)
    }

    /// The statements to put before a verdict: a log statement when the mode logs this
    /// verdict, nothing otherwise. The site is recorded under its prefix, which `id` (short,
    /// no spaces) makes unique.
    pub fn log_stmts(&mut self, id: &str, site: FlowSite) -> Vec<Stmt> {
        let wanted = match site.verdict {
            FlowVerdict::Allowed => self.mode == FlowLogs::All,
            FlowVerdict::Denied => self.mode != FlowLogs::Off,
        };
        if !wanted {
            return Vec::new();
        }
        let prefix = prefix(site.verdict, site.direction, id);
        self.sites.insert(prefix.clone(), site);
        vec![Stmt::Log { group: FLOW_LOG_GROUP, prefix }]
    }

    /// NetworkPolicy sites of a group's chain: allowed by one of its rules, or denied by
    /// default.
    pub fn group_stmts(&mut self, chain: &str, dir: Direction, policies: Vec<PolicyRef>) -> [Vec<Stmt>; 2] {
        let policies: Vec<String> = policies.iter().map(PolicyRef::to_string).collect();
        let site = |verdict, reason| FlowSite {
            verdict,
            direction: dir,
            tier: TIER_NETWORK_POLICY.to_string(),
            policies: policies.clone(),
            rule: None,
            reason,
        };
        let id = format!("{:08x}", fnv1a(chain) as u32);
        [
            self.log_stmts(&id, site(FlowVerdict::Allowed, "rule")),
            self.log_stmts(&id, site(FlowVerdict::Denied, "default deny")),
        ]
    }

    /// With [`FlowLogs::All`], the base chain's last rules for `dir`: a local pod's new
    /// connection that no policy selected it for (it did not jump to a group) is logged,
    /// then goes on. Matched through the `local4`/`local6` sets ([`local_sets`]).
    pub fn open_rules(&mut self, dir: Direction) -> Vec<Rule> {
        let site = FlowSite {
            verdict: FlowVerdict::Allowed,
            direction: dir,
            tier: TIER_NONE.to_string(),
            policies: Vec::new(),
            rule: None,
            reason: "no policy",
        };
        let stmts = self.log_stmts("open", site);
        if stmts.is_empty() {
            return Vec::new();
        }
        let local = |family| match dir {
            Direction::Ingress => peer_field(Direction::Egress, family),
            Direction::Egress => peer_field(Direction::Ingress, family),
        };
        FAMILIES
            .into_iter()
            .map(|f| Rule::new(vec![Match::in_set(&[local(f)], local_set(f))], stmts.clone()))
            .collect()
    }
}

/// `twill allowed ingress 1a2b3c4d`, `twill allowed egress open`: at most 127 bytes as long
/// as `site` is short.
pub fn prefix(verdict: FlowVerdict, dir: Direction, site: &str) -> String {
    format!("twill {} {} {site}", verdict.as_str(), dir.field())
}

fn local_set(family: Family) -> String {
    format!("local{}", suffix(family))
}

/// With [`FlowLogs::All`], the addresses of every local pod, per family.
pub fn local_sets(mode: FlowLogs, locals: &[&Pod]) -> Vec<Set> {
    if mode != FlowLogs::All {
        return Vec::new();
    }
    FAMILIES
        .into_iter()
        .map(|family| {
            let mut ips: Vec<_> =
                locals.iter().flat_map(|p| p.ips.iter()).filter(|ip| Family::of(**ip) == family).collect();
            ips.sort();
            ips.dedup();
            let elems =
                ips.into_iter().map(|ip| fw::nft::Elem::new(vec![fw::nft::KeyPart::addr(*ip)])).collect();
            Set::new(local_set(family), &[addr_type(family)]).with_elems(elems)
        })
        .collect()
}

/// Every direction's [`FlowSites::open_rules`], keyed for the base chains.
pub fn open_rules(sites: &mut FlowSites) -> BTreeMap<Direction, Vec<Rule>> {
    DIRECTIONS.into_iter().map(|d| (d, sites.open_rules(d))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_prefixes_stay_short() {
        assert_eq!("denied".parse::<FlowLogs>(), Ok(FlowLogs::Denied));
        assert!("some".parse::<FlowLogs>().unwrap_err().contains("off, denied or all"));
        let p = prefix(FlowVerdict::Denied, Direction::Ingress, "1a2b3c4d");
        assert_eq!(p, "twill denied ingress 1a2b3c4d");
        assert!(p.len() <= fw::nft::LOG_PREFIX_MAX);
    }

    #[test]
    fn sites_follow_the_mode() {
        let pol = vec![PolicyRef::new("x", "deny-all")];
        let mut off = FlowSites::new(FlowLogs::Off);
        assert_eq!(off.group_stmts("ingress_x_1", Direction::Ingress, pol.clone()), [vec![], vec![]]);
        assert!(off.open_rules(Direction::Egress).is_empty() && off.sites.is_empty());
        let mut denied = FlowSites::new(FlowLogs::Denied);
        let [allow, deny] = denied.group_stmts("ingress_x_1", Direction::Ingress, pol.clone());
        assert!(allow.is_empty() && deny.len() == 1);
        let Stmt::Log { prefix, .. } = &deny[0] else { panic!("{deny:?}") };
        let site = denied.get(prefix).unwrap();
        assert_eq!(
            (site.verdict, site.reason, &site.policies[..]),
            (FlowVerdict::Denied, "default deny", &["x/deny-all".to_string()][..])
        );
        let mut all = FlowSites::new(FlowLogs::All);
        let [allow, _] = all.group_stmts("ingress_x_1", Direction::Ingress, pol);
        assert_eq!(allow.len(), 1);
        assert_eq!(all.open_rules(Direction::Egress).len(), 2);
        assert_eq!(all.sites.len(), 3);
    }
}
