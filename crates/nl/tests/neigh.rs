//! Kernel tier: neighbours (`ip neigh`) and vxlan FDB entries (`bridge fdb`).

use testkit::{TestNs, require_privileges};
use twill_nl::{Family, VxlanConf, neigh::NUD_PERMANENT};

#[test]
fn permanent_neighbours() {
    require_privileges();
    let t = TestNs::new("neigh");
    let h = t.handle();
    h.veth_add("twa", "twb", None, None, None, None).unwrap();
    let idx = h.link_get("twa").unwrap().unwrap().index;
    let mac = [0x02, 0, 0, 0, 0, 0x42];
    let v4 = "10.1.2.9".parse().unwrap();
    let v6 = "fd00::9".parse().unwrap();
    h.neigh_replace(idx, v4, mac).unwrap();
    h.neigh_replace(idx, v4, mac).unwrap(); // replace is idempotent
    h.neigh_replace(idx, v6, mac).unwrap();

    let all = h.neigh_list(Some(idx), None).unwrap();
    let n = all.iter().find(|n| n.ip == v4).unwrap();
    assert_eq!((n.mac, n.state), (Some(mac), NUD_PERMANENT));
    assert!(all.iter().any(|n| n.ip == v6));
    assert!(h.neigh_list(Some(idx), Some(Family::V4)).unwrap().iter().all(|n| n.ip.is_ipv4()));

    let j = t.exec_json(&["ip", "-j", "neigh", "show", "dev", "twa"]);
    let e = j.as_array().unwrap().iter().find(|e| e["dst"] == "10.1.2.9").unwrap();
    assert_eq!(e["lladdr"], "02:00:00:00:00:42");
    assert_eq!(e["state"][0], "PERMANENT");

    h.neigh_del(idx, v4).unwrap();
    assert!(!h.neigh_list(Some(idx), None).unwrap().iter().any(|n| n.ip == v4));
    let e = h.neigh_del(idx, v4).unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[test]
fn vxlan_fdb_append_list_and_delete() {
    require_privileges();
    let t = TestNs::new("fdb");
    let h = t.handle();
    let conf = VxlanConf {
        name: "twvx".into(),
        vni: 7,
        local: None,
        parent: None,
        port: 8472,
        learning: false,
        mtu: None,
    };
    h.vxlan_add(&conf).unwrap();
    let idx = h.link_get("twvx").unwrap().unwrap().index;
    let mac = [0x02, 0, 0, 0, 0, 0x07];
    // The all-zero MAC is the flood list: append collects remotes.
    let zero = [0; 6];
    h.fdb_append(idx, zero, "192.0.2.10".parse().unwrap()).unwrap();
    h.fdb_append(idx, zero, "192.0.2.11".parse().unwrap()).unwrap();
    // A unicast MAC has one remote: append keeps the first, replace moves it.
    h.fdb_append(idx, mac, "192.0.2.20".parse().unwrap()).unwrap();
    h.fdb_append(idx, mac, "192.0.2.21".parse().unwrap()).unwrap();
    let dsts_of = |m: [u8; 6]| -> Vec<String> {
        let entries = h.fdb_list(Some(idx)).unwrap();
        assert!(entries.iter().all(|e| e.index == idx));
        let mut d: Vec<String> =
            entries.iter().filter(|e| e.mac == m).filter_map(|e| e.dst.map(|d| d.to_string())).collect();
        d.sort();
        d
    };
    assert_eq!(dsts_of(zero), ["192.0.2.10", "192.0.2.11"]);
    assert_eq!(dsts_of(mac), ["192.0.2.20"]);
    h.fdb_replace(idx, mac, "192.0.2.22".parse().unwrap()).unwrap();
    assert_eq!(dsts_of(mac), ["192.0.2.22"]);

    let j = t.exec_json(&["bridge", "-j", "fdb", "show", "dev", "twvx"]);
    let rows = j.as_array().unwrap();
    let row = rows.iter().find(|r| r["dst"] == "192.0.2.22").unwrap();
    assert_eq!(row["mac"], "02:00:00:00:00:07");
    assert_eq!(row["state"], "permanent");
    assert!(row["flags"].as_array().unwrap().iter().any(|f| f == "self"), "{row}");

    h.fdb_del(idx, zero, Some("192.0.2.10".parse().unwrap())).unwrap();
    assert_eq!(dsts_of(zero), ["192.0.2.11"]);
    h.fdb_del(idx, mac, None).unwrap();
    assert!(dsts_of(mac).is_empty());
    let e = h.fdb_del(idx, mac, None).unwrap_err();
    assert!(e.is_not_found(), "{e}");
}

#[test]
fn bridge_port_fdb_entries_name_their_master() {
    require_privileges();
    let t = TestNs::new("brfdb");
    let h = t.handle();
    let br = h.bridge_ensure("twbr", None, None).unwrap();
    h.veth_add("twp0", "twp1", None, None, None, None).unwrap();
    let port = h.link_get("twp0").unwrap().unwrap();
    h.link_set_master(port.index, Some(br.index)).unwrap();
    let entries = h.fdb_list(Some(port.index)).unwrap();
    assert!(entries.iter().any(|e| e.master == Some(br.index) && Some(e.mac) == port.mac), "{entries:?}");
}
