//! The `ipam` object of a Whereabouts configuration, as Whereabouts users write it, merged
//! with the flat file and validated (docs/plugins/whereabouts.md has the table):
//! `range` (CIDR, or `START-END/PREFIX`) with `range_start`, `range_end` and `exclude`, and
//! `ipRanges` (a list of such ranges; dual-stack) after it; `gateway`, `routes`, `dns`,
//! `addresses` (static ones, never reserved); `network_name`; `enable_overlapping_ranges`
//! (default true); the datastore; `log_file`, `log_level`. Whereabouts' leader-election and
//! race-testing knobs are accepted and ignored, with a log line.

use std::net::IpAddr;
use std::path::Path;

use cni_skel::CmdArgs;
use cni_spec::{Dns, Error, NetConf, Route, Version};
use ipam::{PoolRange, parse_exclude, parse_range};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{datastore, flat};
use crate::static_ipam::{self, StaticAddress};

/// Knobs of Whereabouts' Kubernetes leader election and race testing: twill allocates by
/// compare-and-swap, so they mean nothing here.
pub const IGNORED: [&str; 5] = [
    "leader_lease_duration",
    "leader_renew_deadline",
    "leader_retry_period",
    "sleep_for_race",
    "reconciler_cron_expression",
];

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct WhereaboutsConf {
    pub version: Version,
    /// The CNI network (`name`).
    pub cni_network: String,
    /// `network_name`; empty for the unnamed network.
    pub network: String,
    pub ranges: Vec<PoolRange>,
    pub overlapping: bool,
    pub gateway: Option<IpAddr>,
    pub routes: Vec<Route>,
    pub dns: Dns,
    pub addresses: Vec<StaticAddress>,
    pub ipam: Map<String, Value>,
    /// Log lines for ignored knobs, to be written once the log is set up.
    pub notes: Vec<String>,
}

/// The merged `ipam` object; what every verb reads first.
pub fn merged_ipam(conf: &NetConf, defaults: &[&Path]) -> Result<Map<String, Value>, Error> {
    let ipam = conf.ipam.as_ref().ok_or_else(|| Error::invalid_config("IPAM config missing 'ipam' key"))?;
    Ok(flat::merge(ipam, defaults)?.0)
}

impl WhereaboutsConf {
    pub fn parse(conf: &NetConf, args: &CmdArgs, defaults: &[&Path]) -> Result<WhereaboutsConf, Error> {
        let ipam = merged_ipam(conf, defaults)?;
        let gateway = ip_field(&ipam, "gateway")?;
        let mut ranges = Vec::new();
        if ipam.get("range").is_some_and(|v| !v.is_null()) {
            ranges.push(range_of(&ipam, "ipam", gateway)?);
        }
        for (i, item) in array(&ipam, "ipRanges")?.iter().enumerate() {
            let path = format!("ipam.ipRanges[{i}]");
            let obj = item
                .as_object()
                .ok_or_else(|| Error::invalid_config(format!("{path}: expected an object")))?;
            ranges.push(range_of(obj, &path, gateway)?);
        }
        if ranges.is_empty() {
            return Err(Error::invalid_config("ipam: no range: set ipam.range or ipam.ipRanges"));
        }
        let mut addresses = static_ipam::configured_addresses(&ipam)?;
        addresses.extend(static_ipam::cni_args_addresses(args)?);
        let dns = match ipam.get("dns").filter(|v| !v.is_null()) {
            Some(v) => Dns::deserialize(v).map_err(|e| Error::invalid_config(format!("ipam.dns: {e}")))?,
            None => Dns::default(),
        };
        let overlapping = match ipam.get("enable_overlapping_ranges") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(Error::invalid_config(format!(
                    "ipam.enable_overlapping_ranges: expected true or false, found {other}"
                )));
            }
        };
        if let Some(v) = ipam.get("node_slice_size").filter(|v| !v.is_null() && *v != "") {
            return Err(Error::invalid_config(format!(
                "ipam.node_slice_size {v}: node slices are not supported; every node allocates from the whole range by compare-and-swap"
            )));
        }
        let notes = IGNORED
            .iter()
            .filter(|k| ipam.get(**k).is_some_and(|v| !v.is_null()))
            .map(|k| {
                format!("ipam.{k} is ignored: twill allocates by compare-and-swap, without leader election")
            })
            .collect();
        Ok(WhereaboutsConf {
            version: conf.version()?,
            cni_network: conf.name.clone(),
            network: network_name(&ipam)?,
            ranges,
            overlapping,
            gateway,
            routes: static_ipam::configured_routes(&ipam)?,
            dns,
            addresses,
            ipam,
            notes,
        })
    }

    /// The datastore's address (parsed again here so DEL needs nothing else valid).
    pub fn datastore(&self) -> Result<cluster::DatastoreConf, Error> {
        datastore::datastore(&self.ipam)
    }
}

