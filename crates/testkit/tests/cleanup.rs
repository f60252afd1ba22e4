//! Kernel tier: test namespaces are removed, also when the test body panics. One test per
//! binary, so no concurrent test of this process can create namespaces meanwhile.

use std::time::Duration;

use testkit::{NsPair, TestNs, leftover_namespaces, require_privileges, wait_until};
use twill_testkit as testkit;

#[test]
fn namespaces_are_removed_on_drop_and_on_panic() {
    require_privileges();
    let pair = NsPair::new("clean");
    let paths = [pair.host.path(), pair.container.path()];
    assert!(paths.iter().all(|p| p.exists()));
    assert!(pair.host.name().starts_with("twt-cleanh-"));
    let up = pair.host.exec_json(&["ip", "-j", "link", "show", "dev", "lo"]);
    assert!(up[0]["flags"].as_array().unwrap().iter().any(|f| f == "UP"), "lo is up: {up}");
    pair.host.handle().veth_add("twx", "eth0", Some(pair.container.ns()), None, None, None).unwrap();
    assert_eq!(leftover_namespaces().len(), 2);
    drop(pair);
    assert!(paths.iter().all(|p| !p.exists()));

    let mut path = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let t = TestNs::new("boom");
        path = Some(t.path());
        panic!("test body failed");
    }));
    assert!(r.is_err());
    assert!(!path.unwrap().exists());
    assert!(wait_until(Duration::from_secs(10), || leftover_namespaces().is_empty()));
}
