//! The 0.3.0 – 1.1.0 result shape: `interfaces`, `ips`, `routes`, `dns`.
//!
//! Differences between these versions, as in the reference types:
//! `ips[].version` ("4"/"6") exists before 1.0.0 only; route `mtu`, `advmss`,
//! `priority`, `table`, `scope` and interface `mtu`, `socketPath`, `pciID`
//! are 1.1.0 additions; `dns` is always written before 1.0.0 (Go's
//! omitempty does not drop a struct) and dropped when empty from 1.0.0 on.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::result::{CniResult, Dns, Interface, IpConfig, Route};
use crate::version::Version;
use crate::wire::{non_empty, non_zero, opt_ip};

#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(rename = "cniVersion", default)]
    cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    interfaces: Vec<WireInterface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ips: Vec<WireIp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<WireRoute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dns: Option<Dns>,
}

#[derive(Serialize, Deserialize)]
struct WireInterface {
    #[serde(default)]
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sandbox: Option<String>,
    #[serde(rename = "socketPath", default, skip_serializing_if = "Option::is_none")]
    socket_path: Option<String>,
    #[serde(rename = "pciID", default, skip_serializing_if = "Option::is_none")]
    pci_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct WireIp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interface: Option<usize>,
    address: IpNet,
    #[serde(default, with = "opt_ip", skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct WireRoute {
    pub(crate) dst: IpNet,
    #[serde(default, with = "opt_ip", skip_serializing_if = "Option::is_none")]
    pub(crate) gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    advmss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priority: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<u8>,
}

impl WireRoute {
    /// The route with its 1.1.0 attributes, or without them for older versions.
    pub(crate) fn from_route(r: &Route, with_attrs: bool) -> WireRoute {
        let keep = |v: Option<u32>| if with_attrs { non_zero(v) } else { None };
        WireRoute {
            dst: r.dst,
            gw: r.gw,
            mtu: keep(r.mtu),
            advmss: keep(r.advmss),
            priority: keep(r.priority),
            table: if with_attrs { r.table } else { None },
            scope: if with_attrs { r.scope } else { None },
        }
    }

    pub(crate) fn into_route(self) -> Route {
        Route {
            dst: self.dst,
            gw: self.gw,
            mtu: non_zero(self.mtu),
            advmss: non_zero(self.advmss),
            priority: non_zero(self.priority),
            table: self.table,
            scope: self.scope,
        }
    }
}

/// Reads a 0.3.0 – 1.1.0 result.
pub(crate) fn parse(v: &Value, version: Version) -> Result<CniResult, Error> {
    let wire: Wire = serde_json::from_value(v.clone())
        .map_err(|e| Error::decode(format!("decoding {version} result: {e}")))?;
    Ok(CniResult {
        cni_version: version,
        interfaces: wire.interfaces.into_iter().map(interface_in).collect(),
        ips: wire
            .ips
            .into_iter()
            .map(|ip| IpConfig { address: ip.address, gateway: ip.gateway, interface: ip.interface })
            .collect(),
        routes: wire.routes.into_iter().map(WireRoute::into_route).collect(),
        dns: wire.dns.unwrap_or_default().normalized(),
    })
}

fn interface_in(i: WireInterface) -> Interface {
    Interface {
        name: i.name,
        mac: non_empty(i.mac),
        mtu: non_zero(i.mtu),
        sandbox: non_empty(i.sandbox),
        socket_path: non_empty(i.socket_path),
        pci_id: non_empty(i.pci_id),
    }
}

fn interface_out(i: &Interface, version: Version) -> WireInterface {
    let v11 = version >= Version::V1_1_0;
    let keep = |s: &Option<String>| if v11 { non_empty(s.clone()) } else { None };
    WireInterface {
        name: i.name.clone(),
        mac: non_empty(i.mac.clone()),
        mtu: if v11 { non_zero(i.mtu) } else { None },
        sandbox: non_empty(i.sandbox.clone()),
        socket_path: keep(&i.socket_path),
        pci_id: keep(&i.pci_id),
    }
}

fn ip_out(ip: &IpConfig, version: Version) -> WireIp {
    let family = match ip.address {
        IpNet::V4(_) => "4",
        IpNet::V6(_) => "6",
    };
    WireIp {
        version: (version < Version::V1_0_0).then(|| family.to_owned()),
        interface: ip.interface,
        address: ip.address,
        gateway: ip.gateway,
    }
}

/// Writes a 0.3.0 – 1.1.0 result.
pub(crate) fn emit(r: &CniResult, version: Version) -> Result<Value, Error> {
    let dns = r.dns.clone().normalized();
    let wire = Wire {
        cni_version: version.as_str().to_owned(),
        interfaces: r.interfaces.iter().map(|i| interface_out(i, version)).collect(),
        ips: r.ips.iter().map(|ip| ip_out(ip, version)).collect(),
        routes: r.routes.iter().map(|rt| WireRoute::from_route(rt, version >= Version::V1_1_0)).collect(),
        dns: (version < Version::V1_0_0 || !dns.is_empty()).then_some(dns),
    };
    serde_json::to_value(wire).map_err(|e| Error::internal(format!("encoding {version} result: {e}")))
}
