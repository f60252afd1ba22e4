//! The lab suites need the current `twilld` next to the `twill` binary under test: cargo
//! builds `twill` for the test but not the agent's binary, so it is built here once per test
//! run (unless `TWILL_LAB_TWILLD` names one to use instead).

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// Builds twilld once per test process; panics with cargo's error when that fails.
pub fn ensure_twilld(twill: &str) {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = BUILT.get_or_init(|| {
        if std::env::var_os("TWILL_LAB_TWILLD").is_some() {
            return Ok(());
        }
        let twilld = Path::new(twill).with_file_name("twilld");
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "-p", "twill-agent", "--bin", "twilld"]);
        if twilld.parent().is_some_and(|d| d.ends_with("release")) {
            cargo.arg("--release");
        }
        let out =
            cargo.current_dir(env!("CARGO_MANIFEST_DIR")).output().map_err(|e| format!("run cargo: {e}"))?;
        match (out.status.success(), twilld.is_file()) {
            (true, true) => Ok(()),
            (true, false) => Err(format!("cargo built twilld but {} is missing", twilld.display())),
            (false, _) => {
                Err(format!("cargo build -p twill-agent failed: {}", String::from_utf8_lossy(&out.stderr)))
            }
        }
    });
    if let Err(e) = outcome {
        panic!("the lab needs twilld: {e}");
    }
}
