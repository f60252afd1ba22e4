//! What [`crate::evaluate`] answers, and how `twill policy explain` prints it.

use std::fmt;

use crate::admin::{Action, TierRuleRef};
use crate::model::{Direction, Family, PolicyRef, Protocol};
use crate::world::Endpoint;

/// The decision about one connection, with its reasons on both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub from: Endpoint,
    pub to: Endpoint,
    pub protocol: Protocol,
    pub port: u16,
    pub family: Family,
    /// The source's side: may it send this?
    pub egress: Decision,
    /// The destination's side: may it receive this?
    pub ingress: Decision,
}

/// One side's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Source and destination are the same pod: the traffic stays inside the pod's network
    /// namespace, where no node-side filter sees it (Kubernetes leaves loopback undefined).
    Loopback,
    /// This end is an address outside the world's pods: no NetworkPolicy governs its side.
    NotAPod,
    /// The source is an address of the destination pod's own node: always allowed, as
    /// Kubernetes requires (kubelet probes).
    FromOwnNode,
    /// No policy selects the pod in this direction: it is not isolated.
    NotSelected,
    /// These rules allow it (every rule that matches, in policy order).
    Allowed(Vec<RuleRef>),
    /// These policies isolate the pod in this direction and none of their rules matches.
    Denied(Vec<PolicyRef>),
    /// The endpoint names a pod the world does not have.
    UnknownPod,
    /// An AdminNetworkPolicy or BaselineAdminNetworkPolicy rule decided (its action, Allow
    /// or Deny, is the decision).
    Tier(TierRuleRef),
    /// An AdminNetworkPolicy rule passed the connection on; `then` is what NetworkPolicy (or,
    /// for a pod no NetworkPolicy selects, the baseline) decided.
    Passed { by: TierRuleRef, then: Box<Decision> },
}

/// One rule of one policy: `x/allow-web ingress[0]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleRef {
    pub policy: PolicyRef,
    pub direction: Direction,
    pub index: usize,
}

impl Verdict {
    /// Allowed only when both the source may send and the destination may receive.
    pub fn allowed(&self) -> bool {
        self.egress.allows() && self.ingress.allows()
    }
}

impl Decision {
    pub fn allows(&self) -> bool {
        match self {
            Decision::Denied(_) | Decision::UnknownPod => false,
            Decision::Tier(rule) => rule.action == Action::Allow,
            Decision::Passed { then, .. } => then.allows(),
            _ => true,
        }
    }

    /// The admin or baseline rule that decided or passed, if any: what flow logs name.
    pub fn tier_rule(&self) -> Option<&TierRuleRef> {
        match self {
            Decision::Tier(rule) => Some(rule),
            Decision::Passed { then, by } => then.tier_rule().or(Some(by)),
            _ => None,
        }
    }

    fn explain(&self, dir: Direction) -> String {
        let list = |items: Vec<String>| items.join(", ");
        match self {
            Decision::Loopback => "allowed: same pod (loopback never leaves the pod)".into(),
            Decision::NotAPod => "not a pod: no policy applies".into(),
            Decision::FromOwnNode => "allowed: from the pod's own node (always allowed)".into(),
            Decision::NotSelected => format!("allowed: not selected by any {dir} policy"),
            Decision::Allowed(rules) => {
                format!("allowed by {}", list(rules.iter().map(|r| r.to_string()).collect()))
            }
            Decision::Denied(policies) => format!(
                "denied: isolated by {}; no {dir} rule matches",
                list(policies.iter().map(|p| p.to_string()).collect())
            ),
            Decision::UnknownPod => "denied: no such pod".into(),
            Decision::Tier(rule) if rule.action == Action::Allow => format!("allowed by {rule}"),
            Decision::Tier(rule) => format!("denied by {rule}"),
            Decision::Passed { by, then } => format!("passed by {by}; then {}", then.explain(dir)),
        }
    }
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}[{}]", self.policy, self.direction, self.index)
    }
}

impl fmt::Display for Verdict {
    /// ```text
    /// y/a -> x/a TCP/80 (IPv4): denied
    ///   egress  from y/a: allowed: not selected by any egress policy
    ///   ingress to   x/a: denied: isolated by x/deny-all; no ingress rule matches
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.allowed() { "allowed" } else { "denied" };
        writeln!(
            f,
            "{} -> {} {}/{} ({}): {verdict}",
            self.from, self.to, self.protocol, self.port, self.family
        )?;
        writeln!(f, "  egress  from {}: {}", self.from, self.egress.explain(Direction::Egress))?;
        write!(f, "  ingress to   {}: {}", self.to, self.ingress.explain(Direction::Ingress))
    }
}
