//! A pod's nf_tables state across the plugin tables one plugin touches (masquerade, MAC
//! spoofing), changed in ONE batch per verb: ADD adds every element at once, creating a
//! missing table on the way; DEL and GC delete what the tables' own modules found.

use cni_spec::Error;
use fw::nft::{Batch, Conn, Table, owned};

use crate::kernel::{fw_error, nft_conn};

/// Element changes for several tables, and the tables they need.
#[derive(Debug, Default)]
pub struct PodState {
    batch: Batch,
    tables: Vec<Table>,
}

impl PodState {
    pub fn new() -> PodState {
        PodState::default()
    }

    /// Adds `batch`, whose elements live in `table`.
    pub fn add(&mut self, table: Table, batch: Batch) {
        self.batch.extend(batch);
        self.tables.push(table);
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Applies everything in one transaction; the first pod on a node creates the tables.
    pub fn apply(&self, conn: &mut Conn) -> Result<(), Error> {
        let tables: Vec<&Table> = self.tables.iter().collect();
        owned::apply_creating(conn, &self.batch, &tables).map_err(fw_error)
    }
}

/// Applies deletions gathered from several tables in one transaction.
pub fn apply_deletions(conn: &mut Conn, batches: Vec<Batch>) -> Result<(), Error> {
    let mut all = Batch::new();
    for b in batches {
        all.extend(b);
    }
    conn.apply(&all).map_err(fw_error)
}

/// A connection for `f`, which runs only when there is nftables work.
pub fn with_conn<T>(f: impl FnOnce(&mut Conn) -> Result<T, Error>) -> Result<T, Error> {
    f(&mut nft_conn()?)
}
