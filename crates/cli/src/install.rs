//! `twill install --cni-bin-dir DIR`: puts twill's plugin binaries into DIR once each —
//! `twill-cni` (the node-local plugins) and `twill-cni-cluster` (the plugins that read the
//! cluster datastore, ADR 0014) — and links every plugin name twill provides to the binary
//! that answers to it, so a runtime whose CNI_PATH points at DIR runs twill's plugins under
//! the reference names. Both binaries come from one build and are installed together.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args)]
pub struct InstallArgs {
    /// The directory a runtime's CNI_PATH points at.
    #[arg(long = "cni-bin-dir")]
    pub cni_bin_dir: PathBuf,
    /// Only these plugin names (default: every plugin twill provides).
    #[arg(long = "only", value_delimiter = ',')]
    pub only: Vec<String>,
}

/// Every plugin name twill provides.
pub fn all_names() -> Vec<&'static str> {
    plugins::NAMES.iter().chain(plugins::CLUSTER_NAMES).copied().collect()
}

pub fn run(args: &InstallArgs) -> Result<()> {
    let names: Vec<&str> = if args.only.is_empty() {
        all_names()
    } else {
        for name in &args.only {
            if plugins::binary_of(name).is_none() {
                bail!("twill has no plugin named {name:?} (it has {})", all_names().join(", "));
            }
        }
        args.only.iter().map(String::as_str).collect()
    };
    let installed = install(&args.cni_bin_dir, &names)?;
    let files: Vec<String> = installed.iter().map(|p| p.display().to_string()).collect();
    println!("installed {} into {}: {}", files.join(" and "), args.cni_bin_dir.display(), names.join(" "));
    Ok(())
}

/// `file` (`twill-cni`, `twill-cni-cluster`) next to the running `twill`.
pub fn binary(file: &str) -> Result<PathBuf> {
    let me = std::env::current_exe().context("find the running twill binary")?;
    let candidate = me.with_file_name(file);
    if !candidate.is_file() {
        bail!("plugin binary {} not found next to {}", candidate.display(), me.display());
    }
    Ok(candidate)
}

/// Copies the binaries `names` need into `dir` (atomically) and links each name to its
/// binary. Returns the installed binaries.
pub fn install(dir: &Path, names: &[&str]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut needed: Vec<&str> = names.iter().filter_map(|n| plugins::binary_of(n)).collect();
    needed.sort_unstable();
    needed.dedup();
    let mut installed = Vec::new();
    for file in needed {
        installed.push(copy_binary(&binary(file)?, dir, file)?);
    }
    for name in names {
        let Some(file) = plugins::binary_of(name) else { bail!("twill has no plugin named {name:?}") };
        link(dir, name, file)?;
    }
    Ok(installed)
}

fn copy_binary(source: &Path, dir: &Path, file: &str) -> Result<PathBuf> {
    let target = dir.join(file);
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::copy(source, &tmp).with_context(|| format!("copy {} to {}", source.display(), tmp.display()))?;
    std::fs::rename(&tmp, &target).with_context(|| format!("install {}", target.display()))?;
    Ok(target)
}

fn link(dir: &Path, name: &str, file: &str) -> Result<()> {
    let link = dir.join(name);
    let tmp_link = dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&tmp_link);
    std::os::unix::fs::symlink(file, &tmp_link).with_context(|| format!("link {}", tmp_link.display()))?;
    std::fs::rename(&tmp_link, &link).with_context(|| format!("install {}", link.display()))
}
