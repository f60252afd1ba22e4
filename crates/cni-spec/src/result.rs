//! The ADD result, held in one canonical in-memory form (the 1.x shape) and
//! read from or written to the exact JSON shape of any supported version.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::version::Version;
use crate::{legacy, shape};

/// An interface created by an attachment (`interfaces[]`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Hardware address, if applicable.
    pub mac: Option<String>,
    /// MTU (written for 1.1.0 only).
    pub mtu: Option<u32>,
    /// Netns path for interfaces inside the container; `None` on the host.
    pub sandbox: Option<String>,
    /// Socket path for the interface (written for 1.1.0 only).
    pub socket_path: Option<String>,
    /// PCI device id (written for 1.1.0 only).
    pub pci_id: Option<String>,
}

/// An address assigned by an attachment (`ips[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpConfig {
    /// Address with its prefix length; host bits are kept (`10.1.2.3/24`).
    pub address: IpNet,
    /// Default gateway of the subnet, if any.
    pub gateway: Option<IpAddr>,
    /// Index into [`CniResult::interfaces`].
    pub interface: Option<usize>,
}

/// A route created by an attachment (`routes[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix.
    pub dst: IpNet,
    /// Next hop; when `None` the `ips[].gateway` may be used.
    pub gw: Option<IpAddr>,
    /// Path MTU (1.1.0).
    pub mtu: Option<u32>,
    /// Advertised MSS (1.1.0).
    pub advmss: Option<u32>,
    /// Route priority, lower is preferred (1.1.0).
    pub priority: Option<u32>,
    /// Routing table (1.1.0).
    pub table: Option<u32>,
    /// Route scope: 0 global, 253 link, 254 host (1.1.0).
    pub scope: Option<u8>,
}

impl Route {
    /// A route with only a destination and an optional next hop.
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Route {
        Route { dst, gw, mtu: None, advmss: None, priority: None, table: None, scope: None }
    }
}

/// DNS settings, as found both in configurations and in results.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Dns {
    /// Name servers, in priority order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain for short names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains, in priority order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl Dns {
    /// True when nothing is set (the reference's `IsEmpty`).
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty()
            && self.domain.as_deref().unwrap_or_default().is_empty()
            && self.search.is_empty()
            && self.options.is_empty()
    }

    /// Drops an empty `domain`, which Go's omitempty never writes.
    pub(crate) fn normalized(mut self) -> Dns {
        if self.domain.as_deref() == Some("") {
            self.domain = None;
        }
        self
    }
}

/// The result of ADD (and the `prevResult` of chained plugins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CniResult {
    /// The version this result was read in or created for.
    pub cni_version: Version,
    /// Interfaces created (empty in 0.1.0/0.2.0 results and IPAM results).
    pub interfaces: Vec<Interface>,
    /// Addresses assigned.
    pub ips: Vec<IpConfig>,
    /// Routes created.
    pub routes: Vec<Route>,
    /// DNS settings.
    pub dns: Dns,
}

impl Default for CniResult {
    fn default() -> Self {
        CniResult {
            cni_version: Version::LATEST,
            interfaces: Vec::new(),
            ips: Vec::new(),
            routes: Vec::new(),
            dns: Dns::default(),
        }
    }
}

impl CniResult {
    /// Reads a result in the shape of its own `cniVersion`. A missing or
    /// empty `cniVersion` means 0.1.0, as in the reference.
    pub fn from_json(v: &Value) -> Result<CniResult, Error> {
        let version = match v.get("cniVersion") {
            None => Version::V0_1_0,
            Some(Value::String(s)) if s.is_empty() => Version::V0_1_0,
            Some(Value::String(s)) => Version::parse(s)?,
            Some(other) => {
                return Err(Error::decode(format!("result cniVersion must be a string, got {other}")));
            }
        };
        CniResult::from_json_as(v, version)
    }

    /// Reads a result in the shape of `version`, e.g. a `prevResult` in the
    /// configuration's version. A `cniVersion` inside `v` with a different
    /// shape (0.2.0 vs 0.4.0) is a code 1 error.
    pub fn from_json_as(v: &Value, version: Version) -> Result<CniResult, Error> {
        if !v.is_object() {
            return Err(Error::decode(format!("{version} result must be a JSON object")));
        }
        if let Some(own) = v.get("cniVersion").and_then(Value::as_str)
            && let Ok(own) = Version::parse(own)
            && own.is_legacy_result() != version.is_legacy_result()
        {
            return Err(Error::incompatible(format!(
                "result has cniVersion {own} but a {version} result was expected"
            ))
            .with_details("0.1.0/0.2.0 results and later results have different shapes"));
        }
        if version.is_legacy_result() { legacy::parse(v, version) } else { shape::parse(v, version) }
    }

    /// Writes the result in the exact shape of `version`. Converting to
    /// 0.1.0/0.2.0 fails (code 1) when the result cannot be represented there.
    pub fn to_json(&self, version: Version) -> Result<Value, Error> {
        if version.is_legacy_result() { legacy::emit(self, version) } else { shape::emit(self, version) }
    }

    /// The same result converted to `version` in memory: what a round trip
    /// through `to_json(version)` and back would give.
    pub fn convert(&self, version: Version) -> Result<CniResult, Error> {
        CniResult::from_json_as(&self.to_json(version)?, version)
    }
}
