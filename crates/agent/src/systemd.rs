//! systemd's readiness protocol (`Type=notify`, sd_notify(3)) through the `sd-notify` crate:
//! `READY=1` once the node is ready — the same moment `/readyz` turns 200, so units ordered
//! after twilld.service (a container runtime) start with the network list in place —,
//! `STATUS=` while joining, `STOPPING=1` when leaving. Outside systemd (no `NOTIFY_SOCKET`)
//! every call does nothing.

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    // The variable is kept (`false`): the agent's threads may notify more than once.
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// The node is ready: subnet leased, network list written.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A line for `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// The agent is leaving the cluster and will exit.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("leaving the cluster")]);
}
