//! The two implementations under test and their CNI bin directories.
//!
//! twill's directory is filled by `twill install --cni-bin-dir`; then every plugin name the
//! chains need is asked for its VERSION through its link to `twill-cni`. A name twill does not
//! provide (yet) answers with an error; that plugin is then taken from the reference and the
//! report says so, chain by chain. The reference directory links to `/usr/lib/cni`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

/// The CNI version every chain is driven with: the reference plugins' highest.
pub const CNI_VERSION: &str = "1.0.0";

/// Every plugin name a bench chain uses.
pub const NEEDED: [&str; 4] = ["bridge", "host-local", "portmap", "bandwidth"];

/// One side of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Impl {
    Twill,
    Reference,
}

impl Impl {
    pub fn label(self) -> &'static str {
        match self {
            Impl::Twill => "twill",
            Impl::Reference => "reference",
        }
    }

    /// Position in `[twill, reference]` arrays.
    pub fn index(self) -> usize {
        match self {
            Impl::Twill => 0,
            Impl::Reference => 1,
        }
    }

    /// Short tag used in namespace names.
    pub fn tag(self) -> &'static str {
        match self {
            Impl::Twill => "tw",
            Impl::Reference => "ref",
        }
    }
}

/// Both implementations, the one going first alternating with `round`, so that drift in
/// machine load hits both alike.
pub fn order(round: usize) -> [Impl; 2] {
    if round.is_multiple_of(2) { [Impl::Twill, Impl::Reference] } else { [Impl::Reference, Impl::Twill] }
}

/// Where one plugin name of twill's bin dir comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Twill,
    /// twill-cni does not provide it; the reference plugin stands in. Carries twill's answer.
    Reference {
        why: String,
    },
}

/// The bin directories and what is in them.
pub struct Provision {
    pub twill_bin: PathBuf,
    pub reference_bin: PathBuf,
    /// Where the reference plugins are (for plugins beyond the chains', e.g. macvlan).
    pub reference_dir: PathBuf,
    /// Per needed name: who answers in twill's bin dir.
    pub sources: BTreeMap<String, Source>,
    /// `twill-cni`'s "about"/version line from VERSION, if it printed one.
    pub twill_about: String,
}

impl Provision {
    /// Installs twill from `twill_dir` (holding `twill` and `twill-cni`) and links the
    /// reference plugins from `reference_dir`, both under `scratch`.
    pub fn prepare(twill_dir: &Path, reference_dir: &Path, scratch: &Path) -> Result<Provision> {
        let twill_bin = scratch.join("bin-twill");
        let reference_bin = scratch.join("bin-reference");
        link_reference(reference_dir, &reference_bin)?;
        install_twill(twill_dir, &twill_bin)?;
        let mut sources = BTreeMap::new();
        for name in NEEDED {
            let source = detect(&twill_bin, name)?;
            if source != Source::Twill {
                let link = twill_bin.join(name);
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(reference_dir.join(name), &link)
                    .with_context(|| format!("link {}", link.display()))?;
            }
            sources.insert(name.to_string(), source);
        }
        let twill_about = about(twill_dir);
        Ok(Provision {
            twill_bin,
            reference_bin,
            reference_dir: reference_dir.to_path_buf(),
            sources,
            twill_about,
        })
    }

    /// The CNI_PATH directory of `imp`.
    pub fn bin_dir(&self, imp: Impl) -> &Path {
        match imp {
            Impl::Twill => &self.twill_bin,
            Impl::Reference => &self.reference_bin,
        }
    }

    /// Names twill itself answers to, among the needed ones.
    pub fn twill_names(&self) -> Vec<&str> {
        self.sources.iter().filter(|(_, s)| **s == Source::Twill).map(|(n, _)| n.as_str()).collect()
    }
}

fn link_reference(reference_dir: &Path, bin: &Path) -> Result<()> {
    std::fs::create_dir_all(bin).with_context(|| format!("create {}", bin.display()))?;
    for name in NEEDED {
        let target = reference_dir.join(name);
        ensure!(
            target.is_file(),
            "reference plugin {} missing (Debian package containernetworking-plugins)",
            target.display()
        );
        std::os::unix::fs::symlink(&target, bin.join(name)).with_context(|| format!("link {name}"))?;
    }
    Ok(())
}

/// `twill install --cni-bin-dir BIN`, the same command an operator runs.
fn install_twill(twill_dir: &Path, bin: &Path) -> Result<()> {
    let twill = twill_dir.join("twill");
    ensure!(twill.is_file(), "{} not found (build with: cargo build --release --bins)", twill.display());
    let out = Command::new(&twill)
        .arg("install")
        .arg("--cni-bin-dir")
        .arg(bin)
        .output()
        .with_context(|| format!("run {}", twill.display()))?;
    if !out.status.success() {
        bail!("{} install failed: {}", twill.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Asks `bin/name` (a link to twill-cni) for its VERSION.
fn detect(bin: &Path, name: &str) -> Result<Source> {
    let link = bin.join(name);
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("twill-cni", &link).with_context(|| format!("link {}", link.display()))?;
    }
    Ok(match version_of(&link) {
        Ok(versions) if versions.iter().any(|v| v == CNI_VERSION) => Source::Twill,
        Ok(versions) => Source::Reference { why: format!("twill's {name} supports only {versions:?}") },
        Err(why) => Source::Reference { why },
    })
}

/// The supportedVersions a plugin answers to VERSION, or the error it printed.
pub fn version_of(plugin: &Path) -> Result<Vec<String>, String> {
    let out = run_version(plugin).map_err(|e| format!("{e:#}"))?;
    let value: Value = serde_json::from_slice(&out)
        .map_err(|_| format!("VERSION printed no JSON: {:?}", String::from_utf8_lossy(&out)))?;
    if let Some(list) = value.get("supportedVersions").and_then(Value::as_array) {
        return Ok(list.iter().filter_map(Value::as_str).map(str::to_string).collect());
    }
    Err(value.get("msg").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| value.to_string()))
}

fn run_version(plugin: &Path) -> Result<Vec<u8>> {
    let mut child = Command::new(plugin)
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("run {}", plugin.display()))?;
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(format!("{{\"cniVersion\":\"{CNI_VERSION}\"}}").as_bytes());
    }
    Ok(child.wait_with_output().with_context(|| format!("wait for {}", plugin.display()))?.stdout)
}

/// `twill --version`, for the report.
fn about(twill_dir: &Path) -> String {
    Command::new(twill_dir.join("twill"))
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "twill (version unknown)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_alternates() {
        assert_eq!(order(0), [Impl::Twill, Impl::Reference]);
        assert_eq!(order(1), [Impl::Reference, Impl::Twill]);
        assert_eq!(order(2), order(0));
    }
}
