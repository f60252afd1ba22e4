//! Kernel tier: tc qdiscs and filters, compared with what `tc` itself creates.

use std::time::Duration;

use serde_json::Value;
use testkit::{TestNs, require_privileges};
use twill_nl::tc::{INGRESS, INGRESS_HANDLE, ROOT, TBF_HANDLE};
use twill_nl::{Handle, Tbf};

fn index(h: &Handle, name: &str) -> u32 {
    h.link_get(name).unwrap().unwrap().index
}

fn qdisc_json(t: &TestNs, dev: &str) -> Vec<Value> {
    t.exec_json(&["tc", "-j", "-d", "qdisc", "show", "dev", dev]).as_array().unwrap().clone()
}

fn tbf_options(t: &TestNs, dev: &str) -> Value {
    let q = qdisc_json(t, dev);
    let tbf = q.iter().find(|q| q["kind"] == "tbf").unwrap_or_else(|| panic!("no tbf on {dev}: {q:?}"));
    assert_eq!(tbf["handle"], "1:");
    tbf["options"].clone()
}

#[test]
fn tbf_matches_what_tc_creates() {
    require_privileges();
    let t = TestNs::new("tbf");
    let h = t.handle();
    for (ours, theirs) in [("twa0", "twb0"), ("twa1", "twb1")] {
        h.veth_add(ours, theirs, None, None, None, None).unwrap();
    }
    let cases = [
        (
            "twa0",
            "twb0",
            Tbf::with_latency(125_000, 2000, Duration::from_millis(25)),
            ["1mbit", "2000", "25ms"],
        ),
        // 80 Gbit/s needs TCA_TBF_RATE64.
        (
            "twa1",
            "twb1",
            Tbf::with_latency(10_000_000_000, 1_000_000, Duration::from_millis(25)),
            ["80gbit", "1000000", "25ms"],
        ),
    ];
    for (ours, theirs, tbf, [rate, burst, lat]) in cases {
        h.qdisc_add_tbf(index(&h, ours), &tbf).unwrap();
        t.exec_ok(&[
            "tc", "qdisc", "add", "dev", theirs, "root", "handle", "1:", "tbf", "rate", rate, "burst", burst,
            "latency", lat,
        ]);
        assert_eq!(tbf_options(&t, ours), tbf_options(&t, theirs), "{ours} vs {theirs}");
        let listed = h.qdisc_list(Some(index(&h, ours))).unwrap();
        let q = listed.iter().find(|q| q.kind == "tbf").unwrap();
        assert_eq!((q.handle, q.parent), (TBF_HANDLE, ROOT));
        let back = q.tbf.unwrap();
        assert_eq!((back.rate, back.limit), (tbf.rate, tbf.limit));
        // The kernel keeps the burst as a time in 64 ns ticks: one tick of slack.
        let tick_bytes = (tbf.rate as f64 * 64e-9).ceil() as u32;
        assert!(back.burst.abs_diff(tbf.burst) <= tick_bytes, "{back:?} vs {tbf:?}");
    }
    let o = tbf_options(&t, "twa0");
    assert_eq!(o["rate"], 125_000);
    assert_eq!(o["lat"], 25_000);

    let idx = index(&h, "twa0");
    let e = h.qdisc_add_tbf(idx, &Tbf { rate: 1, burst: 1, limit: 1 }).unwrap_err();
    assert!(e.is_exists(), "{e}");
    h.qdisc_del(idx, ROOT).unwrap();
    assert!(h.qdisc_list(Some(idx)).unwrap().iter().all(|q| q.kind != "tbf"));
    assert!(qdisc_json(&t, "twa0").iter().all(|q| q["kind"] != "tbf"));
    assert!(h.qdisc_add_tbf(idx, &Tbf { rate: 0, burst: 1, limit: 1 }).is_err());
}

#[test]
fn ingress_redirect_to_ifb() {
    require_privileges();
    let t = TestNs::new("ifbredir");
    let h = t.handle();
    h.veth_add("twa", "twb", None, None, None, None).unwrap();
    h.ifb_add("twifb", None).unwrap();
    let (dev, ifb) = (index(&h, "twa"), index(&h, "twifb"));

    h.qdisc_add_ingress(dev).unwrap();
    let q = h.qdisc_list(Some(dev)).unwrap();
    let ingress = q.iter().find(|q| q.kind == "ingress").unwrap();
    assert_eq!((ingress.handle, ingress.parent), (INGRESS_HANDLE, INGRESS));

    h.filter_add_ingress_redirect(dev, ifb).unwrap();
    let filters = h.filter_list(dev, INGRESS_HANDLE).unwrap();
    assert!(
        filters.iter().any(|f| f.kind == "u32" && f.prio == 1 && f.protocol == 3 && f.redirect == Some(ifb)),
        "{filters:?}"
    );

    let j = t.exec_json(&["tc", "-j", "filter", "show", "dev", "twa", "parent", "ffff:"]);
    let actions: Vec<&Value> =
        j.as_array().unwrap().iter().filter_map(|f| f["options"]["actions"].as_array()).flatten().collect();
    assert_eq!(actions.len(), 1, "{j}");
    let a = actions[0];
    assert_eq!(a["kind"], "mirred");
    assert_eq!(a["mirred_action"], "redirect");
    assert_eq!(a["direction"], "egress");
    assert_eq!(a["to_dev"], "twifb");
    assert_eq!(a["control_action"]["type"], "stolen");

    h.qdisc_del(dev, INGRESS).unwrap();
    assert!(h.qdisc_list(Some(dev)).unwrap().iter().all(|q| q.kind != "ingress"));
    let e = h.qdisc_del(dev, INGRESS).unwrap_err();
    assert!(e.to_string().starts_with("delete ingress qdisc of twa in netns"), "{e}");
}
