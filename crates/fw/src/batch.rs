//! Building and applying nft batches.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Why an nft operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("run nft: {0}")]
    Spawn(std::io::Error),
    #[error("nft {what} failed: {stderr}")]
    Nft { what: String, stderr: String },
    #[error("nft {what}: unreadable JSON: {source}")]
    Json { what: String, source: serde_json::Error },
    #[error("lock {path}: {source}")]
    Lock { path: String, source: std::io::Error },
}

impl Error {
    /// nft reports a missing table, chain or set as "No such file or directory".
    pub fn is_missing(&self) -> bool {
        matches!(self, Error::Nft { stderr, .. } if stderr.contains("No such file or directory"))
    }
}

/// Statements in nft's own syntax, applied together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    lines: Vec<String>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Appends one statement (`add element inet t s { ... }`, `table inet t { ... }`, ...).
    pub fn add(&mut self, statement: impl Into<String>) -> &mut Batch {
        self.lines.push(statement.into());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The batch as `nft -f` reads it.
    pub fn text(&self) -> String {
        let mut text = self.lines.join("\n");
        text.push('\n');
        text
    }
}

/// Applies the batch in one nft transaction.
pub fn apply(batch: &Batch) -> Result<(), Error> {
    if batch.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(batch.text().as_bytes()).map_err(Error::Spawn)?;
    }
    let out = child.wait_with_output().map_err(Error::Spawn)?;
    if out.status.success() {
        return Ok(());
    }
    let first = batch.lines.first().cloned().unwrap_or_default();
    Err(Error::Nft {
        what: format!("batch starting {first:?}"),
        stderr: String::from_utf8_lossy(&out.stderr).trim().into(),
    })
}

/// `nft -j list ARGS...`, parsed.
pub fn list_json(args: &[&str]) -> Result<Value, Error> {
    let out = Command::new("nft").arg("-j").arg("list").args(args).output().map_err(Error::Spawn)?;
    let what = format!("list {}", args.join(" "));
    if !out.status.success() {
        return Err(Error::Nft { what, stderr: String::from_utf8_lossy(&out.stderr).trim().into() });
    }
    serde_json::from_slice(&out.stdout).map_err(|source| Error::Json { what, source })
}

/// Runs `f` holding an exclusive flock on `path` (created if needed): for the rare
/// check-then-create steps that must not race between concurrent plugin runs.
pub fn with_lock<T>(path: &Path, f: impl FnOnce() -> T) -> Result<T, Error> {
    let lock_err = |source| Error::Lock { path: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(lock_err)?;
    }
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(lock_err)?;
    file.lock().map_err(lock_err)?;
    let out = f();
    drop(file);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_text_is_one_statement_per_line() {
        let mut b = Batch::new();
        b.add("add table inet t").add("add element inet t s { 10.0.0.1 }");
        assert_eq!(b.text(), "add table inet t\nadd element inet t s { 10.0.0.1 }\n");
        assert!(!b.is_empty());
        assert!(Batch::new().is_empty());
    }

    #[test]
    fn missing_object_is_recognised() {
        let e =
            Error::Nft { what: "x".into(), stderr: "Error: No such file or directory; did you mean".into() };
        assert!(e.is_missing());
    }
}
