//! One reconcile pass: every step is idempotent and runs whatever the others did, so a pass
//! repairs whatever drifted — a deleted route, FDB entry, vxlan device, masquerade or policy
//! table, network list — and follows whatever changed in the cluster (peers joining, leaving
//! or expiring; pods, namespaces and NetworkPolicies). The node is ready once its subnet is leased and the network list written.

use std::time::Instant;

use ipnet::IpNet;

use crate::absence::{PeerPlan, plan_peers};
use crate::agent::Agent;
use crate::backend::{Applied, Local, Peer};
use crate::bgppeer::{BGPPEERS, BgpPeerRecord, BgpPeers};
use crate::cniconf::{CniConf, ensure_conflists};
use crate::metrics::Counter;
use crate::record::BackendKind;
use crate::registry::Registry;
use crate::subnet::overlaps;
use crate::{membership, node, state};

impl Agent {
    /// Runs every step; counts the pass and, if any step failed, the failure. The node is
    /// ready after the first pass that wrote the network list: by then the backend has had
    /// its first go at the devices and the peers too.
    pub(crate) fn reconcile(&mut self) {
        self.metrics.add(Counter::Reconcile, 1);
        let steps = [
            ("cni-config", self.ensure_cni_config()),
            ("forwarding", self.ensure_forwarding()),
            ("masquerade", self.ensure_masquerade()),
            ("backend", self.ensure_backend()),
            ("pods", self.ensure_pods()),
            ("policy", self.ensure_policy()),
            ("ippools", self.ensure_ippools()),
        ];
        if steps[0].1 && !self.metrics.is_ready() {
            // systemd first: whoever sees /readyz answer 200 may rely on READY=1 being sent.
            crate::systemd::ready(&format!(
                "ready: node {}, subnet {}",
                self.conf.node, self.membership.subnet
            ));
            self.metrics.set_ready(true);
        }
        let failed: Vec<&str> = steps.iter().filter(|(_, ok)| !ok).map(|(name, _)| *name).collect();
        if !failed.is_empty() {
            self.metrics.add(Counter::ReconcileError, 1);
        }
        let health = match (self.metrics.is_ready(), failed.is_empty()) {
            (false, _) => "not-ready".to_string(),
            (true, true) => "ready".to_string(),
            (true, false) => format!("degraded: {}", failed.join(",")),
        };
        if health != self.health {
            self.health = health;
            // Told at once rather than at the next renewal; a failure waits for that renewal.
            let _ = membership::publish(self.store.as_ref(), &self.member, &self.membership, &self.health);
        }
    }

    fn local(&self) -> Local {
        Local {
            node: self.conf.node.clone(),
            node_ip: self.conf.node_ip,
            subnet: self.membership.subnet,
            subnet6: self.membership.subnet6,
        }
    }

