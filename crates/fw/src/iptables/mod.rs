//! iptables through its own save and restore tools, for the plugins' iptables backends. A
//! change is ONE `iptables-restore --noflush` run per family, which the kernel commits as a
//! whole and which waits for the xtables lock (`-w`) instead of failing while another writer
//! holds it; state is read back with `iptables-save`. What to write is computed from the saved
//! text by the pure functions of [`dump`].

mod dump;

use std::io::Write;
use std::process::{Command, Stdio};

pub use dump::{has_chain, has_jump, owners, remove_chain, remove_rules, tagged_owner};

/// Seconds `iptables-restore` waits for the xtables lock.
const LOCK_WAIT_SECS: &str = "5";

/// Why running an iptables tool failed; the message starts with the tool's name.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{tool}: {source}")]
    Run { tool: &'static str, source: std::io::Error },
    #[error("{tool}: {stderr}")]
    Failed { tool: &'static str, stderr: String },
}

/// `iptables-save -t TABLE` (`ip6tables-save` for `v6`).
pub fn save(v6: bool, table: &str) -> Result<String, Error> {
    let tool = if v6 { "ip6tables-save" } else { "iptables-save" };
    run(tool, &["-t", table], None)
}

/// `iptables-restore --noflush -w 5` (`ip6tables-restore` for `v6`) with `text` as input:
/// one transaction that leaves everything it does not name alone.
pub fn restore(v6: bool, text: &str) -> Result<(), Error> {
    let tool = if v6 { "ip6tables-restore" } else { "iptables-restore" };
    run(tool, &["--noflush", "-w", LOCK_WAIT_SECS], Some(text)).map(drop)
}

/// Every owner tagged `tag` in `table`, in both families, each once (IPv4's first).
pub fn owners_in(table: &str, tag: &str) -> Result<Vec<String>, Error> {
    let mut all = owners(&save(false, table)?, tag);
    for owner in owners(&save(true, table)?, tag) {
        if !all.contains(&owner) {
            all.push(owner);
        }
    }
    Ok(all)
}

fn run(tool: &'static str, args: &[&str], stdin: Option<&str>) -> Result<String, Error> {
    let fail = |source| Error::Run { tool, source };
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(fail)?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(text.as_bytes()).map_err(fail)?;
    }
    let out = child.wait_with_output().map_err(fail)?;
    if !out.status.success() {
        return Err(Error::Failed { tool, stderr: String::from_utf8_lossy(&out.stderr).trim().to_string() });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_start_with_the_tool() {
        let e = Error::Failed { tool: "iptables-restore", stderr: "line 2 failed".into() };
        assert_eq!(e.to_string(), "iptables-restore: line 2 failed");
        let e = Error::Run { tool: "ip6tables-save", source: std::io::ErrorKind::NotFound.into() };
        assert!(e.to_string().starts_with("ip6tables-save: "), "{e}");
    }
}
