//! The runtime side of CNI — what libcni and cnitool are for Go: find a network's
//! configuration, execute its plugins with the right environment and stdin, chain
//! `prevResult`, run DEL in reverse, keep a result cache in libcni's layout, garbage-collect
//! stale attachments and ask plugins for their STATUS. It drives any spec-compliant plugin.

mod cache;
mod error;
mod exec;
mod gc;
mod load;
mod runtime;
pub mod validate;

pub use cache::{CACHE_KIND, Cache, CacheEntry};
pub use error::Error;
pub use exec::{Exec, InvokeArgs, RawExec, find_in_path, plugin_failure};
pub use gc::GcReport;
pub use load::{LoadedList, conf_files, load_list_file, load_network};
pub use runtime::{Runtime, RuntimeConf};

/// libcni's default cache directory.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/cni";
/// The default network configuration directory.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";
