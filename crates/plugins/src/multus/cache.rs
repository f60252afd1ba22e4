//! The per-attachment delegate cache in `cniDir`: which networks an ADD attached, with their
//! full configurations, interfaces and arguments. It is written before the first delegate
//! runs, so DEL, CHECK and GC work from it alone — after the NetworkAttachmentDefinition was
//! deleted, while the datastore is down, after a crash half-way through ADD (Multus users hit
//! "failed to get the cached delegates file", multus-cni#920 and #1446, and pods stay stuck).
//! Each delegate's own result is in the runtime side's libcni-layout cache next to it
//! (`cniDir/results/`).
//!
//! `cniDir/attachments/NETWORK-CONTAINERID-IFNAME.json`, replaced by write-then-rename.

use std::io::Write;
use std::path::{Path, PathBuf};

use cni_spec::Error;
use serde::{Deserialize, Serialize};

use super::plan::Delegate;

/// The kind marker of this layout.
pub const KIND: &str = "twillMultusV1";

/// One multus attachment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub kind: String,
    /// The multus network's name.
    pub network: String,
    pub container_id: String,
    pub if_name: String,
    #[serde(default)]
    pub netns: String,
    /// CNI_ARGS as the runtime gave them; every delegate got them.
    #[serde(default)]
    pub cni_args: Vec<(String, String)>,
    /// The pod, as `namespace/name`, for the journal.
    #[serde(default)]
    pub pod: String,
    pub delegates: Vec<Delegate>,
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

fn io(op: &str, path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("multus: {op} delegate cache {}: {e}", path.display()))
}

impl Cache {
    pub fn new(cni_dir: &Path) -> Cache {
        Cache { dir: cni_dir.join("attachments") }
    }

    pub fn path(&self, network: &str, container_id: &str, ifname: &str) -> PathBuf {
        self.dir.join(format!("{network}-{container_id}-{ifname}.json"))
    }

    pub fn put(&self, e: &Entry) -> Result<(), Error> {
        let path = self.path(&e.network, &e.container_id, &e.if_name);
        let bytes = serde_json::to_vec(e)
            .map_err(|err| Error::io(format!("multus: encode delegate cache: {err}")))?;
        std::fs::create_dir_all(&self.dir).map_err(|err| io("create", &self.dir, err))?;
        let tmp = self.dir.join(format!(".{}.tmp{}", e.container_id, std::process::id()));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        written.map_err(|err| {
            let _ = std::fs::remove_file(&tmp);
            io("write", &path, err)
        })
    }

    /// The entry, `None` when there is none. An unreadable one is an error: guessing what an
    /// attachment was made of could leave half of it behind.
    pub fn get(&self, network: &str, container_id: &str, ifname: &str) -> Result<Option<Entry>, Error> {
        let path = self.path(network, container_id, ifname);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &path, e)),
        };
        let entry: Entry = serde_json::from_slice(&bytes)
            .map_err(|e| Error::decode(format!("multus: delegate cache {}: {e}", path.display())))?;
        if entry.kind != KIND {
            return Err(Error::decode(format!(
                "multus: delegate cache {} is of kind {:?}",
                path.display(),
                entry.kind
            )));
        }
        Ok(Some(entry))
    }

    pub fn remove(&self, network: &str, container_id: &str, ifname: &str) -> Result<(), Error> {
        let path = self.path(network, container_id, ifname);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &path, e)),
            _ => Ok(()),
        }
    }

    /// Every readable entry of `network` (GC); unreadable files are skipped and reported.
    pub fn list(&self, network: &str) -> Result<(Vec<Entry>, Vec<String>), Error> {
        let dir = match std::fs::read_dir(&self.dir) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
            Err(e) => return Err(io("list", &self.dir, e)),
        };
        let (mut entries, mut bad) = (Vec::new(), Vec::new());
        let mut paths: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths.iter().filter(|p| p.extension().is_some_and(|x| x == "json")) {
            match std::fs::read(p)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Entry>(&b).map_err(|e| e.to_string()))
            {
                Ok(e) if e.kind == KIND && e.network == network => entries.push(e),
                Ok(_) => {}
                Err(e) => bad.push(format!("{}: {e}", p.display())),
            }
        }
        Ok((entries, bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    #[test]
    fn entries_round_trip_and_list_by_network() {
        let dir = std::env::temp_dir().join(format!("twill-multus-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = Cache::new(&dir);
        let d = Delegate {
            status_name: "x/data".into(),
            ifname: "net1".into(),
            config: json!({"cniVersion": "1.0.0", "name": "data", "type": "macvlan"})
                .as_object()
                .unwrap()
                .clone(),
            conflist: false,
            cluster: false,
            capability_args: Map::new(),
            default_route: vec!["10.10.0.1".parse().unwrap()],
        };
        let e = Entry {
            kind: KIND.into(),
            network: "m".into(),
            container_id: "c1".into(),
            if_name: "eth0".into(),
            netns: "/run/netns/p".into(),
            cni_args: vec![("K8S_POD_NAME".into(), "a".into())],
            pod: "x/a".into(),
            delegates: vec![d],
        };
        assert_eq!(cache.get("m", "c1", "eth0").unwrap(), None);
        cache.put(&e).unwrap();
        assert_eq!(cache.get("m", "c1", "eth0").unwrap(), Some(e.clone()));
        cache.put(&Entry { network: "other".into(), ..e.clone() }).unwrap();
        std::fs::write(dir.join("attachments/junk.json"), "{").unwrap();
        let (listed, bad) = cache.list("m").unwrap();
        assert_eq!((listed, bad.len()), (vec![e], 1));
        cache.remove("m", "c1", "eth0").unwrap();
        cache.remove("m", "c1", "eth0").unwrap();
        std::fs::write(cache.path("m", "c2", "eth0"), "not json").unwrap();
        assert_eq!(cache.get("m", "c2", "eth0").unwrap_err().code.code(), 6);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
