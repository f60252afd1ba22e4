//! `twill install --cni-bin-dir DIR`: puts the multi-call plugin binary into DIR once, as
//! `twill-cni`, and links every plugin name twill provides to it, so a runtime whose CNI_PATH
//! points at DIR runs twill's plugins under the reference names.

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

pub fn run(args: &InstallArgs) -> Result<()> {
    let names: Vec<&str> = if args.only.is_empty() {
        plugins::NAMES.to_vec()
    } else {
        for name in &args.only {
            if !plugins::NAMES.contains(&name.as_str()) {
                bail!("twill has no plugin named {name:?} (it has {})", plugins::NAMES.join(", "));
            }
        }
        args.only.iter().map(String::as_str).collect()
    };
    let installed = install(&plugin_binary()?, &args.cni_bin_dir, &names)?;
    println!("installed {} into {}: {}", installed.display(), args.cni_bin_dir.display(), names.join(" "));
    Ok(())
}

/// `twill-cni` next to the running `twill`.
pub fn plugin_binary() -> Result<PathBuf> {
    let me = std::env::current_exe().context("find the running twill binary")?;
    let candidate = me.with_file_name("twill-cni");
    if !candidate.is_file() {
        bail!("plugin binary {} not found next to {}", candidate.display(), me.display());
    }
    Ok(candidate)
}

/// Copies `binary` to DIR/twill-cni (atomically) and links each name to it.
pub fn install(binary: &Path, dir: &Path, names: &[&str]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let target = dir.join("twill-cni");
    let tmp = dir.join(".twill-cni.tmp");
    std::fs::copy(binary, &tmp).with_context(|| format!("copy {} to {}", binary.display(), tmp.display()))?;
    std::fs::rename(&tmp, &target).with_context(|| format!("install {}", target.display()))?;
    for name in names {
        let link = dir.join(name);
        let tmp_link = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp_link);
        std::os::unix::fs::symlink("twill-cni", &tmp_link)
            .with_context(|| format!("link {}", tmp_link.display()))?;
        std::fs::rename(&tmp_link, &link).with_context(|| format!("install {}", link.display()))?;
    }
    Ok(target)
}
