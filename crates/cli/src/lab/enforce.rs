//! Waiting until a change written to the datastore is in force: every running twilld
//! reports, in `twill_policy_synced_revision` on its `/metrics`, the datastore revision its
//! policy table matches. Once every agent has reached the revision read right after the
//! write, new connections follow the change on every node.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use netns::NetNs;

use super::agent::HEALTH_ADDR;
use super::health::http_get;
use super::registry;
use super::state::{LabState, NodeState};

/// How long to wait before giving up (with a warning: the change is written either way).
const LIMIT: Duration = Duration::from_secs(15);
const METRIC: &str = "twill_policy_synced_revision";

/// Waits until every running agent enforces the datastore as it is now; prints how long
/// that took, or warns which nodes lag.
pub fn wait_enforced(dir: &Path, state: &LabState) -> Result<()> {
    let revision = registry::revision(dir, state)?;
    let started = Instant::now();
    let (mut pending, stopped): (Vec<&NodeState>, Vec<&NodeState>) =
        state.nodes.iter().partition(|n| n.agent.as_ref().is_some_and(|p| p.is_running()));
    for n in &stopped {
        eprintln!("twill lab: twilld on {} is not running; it applies the change when it starts", n.name);
    }
    let total = pending.len();
    loop {
        pending.retain(|n| synced_revision(n).is_none_or(|r| r < revision));
        if pending.is_empty() {
            let took = started.elapsed().as_secs_f64();
            println!("in force on {total} node(s) after {took:.2}s (datastore revision {revision})");
            return Ok(());
        }
        if started.elapsed() >= LIMIT {
            let names: Vec<&str> = pending.iter().map(|n| n.name.as_str()).collect();
            eprintln!(
                "twill lab: warning: not in force on {} after {}s (see their twilld.log)",
                names.join(", "),
                LIMIT.as_secs()
            );
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The revision `node`'s agent enforces, when it answers.
fn synced_revision(node: &NodeState) -> Option<u64> {
    let ns = NetNs::open(netns::named_path(&node.netns)).ok()?;
    let (status, body) = http_get(&ns, HEALTH_ADDR, "/metrics", Duration::from_millis(500)).ok()?;
    (status == 200).then(|| parse_synced(&body)).flatten()
}

fn parse_synced(metrics: &str) -> Option<u64> {
    metrics.lines().find_map(|l| l.strip_prefix(METRIC)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_revision_is_read_from_metrics() {
        let text = "# HELP twill_policy_synced_revision x\ntwill_policy_synced_revision_other 3\ntwill_policy_synced_revision 42\n";
        assert_eq!(parse_synced(text), Some(42));
        assert_eq!(parse_synced("twill_ready 1\n"), None);
    }
}
