//! Kernel tier: running commands inside a test namespace.

use testkit::{TestNs, require_privileges};
use twill_testkit as testkit;

#[test]
fn exec_ok_reports_stderr_on_failure() {
    require_privileges();
    let t = TestNs::new("exec");
    assert!(t.exec_ok(&["ip", "link", "show", "lo"]).contains("lo:"));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.exec_ok(&["ip", "link", "show", "nope0"]);
    }));
    let msg = r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("nope0") && msg.contains("does not exist"), "{msg}");
}
