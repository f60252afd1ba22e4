//! nf_tables as data, applied over netlink.
//!
//! - The ruleset model: [`Table`]s of [`Set`]s (maps, verdict maps, interval and concatenated
//!   keys, commented elements) and [`Chain`]s of [`Rule`]s ([`Match`]es on [`Field`]s,
//!   [`Stmt`]s), built by pure functions.
//! - Two renderings: nft text ([`Table::text`], [`Batch::text`]) for golden tests, `explain`
//!   and docs, and netlink (`wire`) to apply.
//! - A [`Batch`] of changes goes to the kernel as ONE nfnetlink transaction through a
//!   [`Conn`]: all of it or none of it, no `nft` process, no ruleset listing.
//! - [`owned`]: the per-pod element tables of the plugins (ADR 0003), where DEL reads back
//!   only the keys it knows.

pub mod batch;
pub mod conn;
pub mod owned;
mod read;
pub mod rule;
pub mod table;
pub mod text;
pub mod types;
pub(crate) mod wire;

pub use batch::{Batch, Op};
pub use conn::{Conn, Error};
pub use rule::{Field, LOG_PREFIX_MAX, Match, Operand, Rule, Stmt};
pub use table::{
    BaseChain, Chain, ChainType, Elem, ElemData, Hook, KeyPart, Set, Table, TableId, clean_comment,
};
pub use types::{DataType, Family, Value, Verdict};
