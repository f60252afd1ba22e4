//! `static`: hands out the addresses, routes and DNS written in its `ipam` object, or the
//! addresses a runtime passes, and keeps no state. Options and their precedence follow the
//! reference plugin; see docs/plugins/static.md.
//!
//! Addresses, in the reference's order: `ipam.addresses`, plus `CNI_ARGS` `IP=` (with
//! `GATEWAY=` for those); a non-empty `args.cni.ips` replaces them all, and a non-empty
//! `runtimeConfig.ips` (capability `ips`) replaces that. All are CIDR, host bits kept.

use std::net::IpAddr;
use std::str::FromStr;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Dns, Error, IpConfig, NetConf, Route, Version};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Map, Value};

pub struct Static;

/// One address to hand out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticAddress {
    /// Address and prefix length, host bits kept (`10.1.2.3/24`).
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
}

/// A validated static config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticConf {
    pub addresses: Vec<StaticAddress>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

impl StaticConf {
    pub fn parse(conf: &NetConf, args: &CmdArgs) -> Result<StaticConf, Error> {
        let ipam =
            conf.ipam.as_ref().ok_or_else(|| Error::invalid_config("IPAM config missing 'ipam' key"))?;
        let mut addresses = configured_addresses(ipam)?;
        addresses.extend(cni_args_addresses(args)?);
        let in_args = conf.args.as_ref().and_then(|a| a.get("cni")).and_then(|c| c.get("ips"));
        for (field, value) in
            [("args.cni.ips", in_args), ("runtimeConfig.ips", conf.runtime_config.get("ips"))]
        {
            let replacement = runtime_addresses(field, value)?;
            if !replacement.is_empty() {
                addresses = replacement;
            }
        }
        check_families(&addresses, conf)?;
        let dns = match ipam.get("dns").filter(|v| !v.is_null()) {
            Some(v) => Dns::deserialize(v).map_err(|e| Error::invalid_config(format!("ipam.dns: {e}")))?,
            None => Dns::default(),
        };
        Ok(StaticConf { addresses, routes: configured_routes(ipam)?, dns })
    }

    fn result(&self, version: Version) -> CniResult {
        CniResult {
            cni_version: version,
            interfaces: Vec::new(),
            ips: self
                .addresses
                .iter()
                .map(|a| IpConfig { address: a.address, gateway: a.gateway, interface: None })
                .collect(),
            routes: self.routes.clone(),
            dns: self.dns.clone(),
        }
    }
}

impl Plugin for Static {
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        Ok(StaticConf::parse(conf, args)?.result(conf.version()?))
    }

    /// Every configured address must be in `prevResult`, with the configured gateway if one
    /// is set. The reference skips addresses it does not find; twill reports them.
    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let sc = StaticConf::parse(conf, args)?;
        let prev = conf.prev_result()?.ok_or_else(|| Error::invalid_config("required prevResult missing"))?;
        for want in &sc.addresses {
            let ip = want.address.addr();
            let found = prev.ips.iter().find(|have| have.address.addr() == ip).ok_or_else(|| {
                Error::internal(format!("static: address {ip} for {} is not in prevResult", args.ifname))
            })?;
            if want.gateway.is_some() && want.gateway != found.gateway {
                return Err(Error::internal(format!(
                    "static: failed to match addr {ip} on interface {}: gateway {:?} in prevResult, {:?} configured",
                    args.ifname, found.gateway, want.gateway
                )));
            }
        }
        Ok(())
    }

    fn del(&self, _args: &CmdArgs, _conf: &NetConf) -> Result<(), Error> {
        // Nothing was reserved anywhere; not even the config needs to be valid to forget it.
        Ok(())
    }

    fn gc(&self, _args: &CmdArgs, _conf: &NetConf) -> Result<(), Error> {
        // static keeps no state, so no attachment can leave anything behind to collect.
        Ok(())
    }

    fn status(&self, _args: &CmdArgs, _conf: &NetConf) -> Result<(), Error> {
        // Nothing to run out of and nothing to reach: ADD can always be served.
        Ok(())
    }
}

#[derive(Deserialize)]
struct RawAddress {
    #[serde(default)]
    address: String,
    #[serde(default)]
    gateway: Option<String>,
}

#[derive(Deserialize)]
struct RawRoute {
    #[serde(default)]
    dst: String,
    #[serde(default)]
    gw: Option<String>,
    mtu: Option<u32>,
    advmss: Option<u32>,
    priority: Option<u32>,
    table: Option<u32>,
    scope: Option<u8>,
}

/// The elements of an optional array field, each with its path for messages.
fn items<'a>(ipam: &'a Map<String, Value>, key: &str) -> Result<Vec<(String, &'a Value)>, Error> {
    match ipam.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => {
            Ok(list.iter().enumerate().map(|(i, v)| (format!("ipam.{key}[{i}]"), v)).collect())
        }
        Some(other) => Err(Error::invalid_config(format!("ipam.{key}: expected an array, found {other}"))),
    }
}

