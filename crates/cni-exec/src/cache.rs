//! The result cache, in libcni's on-disk layout (`<dir>/results/<net>-<containerID>-<ifname>`,
//! kind `cniCacheV1`, config bytes base64-encoded as Go marshals `[]byte`), so a runtime that
//! switches between libcni and twill sees the same attachments. Unlike libcni, writes are
//! atomic (temp file + rename): a crash never leaves a half-written entry.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Error;

/// The libcni cache entry kind this layout is compatible with.
pub const CACHE_KIND: &str = "cniCacheV1";

/// One attachment as libcni caches it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub kind: String,
    #[serde(rename = "containerId")]
    pub container_id: String,
    #[serde(with = "go_bytes")]
    pub config: Vec<u8>,
    #[serde(rename = "ifName")]
    pub ifname: String,
    #[serde(rename = "networkName")]
    pub network: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub netns: String,
    #[serde(rename = "cniArgs", default, skip_serializing_if = "Vec::is_empty")]
    pub cni_args: Vec<(String, String)>,
    #[serde(rename = "capabilityArgs", default, skip_serializing_if = "Map::is_empty")]
    pub capability_args: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// A cache directory (libcni's default is /var/lib/cni).
#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    fn results_dir(&self) -> PathBuf {
        self.dir.join("results")
    }

    /// Where the entry of one attachment lives.
    pub fn path(&self, network: &str, container_id: &str, ifname: &str) -> PathBuf {
        self.results_dir().join(format!("{network}-{container_id}-{ifname}"))
    }

    /// Writes an entry atomically.
    pub fn put(&self, entry: &CacheEntry) -> Result<(), Error> {
        let path = self.path(&entry.network, &entry.container_id, &entry.ifname);
        let bytes = serde_json::to_vec(entry).map_err(|e| cache_err("encode", &path, e.into()))?;
        write_atomic(&path, &bytes).map_err(|e| cache_err("write", &path, e))
    }

    /// Reads an entry; `None` when absent or not a libcni v1 entry.
    pub fn get(&self, network: &str, container_id: &str, ifname: &str) -> Option<CacheEntry> {
        read_entry(&self.path(network, container_id, ifname))
    }

    /// Removes an entry; absent is fine.
    pub fn remove(&self, network: &str, container_id: &str, ifname: &str) -> Result<(), Error> {
        let path = self.path(network, container_id, ifname);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(cache_err("remove", &path, e)),
            _ => Ok(()),
        }
    }

    /// Every readable v1 entry, sorted by file name (libcni's GetCachedAttachments).
    pub fn list(&self) -> Result<Vec<CacheEntry>, Error> {
        let dir = self.results_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(cache_err("list", &dir, e)),
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        Ok(paths
            .iter()
            .filter_map(|p| read_entry(p))
            .filter(|e| !e.ifname.is_empty() && !e.network.is_empty())
            .collect())
    }
}

fn read_entry(path: &Path) -> Option<CacheEntry> {
    let bytes = std::fs::read(path).ok()?;
    let entry: CacheEntry = serde_json::from_slice(&bytes).ok()?;
    (entry.kind == CACHE_KIND).then_some(entry)
}

fn cache_err(op: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Cache { op, path: path.to_path_buf(), source }
}

/// Write-then-rename in the target's directory. Not fsync'ed, as libcni does not: an entry
/// lost or emptied by a crash of the whole node belongs to pods that crash killed, and an
/// unreadable entry reads as absent (DEL then runs without a prevResult, as the plugins
/// allow). Syncing cost a journal commit on every ADD.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    let written = file.write_all(bytes);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Go encodes `[]byte` in JSON as a base64 string.
mod go_bytes {
    use super::*;

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = Option::<String>::deserialize(d)?.unwrap_or_default();
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("twill-cache-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn round_trip_and_layout() {
        let dir = tmpdir("rt");
        let cache = Cache::new(&dir);
        let entry = CacheEntry {
            kind: CACHE_KIND.into(),
            container_id: "abc".into(),
            config: b"{\"name\":\"n\"}".to_vec(),
            ifname: "eth0".into(),
            network: "net1".into(),
            netns: "/run/netns/x".into(),
            cni_args: vec![("IP".into(), "10.1.1.2".into())],
            capability_args: Map::new(),
            result: Some(serde_json::json!({"cniVersion":"1.0.0"})),
        };
        cache.put(&entry).unwrap();
        let path = dir.join("results/net1-abc-eth0");
        let raw: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(raw["config"], "eyJuYW1lIjoibiJ9");
        assert_eq!(raw["cniArgs"], serde_json::json!([["IP", "10.1.1.2"]]));
        assert_eq!(raw["containerId"], "abc");
        assert_eq!(cache.get("net1", "abc", "eth0"), Some(entry.clone()));
        assert_eq!(cache.list().unwrap(), vec![entry]);
        cache.remove("net1", "abc", "eth0").unwrap();
        cache.remove("net1", "abc", "eth0").unwrap();
        assert!(cache.list().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.join("results")).unwrap().count(), 0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reads_a_libcni_written_entry() {
        let dir = tmpdir("go");
        std::fs::create_dir_all(dir.join("results")).unwrap();
        let go = r#"{"kind":"cniCacheV1","containerId":"c9","config":"e30=","ifName":"eth1","networkName":"podnet","netns":"/proc/1/ns/net","result":{"cniVersion":"0.4.0","ips":[]}}"#;
        std::fs::write(dir.join("results/podnet-c9-eth1"), go).unwrap();
        std::fs::write(dir.join("results/junk"), "not json").unwrap();
        let listed = Cache::new(&dir).list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].config, b"{}");
        assert_eq!(listed[0].netns, "/proc/1/ns/net");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
