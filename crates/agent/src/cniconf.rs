//! The node's CNI configuration: `10-twill.conflist` (bridge `twill0` with host-local over
//! the node's subnets, then portmap, then twill-pod) and `99-loopback.conflist`. Written atomically
//! (write-then-rename; the temporary name ends in neither `.conf`, `.conflist` nor `.json`,
//! so a runtime scanning the directory never loads half a file), and rewritten only when the
//! content differs, so a deleted or edited file is put back by the next resync.

use std::io::Write;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde_json::{Value, json};

/// `cniVersion` of the lists: what runtimes whose libcni predates CNI 1.1 accept — podman 4.3
/// and containerd 1.6 refuse a 1.1.0 list ("unsupported CNI result version"). Runtimes that
/// know `cniVersions` (CNI 1.1, twill's cni-exec) pick the highest entry of [`CNI_VERSIONS`].
pub const CNI_VERSION: &str = "1.0.0";
pub const CNI_VERSIONS: [&str; 2] = ["1.0.0", "1.1.0"];
pub const NETWORK: &str = "twill";
pub const BRIDGE: &str = "twill0";
pub const CONFLIST: &str = "10-twill.conflist";
pub const LOOPBACK_CONFLIST: &str = "99-loopback.conflist";

/// What the node's network list depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniConf {
    pub subnet: IpNet,
    pub subnet6: Option<IpNet>,
    pub mtu: u32,
    /// host-local's `dataDir`.
    pub ipam_dir: PathBuf,
    /// twill-pod's journal of this node's attachments.
    pub journal_dir: PathBuf,
    /// twilld's notification socket.
    pub agent_socket: PathBuf,
}

/// The `twill` network list. `ipMasq` is off: pod-to-pod traffic must keep its addresses,
/// and traffic leaving the cluster is masqueraded by the agent's own table. `twill-pod` comes
/// last: it records the attachment, with the addresses the chain gave it, for the agent to
/// publish.
pub fn build_conflist(c: &CniConf) -> Value {
    let ranges: Vec<Value> = [Some(c.subnet), c.subnet6]
        .into_iter()
        .flatten()
        .map(|s| json!([{ "subnet": s.to_string() }]))
        .collect();
    json!({
        "cniVersion": CNI_VERSION,
        "cniVersions": CNI_VERSIONS,
        "name": NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "isDefaultGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "mtu": c.mtu,
                "ipam": {
                    "type": "host-local",
                    "ranges": ranges,
                    "dataDir": c.ipam_dir.display().to_string(),
                },
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
            {
                "type": "twill-pod",
                "journalDir": c.journal_dir.display().to_string(),
                "agentSocket": c.agent_socket.display().to_string(),
                "capabilities": { "io.kubernetes.cri.pod-annotations": true },
            },
        ],
    })
}

pub fn build_loopback() -> Value {
    json!({ "cniVersion": CNI_VERSION, "cniVersions": CNI_VERSIONS, "name": "lo", "plugins": [{ "type": "loopback" }] })
}

#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", .path.display())]
pub struct CniConfError {
    op: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

/// Writes both network lists into `dir` where they differ; returns how many were written.
pub fn ensure_conflists(dir: &Path, c: &CniConf) -> Result<usize, CniConfError> {
    std::fs::create_dir_all(dir).map_err(|source| CniConfError { op: "create", path: dir.into(), source })?;
    let mut written = 0;
    for (name, v) in [(CONFLIST, build_conflist(c)), (LOOPBACK_CONFLIST, build_loopback())] {
        let mut bytes = serde_json::to_vec_pretty(&v).unwrap_or_default();
        bytes.push(b'\n');
        written += usize::from(write_if_changed(&dir.join(name), &bytes)?);
    }
    Ok(written)
}

/// Write-then-rename unless `path` already holds `bytes`; true when written.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, CniConfError> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    let err = |op, source| CniConfError { op, path: path.to_path_buf(), source };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| err("create", e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| err("write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err("rename into place", e)
    })?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf() -> CniConf {
        CniConf {
            subnet: "10.244.1.0/24".parse().unwrap(),
            subnet6: Some("fd00:10:244:1::/64".parse().unwrap()),
            mtu: 1450,
            ipam_dir: "/var/lib/twilld/ipam".into(),
            journal_dir: "/var/lib/twilld/pods".into(),
            agent_socket: "/var/lib/twilld/notify.sock".into(),
        }
    }

    #[test]
    fn conflist_is_bridge_host_local_portmap() {
        let v = build_conflist(&conf());
        assert_eq!(
            (v["cniVersion"].as_str(), &v["cniVersions"]),
            (Some("1.0.0"), &json!(["1.0.0", "1.1.0"]))
        );
        assert_eq!(v["name"], "twill");
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], "twill0");
        assert_eq!(
            (bridge["isGateway"].as_bool(), bridge["isDefaultGateway"].as_bool()),
            (Some(true), Some(true))
        );
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["mtu"], 1450);
        assert_eq!(
            bridge["ipam"],
            json!({
                "type": "host-local",
                "ranges": [[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]],
                "dataDir": "/var/lib/twilld/ipam"
            })
        );
        assert_eq!(v["plugins"][1], json!({"type": "portmap", "capabilities": {"portMappings": true}}));
        assert_eq!(
            v["plugins"][2],
            json!({"type": "twill-pod", "journalDir": "/var/lib/twilld/pods",
                   "agentSocket": "/var/lib/twilld/notify.sock",
                   "capabilities": {"io.kubernetes.cri.pod-annotations": true}})
        );
        assert_eq!(build_loopback()["plugins"][0]["type"], "loopback");
    }

    #[test]
    fn single_stack_has_one_range() {
        let c = CniConf { subnet6: None, ..conf() };
        assert_eq!(build_conflist(&c)["plugins"][0]["ipam"]["ranges"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn written_once_and_repaired() {
        let dir = std::env::temp_dir().join(format!("twill-agent-cniconf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(ensure_conflists(&dir, &conf()).unwrap(), 2);
        assert_eq!(ensure_conflists(&dir, &conf()).unwrap(), 0);
        std::fs::remove_file(dir.join(CONFLIST)).unwrap();
        assert_eq!(ensure_conflists(&dir, &conf()).unwrap(), 1);
        let back: Value = serde_json::from_slice(&std::fs::read(dir.join(CONFLIST)).unwrap()).unwrap();
        assert_eq!(back, build_conflist(&conf()));
        let names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(names.len(), 2, "no temporary files left: {names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