pub(crate) fn configured_addresses(ipam: &Map<String, Value>) -> Result<Vec<StaticAddress>, Error> {
    items(ipam, "addresses")?
        .into_iter()
        .map(|(path, v)| {
            let raw =
                RawAddress::deserialize(v).map_err(|e| Error::invalid_config(format!("{path}: {e}")))?;
            let address = cidr(&raw.address).ok_or_else(|| {
                Error::invalid_config(format!(
                    "{path}: the 'address' field is expected to be in CIDR notation, got: '{}'",
                    raw.address
                ))
            })?;
            let gateway = optional_ip(raw.gateway.as_deref())
                .map_err(|bad| Error::invalid_config(format!("{path}.gateway: invalid IP address: {bad}")))?;
            Ok(StaticAddress { address, gateway })
        })
        .collect()
}

pub(crate) fn configured_routes(ipam: &Map<String, Value>) -> Result<Vec<Route>, Error> {
    items(ipam, "routes")?
        .into_iter()
        .map(|(path, v)| {
            let raw = RawRoute::deserialize(v).map_err(|e| Error::invalid_config(format!("{path}: {e}")))?;
            let dst = IpNet::from_str(&raw.dst)
                .map_err(|_| Error::invalid_config(format!("{path}.dst: invalid CIDR {:?}", raw.dst)))?;
            let gw = optional_ip(raw.gw.as_deref())
                .map_err(|bad| Error::invalid_config(format!("{path}.gw: invalid IP address: {bad}")))?;
            let (mtu, advmss, priority, table, scope) =
                (raw.mtu, raw.advmss, raw.priority, raw.table, raw.scope);
            Ok(Route { dst, gw, mtu, advmss, priority, table, scope })
        })
        .collect()
}

/// `IP=` (comma-separated CIDRs) and `GATEWAY=` (comma-separated; each becomes the gateway
/// of the `IP=` addresses whose subnet holds it). Problems here are code 4.
pub(crate) fn cni_args_addresses(args: &CmdArgs) -> Result<Vec<StaticAddress>, Error> {
    let mut addresses = Vec::new();
    for item in args.arg("IP").filter(|s| !s.is_empty()).into_iter().flat_map(|s| s.split(',')) {
        let text = item.trim();
        let address = cidr(text).ok_or_else(|| {
            Error::invalid_env(format!(
                "CNI_ARGS IP: the 'ip' field is expected to be in CIDR notation, got: '{text}'"
            ))
        })?;
        addresses.push(StaticAddress { address, gateway: None });
    }
    for item in args.arg("GATEWAY").filter(|s| !s.is_empty()).into_iter().flat_map(|s| s.split(',')) {
        let gw = IpAddr::from_str(item.trim())
            .map_err(|_| Error::invalid_env(format!("CNI_ARGS GATEWAY: invalid gateway address: {item}")))?;
        for a in addresses.iter_mut().filter(|a| a.address.contains(&gw)) {
            a.gateway = Some(gw);
        }
    }
    Ok(addresses)
}

/// `args.cni.ips` or `runtimeConfig.ips`: a list of CIDRs.
fn runtime_addresses(field: &str, value: Option<&Value>) -> Result<Vec<StaticAddress>, Error> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let texts = Vec::<String>::deserialize(value)
        .map_err(|e| Error::invalid_config(format!("{field}: expected an array of strings: {e}")))?;
    texts
        .iter()
        .map(|text| {
            let address = cidr(text).ok_or_else(|| {
                Error::invalid_config(format!("{field}: an entry is not in CIDR notation, got: '{text}'"))
            })?;
            Ok(StaticAddress { address, gateway: None })
        })
        .collect()
}

/// CNI versions before 0.3.0 carry one address per family; refused as the reference does.
fn check_families(addresses: &[StaticAddress], conf: &NetConf) -> Result<(), Error> {
    let v4 = addresses.iter().filter(|a| a.address.addr().is_ipv4()).count();
    let v6 = addresses.len() - v4;
    if (v4 > 1 || v6 > 1) && conf.version()? < Version::V0_3_0 {
        return Err(Error::incompatible(format!(
            "CNI version {} does not support more than 1 address per family",
            conf.cni_version
        )));
    }
    Ok(())
}

/// `10.1.2.3/24`, host bits kept; IPv4-mapped IPv6 becomes IPv4 as Go's `To4` makes it.
fn cidr(text: &str) -> Option<IpNet> {
    let net = IpNet::from_str(text).ok()?;
    match net {
        IpNet::V6(v6) if v6.addr().to_ipv4_mapped().is_some() => {
            let v4 = v6.addr().to_ipv4_mapped()?;
            IpNet::new(IpAddr::V4(v4), v6.prefix_len().checked_sub(96)?).ok()
        }
        other => Some(other),
    }
}

/// An optional address; absent or empty is none (Go's `net.IP` reads "" as nil).
fn optional_ip(text: Option<&str>) -> Result<Option<IpAddr>, String> {
    match text.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => IpAddr::from_str(s).map(Some).map_err(|_| s.to_string()),
    }
}

#[cfg(test)]
#[path = "static_ipam_tests.rs"]
mod tests;
