//! `table inet twill_policy` in the kernel of this node's namespace: listed, compared with
//! what this agent applied, and changed by ONE `nft -f -` batch (one transaction) per pass.
//! Only this table is ever touched: other nftables tables and iptables-nft rules on the node
//! stay as they are, and a packet must pass all of them (a `drop` anywhere is final).

use std::process::Command;
use std::time::{Duration, Instant};

use policy::{FAMILY, Ruleset, TABLE, apply_batch};
use serde_json::Value;

use super::plan::{Action, Known, plan_table};

/// What one [`PolicyTable::ensure`] did.
#[derive(Debug)]
pub struct Applied {
    /// `kept`, `updated`, `replaced` or `removed`.
    pub verb: &'static str,
    /// The table had drifted from what was applied (deleted, edited) and was put back.
    pub repair: bool,
    /// Why an element update failed (the table changed behind the agent's back between the
    /// listing and the update), after which the table was replaced instead.
    pub fell_back: Option<fw::Error>,
    /// Time spent in nft applying (zero when kept).
    pub duration: Duration,
}

/// The agent's side of the table.
#[derive(Debug, Default)]
pub struct PolicyTable {
    known: Known,
}

impl PolicyTable {
    pub fn new() -> PolicyTable {
        PolicyTable::default()
    }

    /// The ruleset last applied, if the table is believed to be in place.
    pub fn applied(&self) -> Option<&Ruleset> {
        match &self.known {
            Known::Present { ruleset, .. } => Some(ruleset),
            _ => None,
        }
    }

    /// Makes the kernel hold `want` (`None`: no table).
    pub fn ensure(&mut self, want: Option<&Ruleset>) -> Result<Applied, fw::Error> {
        let live = list_table()?;
        let plan = plan_table(&self.known, live.as_ref(), want);
        let started = Instant::now();
        let mut applied = Applied {
            verb: plan.action.verb(),
            repair: plan.repair,
            fell_back: None,
            duration: Duration::ZERO,
        };
        // Until the kernel is known to match again, whatever happens, trust nothing.
        let before = std::mem::take(&mut self.known);
        match &plan.action {
            Action::Keep => {
                self.known = before;
                return Ok(applied);
            }
            Action::Update(batch) => applied.fell_back = fw::apply(batch).err(),
            Action::Replace(batch) | Action::Remove(batch) => fw::apply(batch)?,
        }
        if let (Some(_), Some(want)) = (&applied.fell_back, want) {
            fw::apply(&apply_batch(want))?;
        }
        self.known = match want {
            Some(want) => {
                Known::Present { ruleset: want.clone(), listing: list_table()?.unwrap_or(Value::Null) }
            }
            None => Known::Absent,
        };
        applied.duration = started.elapsed();
        Ok(applied)
    }
}

/// `nft -j -s list table inet twill_policy`: the table without counter values (`-s`), so
/// drops counted between two passes do not look like drift; `None` when there is none.
pub fn list_table() -> Result<Option<Value>, fw::Error> {
    let what = format!("list table {FAMILY} {TABLE}");
    let out = Command::new("nft")
        .args(["-j", "-s", "list", "table", FAMILY, TABLE])
        .output()
        .map_err(fw::Error::Spawn)?;
    if !out.status.success() {
        let e = fw::Error::Nft { what, stderr: String::from_utf8_lossy(&out.stderr).trim().into() };
        return if e.is_missing() { Ok(None) } else { Err(e) };
    }
    serde_json::from_slice(&out.stdout).map(Some).map_err(|source| fw::Error::Json { what, source })
}
