//! The IPAM engine behind twill's drop-in `host-local` plugin.
//!
//! Layers, from pure to effectful:
//! - [`IpamConfig`] parses and validates the `ipam` object of a host-local config
//!   ([`Range`], [`RangeSet`], [`Route`]), with the reference's defaults.
//! - [`allocate`], [`release`], [`check`] and [`gc`] are pure functions over a [`Store`]:
//!   one address per range set (dual-stack = one v4 set + one v6 set), round-robin after the
//!   last reserved address, requested addresses honoured, all-or-nothing on failure.
//! - [`DiskStore`] keeps reservations in the reference's on-disk layout (one file per
//!   address under `<dataDir>/<network>/`, `last_reserved_ip.N`, an flock'ed `lock`), so a
//!   node can switch between the reference binary and twill with reservations in place;
//!   unlike the reference, every file is written atomically. [`MemoryStore`] is for tests.
//!
//! - [`PoolRange`] is the cluster-wide side (the `whereabouts` plugin): a range with
//!   exclusions, lowest free address first, IPv6 ranges of any size; the reservations
//!   themselves live in the cluster datastore (`twill-cluster`'s `ippool`).
//!
//! No CNI types here: the plugin maps [`Error::kind`] to a CNI error code and
//! [`Allocation`]s to result entries.
//!
//! ```
//! use twill_ipam::{IpamConfig, MemoryStore, allocate, release};
//!
//! let ipam = serde_json::json!({"ranges": [[{"subnet": "10.22.0.0/24"}], [{"subnet": "fd00::/64"}]]});
//! let conf = IpamConfig::from_ipam_json("mynet", &ipam)?;
//! let mut store = MemoryStore::new(); // a plugin uses DiskStore::open(&conf.data_dir, &conf.name)
//! let ips = allocate(&mut store, &conf, "ctr1", "eth0", &[])?;
//! assert_eq!(ips[0].address.to_string(), "10.22.0.2/24");
//! assert_eq!(ips[1].address.to_string(), "fd00::2/64");
//! assert_eq!(release(&mut store, "ctr1", "eth0")?.len(), 2);
//! # Ok::<(), twill_ipam::Error>(())
//! ```

mod allocate;
mod atomic_file;
mod candidates;
mod config;
mod disk;
mod error;
mod fields;
mod memory;
mod pool;
mod range;
mod release;
mod request;
mod resolv;
mod store;

pub use allocate::{Allocation, allocate, check_available};
pub use config::{DEFAULT_DATA_DIR, IpamConfig, Route};
pub use disk::{DiskStore, Warning};
pub use error::{ConfigError, Error, ErrorKind};
pub use memory::MemoryStore;
pub use pool::{PoolError, PoolRange, RangeRequest, choose_all, parse_exclude, parse_range};
pub use range::{Range, RangeSet, canonical};
pub use release::{check, gc, release};
pub use request::parse_requested;
pub use resolv::{ResolvConf, parse_resolv_conf, read_resolv_conf};
pub use store::{Owner, Reservation, Store};
