//! The agent's life: start (health endpoint, backend, join the cluster), then a loop that
//! reconciles on every datastore change and on a timer and renews the lease, then leave on
//! SIGTERM/SIGINT. A datastore outage only delays: routes already programmed stay, the
//! resync keeps repairing them from the last known peers, and the watcher and the renewal
//! reconnect and catch up on their own.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use netns::NetNs;

use crate::absence::DatastoreHealth;
use crate::backend::{self, Backend, BackendConf, BackendError, Peer};
use crate::bgppeer::{BGPPEERS, BgpPeers};
use crate::conf::AgentConf;
use crate::ippools::IpPoolReconciler;
use crate::layout;
use crate::masq::Masquerade;
use crate::membership::{self, MemberConf, MemberError, Membership};
use crate::metrics::{Counter, Metrics};
use crate::node;
use crate::pods::PodPublisher;
use crate::policy::PolicyController;
use crate::record::NodeBgp;
use crate::store::{Datastore, StoreError};
use crate::watcher::{Input, Watcher};
use crate::{health, notify, state};

const MAX_JOIN_BACKOFF: Duration = Duration::from_secs(5);
/// How soon a failed renewal is tried again.
const RENEW_RETRY: Duration = Duration::from_secs(1);

/// What stops the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("serve health on {addr}: {source}")]
    Health { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("start watcher thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("open this node's network namespace: {0}")]
    Netns(#[from] netns::Error),
    #[error("enable IP forwarding: {0}")]
    Forwarding(nl::Error),
}

/// A running agent.
pub struct Agent {
    pub(crate) conf: AgentConf,
    pub(crate) store: Arc<dyn Datastore>,
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) masq: Masquerade,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) member: MemberConf,
    pub(crate) membership: Membership,
    /// The peers of the last successful datastore read, and those held (crate::absence).
    pub(crate) peers: Vec<Peer>,
    /// Peers among `peers` whose record vanished while the datastore was not healthy.
    pub(crate) held: BTreeSet<String>,
    /// The node records were read once: until then the kernel's peer entries are left alone.
    pub(crate) peers_read: bool,
    /// How the datastore answered lately: when a vanished record may be believed.
    pub(crate) datastore: DatastoreHealth,
    /// The last renewal failed (to log the recovery once).
    pub(crate) renew_failing: bool,
    pub(crate) netns: NetNs,
    pub(crate) policy: PolicyController,
    pub(crate) pods: PodPublisher,
    pub(crate) ippools: IpPoolReconciler,
    /// What the node record says of this agent (`ready`, `degraded: ...`).
    pub(crate) health: String,
    /// The BGPPeers of the last successful read (bgp backend).
    pub(crate) bgp_peers: BgpPeers,
}

/// Runs twilld until `rx` delivers [`Input::Shutdown`] (or every sender is gone); `tx`
/// feeds the same channel (the watcher's wake-ups).
pub fn run(conf: AgentConf, tx: Sender<Input>, rx: Receiver<Input>) -> Result<(), AgentError> {
    let metrics = Arc::new(Metrics::new(conf.backend == crate::record::BackendKind::Bgp));
    let addr = conf.health_listen;
    health::spawn(addr, metrics.clone()).map_err(|source| AgentError::Health { addr, source })?;
    let Prepared { store, backend, netns } = prepare(&conf)?;
    let member = member_conf(&conf, backend.as_ref());
    let Some(membership) = join_until_ok(store.as_ref(), &member, &conf, &rx, &metrics) else {
        tracing::info!("stopped before joining");
        return Ok(());
    };
    let masq = match conf.masquerade {
        true => Masquerade::new(conf.pool.cluster(), conf.pool6.map(|p| p.cluster())),
        false => Masquerade::disabled(),
    };
    let peers = Vec::new();
    let ttl = conf.ttl;
    let view = crate::flows::SharedView::default();
    let flows_stop = Arc::new(AtomicBool::new(false));
    let logs = start_flow_logs(&conf, view.clone(), &metrics, &flows_stop);
    let policy = PolicyController::logging(&conf.node, logs, view);
    let pods = PodPublisher::new(&conf.node, &state::journal_dir(&conf.state_dir), 2 * conf.ttl);
    let notifier = notify::spawn(&state::notify_socket(&conf.state_dir), tx.clone());
    if let Err(e) = &notifier {
        tracing::warn!(error = %e, "cannot listen for twill-pod notifications; pods are published every resync");
    }
    let ipam_grace = conf.ipam_grace;
    let mut agent = Agent {
        conf,
        store,
        backend,
        masq,
        metrics,
        member,
        membership,
        peers,
        held: BTreeSet::new(),
        peers_read: false,
        datastore: DatastoreHealth::new(ttl, Instant::now()),
        renew_failing: false,
        netns,
        policy,
        pods,
        ippools: IpPoolReconciler::new(ipam_grace),
        health: membership::HEALTH_JOINING.to_string(),
        bgp_peers: BgpPeers::default(),
    };
    agent.joined();
    let stop = agent.spawn_watcher(tx)?;
    agent.run_loop(&rx);
    stop.store(true, Ordering::Relaxed);
    flows_stop.store(true, Ordering::Relaxed);
    agent.leave();
    Ok(())
}

