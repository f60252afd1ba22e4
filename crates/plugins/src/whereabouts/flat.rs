//! Whereabouts' flat file: options an operator (or twilld) writes once per node instead of
//! into every network's `ipam` object — typically the datastore. Looked for, as Whereabouts
//! does, at `configuration_path` when the IPAM config names one, then at
//! `/etc/kubernetes/cni/net.d/whereabouts.d/whereabouts.conf`, then at
//! `/etc/cni/net.d/whereabouts.d/whereabouts.conf`; the first that exists is used, and every
//! key it has fills the same key of the IPAM config only where the IPAM config has none.

use std::path::{Path, PathBuf};

use cni_spec::{Error, ErrorCode};
use serde_json::{Map, Value};

/// Where Whereabouts looks when `configuration_path` is not set, in order.
pub const DEFAULT_PATHS: [&str; 2] = [
    "/etc/kubernetes/cni/net.d/whereabouts.d/whereabouts.conf",
    "/etc/cni/net.d/whereabouts.d/whereabouts.conf",
];

/// The IPAM object with the flat file laid under it, and the file used, if any.
pub fn merge(
    ipam: &Map<String, Value>,
    defaults: &[&Path],
) -> Result<(Map<String, Value>, Option<PathBuf>), Error> {
    let named = match ipam.get("configuration_path") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(PathBuf::from(s)),
        Some(other) => {
            return Err(Error::invalid_config(format!(
                "ipam.configuration_path: expected a string, found {other}"
            )));
        }
    };
    if let Some(p) = &named
        && !p.exists()
    {
        return Err(Error::invalid_config(format!(
            "ipam.configuration_path: {} does not exist",
            p.display()
        )));
    }
    let found = named.or_else(|| defaults.iter().map(|p| p.to_path_buf()).find(|p| p.exists()));
    let Some(path) = found else { return Ok((ipam.clone(), None)) };
    let flat = read(&path)?;
    let mut merged = ipam.clone();
    for (k, v) in flat {
        if !merged.contains_key(&k) {
            merged.insert(k, v);
        }
    }
    Ok((merged, Some(path)))
}

fn read(path: &Path) -> Result<Map<String, Value>, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::new(ErrorCode::Io, format!("read whereabouts flat file {}: {e}", path.display()))
    })?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::decode(format!("whereabouts flat file {}: not a JSON object", path.display()))),
        Err(e) => Err(Error::decode(format!("whereabouts flat file {}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn ipam_keys_win_and_missing_ones_come_from_the_file() {
        let dir = testkit::TempDir::new("wb-flat");
        let file = dir.path().join("whereabouts.conf");
        std::fs::write(&file, r#"{"datastore": "file:/x", "range": "10.9.0.0/24", "node_name": "n1"}"#)
            .unwrap();
        let ipam = obj(json!({"type": "whereabouts", "range": "10.1.0.0/24",
                              "configuration_path": file.display().to_string()}));
        let (m, used) = merge(&ipam, &[]).unwrap();
        assert_eq!(used.as_deref(), Some(file.as_path()));
        assert_eq!(m["range"], "10.1.0.0/24");
        assert_eq!(m["datastore"], "file:/x");
        assert_eq!(m["node_name"], "n1");
        // The defaults are looked at in order when no path is named.
        let ipam = obj(json!({"type": "whereabouts"}));
        let missing = dir.path().join("none.conf");
        let (m, used) = merge(&ipam, &[missing.as_path(), file.as_path()]).unwrap();
        assert_eq!(used.as_deref(), Some(file.as_path()));
        assert_eq!(m["datastore"], "file:/x");
        let (m, used) = merge(&ipam, &[missing.as_path()]).unwrap();
        assert_eq!((m, used), (ipam, None));
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = testkit::TempDir::new("wb-flat-bad");
        let missing = dir.path().join("nope.conf");
        let ipam = obj(json!({"configuration_path": missing.display().to_string()}));
        let err = merge(&ipam, &[]).unwrap_err();
        assert_eq!(err.code.code(), 7);
        assert!(err.msg.contains("does not exist"), "{}", err.msg);
        let bad = dir.path().join("bad.conf");
        std::fs::write(&bad, "[1]").unwrap();
        let err = merge(&obj(json!({"configuration_path": bad.display().to_string()})), &[]).unwrap_err();
        assert_eq!(err.code.code(), 6, "{}", err.msg);
        let err = merge(&obj(json!({"configuration_path": 5})), &[]).unwrap_err();
        assert_eq!(err.code.code(), 7);
    }
}
