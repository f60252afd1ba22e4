//! host-local's input: the `ipam` object (validated by the allocator crate), the requested
//! addresses from their three sources, and the configured routes in result form.

use std::net::IpAddr;
use std::path::PathBuf;

use cni_skel::CmdArgs;
use cni_spec::{Error, NetConf, Route, Version};
use ipam::IpamConfig;
use serde_json::Value;

use super::error::{cni_args_error, to_cni};

/// What ADD and CHECK work from, fully validated before the store is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLocalConf {
    pub ipam: IpamConfig,
    /// Requested addresses in the reference's order: `CNI_ARGS` `IP=`, `args.cni.ips`,
    /// `runtimeConfig.ips`.
    pub requested: Vec<IpAddr>,
    /// `ipam.routes`, passed through to the result.
    pub routes: Vec<Route>,
    pub version: Version,
    /// `cniVersion` as written, for messages that quote it.
    pub version_text: String,
}

impl HostLocalConf {
    /// Range sets come from the `ipRanges` capability, then the legacy top-level `subnet`,
    /// then `ranges` (the allocator crate's [`IpamConfig::from_json`]).
    pub fn parse(conf: &NetConf, args: &CmdArgs) -> Result<HostLocalConf, Error> {
        let ipam_value = conf
            .raw
            .get("ipam")
            .filter(|v| !v.is_null())
            .ok_or_else(|| Error::invalid_config("IPAM config missing 'ipam' key"))?;
        let ip_ranges = conf.runtime_config.get("ipRanges");
        let ipam = IpamConfig::from_json(&conf.name, ipam_value, ip_ranges).map_err(to_cni)?;
        let routes =
            ipam.routes.iter().enumerate().map(|(i, r)| result_route(i, r)).collect::<Result<_, _>>()?;
        Ok(HostLocalConf {
            requested: requested_ips(conf, args)?,
            routes,
            version: conf.version()?,
            version_text: conf.cni_version.clone(),
            ipam,
        })
    }
}

/// Requested addresses, `10.1.2.3` or `10.1.2.3/24` (the range decides the prefix).
///
/// An empty `IP=` in `CNI_ARGS` means none. twill also takes a comma-separated list there
/// (one address per range set, for dual-stack); the reference takes a single address.
pub fn requested_ips(conf: &NetConf, args: &CmdArgs) -> Result<Vec<IpAddr>, Error> {
    let from_env: Vec<String> = args
        .arg("IP")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let mut ips = ipam::parse_requested(&from_env).map_err(cni_args_error)?;
    let in_args = conf.args.as_ref().and_then(|a| a.get("cni")).and_then(|c| c.get("ips"));
    ips.extend(ip_list("args.cni.ips", in_args)?);
    ips.extend(ip_list("runtimeConfig.ips", conf.runtime_config.get("ips"))?);
    Ok(ips)
}

fn ip_list(field: &str, value: Option<&Value>) -> Result<Vec<IpAddr>, Error> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let texts: Vec<String> = serde_json::from_value(value.clone())
        .map_err(|e| Error::invalid_config(format!("{field}: expected an array of strings: {e}")))?;
    ipam::parse_requested(&texts).map_err(|e| Error::invalid_config(format!("{field}: {e}")))
}

/// An allocator route as a result route; the allocator keeps integers wide, a result cannot.
fn result_route(index: usize, r: &ipam::Route) -> Result<Route, Error> {
    let field = |name: &str| format!("ipam.routes[{index}].{name}");
    Ok(Route {
        dst: r.dst,
        gw: r.gw,
        mtu: narrow(&field("mtu"), r.mtu)?,
        advmss: narrow(&field("advmss"), r.advmss)?,
        priority: narrow(&field("priority"), r.priority)?,
        table: narrow(&field("table"), r.table)?,
        scope: narrow(&field("scope"), r.scope)?,
    })
}

fn narrow<T: TryFrom<i64>>(field: &str, value: Option<i64>) -> Result<Option<T>, Error> {
    value
        .map(|v| T::try_from(v).map_err(|_| Error::invalid_config(format!("{field}: {v} is out of range"))))
        .transpose()
}

/// Where an attachment's reservations live: all that DEL, GC and STATUS need.
///
/// Read without validating the ranges, so DEL frees what ADD reserved even after the ranges
/// were edited, and GC and STATUS work when the ranges come from the `ipRanges` capability
/// (which runtimes do not send with GC or STATUS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConf {
    pub data_dir: PathBuf,
    pub network: String,
}

impl StoreConf {
    pub fn parse(conf: &NetConf) -> Result<StoreConf, Error> {
        let ipam =
            conf.ipam.as_ref().ok_or_else(|| Error::invalid_config("IPAM config missing 'ipam' key"))?;
        let data_dir = match ipam.get("dataDir") {
            None | Some(Value::Null) => PathBuf::from(ipam::DEFAULT_DATA_DIR),
            Some(Value::String(s)) if s.is_empty() => PathBuf::from(ipam::DEFAULT_DATA_DIR),
            Some(Value::String(s)) => PathBuf::from(s),
            Some(other) => {
                return Err(Error::invalid_config(format!("ipam.dataDir: expected a string, found {other}")));
            }
        };
        Ok(StoreConf { data_dir, network: conf.name.clone() })
    }

    /// `<dataDir>/<network>`.
    pub fn network_dir(&self) -> PathBuf {
        self.data_dir.join(&self.network)
    }
}

#[cfg(test)]
#[path = "conf_tests.rs"]
mod tests;
