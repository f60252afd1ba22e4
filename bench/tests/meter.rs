//! The metering launcher reports a plugin's own peak, not the footprint of whoever started it,
//! and passes the exit code through. Needs no privilege.

use std::process::Command;

fn launcher() -> Command {
    Command::new(env!("CARGO_BIN_EXE_twill-bench"))
}

#[test]
fn launcher_reports_peak_rss_and_exit_code() {
    let dir = std::env::temp_dir().join(format!("twb-test-meter-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rss = dir.join("rss");
    let ok = launcher().arg("__meter").arg(&rss).arg("/bin/true").status().unwrap();
    assert!(ok.success());
    let kib: u64 = std::fs::read_to_string(&rss).unwrap().trim().parse().unwrap();
    assert!(kib > 0 && kib < 8 * 1024, "true peaked at {kib} KiB");
    let failed = launcher().arg("__meter").arg(&rss).arg("/bin/false").status().unwrap();
    assert_eq!(failed.code(), Some(1));
    std::fs::remove_dir_all(&dir).unwrap();
}
