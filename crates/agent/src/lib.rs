//! twilld, twill's node agent, and the cluster datastore it shares with `twill lab`.
//!
//! One agent runs per node. It joins the cluster through a [`store::Datastore`] (a shared
//! directory or etcd), leases a pod subnet for the node out of the cluster CIDR
//! ([`membership`], [`subnet`]), writes the node's CNI network list ([`cniconf`]), routes to
//! the other nodes' pod subnets through a [`backend::Backend`] (host-gw or vxlan),
//! masquerades traffic leaving the cluster ([`masq`]), enforces NetworkPolicy for the node's
//! pods ([`policy`]), records what its filters decided ([`flows`]) and serves `/readyz`,
//! `/metrics` and `/flows` ([`health`], [`metrics`]). Its
//! reconciler is flannel's: woken by datastore watches and by a timer, every step
//! idempotent, so drift (a deleted route, FDB entry, device, table or file) is repaired
//! within one resync period.
//!
//! The datastore, its layout and its records come from `twill-cluster`, shared with
//! `twill cluster`, `twill lab` and the plugins.

pub mod absence;
pub mod agent;
pub mod backend;
pub mod bgp;
pub mod bird;
pub mod cniconf;
pub mod conf;
pub mod conf_file;
pub mod flows;
pub mod health;
pub mod ippools;
pub mod log;
pub mod masq;
pub mod membership;
pub mod metrics;
pub mod node;
pub mod notify;
pub mod pods;
pub mod policy;
mod reconcile;
pub mod state;
pub mod subnet;
pub mod systemd;
pub mod watcher;

pub use agent::{AgentError, run};
pub use conf::{AgentConf, Args};
// The datastore and its records live in twill-cluster; the agent's modules use them as their own.
pub use cluster::{BackendKind, NamespaceRecord, NodeRecord, PodRecord, PolicyRecord, Registry, SubnetOwner};
pub use cluster::{Datastore, DatastoreConf, Endpoint};
pub use cluster::{bgppeer, layout, record, registry, store};