    fn ensure_cni_config(&mut self) -> bool {
        let conf = CniConf {
            subnet: self.membership.subnet,
            subnet6: self.membership.subnet6,
            mtu: self.backend.pod_mtu(),
            ipam_dir: state::ipam_dir(&self.conf.state_dir),
            journal_dir: state::journal_dir(&self.conf.state_dir),
            agent_socket: state::notify_socket(&self.conf.state_dir),
        };
        match ensure_conflists(&self.conf.cni_conf_dir, &conf) {
            Ok(written) => {
                if written > 0 {
                    let dir = self.conf.cni_conf_dir.display();
                    tracing::info!(%dir, files = written, "wrote CNI network lists");
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write CNI network lists");
                false
            }
        }
    }

    /// The whereabouts flat file, then orphaned cluster-wide reservations (crate::ippools).
    fn ensure_ippools(&mut self) -> bool {
        let dir = &self.conf.cni_conf_dir;
        let written = crate::ippools::ensure_flat_file(dir, &self.conf.node, &self.conf.datastore);
        let mut ok = match written {
            Ok(w) => {
                if w {
                    let path = crate::ippools::flat_file_path(dir).display().to_string();
                    tracing::info!(%path, "wrote the whereabouts flat file");
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the whereabouts flat file");
                false
            }
        };
        match self.ippools.reconcile(self.store.as_ref()) {
            Ok(freed) => {
                for f in &freed {
                    tracing::info!(ip = %f.ip, pool = %f.pool, pod = %f.pod, node = %f.node, why = %f.why,
                        "freed an orphaned IP reservation");
                }
            }
            Err(e) => {
                self.metrics.add(Counter::DatastoreError, 1);
                tracing::warn!(error = %e, "cannot reconcile IP reservations");
                ok = false;
            }
        }
        ok
    }

    /// Publishes the pods of the node's attachment journal.
    fn ensure_pods(&mut self) -> bool {
        let believe = self.datastore.healthy_for(Instant::now()) >= self.conf.ttl;
        match self.pods.publish(self.store.as_ref(), believe) {
            Ok(p) => {
                if p.written + p.deleted > 0 {
                    tracing::info!(written = p.written, deleted = p.deleted, pods = p.pods, "published pods");
                }
                for c in &p.conflicts {
                    tracing::warn!(conflict = %c, "pod name taken by another node; not published");
                }
                for s in &p.skipped {
                    tracing::warn!(why = ?s, "attachment not published");
                }
                true
            }
            Err(e) => {
                self.metrics.add(Counter::DatastoreError, 1);
                tracing::error!(error = %e, "cannot publish pods");
                false
            }
        }
    }

    fn ensure_forwarding(&mut self) -> bool {
        match node::ensure_forwarding(&self.netns, self.membership.subnet6.is_some()) {
            Ok(changed) => {
                if !changed.is_empty() {
                    tracing::warn!(sysctls = %changed.join(","), "IP forwarding was off; turned it on");
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot enable IP forwarding");
                false
            }
        }
    }

    fn ensure_masquerade(&mut self) -> bool {
        match self.masq.ensure() {
            Ok(applied) => {
                if applied && self.conf.masquerade {
                    tracing::info!(table = "inet twill_agent", "masquerade table applied");
                } else if applied {
                    tracing::info!(
                        table = "inet twill_agent",
                        "masquerade table removed (--masquerade false)"
                    );
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot apply the masquerade table");
                false
            }
        }
    }

    /// This node's devices, then exactly the current peers' entries. Until the node records
    /// could be read once, the kernel's peer entries (a previous run's) are left alone: an
    /// empty list would withdraw them all.
    fn ensure_backend(&mut self) -> bool {
        let local = self.local();
        let result = self.backend.ensure_local(&local);
        let mut ok = self.report("local devices", result);
        ok &= self.refresh_peers();
        self.metrics.set_peers(self.peers.len(), self.held.len());
        if !self.peers_read {
            return false;
        }
        if self.conf.backend == BackendKind::Bgp {
            ok &= self.refresh_bgp_peers();
            self.backend.set_bgp_inputs(&self.conf.labels, &self.bgp_peers.peers);
        }
        let result = self.backend.sync(&self.peers);
        let status = self.backend.bgp_status();
        // Published with the node record at the next renewal, not at once: sessions come
        // and go together on every node, and each write would wake every agent.
        if let (Some(b), Some(s)) = (self.member.bgp.as_mut(), &status) {
            b.sessions = u32::try_from(s.sessions.len()).unwrap_or(u32::MAX);
            b.sessions_up = u32::try_from(s.sessions_up()).unwrap_or(u32::MAX);
        }
        self.metrics.set_bgp(status);
        ok & self.report("peer routes", result)
    }

    fn report(&mut self, what: &str, result: Result<Applied, crate::backend::BackendError>) -> bool {
        match result {
            Ok(done) => {
                if done.changed() {
                    self.metrics.add(Counter::Repair, u64::try_from(done.added + done.removed).unwrap_or(0));
                    tracing::info!(
                        what,
                        added = done.added,
                        removed = done.removed,
                        "programmed kernel state"
                    );
                }
                true
            }
            Err(e) => {
                tracing::error!(what, error = %e, "cannot program kernel state");
                false
            }
        }
    }

    /// Reads the peers from the datastore; on failure the last known ones stay in use. Peers
    /// whose record vanished are held while the datastore has not been healthy for a whole
    /// TTL (crate::absence).
    fn refresh_peers(&mut self) -> bool {
        let records = match Registry::new(self.store.as_ref()).nodes() {
            Ok(r) => r,
            Err(e) => {
                self.datastore.failed();
                self.metrics.add(Counter::DatastoreError, 1);
                tracing::warn!(error = %e, "cannot read node records; keeping the last known peers");
                return false;
            }
        };
        let now = Instant::now();
        self.datastore.answered(now);
        for e in &records.errors {
            tracing::warn!(error = %e, "ignoring unreadable node record");
        }
        let mine: Vec<IpNet> =
            [Some(self.membership.subnet), self.membership.subnet6].into_iter().flatten().collect();
        let clashes = |p: &Peer| {
            let theirs = [Some(p.subnet), p.subnet6];
            mine.iter().any(|m| theirs.iter().flatten().any(|t| overlaps(m, t)))
        };
        let mut fresh = Vec::new();
        for r in records.items.iter().filter(|r| r.name != self.conf.node) {
            match Peer::from_record(r) {
                // Routing one's own subnet to a peer would cut the node's pods off.
                Ok(p) if clashes(&p) => {
                    tracing::warn!(peer = %p.name, subnet = %p.subnet, "ignoring peer claiming this node's subnet");
                }
                Ok(p) => fresh.push(p),
                Err(e) => tracing::warn!(error = %e, "ignoring node record"),
            }
        }
        let believe = self.datastore.healthy_for(now) >= self.conf.ttl;
        let plan = plan_peers(fresh, &self.peers, &mine, believe);
        self.log_membership_changes(&plan);
        self.peers = plan.peers;
        self.held = plan.held.into_iter().collect();
        self.peers_read = true;
        true
    }

    /// Reads the BGPPeers; on failure the last known ones stay in use. Invalid ones are left
    /// out and logged when the set of problems changes.
    fn refresh_bgp_peers(&mut self) -> bool {
        let records = match Registry::new(self.store.as_ref()).list::<BgpPeerRecord>(BGPPEERS) {
            Ok(r) => r,
            Err(e) => {
                self.metrics.add(Counter::DatastoreError, 1);
                tracing::warn!(error = %e, "cannot read BGPPeers; keeping the last known ones");
                return false;
            }
        };
        let mut problems: Vec<String> = records.errors.iter().map(ToString::to_string).collect();
        let mut peers = Vec::new();
        for r in &records.items {
            match r.validate() {
                Ok(p) => peers.push(p),
                Err(e) => problems.push(e.to_string()),
            }
        }
        if problems != self.bgp_peers.problems {
            for p in &problems {
                tracing::warn!(error = %p, "ignoring BGPPeer");
            }
        }
        self.bgp_peers = BgpPeers { peers, problems };
        true
    }

    fn log_membership_changes(&self, plan: &PeerPlan) {
        let known = |name: &str| self.peers.iter().any(|q| q.name == name);
        for p in plan.peers.iter().filter(|p| !known(&p.name)) {
            tracing::info!(peer = %p.name, subnet = %p.subnet, node_ip = %p.node_ip, "peer joined");
        }
        for name in plan.held.iter().filter(|n| !self.held.contains(*n)) {
            let hold = format!("{}s", self.conf.ttl.as_secs());
            tracing::warn!(
                peer = %name,
                %hold,
                "peer's record vanished while the datastore was not healthy; keeping its routes until it has been for the hold"
            );
        }
        for name in self.held.iter().filter(|n| !plan.held.contains(*n)) {
            if plan.peers.iter().any(|p| &p.name == name) {
                tracing::info!(peer = %name, "held peer is back; its routes never left");
            }
        }
        for q in &plan.gone {
            tracing::info!(peer = %q.name, subnet = %q.subnet, "peer left");
        }
    }
}
