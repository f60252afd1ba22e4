//! nftables as `nft` sees it, for tests only: twill itself never runs `nft`. Tests apply the
//! nft text form of a ruleset and read tables back with `nft -j list`, to prove that what
//! twill sends over netlink means exactly what its text says.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::TestNs;

impl TestNs {
    /// Runs `nft -f -` with `text` inside the namespace; `Err(stderr)` when nft refuses it.
    pub fn nft_try(&self, text: &str) -> Result<(), String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", self.name(), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("run nft in {}: {e}", self.name()));
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(text.as_bytes()).unwrap_or_else(|e| panic!("write to nft: {e}"));
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("wait for nft: {e}"));
        match out.status.success() {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    }

    /// Like [`TestNs::nft_try`]; panics with nft's error and the text when nft refuses it.
    pub fn nft(&self, text: &str) {
        if let Err(e) = self.nft_try(text) {
            panic!("nft -f in {} failed: {e}\n--- text ---\n{text}", self.name());
        }
    }

    /// `nft -j list table FAMILY NAME`, normalised for comparison: no handles, no metainfo,
    /// set elements sorted (hash sets list in an order that depends on a random seed).
    /// `None` when there is no such table.
    pub fn nft_table(&self, family: &str, name: &str) -> Option<Value> {
        let out = self.exec(&["nft", "-j", "list", "table", family, name]);
        if !out.status.success() {
            return None;
        }
        let mut v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("nft -j list table {family} {name}: bad JSON: {e}"));
        normalise(&mut v);
        Some(v)
    }

    /// `nft list table FAMILY NAME` as text (empty when there is none).
    pub fn nft_text(&self, family: &str, name: &str) -> String {
        String::from_utf8_lossy(&self.exec(&["nft", "list", "table", family, name]).stdout).into_owned()
    }
}

fn normalise(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("handle");
            map.remove("metainfo");
            for (key, inner) in map.iter_mut() {
                normalise(inner);
                if key == "elem"
                    && let Value::Array(items) = inner
                {
                    items.sort_by_key(|a| a.to_string());
                }
            }
        }
        Value::Array(items) => {
            items.iter_mut().for_each(normalise);
            items.retain(|i| !matches!(i, Value::Object(m) if m.is_empty()));
        }
        _ => {}
    }
}
