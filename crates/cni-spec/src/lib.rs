//! cni-spec: the Container Network Interface specification as pure data.
//!
//! Everything a CNI plugin and runtime exchange, for every spec version from
//! 0.1.0 to 1.1.0, with no I/O:
//!
//! - [`Version`], [`negotiate`] and the VERSION answer ([`version_info`], [`VersionInfo`]);
//! - the error model ([`Error`], [`ErrorCode`]) and its wire form;
//! - a plugin's stdin configuration ([`NetConf`]) and a network configuration
//!   list ([`NetConfList`]) with `cniVersions` negotiation;
//! - the ADD result ([`CniResult`]) held in the 1.x shape and read from or
//!   written to the exact JSON shape of each version, converting between them
//!   (with an error, not silent loss, when a result does not fit 0.1.0/0.2.0);
//! - CONVENTIONS.md helpers: `CNI_ARGS`, capability arguments, GC attachments;
//! - the reference's name rules for container ids, networks and interfaces.
#![forbid(unsafe_code)]

pub mod conf;
pub mod conflist;
pub mod conventions;
pub mod error;
mod legacy;
pub mod names;
pub mod result;
mod shape;
pub mod version;
mod wire;

pub use conf::NetConf;
pub use conflist::NetConfList;
pub use conventions::{
    Attachment, Bandwidth, PortMapping, parse_cni_args, runtime_config, valid_attachments,
};
pub use error::{Error, ErrorCode};
pub use names::{validate_container_id, validate_ifname, validate_network_name};
pub use result::{CniResult, Dns, Interface, IpConfig, Route};
pub use version::{Version, VersionInfo, negotiate, version_info};
