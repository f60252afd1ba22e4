//! The `ipam` object of a host-local configuration, parsed and validated.
//!
//! Accepted fields, as the reference's `LoadIPAMConfig`: `ranges` (`[[{subnet, rangeStart,
//! rangeEnd, gateway}]]`), the legacy top-level `subnet`/`rangeStart`/`rangeEnd`/`gateway`
//! (prepended as range set 0 when `subnet` is set), `routes` (`[{dst, gw, mtu, advmss,
//! priority, table, scope}]`), `dataDir` and `resolvConf`. Ranges from the `ipRanges`
//! runtime capability are prepended before both. Unknown fields are ignored.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde_json::Value;

use crate::error::{ConfigError, Error};
use crate::fields::{Object, wrong_type};
use crate::range::{Range, RangeSet};

/// Where reservations live when `dataDir` is not set; one directory per network below it.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";

/// A route handed back unchanged in the result (CNI 1.1 route fields included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    pub mtu: Option<i64>,
    pub advmss: Option<i64>,
    pub priority: Option<i64>,
    pub table: Option<i64>,
    pub scope: Option<i64>,
}

/// A validated host-local IPAM configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpamConfig {
    /// The network name: the directory below `data_dir` holding the reservations.
    pub name: String,
    /// One address is allocated per set, in this order; the index names `last_reserved_ip.N`.
    pub range_sets: Vec<RangeSet>,
    pub data_dir: PathBuf,
    pub routes: Vec<Route>,
    pub resolv_conf: Option<PathBuf>,
}

impl IpamConfig {
    /// A configuration with defaults for everything but the ranges; checks that there is at
    /// least one range set, that no two sets overlap, and that the name is a safe directory.
    pub fn new(name: &str, range_sets: Vec<RangeSet>) -> Result<IpamConfig, Error> {
        check_network_name(name)?;
        if range_sets.is_empty() {
            return Err(Error::config("ipam", ConfigError::NoRanges));
        }
        for (i, a) in range_sets.iter().enumerate() {
            if let Some(j) = range_sets[i + 1..].iter().position(|b| a.overlaps(b)) {
                let err = ConfigError::RangeSetsOverlap { first: i, second: i + 1 + j };
                return Err(Error::config("ipam", err));
            }
        }
        Ok(IpamConfig {
            name: name.to_string(),
            range_sets,
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            routes: Vec::new(),
            resolv_conf: None,
        })
    }

    /// Parse the `ipam` object of a host-local network configuration.
    pub fn from_ipam_json(network_name: &str, ipam: &Value) -> Result<IpamConfig, Error> {
        IpamConfig::from_json(network_name, ipam, None)
    }

    /// Like [`from_ipam_json`](Self::from_ipam_json), with the `runtimeConfig.ipRanges`
    /// capability value (an array of range sets) prepended to the configured ranges.
    pub fn from_json(
        network_name: &str,
        ipam: &Value,
        runtime_ip_ranges: Option<&Value>,
    ) -> Result<IpamConfig, Error> {
        let obj = Object::new("ipam", ipam)?;
        let mut sets = Vec::new();
        if let Some(value) = runtime_ip_ranges.filter(|v| !v.is_null()) {
            sets.extend(parse_range_sets("runtimeConfig.ipRanges", value)?);
        }
        if obj.get("subnet").is_some() {
            let legacy = parse_range(&obj)?;
            sets.push(RangeSet::new(vec![legacy]).map_err(|e| Error::config("ipam", e))?);
        }
        if let Some(value) = obj.get("ranges") {
            sets.extend(parse_range_sets("ipam.ranges", value)?);
        }
        let mut conf = IpamConfig::new(network_name, sets)?;
        if let Some(dir) = obj.string("dataDir")?.filter(|d| !d.is_empty()) {
            conf.data_dir = PathBuf::from(dir);
        }
        conf.resolv_conf = obj.string("resolvConf")?.filter(|p| !p.is_empty()).map(PathBuf::from);
        conf.routes = parse_routes(&obj)?;
        Ok(conf)
    }

    /// How many range sets allocate IPv4 and IPv6 addresses. CNI versions before 0.3.0 carry
    /// at most one of each; the reference refuses such configs for those versions.
    pub fn addresses_per_family(&self) -> (usize, usize) {
        let v6 = self.range_sets.iter().filter(|s| s.is_ipv6()).count();
        (self.range_sets.len() - v6, v6)
    }
}

/// The network name becomes a directory name: refuse anything that could leave `dataDir`.
pub(crate) fn check_network_name(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." {
        "not a directory name"
    } else if name.contains(['/', '\0']) {
        "contains '/' or NUL"
    } else {
        return Ok(());
    };
    Err(Error::NetworkName { name: name.to_string(), reason })
}

fn parse_range_sets(path: &str, value: &Value) -> Result<Vec<RangeSet>, Error> {
    let Value::Array(items) = value else {
        return Err(wrong_type(path, "an array of range sets", value));
    };
    let mut sets = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let set_path = format!("{path}[{i}]");
        let Value::Array(ranges) = item else {
            return Err(wrong_type(&set_path, "an array of ranges", item));
        };
        let mut parsed = Vec::with_capacity(ranges.len());
        for (j, range) in ranges.iter().enumerate() {
            parsed.push(parse_range(&Object::new(format!("{set_path}[{j}]"), range)?)?);
        }
        sets.push(RangeSet::new(parsed).map_err(|e| Error::config(&set_path, e))?);
    }
    Ok(sets)
}

fn parse_range(obj: &Object<'_>) -> Result<Range, Error> {
    let Some(subnet) = obj.cidr("subnet")? else {
        return Err(Error::config(obj.field_path("subnet"), ConfigError::Missing));
    };
    let start = obj.ip("rangeStart")?;
    let end = obj.ip("rangeEnd")?;
    let gateway = obj.ip("gateway")?;
    Range::new(subnet, start, end, gateway).map_err(|e| e.within(&obj.path))
}

fn parse_routes(obj: &Object<'_>) -> Result<Vec<Route>, Error> {
    let Some(items) = obj.array("routes")? else {
        return Ok(Vec::new());
    };
    let mut routes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let route = Object::new(format!("{}[{i}]", obj.field_path("routes")), item)?;
        let Some(dst) = route.cidr("dst")? else {
            return Err(Error::config(route.field_path("dst"), ConfigError::Missing));
        };
        routes.push(Route {
            dst,
            gw: route.ip("gw")?,
            mtu: route.int("mtu")?,
            advmss: route.int("advmss")?,
            priority: route.int("priority")?,
            table: route.int("table")?,
            scope: route.int("scope")?,
        });
    }
    Ok(routes)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
