//! The node's journal of pod attachments: one JSON file per attachment, written by the
//! `twill-pod` plugin at ADD and removed at DEL and GC, read by twilld to publish the node's
//! pods in the datastore (docs/adr/0012). Only local files are touched on the CNI path, so a
//! datastore outage can neither fail nor slow an ADD or a DEL; the agent catches up.
//!
//! A file is replaced by write-then-rename, so a reader never sees half of one. File names
//! are `NETWORK@CONTAINERID@IFNAME.json` with every byte outside `[A-Za-z0-9._-]`
//! percent-encoded, so any container ID the runtime chose is one file name.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One interface of one container attached by the CNI chain on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The CNI network (network list) name.
    pub network: String,
    pub container_id: String,
    pub ifname: String,
    /// `CNI_NETNS` at ADD.
    pub netns: String,
    /// Kubernetes namespace and pod name (`K8S_POD_NAMESPACE`/`K8S_POD_NAME`, else `default`
    /// and podman's container name made a pod name, or the container ID).
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// Pod annotations the runtime passed (`io.kubernetes.cri.pod-annotations`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Unix seconds of the ADD.
    #[serde(default)]
    pub since: u64,
}

impl Attachment {
    /// `(network, container ID, ifname)`: what identifies an attachment for CNI.
    pub fn key(&self) -> (&str, &str, &str) {
        (&self.network, &self.container_id, &self.ifname)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{op} {}: {source}", .path.display())]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("encode attachment {path}: {source}")]
    Encode { path: String, source: serde_json::Error },
}

/// The journal directory of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    dir: PathBuf,
}

fn encode(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for b in part.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io { op, path, source }
}

impl Journal {
    pub fn new(dir: impl Into<PathBuf>) -> Journal {
        Journal { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of an attachment.
    pub fn path(&self, network: &str, container_id: &str, ifname: &str) -> PathBuf {
        let name = format!("{}@{}@{}.json", encode(network), encode(container_id), encode(ifname));
        self.dir.join(name)
    }

    /// Records `a` (replacing an earlier record of the same attachment) durably.
    pub fn write(&self, a: &Attachment) -> Result<(), JournalError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
        let path = self.path(&a.network, &a.container_id, &a.ifname);
        let bytes = serde_json::to_vec_pretty(a)
            .map_err(|source| JournalError::Encode { path: path.display().to_string(), source })?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(io_err("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err("rename", &path))
    }

    /// Forgets an attachment; false when it was not recorded.
    pub fn remove(&self, network: &str, container_id: &str, ifname: &str) -> Result<bool, JournalError> {
        let path = self.path(network, container_id, ifname);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// The recorded attachment, if any.
    pub fn get(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
    ) -> Result<Option<Attachment>, JournalError> {
        let path = self.path(network, container_id, ifname);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Every recorded attachment (files that do not decode are skipped: a half-written one
    /// cannot exist, a foreign one is not ours).
    pub fn list(&self) -> Result<Vec<Attachment>, JournalError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &self.dir)(e)),
        };
        let mut out: Vec<Attachment> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect();
        out.sort_by(|a: &Attachment, b| a.key().cmp(&b.key()));
        Ok(out)
    }
}

/// Nudges twilld to publish the journal now instead of at its next resync: one datagram to
/// its socket. Best-effort by design — no agent listening is not an error.
pub fn notify(socket: &Path) {
    if let Ok(s) = std::os::unix::net::UnixDatagram::unbound() {
        let _ = s.set_nonblocking(true);
        let _ = s.send_to(b"changed", socket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment(id: &str) -> Attachment {
        Attachment {
            network: "twill".into(),
            container_id: id.into(),
            ifname: "eth0".into(),
            netns: "/run/netns/x".into(),
            namespace: "default".into(),
            name: "p".into(),
            ips: vec!["10.244.1.2".parse().unwrap()],
            annotations: BTreeMap::new(),
            since: 1,
        }
    }

    #[test]
    fn attachments_round_trip_with_any_container_id() {
        let dir = std::env::temp_dir().join(format!("twill-journal-{}", std::process::id()));
        let j = Journal::new(&dir);
        assert_eq!(j.list().unwrap(), vec![], "a missing journal is empty");
        let odd = attachment("../a b/é");
        j.write(&odd).unwrap();
        j.write(&attachment("c1")).unwrap();
        assert!(j.path("twill", "../a b/é", "eth0").starts_with(&dir));
        assert_eq!(j.get("twill", "../a b/é", "eth0").unwrap(), Some(odd.clone()));
        assert_eq!(j.list().unwrap().len(), 2);
        assert!(j.remove("twill", "../a b/é", "eth0").unwrap());
        assert!(!j.remove("twill", "../a b/é", "eth0").unwrap(), "removing twice is fine");
        assert_eq!(j.list().unwrap(), vec![attachment("c1")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