/// Starts the flow log reader unless `--flow-logs off`; returns what the policy table is to
/// log. A reader that cannot start (the group taken, a kernel without nfnetlink_log, whose
/// tables would then refuse log statements) turns the table's logs off: enforcing policy
/// never depends on logging it.
fn start_flow_logs(
    conf: &AgentConf,
    view: crate::flows::SharedView,
    metrics: &Metrics,
    stop: &Arc<AtomicBool>,
) -> policy::FlowLogs {
    if conf.flow_logs == policy::FlowLogs::Off {
        return policy::FlowLogs::Off;
    }
    let started = crate::flows::spawn(view, metrics.flows.clone(), conf.state_dir.clone(), stop.clone());
    match started {
        Ok(()) => {
            tracing::info!(mode = ?conf.flow_logs, group = fw::nflog::TWILL_GROUP, "flow logs on");
            conf.flow_logs
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read flow logs; the policy table logs nothing, /flows stays empty");
            policy::FlowLogs::Off
        }
    }
}

/// What must work before the node joins.
struct Prepared {
    store: Arc<dyn Datastore>,
    backend: Box<dyn Backend>,
    netns: NetNs,
}

/// The datastore client, forwarding and the backend.
fn prepare(conf: &AgentConf) -> Result<Prepared, AgentError> {
    let store = conf.datastore.open()?;
    check_datastore(store.as_ref())?;
    let datastore = store.describe();
    tracing::info!(node = %conf.node, node_ip = %conf.node_ip, backend = %conf.backend, %datastore, "twilld starting");
    let netns = NetNs::current()?;
    node::ensure_forwarding(&netns, conf.pool6.is_some()).map_err(AgentError::Forwarding)?;
    let missing = node::missing_plugins(&conf.cni_bin_dir);
    if !missing.is_empty() {
        let dir = conf.cni_bin_dir.display();
        let missing = missing.join(",");
        tracing::warn!(%dir, %missing, "CNI plugins missing (install them with `twill install`)");
    }
    let backend_conf = BackendConf {
        node: conf.node.clone(),
        node_ip: conf.node_ip,
        underlay: conf.underlay.clone(),
        state_dir: conf.state_dir.clone(),
        bgp: conf.bgp.clone(),
    };
    let backend = backend::build(conf.backend, &backend_conf)?;
    Ok(Prepared { store, backend, netns })
}

