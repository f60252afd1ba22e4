//! A network configuration list (a `.conflist`), and legacy single-plugin
//! `.conf` files read as a list of one.

use serde_json::{Map, Value};

use crate::conf::{NetConf, kind, string_field};
use crate::error::Error;
use crate::version::{Version, negotiate};

/// A network configuration list as a runtime loads it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct NetConfList {
    /// `cniVersion`; empty when absent.
    pub cni_version: String,
    /// `cniVersions`, the other versions the configuration supports.
    pub cni_versions: Vec<String>,
    /// `name`, the network name.
    pub name: String,
    /// `disableCheck`: the runtime must not call CHECK.
    pub disable_check: bool,
    /// `disableGC`: the runtime must not call GC.
    pub disable_gc: bool,
    /// `loadOnlyInlinedPlugins`: ignore plugins aggregated from elsewhere.
    pub load_only_inlined_plugins: bool,
    /// The plugin configuration objects, in order.
    pub plugins: Vec<Map<String, Value>>,
    /// The whole object, unknown fields kept.
    pub raw: Map<String, Value>,
}

impl NetConfList {
    /// Parses a configuration list. Not JSON, not an object, or a field of
    /// the wrong type is code 6; an empty `name`, no `plugins`, or a plugin
    /// without `type` is code 7.
    pub fn parse(bytes: &[u8]) -> Result<NetConfList, Error> {
        let raw = decode_object(bytes, "configuration list")?;
        let name = string_field(&raw, "name")?;
        if name.is_empty() {
            return Err(Error::invalid_config("missing network name in configuration list"));
        }
        let plugins = plugins_field(&raw)?;
        Ok(NetConfList {
            cni_version: string_field(&raw, "cniVersion")?,
            cni_versions: versions_field(&raw)?,
            name,
            disable_check: bool_field(&raw, "disableCheck")?,
            disable_gc: bool_field(&raw, "disableGC")?,
            load_only_inlined_plugins: bool_field(&raw, "loadOnlyInlinedPlugins")?,
            plugins,
            raw,
        })
    }

    /// Reads a legacy single-plugin `.conf` as a list of one, taking the
    /// list's `name` and `cniVersion` from the plugin object.
    pub fn from_conf(bytes: &[u8]) -> Result<NetConfList, Error> {
        let conf = NetConf::parse(bytes)?;
        if conf.name.is_empty() {
            return Err(Error::invalid_config("missing network name in network config"));
        }
        let mut raw = Map::new();
        raw.insert("cniVersion".into(), Value::from(conf.cni_version.as_str()));
        raw.insert("name".into(), Value::from(conf.name.as_str()));
        raw.insert("plugins".into(), Value::Array(vec![Value::Object(conf.raw.clone())]));
        Ok(NetConfList {
            cni_version: conf.cni_version,
            name: conf.name,
            plugins: vec![conf.raw],
            raw,
            ..NetConfList::default()
        })
    }

    /// The version to run this list in: the highest of `cniVersion` and
    /// `cniVersions` that is in `supported` (SPEC.md "Version considerations").
    /// An absent `cniVersion` counts as 0.1.0 only when no `cniVersions` are given.
    pub fn negotiate(&self, supported: &[Version]) -> Result<Version, Error> {
        let mut wanted = self.cni_versions.clone();
        if !self.cni_version.is_empty() {
            wanted.push(self.cni_version.clone());
        } else if wanted.is_empty() {
            wanted.push(Version::V0_1_0.as_str().to_owned());
        }
        negotiate(&wanted, supported)
    }

    /// Plugin `index` as it is sent on stdin: the list's `name` and
    /// `cniVersion` set to `version`; other fields passed through.
    pub fn plugin_conf(&self, index: usize, version: Version) -> Option<Map<String, Value>> {
        let mut conf = self.plugins.get(index)?.clone();
        conf.insert("cniVersion".into(), Value::from(version.as_str()));
        conf.insert("name".into(), Value::from(self.name.as_str()));
        Some(conf)
    }
}

fn decode_object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, Error> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| Error::decode(format!("error parsing {what}: {e}")))?;
    match value {
        Value::Object(m) => Ok(m),
        other => Err(Error::decode(format!("{what} must be a JSON object, got {}", kind(&other)))),
    }
}

/// `cniVersions`: a list of strings, empty when absent.
fn versions_field(raw: &Map<String, Value>) -> Result<Vec<String>, Error> {
    let items = match raw.get("cniVersions") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(Error::decode(format!("'cniVersions' must be an array, got {}", kind(other))));
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.clone()),
            other => {
                Err(Error::decode(format!("'cniVersions' entry {i} must be a string, got {}", kind(other))))
            }
        })
        .collect()
}

/// A boolean flag; like libcni, the strings "true"/"false" (any case) count.
fn bool_field(raw: &Map<String, Value>, key: &str) -> Result<bool, Error> {
    match raw.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(Value::String(s)) => {
            Err(Error::invalid_config(format!("invalid value {s:?} for '{key}', want true or false")))
        }
        Some(other) => Err(Error::decode(format!("'{key}' must be a boolean, got {}", kind(other)))),
    }
}

/// `plugins`: a non-empty list of objects, each with a non-empty `type`.
fn plugins_field(raw: &Map<String, Value>) -> Result<Vec<Map<String, Value>>, Error> {
    let items = match raw.get("plugins") {
        None | Some(Value::Null) => {
            return Err(Error::invalid_config("no 'plugins' in configuration list"));
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(Error::decode(format!("'plugins' must be an array, got {}", kind(other))));
        }
    };
    if items.is_empty() {
        return Err(Error::invalid_config("no plugins in configuration list"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let Value::Object(m) = v else {
                return Err(Error::decode(format!("plugin {i} must be an object, got {}", kind(v))));
            };
            let ty =
                string_field(m, "type").map_err(|e| Error { msg: format!("plugin {i}: {}", e.msg), ..e })?;
            if ty.is_empty() {
                return Err(Error::invalid_config(format!("plugin {i} has no 'type'")));
            }
            Ok(m.clone())
        })
        .collect()
}
