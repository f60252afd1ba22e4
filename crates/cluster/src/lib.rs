//! The twill cluster: its objects and the datastore that holds them.
//!
//! One crate for every program that reads or writes cluster state — twilld, `twill cluster`,
//! `twill lab`, and the plugins that register pods or allocate cluster-wide addresses — so
//! there is one path to the datastore and one definition of each record:
//! - [`store`]: the key-value model and its two implementations, a shared directory
//!   (`file:DIR`) and etcd (`etcd:https://...`, TLS, several members);
//! - [`layout`]: where each kind of record lives; [`record`]: the records (JSON);
//! - [`registry`]: typed access to the records over any datastore;
//! - [`bgppeer`]: BGPPeer objects (the bgp backend's explicit neighbours): manifest
//!   decoding, validation, node selection.
//! - [`multinet`]: NetworkAttachmentDefinitions and the network-status of multi-network pods.
//! - [`ippool`]: cluster-wide IP reservations (the `whereabouts` IPAM plugin's pools).

pub mod attachment;
pub mod bgppeer;
pub mod ippool;
pub mod layout;
pub mod manifest;
pub mod multinet;
pub mod ops;
pub mod pki;
pub mod record;
pub mod registry;
pub mod store;

pub use multinet::{NetAttachDef, NetworkStatus};
pub use record::{
    AdminPolicyRecord, BackendKind, NamespaceRecord, NodeRecord, PodMeta, PodRecord, PolicyRecord,
    SubnetOwner,
};
pub use registry::Registry;
pub use store::{Datastore, DatastoreConf, Endpoint, EtcdTls};
