//! The file datastore's on-disk form: one JSON file per key under `DIR/kv/`, named by the
//! key with `%` and `/` percent-encoded, replaced by write-then-rename so a reader sees the
//! old or the new record, never half of one.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{Entry, LeaseId, StoreError};

/// Longest file name Linux file systems accept.
const NAME_MAX: usize = 255;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// One key as stored. UTF-8 values are kept readable; anything else is base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    pub version: u64,
    pub create_revision: u64,
    pub mod_revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<i64>,
}

impl Record {
    pub fn new(key: &str, value: &[u8], lease: Option<LeaseId>) -> Record {
        let (text, b64) = match std::str::from_utf8(value) {
            Ok(s) => (Some(s.to_string()), None),
            Err(_) => (None, Some(STANDARD.encode(value))),
        };
        Record {
            key: key.to_string(),
            value: text,
            value_base64: b64,
            version: 0,
            create_revision: 0,
            mod_revision: 0,
            lease: lease.map(|l| l.0),
        }
    }

    pub fn lease_id(&self) -> Option<LeaseId> {
        self.lease.map(LeaseId)
    }

    pub fn into_entry(self, path: &Path) -> Result<Entry, StoreError> {
        let value = match (self.value, self.value_base64) {
            (Some(s), None) => s.into_bytes(),
            (None, Some(b)) => STANDARD.decode(b).map_err(|e| corrupt(path, e))?,
            (None, None) => Vec::new(),
            (Some(_), Some(_)) => return Err(corrupt(path, "both value and value_base64")),
        };
        Ok(Entry {
            key: self.key,
            value,
            version: self.version,
            mod_revision: self.mod_revision,
            lease: self.lease.map(LeaseId),
        })
    }
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { path: path.to_path_buf(), reason: reason.to_string() }
}

/// The file name of `key`: `%` → `%25`, `/` → `%2F`. Keys start with `/`, so a name is never
/// `.`, `..` or a temporary file's `.tmp-` name.
pub(crate) fn encode_key(key: &str) -> Result<String, StoreError> {
    super::check_key(key)?;
    let name = key.replace('%', "%25").replace('/', "%2F");
    if name.len() > NAME_MAX {
        return Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason: "too long for the file datastore (255 bytes encoded)",
        });
    }
    Ok(name)
}

/// The key of a file name made by [`encode_key`]; `None` for anything else.
pub(crate) fn decode_key(name: &str) -> Option<String> {
    if !name.starts_with("%2F") {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3)? {
            "%2F" => out.push('/'),
            "%25" => out.push('%'),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Reads a JSON file; `None` when it does not exist.
pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoreError::Io { op: "read", path: path.to_path_buf(), source }),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| corrupt(path, e))
}

/// Writes `value` as JSON to a temporary file next to `path` and renames it over `path`.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| corrupt(path, e))?;
    write_atomic(path, &bytes)
}

/// Write-then-rename in the directory of `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = temp_path(path);
    let io = |op, source| StoreError::Io { op, path: path.to_path_buf(), source };
    std::fs::write(&tmp, bytes).map_err(|e| io("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("rename into place", e)
    })
}

fn temp_path(path: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = format!(".tmp-{}-{n}", std::process::id());
    path.with_file_name(name)
}

/// Removes a file; false when it was already gone.
pub(crate) fn remove(path: &Path) -> Result<bool, StoreError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StoreError::Io { op: "remove", path: path.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_file_names() {
        for key in ["/twill/nodes/a", "/twill/subnets/10.244.1.0-24", "/x/100%/y", "/", "/a%2Fb"] {
            let name = encode_key(key).unwrap();
            assert!(!name.contains('/'), "{name}");
            assert_eq!(decode_key(&name).as_deref(), Some(key), "{name}");
        }
        assert_eq!(encode_key("/twill/nodes/a").unwrap(), "%2Ftwill%2Fnodes%2Fa");
    }

    #[test]
    fn foreign_names_are_not_keys() {
        for name in [".tmp-1-2", "lock", "%2Fa%", "%2Fa%zz"] {
            assert_eq!(decode_key(name), None, "{name}");
        }
        assert!(encode_key(&format!("/{}", "x".repeat(300))).is_err());
    }

    #[test]
    fn binary_values_are_base64() {
        let r = Record::new("/k", &[0xff, 0x00], None);
        assert!(r.value.is_none());
        let e = r.into_entry(Path::new("/k")).unwrap();
        assert_eq!(e.value, vec![0xff, 0x00]);
        let r = Record::new("/k", b"{\"a\":1}", Some(LeaseId(7)));
        assert_eq!(r.value.as_deref(), Some("{\"a\":1}"));
        assert_eq!(r.lease_id(), Some(LeaseId(7)));
    }
}