/// Refuses to start with TLS settings the datastore rejects (a wrong CA, a missing or
/// refused client certificate); a datastore that is merely away is waited for while joining.
fn check_datastore(store: &dyn Datastore) -> Result<(), AgentError> {
    match store.check() {
        Ok(()) => Ok(()),
        Err(e) if e.is_unavailable() => {
            let datastore = store.describe();
            tracing::warn!(%datastore, error = %e, "datastore not reachable yet; joining will retry");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn member_conf(conf: &AgentConf, backend: &dyn Backend) -> MemberConf {
    let node_ip6 = match (conf.pool6, conf.node_ip) {
        (Some(_), std::net::IpAddr::V4(_)) => node::underlay_ip6(&conf.underlay),
        _ => None,
    };
    MemberConf {
        node: conf.node.clone(),
        node_ip: conf.node_ip,
        node_ip6,
        pool: conf.pool,
        pool6: conf.pool6,
        backend: conf.backend,
        vtep_mac: backend.vtep_mac(),
        bgp: conf.bgp.as_ref().map(|b| NodeBgp {
            asn: b.asn(),
            route_reflector: b.is_route_reflector(&conf.labels),
            sessions: 0,
            sessions_up: 0,
        }),
        ttl: conf.ttl,
        labels: conf.labels.clone(),
        http: membership::http_address(conf.health_listen, conf.node_ip),
    }
}

/// Joins, retrying with backoff while the datastore is unreachable or the pool is full;
/// `None` when told to shut down meanwhile.
fn join_until_ok(
    store: &dyn Datastore,
    member: &MemberConf,
    conf: &AgentConf,
    rx: &Receiver<Input>,
    metrics: &Metrics,
) -> Option<Membership> {
    let prior = state::load_subnets(&conf.state_dir);
    let mut backoff = Duration::from_millis(500);
    loop {
        match membership::join(store, member, &prior) {
            Ok(m) => return Some(m),
            Err(e) => {
                if matches!(e, MemberError::Store(_)) {
                    metrics.add(Counter::DatastoreError, 1);
                }
                let retry = format!("{}ms", backoff.as_millis());
                tracing::warn!(error = %e, retry_in = %retry, "cannot join the cluster yet");
                crate::systemd::status(&format!("cannot join the cluster yet: {e}"));
            }
        }
        match rx.recv_timeout(backoff) {
            Ok(Input::Shutdown) | Err(RecvTimeoutError::Disconnected) => return None,
            Ok(Input::Changed) | Err(RecvTimeoutError::Timeout) => {}
        }
        backoff = (backoff * 2).min(MAX_JOIN_BACKOFF);
    }
}

impl Agent {
    /// Starts the watches of the node records and of what NetworkPolicy depends on;
    /// returns the flag that stops them.
    fn spawn_watcher(&self, tx: Sender<Input>) -> Result<Arc<AtomicBool>, AgentError> {
        let stop = Arc::new(AtomicBool::new(false));
        for prefix in [
            layout::NODES,
            layout::PODS,
            layout::POD_META,
            layout::NAMESPACES,
            layout::POLICIES,
            layout::ADMIN_POLICIES,
            layout::BASELINE_POLICIES,
            BGPPEERS,
        ] {
            let watcher = Watcher {
                prefix,
                store: self.store.clone(),
                tx: tx.clone(),
                stop: stop.clone(),
                metrics: self.metrics.clone(),
            };
            watcher.spawn().map_err(AgentError::Thread)?;
        }
        Ok(stop)
    }

    /// A third of the TTL, so two renewals may fail before the lease runs out.
    fn renew_every(&self) -> Duration {
        self.conf.ttl / 3
    }

    fn run_loop(&mut self, rx: &Receiver<Input>) {
        let mut next_resync = Instant::now();
        let mut next_renew = Instant::now() + self.renew_every();
        loop {
            let wait = next_resync.min(next_renew).saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Input::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Input::Changed) => {
                    // Wake-ups that piled up are one reconcile.
                    for more in rx.try_iter() {
                        if more == Input::Shutdown {
                            return;
                        }
                    }
                    self.reconcile();
                    next_resync = Instant::now() + self.conf.resync;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if now >= next_renew {
                next_renew = now + if self.renew() { self.renew_every() } else { RENEW_RETRY };
            }
            if now >= next_resync {
                self.reconcile();
                next_resync = Instant::now() + self.conf.resync;
            }
        }
    }

    /// Records the membership: state file, metrics, log.
    pub(crate) fn joined(&mut self) {
        let m = self.membership;
        if let Err(e) = state::save_subnets(&self.conf.state_dir, &m.subnets()) {
            tracing::warn!(error = %e, "cannot remember the subnet in the state directory");
        }
        let nets: Vec<_> = [Some(m.subnet), m.subnet6].into_iter().flatten().collect();
        self.metrics.set_lease(Some((self.conf.node.clone(), nets)));
        let subnet6 = m.subnet6.map(|s| s.to_string()).unwrap_or_default();
        tracing::info!(subnet = %m.subnet, %subnet6, lease = %m.lease, "joined the cluster");
    }

    /// Renews the lease; false when the datastore could not be reached.
    fn renew(&mut self) -> bool {
        let renewed =
            membership::renew(self.store.as_ref(), &self.member, &mut self.membership, &self.health);
        match &renewed {
            Err(MemberError::Store(_)) => self.datastore.failed(),
            // A refused claim is an answer too.
            _ => self.datastore.answered(Instant::now()),
        }
        match renewed {
            Ok(r) => {
                self.metrics.add(Counter::LeaseRenewal, 1);
                if std::mem::take(&mut self.renew_failing) {
                    tracing::info!(lease = %self.membership.lease, "lease renewed again");
                }
                if r.rejoined || r.changed {
                    tracing::warn!(subnets_changed = r.changed, "lease had been lost; joined again");
                    self.joined();
                    self.reconcile();
                }
                true
            }
            Err(e) => {
                self.metrics.add(Counter::DatastoreError, 1);
                tracing::warn!(error = %e, "lease renewal failed");
                self.renew_failing = true;
                false
            }
        }
    }

    /// Leaves the cluster (best-effort). Kernel state stays: local pods keep working, and a
    /// restarted agent adopts it.
    fn leave(&mut self) {
        crate::systemd::stopping();
        self.metrics.set_ready(false);
        // BIRD first: its sessions close with a Cease, so the peers withdraw this node's
        // routes at once rather than when the datastore tells them.
        self.backend.shutdown();
        for e in membership::leave(self.store.as_ref(), &self.member, &self.membership) {
            self.metrics.add(Counter::DatastoreError, 1);
            tracing::warn!(error = %e, "leaving the cluster: step failed");
        }
        self.metrics.set_lease(None);
        tracing::info!(node = %self.conf.node, "left the cluster");
    }
}
