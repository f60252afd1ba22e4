//! `table inet twill_policy` in the kernel of this node's namespace: fingerprinted over
//! netlink, compared with what this agent applied, and changed by ONE netlink batch (one
//! transaction) per pass.
//! Only this table is ever touched: other nftables tables and iptables-nft rules on the node
//! stay as they are, and a packet must pass all of them (a `drop` anywhere is final).

use std::time::{Duration, Instant};

use fw::nft::{Conn, Error};
use policy::{Ruleset, apply_batch, table_id};

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
    pub fell_back: Option<Error>,
    /// Time spent applying (zero when kept).
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
    pub fn ensure(&mut self, want: Option<&Ruleset>) -> Result<Applied, Error> {
        let mut conn = Conn::open()?;
        let live = conn.fingerprint(&table_id())?;
        let plan = plan_table(&self.known, live, want);
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
            Action::Update(batch) => applied.fell_back = conn.apply(batch).err(),
            Action::Replace(batch) | Action::Remove(batch) => conn.apply(batch)?,
        }
        if let (Some(_), Some(want)) = (&applied.fell_back, want) {
            conn.apply(&apply_batch(want))?;
        }
        self.known = match want {
            Some(want) => {
                Known::Present { ruleset: want.clone(), listing: conn.fingerprint(&table_id())?.unwrap_or(0) }
            }
            None => Known::Absent,
        };
        applied.duration = started.elapsed();
        Ok(applied)
    }
}
