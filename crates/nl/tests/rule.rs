//! Kernel tier: policy routing rules, compared with what `ip rule` shows.

use testkit::{TestNs, require_privileges};
use twill_nl::{Family, Rule};

#[test]
fn rules_add_list_delete() {
    require_privileges();
    let t = TestNs::new("rule");
    let h = t.handle();
    let v4 = Rule::from_addr("10.9.0.5".parse().unwrap(), 100);
    let v6 = Rule { priority: Some(1234), ..Rule::from_addr("fd00::5".parse().unwrap(), 1000) };
    h.rule_add(&v4).unwrap();
    h.rule_add(&v6).unwrap();
    assert!(h.rule_add(&v6).unwrap_err().is_exists(), "same rule and priority is EEXIST");
    let shown = t.exec_ok(&["ip", "rule", "show"]);
    assert!(shown.contains("from 10.9.0.5 lookup 100"), "{shown}");
    assert!(t.exec_ok(&["ip", "-6", "rule", "show"]).contains("1234:\tfrom fd00::5 lookup 1000"));
    let listed = h.rule_list(None).unwrap();
    let got4 = listed.iter().find(|r| r.src == v4.src).unwrap();
    assert_eq!((got4.family, got4.table), (Family::V4, 100));
    assert!(got4.priority.is_some(), "the kernel picks a priority");
    assert!(h.rule_list(Some(Family::V4)).unwrap().iter().all(|r| r.family == Family::V4));
    assert!(h.rule_list(Some(Family::V6)).unwrap().contains(&v6));
    h.rule_del(&v4).unwrap();
    h.rule_del(&v6).unwrap();
    assert!(h.rule_del(&v4).unwrap_err().is_not_found());
    assert!(!t.exec_ok(&["ip", "rule", "show"]).contains("10.9.0.5"));
}
