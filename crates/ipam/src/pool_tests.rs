use std::collections::BTreeSet;
use std::net::IpAddr;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn range(text: &str, exclude: &[&str]) -> PoolRange {
    let (subnet, start, end) = parse_range(text).unwrap();
    let exclude: Vec<IpNet> = exclude.iter().map(|e| parse_exclude(e).unwrap()).collect();
    PoolRange::new(subnet, start, end, &exclude).unwrap()
}

fn taken(ips: &[&str]) -> BTreeSet<IpAddr> {
    ips.iter().map(|s| ip(s)).collect()
}

#[test]
fn range_forms_parse_like_whereabouts() {
    assert_eq!(parse_range("192.168.2.225/28").unwrap(), (net("192.168.2.224/28"), None, None));
    assert_eq!(
        parse_range("192.168.2.225-192.168.2.230/28").unwrap(),
        (net("192.168.2.224/28"), Some(ip("192.168.2.225")), Some(ip("192.168.2.230")))
    );
    assert_eq!(parse_range("abcd::1/64").unwrap().0, net("abcd::/64"));
    for bad in ["", "10.0.0.0", "10.0.0.1-10.0.0.9", "x/24", "10.0.0.1-/24", "10.0.0.0/33"] {
        assert!(parse_range(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_exclude("10.0.0.5").unwrap(), net("10.0.0.5/32"));
    assert_eq!(parse_exclude("10.0.0.5/30").unwrap(), net("10.0.0.4/30"));
    assert_eq!(parse_exclude("fd00::9").unwrap(), net("fd00::9/128"));
    assert!(parse_exclude("nope").is_err());
}

#[test]
fn window_skips_network_and_last_address() {
    let r = range("192.168.2.225/28", &[]);
    assert_eq!(r.window(), (ip("192.168.2.225"), ip("192.168.2.238")));
    assert_eq!(r.size(), 14);
    let r6 = range("fd00::/120", &[]);
    assert_eq!(r6.window(), (ip("fd00::1"), ip("fd00::fe")));
    for small in ["10.0.0.0/31", "10.0.0.0/32", "fd00::/127"] {
        let err = PoolRange::new(net(small), None, None, &[]).unwrap_err();
        assert!(err.to_string().contains("no usable addresses"), "{small}: {err}");
    }
}

#[test]
fn bounds_are_clipped_on_the_edges_and_refused_outside() {
    let n = net("10.0.0.0/24");
    let r = PoolRange::new(n, Some(ip("10.0.0.0")), Some(ip("10.0.0.255")), &[]).unwrap();
    assert_eq!(r.window(), (ip("10.0.0.1"), ip("10.0.0.254")));
    let err = PoolRange::new(n, Some(ip("10.0.1.5")), None, &[]).unwrap_err();
    assert_eq!(err.to_string(), "10.0.1.5 is not in 10.0.0.0/24");
    let err = PoolRange::new(n, Some(ip("10.0.0.9")), Some(ip("10.0.0.3")), &[]).unwrap_err();
    assert!(err.to_string().contains("before range_start"), "{err}");
    assert!(PoolRange::new(n, Some(ip("fd00::1")), None, &[]).is_err());
}

#[test]
fn exclusions_as_in_the_whereabouts_readme() {
    // range 192.168.2.225/28 excluding .229/30 (.228-.231) and .236: 14 - 4 - 1 candidates.
    let r = range("192.168.2.225/28", &["192.168.2.229/30", "192.168.2.236/32"]);
    assert_eq!(r.size(), 9);
    let mut held = BTreeSet::new();
    let mut order = Vec::new();
    while let Some(next) = r.nth_free(&held, 0) {
        held.insert(next);
        order.push(next.to_string());
    }
    assert_eq!(
        order,
        [".225", ".226", ".227", ".232", ".233", ".234", ".235", ".237", ".238"]
            .map(|s| format!("192.168.2{s}"))
    );
    assert!(!r.offers(ip("192.168.2.230")));
    assert!(r.offers(ip("192.168.2.237")));
    assert_eq!(r.free(&held), 0);
}

#[test]
fn first_exclusion_moves_the_start() {
    let r = range("192.168.2.0/24", &["192.168.2.0/28"]);
    assert_eq!(r.nth_free(&BTreeSet::new(), 0), Some(ip("192.168.2.16")));
    // Exclusions of the other family and outside the window change nothing.
    let r = range("10.0.0.0/29", &["fd00::/8", "10.9.0.0/16"]);
    assert_eq!(r.size(), 6);
}

#[test]
fn ipv6_wider_than_a_65_is_usable_to_its_end() {
    let r = range("fd00:1::/48", &[]);
    assert_eq!(r.size(), (1u128 << 80) - 2);
    let (_, last) = r.window();
    assert_eq!(last, ip("fd00:1:0:ffff:ffff:ffff:ffff:fffe"));
    let nearly = r.size() - 1;
    assert_eq!(r.nth_free(&BTreeSet::new(), nearly), Some(last));
    assert_eq!(r.nth_free(&taken(&[&last.to_string()]), nearly), None);
    // A window at the far end of the range, beyond anything Whereabouts can reach.
    let r = range("fd00:2::fff0:0:0:10-fd00:2::fff0:0:0:12/32", &[]);
    assert_eq!(r.nth_free(&BTreeSet::new(), 0), Some(ip("fd00:2::fff0:0:0:10")));
    assert_eq!(r.size(), 3);
}

#[test]
fn nth_free_skips_taken_addresses() {
    let r = range("10.0.0.0/29", &[]); // .1 - .6
    let t = taken(&["10.0.0.1", "10.0.0.3"]);
    let free: Vec<_> = (0..5).map(|k| r.nth_free(&t, k)).collect();
    assert_eq!(
        free,
        [Some(ip("10.0.0.2")), Some(ip("10.0.0.4")), Some(ip("10.0.0.5")), Some(ip("10.0.0.6")), None]
    );
    assert_eq!(r.free(&t), 4);
    // Taken addresses outside the window or of another family don't count.
    assert_eq!(r.free(&taken(&["10.0.1.1", "fd00::1"])), 6);
}

#[test]
fn first_attempt_is_lowest_and_later_ones_spread() {
    let r = range("10.0.0.0/24", &[]);
    let t = taken(&["10.0.0.1"]);
    assert_eq!(r.choose(&t, 0, 42), Some(ip("10.0.0.2")));
    let picks: BTreeSet<IpAddr> = (0..64).filter_map(|salt| r.choose(&t, 3, salt)).collect();
    assert!(picks.len() > 10, "{picks:?}");
    assert!(picks.iter().all(|p| r.offers(*p) && !t.contains(p)));
    // Within the first 64 free addresses (8 << 3).
    assert!(picks.iter().all(|p| *p <= ip("10.0.0.65")), "{picks:?}");
    let full: BTreeSet<IpAddr> = (1..=254).map(|i| ip(&format!("10.0.0.{i}"))).collect();
    assert_eq!(r.choose(&full, 5, 1), None);
}

#[test]
fn choose_all_keeps_overlapping_ranges_apart() {
    let a = range("10.0.0.0/29", &[]);
    let b = range("10.0.0.0/28", &[]);
    let mut reqs = vec![
        RangeRequest { range: &a, taken: BTreeSet::new(), held: None },
        RangeRequest { range: &b, taken: BTreeSet::new(), held: None },
    ];
    assert_eq!(choose_all(&mut reqs.clone(), true, 0, 0), Ok(vec![ip("10.0.0.1"), ip("10.0.0.2")]));
    assert_eq!(choose_all(&mut reqs.clone(), false, 0, 0), Ok(vec![ip("10.0.0.1"), ip("10.0.0.1")]));
    reqs[0].held = Some(ip("10.0.0.5"));
    assert_eq!(choose_all(&mut reqs.clone(), true, 0, 0), Ok(vec![ip("10.0.0.5"), ip("10.0.0.1")]));
    reqs[1].taken = (1..=14).map(|i| ip(&format!("10.0.0.{i}"))).collect();
    assert_eq!(choose_all(&mut reqs, true, 0, 0), Err(1));
}
