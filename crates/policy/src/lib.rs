//! Kubernetes NetworkPolicy for twill (docs/policy.md):
//!
//! - the `networking.k8s.io/v1` model, parsed and validated from manifests ([`parse_yaml`]);
//! - the admin tiers around it, `policy.networking.k8s.io/v1alpha1` AdminNetworkPolicy and
//!   BaselineAdminNetworkPolicy ([`admin`]): ordered first-match rules (Allow, Deny, Pass)
//!   before NetworkPolicy and, for pods no NetworkPolicy selects, after it;
//! - its semantics as a pure function over a [`World`] ([`evaluate`]): a connection is allowed
//!   iff the source may send it and the destination may receive it; the [`Verdict`] names the
//!   policies and rules that decided, which is what `twill policy explain` prints;
//! - a compiler ([`compile`]) from the policies touching one node's pods to ONE nftables table
//!   whose per-packet cost grows neither with peers nor with policies: pods are found through
//!   verdict maps, peers and ports are set elements. [`apply_batch`] replaces the table in one
//!   atomic transaction with no open window; [`update_batch`] changes only elements when the
//!   table's shape is unchanged. Replies of allowed connections pass by conntrack.
//!   [`compile_logged`] adds flow log statements and the [`FlowSites`] catalogue that maps
//!   their prefixes back to the verdict, tier, policies and rule (docs/flows.md).
//!
//! Everything here is pure; applying a batch (`fw::nft::Conn::apply`) is the caller's effect.

pub mod admin;
mod compile;
mod decode;
mod eval;
mod model;
pub mod names;
mod select;
mod selector;
mod verdict;
mod world;

pub use admin::{Action, AdminPeer, AdminPolicy, AdminPort, AdminRule, Subject, Tier, TierRuleRef};
pub use compile::flowlog::{FLOW_LOG_GROUP, TIER_NETWORK_POLICY, TIER_NONE};
pub use compile::{
    FAMILY, FlowLogs, FlowSite, FlowSites, FlowVerdict, Ruleset, TABLE, TierPlan, TierRulePlan, apply_batch,
    compile, compile_logged, delete_batch, plan_tiers, table_id, tier_chain, update_batch,
};
pub use decode::{
    ADMIN_API_VERSION, KINDS, Object, ParseError, PodObject, documents, metadata, parse_admin_spec,
    parse_document, parse_policy_spec, parse_value, parse_yaml, reader,
};
pub use eval::{evaluate, evaluate_family};
pub use model::{
    Direction, Family, IpBlock, NAMESPACE_NAME_LABEL, NamedPort, Namespace, NetworkPolicy, Node, NsName,
    Peer, Pod, PodRef, PolicyPort, PolicyRef, PortSpec, Protocol, Rule,
};
pub use selector::{LabelSelector, Labels, Operator, Requirement, SelectorError};
pub use verdict::{Decision, RuleRef, Verdict};
pub use world::{Endpoint, World};
