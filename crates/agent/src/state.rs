//! The agent's state directory (`--state-dir`):
//!
//! ```text
//! subnet.json   the subnets this node last held, preferred when it joins again
//!               (what flannel keeps in /run/flannel/subnet.env)
//! vxlan.json    parameters of the vxlan device this node created
//! ipam/         host-local's dataDir for the node's pods
//! pods/         twill-pod's journal: one file per attachment on this node
//! notify.sock   where twill-pod nudges the agent after changing the journal
//! ```

use std::path::{Path, PathBuf};

use crate::cniconf::write_if_changed;
use crate::membership::Subnets;

pub const SUBNET_FILE: &str = "subnet.json";
pub const IPAM_DIR: &str = "ipam";
pub const JOURNAL_DIR: &str = "pods";
pub const NOTIFY_SOCKET: &str = "notify.sock";

/// `DIR/ipam`.
pub fn ipam_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(IPAM_DIR)
}

/// `DIR/pods`.
pub fn journal_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(JOURNAL_DIR)
}

/// `DIR/notify.sock`.
pub fn notify_socket(state_dir: &Path) -> PathBuf {
    state_dir.join(NOTIFY_SOCKET)
}

/// The subnets remembered in `DIR/subnet.json`; nothing when absent or unreadable (a fresh
/// node, or a file from something else: the node then simply gets any free subnet).
pub fn load_subnets(state_dir: &Path) -> Subnets {
    std::fs::read(state_dir.join(SUBNET_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Remembers `subnets` in `DIR/subnet.json`.
pub fn save_subnets(state_dir: &Path, subnets: &Subnets) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    let mut bytes = serde_json::to_vec_pretty(subnets).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write_if_changed(&state_dir.join(SUBNET_FILE), &bytes).map(drop).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_round_trip() {
        let dir = std::env::temp_dir().join(format!("twill-agent-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(load_subnets(&dir), Subnets::default());
        let s = Subnets { subnet: Some("10.244.3.0/24".parse().unwrap()), subnet6: None };
        save_subnets(&dir, &s).unwrap();
        assert_eq!(load_subnets(&dir), s);
        std::fs::write(dir.join(SUBNET_FILE), b"garbage").unwrap();
        assert_eq!(load_subnets(&dir), Subnets::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