/// `network_name` alone: DEL and GC need only it and the datastore.
pub fn network_name(ipam: &Map<String, Value>) -> Result<String, Error> {
    match ipam.get("network_name") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => {
            cluster::ippool::check_network_name(s)
                .map_err(|e| Error::invalid_config(format!("ipam.network_name: {e}")))?;
            Ok(s.clone())
        }
        Some(other) => {
            Err(Error::invalid_config(format!("ipam.network_name: expected a string, found {other}")))
        }
    }
}

fn array<'a>(ipam: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], Error> {
    match ipam.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(other) => Err(Error::invalid_config(format!("ipam.{key}: expected an array, found {other}"))),
    }
}

fn string<'a>(obj: &'a Map<String, Value>, path: &str, key: &str) -> Result<Option<&'a str>, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(Error::invalid_config(format!("{path}.{key}: expected a string, found {other}"))),
    }
}

fn ip_field(obj: &Map<String, Value>, key: &str) -> Result<Option<IpAddr>, Error> {
    string(obj, "ipam", key)?
        .map(|s| {
            s.trim()
                .parse::<IpAddr>()
                .map_err(|_| Error::invalid_config(format!("ipam.{key}: invalid IP address {s:?}")))
        })
        .transpose()
}

/// One range object (`range`, `range_start`, `range_end`, `exclude`); the gateway of its
/// family is never handed out.
fn range_of(obj: &Map<String, Value>, path: &str, gateway: Option<IpAddr>) -> Result<PoolRange, Error> {
    let bad = |key: &str, e: &dyn std::fmt::Display| Error::invalid_config(format!("{path}.{key}: {e}"));
    let text = string(obj, path, "range")?.ok_or_else(|| bad("range", &"missing"))?;
    let (subnet, mut start, mut end) = parse_range(text).map_err(|e| bad("range", &e))?;
    // START-END/PREFIX wins over range_start/range_end, as in Whereabouts.
    if start.is_none() {
        let ip = |key| {
            string(obj, path, key)?
                .map(|s| {
                    s.trim().parse::<IpAddr>().map_err(|_| bad(key, &format!("invalid IP address {s:?}")))
                })
                .transpose()
        };
        (start, end) = (ip("range_start")?, ip("range_end")?);
    }
    let mut exclude: Vec<IpNet> = Vec::new();
    match obj.get("exclude") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let s =
                    item.as_str().ok_or_else(|| bad(&format!("exclude[{i}]"), &"expected a CIDR string"))?;
                exclude.push(parse_exclude(s).map_err(|e| bad(&format!("exclude[{i}]"), &e))?);
            }
        }
        Some(other) => return Err(bad("exclude", &format!("expected an array, found {other}"))),
    }
    exclude.extend(gateway.map(IpNet::from));
    PoolRange::new(subnet, start, end, &exclude).map_err(|e| bad("range", &e))
}

#[cfg(test)]
#[path = "conf_tests.rs"]
mod tests;
