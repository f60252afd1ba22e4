//! The NetworkPolicy controller: a step of the agent's reconcile pass (woken by watches of
//! `/twill/pods/`, `/twill/namespaces/`, `/twill/policies/`, `/twill/adminpolicies/` and
//! `/twill/baselinepolicies/` and by the resync timer). AdminNetworkPolicies and the
//! BaselineAdminNetworkPolicy are compiled into the same table, in the same transaction.
//!
//! Each pass reads the three prefixes, builds the [`policy::World`] ([`world`]), compiles
//! the ruleset for the pods on this node ([`policy::compile`]) and makes the kernel's
//! `table inet twill_policy` match it in ONE nft transaction ([`table`], decided by
//! [`plan`]): element updates when only elements changed, else an atomic replacement, so
//! a default-deny pod is never open, not even during an update. A table someone deleted or
//! edited is put back on the next pass. Records that cannot be used (an invalid policy
//! spec) hold the table as it is rather than drop the policy and open its pods; a
//! datastore outage keeps the last table, repaired from the last known cluster.
//!
//! Same-node pods talk through the bridge, so the controller also keeps br_netfilter's
//! sysctls on ([`bridge`]) whenever a local pod is isolated.

pub mod bridge;
pub mod metrics;
pub mod plan;
pub mod table;
pub mod world;

use policy::{Direction, FlowLogs, Ruleset, Tier, World, compile_logged};

use crate::agent::Agent;
use crate::flows::{FlowView, SharedView};
use crate::layout;
use crate::record::{NodeRecord, PodRecord, RecordError};
use crate::registry::{Records, Registry};
use crate::store::Datastore;
use bridge::{BridgeError, ensure_bridge_netfilter};
use metrics::{PolicyMetrics, TableStats};
use plan::wanted;
use table::{Applied, PolicyTable};
pub use world::{ClusterRecords, RecordProblem, build_world};

