//! Kubernetes NetworkPolicy for twill: the `networking.k8s.io/v1` model parsed from manifests,
//! its semantics as a pure function ([`evaluate`], what `twill policy explain` prints), and a
//! compiler ([`compile`]) from the policies that touch one node's pods to ONE nftables table
//! whose per-packet cost does not grow with the number of peers: peers and ports live in sets,
//! pods are found through verdict maps. [`apply_batch`] turns a compiled ruleset into one
//! atomic [`fw::Batch`] that replaces the previous one with no open window.
//!
//! Everything here is pure; applying the batch (`fw::apply`) is the caller's effect.

mod compile;
mod decode;
mod eval;
mod model;
mod names;
mod select;
mod selector;
mod verdict;
mod world;

pub use decode::{Object, ParseError, parse_value, parse_yaml};
pub use model::{
    Direction, Family, IpBlock, NAMESPACE_NAME_LABEL, NamedPort, Namespace, NetworkPolicy, Node, NsName, Peer,
    PodRef, PolicyPort, PolicyRef, PortSpec, Protocol, Rule, Pod,
};
pub use selector::{LabelSelector, Labels, Operator, Requirement, SelectorError};
pub use eval::{evaluate, evaluate_family};
pub use verdict::{Decision, RuleRef, Verdict};
pub use world::{Endpoint, World};
pub use compile::{Chain, FAMILY, Ruleset, Set, TABLE, apply_batch, compile, delete_batch, update_batch};
