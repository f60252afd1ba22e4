//! Test support: temporary directories and real etcd servers (from testkit), and a client of
//! such a server opened from inside the namespace it listens in.
#![allow(dead_code)]

pub mod cluster;

use std::sync::Arc;

use netns::NetNs;
pub use testkit::{EtcdCluster, EtcdOpts, TempDir};
use twill_agent::store::{Datastore, DatastoreConf, EtcdTls};

/// A client of `etcd`; opened inside `ns` (where the server listens) when given, so that the
/// client's connections are made from there.
pub fn etcd_store(etcd: &EtcdCluster, ns: Option<&NetNs>) -> Arc<dyn Datastore> {
    let open = || DatastoreConf::parse(&etcd.endpoint(), EtcdTls::default()).unwrap().open().unwrap();
    match ns {
        Some(ns) => ns.run(open).expect("enter the etcd namespace"),
        None => open(),
    }
}
