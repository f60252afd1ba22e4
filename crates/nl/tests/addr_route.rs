//! Kernel tier: addresses (`ip address`) and routes (`ip route`).

use ipnet::IpNet;
use serde_json::Value;
use testkit::{TestNs, require_privileges};
use twill_nl::{Family, Handle, Route};

fn veth_up(h: &Handle) -> u32 {
    h.veth_add("twa", "twb", None, None, None, None).unwrap();
    let a = h.link_get("twa").unwrap().unwrap().index;
    let b = h.link_get("twb").unwrap().unwrap().index;
    h.link_set_up(a, true).unwrap();
    h.link_set_up(b, true).unwrap();
    a
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn add_list_and_delete_addresses() {
    require_privileges();
    let t = TestNs::new("addr");
    let h = t.handle();
    let idx = veth_up(&h);
    h.addr_add(idx, net("10.1.2.3/24"), false).unwrap();
    h.addr_add(idx, net("fd00:1::3/64"), true).unwrap();

    let addrs = h.addr_list(Some(idx)).unwrap();
    let nets: Vec<IpNet> = addrs.iter().map(|a| a.net).collect();
    assert!(nets.contains(&net("10.1.2.3/24")), "{nets:?}");
    assert!(nets.contains(&net("fd00:1::3/64")), "{nets:?}");
    let v6 = addrs.iter().find(|a| a.net == net("fd00:1::3/64")).unwrap();
    assert!(!v6.is_tentative(), "nodad address must not be tentative");
    assert!(addrs.iter().all(|a| a.index == idx));
    assert!(h.addr_list(None).unwrap().iter().any(|a| a.net == net("127.0.0.1/8")));

    let j = t.exec_json(&["ip", "-j", "addr", "show", "dev", "twa"]);
    let infos = j[0]["addr_info"].as_array().unwrap();
    let v4 = infos.iter().find(|i| i["family"] == "inet").unwrap();
    assert_eq!(v4["local"], "10.1.2.3");
    assert_eq!(v4["prefixlen"], 24);
    assert_eq!(v4["broadcast"], "10.1.2.255");
    let v6 = infos.iter().find(|i| i["local"] == "fd00:1::3").unwrap();
    assert_eq!(v6["nodad"], true);

    let e = h.addr_add(idx, net("10.1.2.3/24"), false).unwrap_err();
    assert!(e.is_exists(), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "add address 10.1.2.3/24 to twa in netns {}: file exists",
            t.path().display()
        )),
        "{e}"
    );

    h.addr_del(idx, net("10.1.2.3/24")).unwrap();
    h.addr_del(idx, net("fd00:1::3/64")).unwrap();
    let left: Vec<IpNet> = h.addr_list(Some(idx)).unwrap().iter().map(|a| a.net).collect();
    assert!(!left.contains(&net("10.1.2.3/24")) && !left.contains(&net("fd00:1::3/64")), "{left:?}");
    let e = h.addr_del(idx, net("10.1.2.3/24")).unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

fn ip_routes(t: &TestNs, args: &[&str]) -> Vec<Value> {
    let mut argv = vec!["ip", "-j", "-d"];
    argv.extend_from_slice(args);
    t.exec_json(&argv).as_array().unwrap().clone()
}

#[test]
fn add_replace_list_and_delete_routes() {
    require_privileges();
    let t = TestNs::new("route");
    let h = t.handle();
    let idx = veth_up(&h);
    h.addr_add(idx, net("10.1.2.3/24"), false).unwrap();
    h.addr_add(idx, net("fd00:1::3/64"), true).unwrap();

    let default = Route {
        dst: net("0.0.0.0/0"),
        gw: Some("10.1.2.1".parse().unwrap()),
        oif: Some(idx),
        metric: Some(100),
        mtu: Some(1400),
        advmss: Some(1360),
        ..Route::default()
    };
    h.route_add(&default).unwrap();
    let e = h.route_add(&default).unwrap_err();
    assert!(e.is_exists(), "{e}");
    assert!(e.to_string().starts_with("add route 0.0.0.0/0 via 10.1.2.1 dev twa in netns"), "{e}");

    // A device route without gateway gets link scope; onlink gateway outside any prefix.
    let direct = Route { dst: net("10.9.0.0/16"), oif: Some(idx), ..Route::default() };
    h.route_add(&direct).unwrap();
    let onlink = Route {
        dst: net("10.10.0.0/16"),
        gw: Some("192.168.99.1".parse().unwrap()),
        oif: Some(idx),
        onlink: true,
        table: Some(1000),
        src: Some("10.1.2.3".parse().unwrap()),
        ..Route::default()
    };
    h.route_add(&onlink).unwrap();
    let v6 = Route {
        dst: net("fd00:2::/64"),
        gw: Some("fd00:1::1".parse().unwrap()),
        oif: Some(idx),
        ..Route::default()
    };
    h.route_add(&v6).unwrap();

    let v4 = h.route_list(Some(Family::V4), Some(254)).unwrap();
    let d = v4.iter().find(|r| r.dst == net("0.0.0.0/0")).unwrap();
    assert_eq!(
        (d.gw, d.oif, d.metric, d.mtu, d.advmss),
        (default.gw, Some(idx), Some(100), Some(1400), Some(1360))
    );
    assert_eq!(d.protocol, Some(3));
    let dr = v4.iter().find(|r| r.dst == net("10.9.0.0/16")).unwrap();
    assert_eq!(dr.scope, Some(253));
    assert!(v4.iter().all(|r| r.table == Some(254)));

    let custom = h.route_list(None, Some(1000)).unwrap();
    assert_eq!(custom.len(), 1, "{custom:?}");
    assert!(custom[0].onlink);
    assert_eq!(custom[0].src, onlink.src);
    assert!(
        h.route_list(Some(Family::V6), None)
            .unwrap()
            .iter()
            .any(|r| r.dst == net("fd00:2::/64") && r.gw == v6.gw)
    );

    let j = ip_routes(&t, &["route", "show", "table", "1000"]);
    assert_eq!(j[0]["dst"], "10.10.0.0/16");
    assert_eq!(j[0]["gateway"], "192.168.99.1");
    assert!(j[0]["flags"].as_array().unwrap().iter().any(|f| f == "onlink"), "{j:?}");
    let j = ip_routes(&t, &["route", "show", "default"]);
    assert_eq!(j[0]["metric"], 100);
    assert_eq!(j[0]["metrics"][0]["mtu"], 1400);

    // replace overwrites the gateway of the same destination.
    let replaced = Route { gw: Some("10.1.2.254".parse().unwrap()), ..default.clone() };
    h.route_replace(&replaced).unwrap();
    let j = ip_routes(&t, &["route", "show", "default"]);
    assert_eq!(j.len(), 1);
    assert_eq!(j[0]["gateway"], "10.1.2.254");

    h.route_del(&Route { dst: net("0.0.0.0/0"), metric: Some(100), ..Route::default() }).unwrap();
    h.route_del(&onlink).unwrap();
    h.route_del(&v6).unwrap();
    h.route_del(&direct).unwrap();
    assert!(ip_routes(&t, &["route", "show", "default"]).is_empty());
    let e = h.route_del(&direct).unwrap_err();
    assert!(e.is_not_found(), "{e}");

    let bad = Route { dst: net("10.0.0.0/8"), gw: Some("fd00::1".parse().unwrap()), ..Route::default() };
    assert!(h.route_add(&bad).unwrap_err().to_string().contains("family differs"));
}
