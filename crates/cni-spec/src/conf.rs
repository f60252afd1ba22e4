//! One plugin's configuration exactly as the plugin receives it on stdin.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::result::{CniResult, Dns};
use crate::version::Version;

/// A plugin configuration object. The typed fields are read from `raw`,
/// which keeps the whole object, unknown fields included; `to_bytes`
/// writes `raw`, so change configurations through `raw` (or the setters).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NetConf {
    /// `cniVersion`; empty when absent (which the spec reads as 0.1.0).
    pub cni_version: String,
    /// `name`, the network name; empty when absent.
    pub name: String,
    /// `type`, the plugin binary name.
    pub plugin_type: String,
    /// `capabilities` this plugin declares.
    pub capabilities: BTreeMap<String, bool>,
    /// The `ipam` object (with its `type`), if any.
    pub ipam: Option<Map<String, Value>>,
    /// The `dns` object, if any.
    pub dns: Option<Dns>,
    /// `args`, if any.
    pub args: Option<Value>,
    /// `runtimeConfig`, empty when absent.
    pub runtime_config: Map<String, Value>,
    /// `prevResult` as given, if any.
    pub prev_result: Option<Value>,
    /// The whole object.
    pub raw: Map<String, Value>,
}

impl NetConf {
    /// Parses a plugin configuration. Not JSON, not an object, or a known
    /// field of the wrong type is a decode error (6); a missing or empty
    /// `type` is an invalid configuration (7).
    pub fn parse(bytes: &[u8]) -> Result<NetConf, Error> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::decode(format!("error parsing network config: {e}")))?;
        match value {
            Value::Object(raw) => NetConf::from_map(raw),
            other => {
                Err(Error::decode(format!("network config must be a JSON object, got {}", kind(&other))))
            }
        }
    }

    /// Builds a configuration from an already decoded object.
    pub fn from_map(raw: Map<String, Value>) -> Result<NetConf, Error> {
        let plugin_type = string_field(&raw, "type")?;
        if plugin_type.is_empty() {
            return Err(Error::invalid_config("missing 'type' in network config"));
        }
        Ok(NetConf {
            cni_version: string_field(&raw, "cniVersion")?,
            name: string_field(&raw, "name")?,
            plugin_type,
            capabilities: typed_field(&raw, "capabilities")?.unwrap_or_default(),
            ipam: object_field(&raw, "ipam")?,
            dns: typed_field::<Dns>(&raw, "dns")?.map(Dns::normalized),
            args: raw.get("args").filter(|v| !v.is_null()).cloned(),
            runtime_config: object_field(&raw, "runtimeConfig")?.unwrap_or_default(),
            prev_result: raw.get("prevResult").filter(|v| !v.is_null()).cloned(),
            raw,
        })
    }

    /// The configuration's version; an absent `cniVersion` is 0.1.0 (as in
    /// the reference), an unknown one is code 1.
    pub fn version(&self) -> Result<Version, Error> {
        if self.cni_version.is_empty() {
            return Ok(Version::V0_1_0);
        }
        Version::parse(&self.cni_version)
    }

    /// Deserializes the whole object into a plugin's own config struct;
    /// failures are code 7 with serde's message.
    pub fn plugin_conf<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(Value::Object(self.raw.clone()))
            .map_err(|e| Error::invalid_config(format!("invalid {} config: {e}", self.plugin_type)))
    }

    /// The `ipam.type`, if there is one.
    pub fn ipam_type(&self) -> Option<&str> {
        self.ipam.as_ref()?.get("type")?.as_str()
    }

    /// `prevResult` read in this configuration's version.
    pub fn prev_result(&self) -> Result<Option<CniResult>, Error> {
        match &self.prev_result {
            None => Ok(None),
            Some(v) => CniResult::from_json_as(v, self.version()?).map(Some),
        }
    }

    /// Sets `prevResult` (in `raw` too), written in this configuration's version.
    pub fn set_prev_result(&mut self, result: &CniResult) -> Result<(), Error> {
        let v = result.to_json(self.version()?)?;
        self.raw.insert("prevResult".into(), v.clone());
        self.prev_result = Some(v);
        Ok(())
    }

    /// The configuration as JSON bytes (`raw`).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a Map of Values cannot fail: every key is a string.
        serde_json::to_vec(&self.raw).unwrap_or_default()
    }
}

/// A JSON value's kind, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string field, empty when absent or null; another type is code 6.
pub(crate) fn string_field(raw: &Map<String, Value>, key: &str) -> Result<String, Error> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(Error::decode(format!("'{key}' must be a string, got {}", kind(other)))),
    }
}

/// An object field, `None` when absent or null; another type is code 6.
pub(crate) fn object_field(raw: &Map<String, Value>, key: &str) -> Result<Option<Map<String, Value>>, Error> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(Error::decode(format!("'{key}' must be an object, got {}", kind(other)))),
    }
}

fn typed_field<T: DeserializeOwned>(raw: &Map<String, Value>, key: &str) -> Result<Option<T>, Error> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| Error::decode(format!("invalid '{key}': {e}"))),
    }
}