/// Why a pass did not leave the table as the cluster wants it.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("read {prefix} from the datastore: {source}")]
    Read { prefix: &'static str, source: RecordError },
    #[error("{count} unusable record(s), policy table held as it is until they are fixed; first: {first}")]
    Records { count: usize, first: String },
    #[error("nftables table inet twill_policy: {0}")]
    Table(#[from] fw::nft::Error),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
}

/// The controller's memory between passes.
#[derive(Debug)]
pub struct PolicyController {
    node: String,
    table: PolicyTable,
    /// What the cluster last wanted: repairs use it while the datastore is away or holds
    /// unusable records, and an unchanged cluster is not compiled again.
    wanted: Option<Wanted>,
    /// The last error logged, so a persisting one is logged once (and counted every pass).
    last_error: Option<String>,
    /// What the table logs, and where the flow log reader finds what the logs mean.
    logs: FlowLogs,
    view: SharedView,
}

/// This node's ruleset (`None`: no table) and the records it was compiled from.
#[derive(Debug)]
struct Wanted {
    records: ClusterRecords,
    ruleset: Option<Ruleset>,
    stats: TableStats,
}

/// One pass's result when the cluster could be read.
struct Synced {
    applied: Applied,
    stats: TableStats,
    revision: u64,
}

impl PolicyController {
    pub fn new(node: &str) -> PolicyController {
        PolicyController::logging(node, FlowLogs::Off, SharedView::default())
    }

    /// A controller whose table logs `logs` and which publishes each compile to `view`.
    pub fn logging(node: &str, logs: FlowLogs, view: SharedView) -> PolicyController {
        PolicyController {
            node: node.to_string(),
            table: PolicyTable::new(),
            wanted: None,
            last_error: None,
            logs,
            view,
        }
    }

    /// One pass; false when it failed (logged once per distinct error, counted every time).
    pub fn sync(&mut self, store: &dyn Datastore, netns: &netns::NetNs, m: &PolicyMetrics) -> bool {
        let outcome = self.pass(store, netns);
        match outcome {
            Ok(s) => {
                report_applied(&s);
                m.synced(s.stats, s.revision);
                if s.applied.verb != "kept" {
                    m.applied(s.applied.verb, s.applied.duration, s.applied.repair);
                }
                if self.last_error.take().is_some() {
                    tracing::info!(revision = s.revision, "policy table in sync again");
                }
                true
            }
            Err(e) => {
                m.error();
                let text = e.to_string();
                if self.last_error.as_ref() != Some(&text) {
                    tracing::error!(error = %text, "cannot enforce NetworkPolicy");
                    self.last_error = Some(text);
                }
                false
            }
        }
    }

    fn pass(&mut self, store: &dyn Datastore, netns: &netns::NetNs) -> Result<Synced, PolicyError> {
        let (records, revision) = match read_records(store) {
            Ok(r) => r,
            Err(e) => return self.hold(e),
        };
        let wanted = match self.wanted.take() {
            Some(w) if w.records == records => w,
            old => match self.compute(records) {
                Ok(w) => w,
                Err(e) => {
                    self.wanted = old;
                    return self.hold(e);
                }
            },
        };
        let applied = self.table.ensure(wanted.ruleset.as_ref());
        let (stats, isolating) = (wanted.stats, wanted.ruleset.is_some());
        self.wanted = Some(wanted);
        let applied = applied?;
        // After the table: routed pods are filtered even if bridged ones cannot be.
        if isolating {
            ensure_bridge_netfilter(netns)?;
        }
        Ok(Synced { applied, stats, revision })
    }

    /// Keeps enforcing (and repairing) what the cluster last wanted, and reports `e`.
    fn hold(&mut self, e: PolicyError) -> Result<Synced, PolicyError> {
        if let Some(w) = &self.wanted {
            self.table.ensure(w.ruleset.as_ref())?;
        }
        Err(e)
    }

    /// Builds the world and compiles this node's ruleset; unusable records are an error.
    fn compute(&self, records: ClusterRecords) -> Result<Wanted, PolicyError> {
        let (world, problems) = build_world(&records);
        if let Some(first) = problems.first() {
            return Err(PolicyError::Records { count: problems.len(), first: first.to_string() });
        }
        let local = world.pods_on(&self.node);
        let (ruleset, sites) = compile_logged(&world, &local, self.logs);
        let ruleset = wanted(ruleset);
        let stats = stats(&world, &local, ruleset.as_ref());
        self.view.publish(FlowView::new(&self.node, world, sites));
        Ok(Wanted { records, ruleset, stats })
    }
}

/// The records policy depends on, pods with their operator metadata laid over them, nodes
/// reduced to what policy reads of them ([`policy_view`]), and the lowest datastore revision
/// they were read at; undecodable records are an error.
pub fn read_records(store: &dyn Datastore) -> Result<(ClusterRecords, u64), PolicyError> {
    let reg = Registry::new(store);
    let pods = read(layout::PODS, reg.pods())?;
    let metas = read(layout::POD_META, reg.pod_metas())?;
    let namespaces = read(layout::NAMESPACES, reg.namespaces())?;
    let policies = read(layout::POLICIES, reg.policies())?;
    let admin = read(layout::ADMIN_POLICIES, reg.admin_policies(Tier::Admin))?;
    let baseline = read(layout::BASELINE_POLICIES, reg.admin_policies(Tier::Baseline))?;
    let nodes = read(layout::NODES, reg.nodes())?;
    let revision = [&pods.revision, &metas.revision, &namespaces.revision, &policies.revision]
        .into_iter()
        .chain([&admin.revision, &baseline.revision, &nodes.revision])
        .copied()
        .min()
        .unwrap_or_default();
    let errors: Vec<&RecordError> = [&pods.errors, &metas.errors, &namespaces.errors, &policies.errors]
        .into_iter()
        .flatten()
        .chain(admin.errors.iter())
        .chain(baseline.errors.iter())
        .chain(nodes.errors.iter())
        .collect();
    if let Some(first) = errors.first() {
        return Err(PolicyError::Records { count: errors.len(), first: first.to_string() });
    }
    let meta_of = |p: &PodRecord| metas.items.iter().find(|m| m.namespace == p.namespace && m.name == p.name);
    let pods = pods.items.into_iter().map(|p| {
        let meta = meta_of(&p);
        p.with_meta(meta)
    });
    let records = ClusterRecords {
        pods: pods.collect(),
        namespaces: namespaces.items,
        policies: policies.items,
        admin_policies: admin.items,
        baseline_policies: baseline.items,
        nodes: nodes.items.into_iter().map(policy_view).collect(),
    };
    Ok((records, revision))
}

/// A node record as policy reads it: name, addresses (FromOwnNode, `nodes` peers) and labels
/// (`nodes` peers). Heartbeat, expiry, health and BGP state change on every renewal and would
/// make every pass look like a new cluster to compile.
fn policy_view(n: NodeRecord) -> NodeRecord {
    NodeRecord { expires: 0, heartbeat: 0, health: String::new(), bgp: None, vtep_mac: None, ..n }
}

fn read<T>(prefix: &'static str, r: Result<Records<T>, RecordError>) -> Result<Records<T>, PolicyError> {
    r.map_err(|source| PolicyError::Read { prefix, source })
}

fn stats(world: &World, local: &[policy::PodRef], want: Option<&Ruleset>) -> TableStats {
    let isolated = |r: &policy::PodRef| {
        world.pod(r).is_some_and(|p| {
            [Direction::Ingress, Direction::Egress].iter().any(|d| !world.selecting(p, *d).is_empty())
                || [Tier::Admin, Tier::Baseline].iter().any(|t| !world.admin_selecting(*t, p).is_empty())
        })
    };
    TableStats {
        policies: world.policies().count()
            + world.admin_policies(Tier::Admin).count()
            + world.admin_policies(Tier::Baseline).count(),
        isolated_pods: local.iter().filter(|r| isolated(r)).count(),
        rules: want.map_or(0, Ruleset::rule_count),
        elements: want.map_or(0, Ruleset::element_count),
    }
}

fn report_applied(s: &Synced) {
    let a = &s.applied;
    if let Some(e) = &a.fell_back {
        tracing::warn!(error = %e, "policy table changed behind the agent's back; replaced it whole");
    }
    if a.verb == "kept" {
        return;
    }
    let took = format!("{:.1}ms", a.duration.as_secs_f64() * 1e3);
    let st = &s.stats;
    let (policies, isolated_pods, elements) = (st.policies, st.isolated_pods, st.elements);
    match a.repair {
        true => tracing::warn!(
            change = a.verb,
            policies,
            isolated_pods,
            elements,
            %took,
            revision = s.revision,
            "policy table had drifted; put it back"
        ),
        false => tracing::info!(
            change = a.verb,
            policies,
            isolated_pods,
            elements,
            %took,
            revision = s.revision,
            "policy table applied"
        ),
    }
}

impl Agent {
    /// The reconcile step: NetworkPolicy for this node's pods.
    pub(crate) fn ensure_policy(&mut self) -> bool {
        self.policy.sync(self.store.as_ref(), &self.netns, &self.metrics.policy)
    }
}
