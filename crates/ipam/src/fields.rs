//! Typed readers for fields of a JSON object, each error naming the field's path.
//!
//! Go's `encoding/json` semantics are kept where a config could tell the difference: a
//! missing field and `null` are the same, unknown fields are ignored, and an empty string
//! for an IP field means "not set" (Go's `net.IP.UnmarshalText`).

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde_json::{Map, Value};

use crate::error::{ConfigError, Error};

/// A JSON object together with its path, e.g. `ranges[0][1]`.
pub(crate) struct Object<'a> {
    pub(crate) path: String,
    pub(crate) map: &'a Map<String, Value>,
}

impl<'a> Object<'a> {
    /// `value` as an object at `path`.
    pub(crate) fn new(path: impl Into<String>, value: &'a Value) -> Result<Object<'a>, Error> {
        let path = path.into();
        match value {
            Value::Object(map) => Ok(Object { path, map }),
            other => Err(wrong_type(&path, "an object", other)),
        }
    }

    /// The path of `field` inside this object.
    pub(crate) fn field_path(&self, field: &str) -> String {
        if self.path.is_empty() { field.to_string() } else { format!("{}.{field}", self.path) }
    }

    /// The field's value, `None` when missing or `null`.
    pub(crate) fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    /// An optional string field.
    pub(crate) fn string(&self, field: &str) -> Result<Option<&'a str>, Error> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(&self.field_path(field), "a string", other)),
        }
    }

    /// An optional array field.
    pub(crate) fn array(&self, field: &str) -> Result<Option<&'a [Value]>, Error> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(wrong_type(&self.field_path(field), "an array", other)),
        }
    }

    /// An optional IP field; `""` counts as absent.
    pub(crate) fn ip(&self, field: &str) -> Result<Option<IpAddr>, Error> {
        let Some(text) = self.string(field)?.filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let ip = IpAddr::from_str(text).map_err(|e| {
            let err = ConfigError::BadIp { value: text.to_string(), reason: e.to_string() };
            Error::config(self.field_path(field), err)
        })?;
        Ok(Some(ip))
    }

    /// An optional CIDR field; host bits are kept (`10.1.2.3/24` stays as written).
    pub(crate) fn cidr(&self, field: &str) -> Result<Option<IpNet>, Error> {
        let Some(text) = self.string(field)? else {
            return Ok(None);
        };
        parse_cidr(text).map(Some).map_err(|reason| {
            let err = ConfigError::BadCidr { value: text.to_string(), reason };
            Error::config(self.field_path(field), err)
        })
    }

    /// An optional integer field.
    pub(crate) fn int(&self, field: &str) -> Result<Option<i64>, Error> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(other) => Err(wrong_type(&self.field_path(field), "an integer", other)),
        }
    }
}

/// `addr/len` with the address as written; IPv4-mapped IPv6 is not folded here.
pub(crate) fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let Some((addr, len)) = text.split_once('/') else {
        return Err("missing prefix length".into());
    };
    let addr = IpAddr::from_str(addr).map_err(|e| e.to_string())?;
    let len: u8 = len.parse().map_err(|_| format!("invalid prefix length {len:?}"))?;
    IpNet::new(addr, len).map_err(|e| e.to_string())
}

/// The error for a value of the wrong JSON type at `path`.
pub(crate) fn wrong_type(path: &str, expected: &'static str, found: &Value) -> Error {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    Error::config(path, ConfigError::WrongType { expected, found: found.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_and_empty_ip_are_absent() {
        let v = json!({"gateway": "", "rangeStart": null});
        let o = Object::new("ipam.ranges[0][0]", &v).unwrap();
        assert_eq!(o.ip("gateway").unwrap(), None);
        assert_eq!(o.ip("rangeStart").unwrap(), None);
        assert_eq!(o.ip("rangeEnd").unwrap(), None);
    }

    #[test]
    fn errors_carry_the_path_and_value() {
        let v = json!({"gateway": "10.0.0.256", "subnet": 7, "dst": "10.0.0.0/33"});
        let o = Object::new("ipam.ranges[1][0]", &v).unwrap();
        let gw = o.ip("gateway").unwrap_err().to_string();
        assert!(gw.starts_with("ipam.ranges[1][0].gateway: invalid IP address \"10.0.0.256\""), "{gw}");
        let subnet = o.cidr("subnet").unwrap_err().to_string();
        assert_eq!(subnet, "ipam.ranges[1][0].subnet: expected a string, found a number");
        assert!(o.cidr("dst").unwrap_err().to_string().contains("\"10.0.0.0/33\""));
    }

    #[test]
    fn cidr_keeps_host_bits() {
        let net = parse_cidr("10.1.2.3/24").unwrap();
        assert_eq!(net.to_string(), "10.1.2.3/24");
        assert!(parse_cidr("10.1.2.3").is_err());
        assert!(parse_cidr("10.1.2.3/x").is_err());
    }
}
