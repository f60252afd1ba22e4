//! The 0.1.0/0.2.0 result shape: one `ip4` and one `ip6` block, each with
//! its own routes, and a `dns` object that Go always writes.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Error;
use crate::result::{CniResult, Dns, IpConfig};
use crate::shape::WireRoute;
use crate::version::Version;
use crate::wire::opt_ip;

#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(rename = "cniVersion", default)]
    cni_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip4: Option<WireIp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ip6: Option<WireIp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dns: Option<Dns>,
}

#[derive(Serialize, Deserialize)]
struct WireIp {
    ip: IpNet,
    #[serde(default, with = "opt_ip", skip_serializing_if = "Option::is_none")]
    gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    routes: Vec<WireRoute>,
}

/// Reads a 0.1.0/0.2.0 result. Like the reference's up-conversion, `ip4`
/// comes before `ip6` and each block's routes are appended in that order.
pub(crate) fn parse(v: &Value, version: Version) -> Result<CniResult, Error> {
    let wire: Wire = serde_json::from_value(v.clone())
        .map_err(|e| Error::decode(format!("decoding {version} result: {e}")))?;
    let mut result = CniResult {
        cni_version: version,
        dns: wire.dns.unwrap_or_default().normalized(),
        ..CniResult::default()
    };
    for block in [wire.ip4, wire.ip6].into_iter().flatten() {
        result.ips.push(IpConfig { address: block.ip, gateway: block.gateway, interface: None });
        result.routes.extend(block.routes.into_iter().map(WireRoute::into_route));
    }
    Ok(result)
}

/// Writes a 0.1.0/0.2.0 result.
///
/// The reference silently keeps the first address of each family and drops
/// routes it has no block for; both lose configuration a runtime would then
/// never apply, so here they are code 1 errors saying what does not fit.
pub(crate) fn emit(r: &CniResult, version: Version) -> Result<Value, Error> {
    let ip4 = single(r, version, true)?;
    let ip6 = single(r, version, false)?;
    if ip4.is_none() && ip6.is_none() {
        return Err(cannot(version, "it has no IP address")
            .with_details(format!("a {version} result needs an ip4 or ip6 address")));
    }
    let mut ip4 = ip4.map(block);
    let mut ip6 = ip6.map(block);
    for route in &r.routes {
        let target = if route.dst.addr().is_ipv4() { &mut ip4 } else { &mut ip6 };
        let Some(target) = target.as_mut() else {
            return Err(cannot(version, &format!("route to {} has no address of its family", route.dst))
                .with_details(format!(
                    "{version} results carry routes inside the ip4/ip6 block of the same family"
                )));
        };
        target.routes.push(WireRoute::from_route(route, false));
    }
    let wire =
        Wire { cni_version: version.as_str().to_owned(), ip4, ip6, dns: Some(r.dns.clone().normalized()) };
    serde_json::to_value(wire).map_err(|e| Error::internal(format!("encoding {version} result: {e}")))
}

fn block(ip: &IpConfig) -> WireIp {
    WireIp { ip: ip.address, gateway: ip.gateway, routes: Vec::new() }
}

/// The only address of one family, or an error when there are several.
fn single(r: &CniResult, version: Version, v4: bool) -> Result<Option<&IpConfig>, Error> {
    let of_family: Vec<&IpConfig> = r.ips.iter().filter(|ip| ip.address.addr().is_ipv4() == v4).collect();
    if of_family.len() > 1 {
        let family = if v4 { "IPv4" } else { "IPv6" };
        let list: Vec<String> = of_family.iter().map(|ip| ip.address.to_string()).collect();
        return Err(cannot(
            version,
            &format!("it has {} {family} addresses ({})", list.len(), list.join(", ")),
        )
        .with_details(format!(
            "a {version} result holds at most one address per family; use cniVersion 0.3.0 or later"
        )));
    }
    Ok(of_family.first().copied())
}

fn cannot(version: Version, why: &str) -> Error {
    Error::incompatible(format!("cannot convert result to {version}: {why}"))
}
