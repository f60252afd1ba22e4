//! What tuning changed, kept on disk until DEL puts it back: `DATADIR/CONTAINERID_IFNAME.json`
//! in the reference's format (`mac`, `promisc`, `mtu`, `allmulti`, `txQLen`), plus two fields
//! the reference ignores: the old values of the sysctls it wrote under `sysctl`, and under
//! `owner` the attachment (`NETWORK/CONTAINERID/IFNAME`), which scopes GC to one network.
//! Written to a temporary file and renamed, so a crash never leaves half a backup.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use cni_spec::Error;
use serde::{Deserialize, Serialize};

/// The attributes and sysctls to restore; unset ones were not changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promisc: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allmulti: Option<bool>,
    #[serde(default, rename = "txQLen", skip_serializing_if = "Option::is_none")]
    pub txqlen: Option<u32>,
    /// `/proc/sys` path (slash form) → value before ADD.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctl: BTreeMap<String, String>,
    /// `NETWORK/CONTAINERID/IFNAME` ([`crate::owner::tag`]); absent in the reference's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The backup file of one attachment.
pub fn path(data_dir: &Path, container_id: &str, ifname: &str) -> PathBuf {
    data_dir.join(format!("{container_id}_{ifname}.json"))
}

fn io_err(op: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(format!("{op} tuning backup {}: {e}", path.display()))
}

/// Writes `backup` to `path` atomically (temporary file, fsync, rename).
pub fn write(path: &Path, backup: &Backup) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io_err("create directory for", path, e))?;
    let text = serde_json::to_vec_pretty(backup).map_err(|e| io_err("encode", path, e))?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().and_then(|n| n.to_str()).unwrap_or("backup")));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| io_err("write", path, e))
}

/// The backup at `path`: `Ok(None)` when there is none; an unreadable file is an error.
pub fn read(path: &Path) -> Result<Option<Backup>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", path, e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| io_err("decode", path, e))
}

/// Deletes the backup; absent is fine.
pub fn remove(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", path, e)),
        _ => Ok(()),
    }
}

/// Every readable backup in `dir`, with its path; a missing directory holds none. Files that
/// cannot be read or decoded are skipped: nothing says whose they are.
pub fn list(dir: &Path) -> Result<Vec<(PathBuf, Backup)>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", dir, e)),
    };
    let files = entries.flatten().map(|e| e.path()).filter(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        name.ends_with(".json") && !name.starts_with('.')
    });
    Ok(files.filter_map(|p| read(&p).ok().flatten().map(|b| (p, b))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reference_format() {
        let dir = std::env::temp_dir().join(format!("twill-tuning-backup-{}", std::process::id()));
        let p = path(&dir, "c1", "eth0");
        assert_eq!(p, dir.join("c1_eth0.json"));
        let b = Backup {
            mac: Some("02:00:00:00:00:01".into()),
            mtu: Some(1500),
            txqlen: Some(1000),
            sysctl: [("net/core/somaxconn".to_string(), "4096".to_string())].into(),
            owner: Some("net/c1/eth0".into()),
            ..Default::default()
        };
        write(&p, &b).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("\"txQLen\": 1000") && !text.contains("promisc"), "{text}");
        assert!(text.contains("\"owner\": \"net/c1/eth0\""), "{text}");
        assert_eq!(read(&p).unwrap(), Some(b.clone()));
        std::fs::write(dir.join("garbage.json"), "{").unwrap();
        std::fs::write(dir.join("notes.txt"), "{}").unwrap();
        assert_eq!(list(&dir).unwrap(), vec![(p.clone(), b)], "only readable .json backups");
        std::fs::remove_file(dir.join("garbage.json")).unwrap();
        std::fs::remove_file(dir.join("notes.txt")).unwrap();
        // What the reference writes reads back too.
        std::fs::write(&p, r#"{"mac": "02:00:00:00:00:09", "promisc": false}"#).unwrap();
        assert_eq!(read(&p).unwrap().unwrap().promisc, Some(false));
        remove(&p).unwrap();
        remove(&p).unwrap();
        assert_eq!(read(&p).unwrap(), None);
        assert!(list(&dir.join("absent")).unwrap().is_empty());
        assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "no temporary file left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
