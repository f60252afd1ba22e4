//! Kernel tier: links (`ip link`), checked through nl and through `ip -j`.

use serde_json::Value;
use testkit::{NsPair, TestNs, require_privileges, wait_until};
use twill_nl::{self as nl, Handle, Link, MacvlanMode, VxlanConf};

fn get(h: &Handle, name: &str) -> Link {
    h.link_get(name).unwrap().unwrap_or_else(|| panic!("no link {name}"))
}

fn ip_link(t: &TestNs, name: &str) -> Value {
    t.exec_json(&["ip", "-j", "-d", "link", "show", "dev", name])[0].clone()
}

#[test]
fn veth_with_peer_born_in_another_namespace() {
    require_privileges();
    let p = NsPair::new("veth");
    let h = p.host.handle();
    let mac = nl::parse_mac("02:00:00:00:00:01").unwrap();
    let peer_mac = nl::parse_mac("02:00:00:00:00:02").unwrap();
    h.veth_add("twv0", "eth0", Some(p.container.ns()), Some(1400), Some(mac), Some(peer_mac)).unwrap();

    let host = get(&h, "twv0");
    assert_eq!(host.kind.as_deref(), Some("veth"));
    assert_eq!((host.mtu, host.mac), (1400, Some(mac)));
    assert!(host.link_netnsid.is_some(), "peer lives in another netns");
    assert!(h.link_get("eth0").unwrap().is_none(), "peer must not appear on the host");

    let c = p.container.handle();
    let peer = get(&c, "eth0");
    assert_eq!((peer.mtu, peer.mac), (1400, Some(peer_mac)));
    assert_eq!(peer.link, Some(host.index));
    assert_eq!(host.link, Some(peer.index));

    let j = ip_link(&p.container, "eth0");
    assert_eq!(j["address"], "02:00:00:00:00:02");
    assert_eq!(j["mtu"], 1400);
    assert_eq!(j["linkinfo"]["info_kind"], "veth");

    // The same name again is reported as "exists".
    let e = h.veth_add("twv0", "eth1", Some(p.container.ns()), None, None, None).unwrap_err();
    assert!(e.is_exists(), "{e}");
    assert!(e.to_string().contains("add veth twv0 with peer eth1 in netns"), "{e}");
}

#[test]
fn veth_in_the_same_namespace_and_delete() {
    require_privileges();
    let t = TestNs::new("vdel");
    let h = t.handle();
    h.veth_add("twa", "twb", None, None, None, None).unwrap();
    let a = get(&h, "twa");
    let b = get(&h, "twb");
    assert_eq!(a.link, Some(b.index));
    assert_eq!(a.link_netnsid, None);
    h.link_del(a.index).unwrap();
    assert!(h.link_get("twa").unwrap().is_none());
    assert!(h.link_get("twb").unwrap().is_none(), "deleting one end removes both");
    let e = h.link_del(a.index).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(h.link_by_index(a.index).unwrap().is_none());
}

#[test]
fn set_link_attributes() {
    require_privileges();
    let t = TestNs::new("lset");
    let h = t.handle();
    h.veth_add("twa", "twb", None, None, None, None).unwrap();
    let idx = get(&h, "twa").index;

    h.link_set_up(idx, true).unwrap();
    h.link_set_mtu(idx, 1280).unwrap();
    let mac = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
    h.link_set_mac(idx, mac).unwrap();
    h.link_set_promisc(idx, true).unwrap();
    h.link_set_allmulti(idx, true).unwrap();
    h.link_set_txqlen(idx, 77).unwrap();
    h.link_set_name(idx, "twrenamed").unwrap();

    let l = h.link_by_index(idx).unwrap().unwrap();
    assert_eq!(l.name, "twrenamed");
    assert!(l.up && l.promisc && l.allmulti);
    assert_eq!((l.mtu, l.mac, l.txqlen), (1280, Some(mac), 77));

    let j = ip_link(&t, "twrenamed");
    let flags: Vec<&str> = j["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(flags.contains(&"UP") && flags.contains(&"PROMISC") && flags.contains(&"ALLMULTI"), "{flags:?}");
    assert_eq!(j["mtu"], 1280);
    assert_eq!(j["txqlen"], 77);
    assert_eq!(j["address"], "02:aa:bb:cc:dd:ee");

    h.link_set_up(idx, false).unwrap();
    h.link_set_promisc(idx, false).unwrap();
    h.link_set_allmulti(idx, false).unwrap();
    let l = h.link_by_index(idx).unwrap().unwrap();
    assert!(!l.up && !l.promisc && !l.allmulti);

    let e = h.link_set_mtu(idx, 10).unwrap_err();
    assert!(e.to_string().starts_with("set mtu 10 on link twrenamed in netns /run/netns/twt-lset-"), "{e}");
    assert_eq!(e.errno(), Some(libc::EINVAL));
}

#[test]
fn bad_names_are_rejected_before_the_kernel() {
    require_privileges();
    let t = TestNs::new("names");
    let h = t.handle();
    for bad in ["", "this-name-is-too-long", "a/b", "a b", ".."] {
        let e = h.bridge_add(bad, None, None).unwrap_err();
        assert!(e.to_string().starts_with("invalid interface name"), "{e}");
    }
}

#[test]
fn link_list_and_move_to_other_namespace() {
    require_privileges();
    let p = NsPair::new("move");
    let h = p.host.handle();
    h.veth_add("twa", "twb", None, None, None, None).unwrap();
    let names: Vec<String> = h.link_list().unwrap().into_iter().map(|l| l.name).collect();
    assert!(["lo", "twa", "twb"].iter().all(|n| names.contains(&n.to_string())), "{names:?}");

    let b = get(&h, "twb");
    h.link_set_netns(b.index, p.container.ns()).unwrap();
    assert!(h.link_get("twb").unwrap().is_none());
    let moved = get(&p.container.handle(), "twb");
    assert!(moved.link_netnsid.is_some());
    assert!(get(&h, "twa").link_netnsid.is_some());
}

#[test]
fn bridge_enslave_hairpin_and_release() {
    require_privileges();
    let t = TestNs::new("br");
    let h = t.handle();
    h.bridge_add("twbr0", Some(1450), None).unwrap();
    let e = h.bridge_add("twbr0", None, None).unwrap_err();
    assert!(e.is_exists(), "{e}");
    let br = h.bridge_ensure("twbr0", None, None).unwrap();
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    assert_eq!(br.mtu, 1450);

    h.veth_add("twp0", "twp1", None, None, None, None).unwrap();
    let port = get(&h, "twp0");
    assert!(h.bridge_port_get(port.index).unwrap().is_none());
    h.link_set_master(port.index, Some(br.index)).unwrap();
    assert_eq!(get(&h, "twp0").master, Some(br.index));

    h.bridge_port_set(port.index, Some(true), Some(true), Some(false)).unwrap();
    let bp = h.bridge_port_get(port.index).unwrap().unwrap();
    assert!(bp.hairpin && bp.isolated && !bp.learning, "{bp:?}");
    let j = ip_link(&t, "twp0");
    let slave = &j["linkinfo"]["info_slave_data"];
    assert_eq!(slave["hairpin"], true);
    assert_eq!(slave["isolated"], true);
    assert_eq!(slave["learning"], false);
    assert_eq!(j["master"], "twbr0");

    // Unchanged options stay as they are.
    h.bridge_port_set(port.index, Some(false), None, None).unwrap();
    let bp = h.bridge_port_get(port.index).unwrap().unwrap();
    assert!(!bp.hairpin && bp.isolated && !bp.learning, "{bp:?}");

    h.link_set_master(port.index, None).unwrap();
    assert_eq!(get(&h, "twp0").master, None);

    // ensure on a non-bridge name fails clearly.
    let e = h.bridge_ensure("twp0", None, None).unwrap_err();
    assert!(e.to_string().contains("not a bridge"), "{e}");
}

#[test]
fn concurrent_bridge_creators_all_succeed_with_ensure() {
    require_privileges();
    let t = TestNs::new("brrace");
    let indexes: Vec<u32> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| s.spawn(|| t.handle().bridge_ensure("twrace", None, None).unwrap().index))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert!(indexes.windows(2).all(|w| w[0] == w[1]), "{indexes:?}");
}

#[test]
fn macvlan_on_a_veth_parent_born_in_the_container() {
    require_privileges();
    let p = NsPair::new("mvl");
    let h = p.host.handle();
    h.veth_add("twup", "twup1", None, None, None, None).unwrap();
    let parent = get(&h, "twup");
    let mac = [0x02, 0, 0, 0, 0x10, 0x01];
    h.macvlan_add("mv0", parent.index, MacvlanMode::Bridge, Some(1400), Some(mac), Some(p.container.ns()))
        .unwrap();
    assert!(h.link_get("mv0").unwrap().is_none());
    let mv = get(&p.container.handle(), "mv0");
    assert_eq!(mv.kind.as_deref(), Some("macvlan"));
    assert_eq!((mv.mtu, mv.mac), (1400, Some(mac)));
    let j = ip_link(&p.container, "mv0");
    assert_eq!(j["linkinfo"]["info_data"]["mode"], "bridge");

    for (name, mode, text) in [("mv1", MacvlanMode::Private, "private"), ("mv2", MacvlanMode::Vepa, "vepa")] {
        h.macvlan_add(name, parent.index, mode, None, None, None).unwrap();
        assert_eq!(ip_link(&p.host, name)["linkinfo"]["info_data"]["mode"], text);
    }
    assert_eq!("passthru".parse::<MacvlanMode>().unwrap(), MacvlanMode::Passthru);
    let e = h.macvlan_add("mv3", 999_999, MacvlanMode::Bridge, None, None, None).unwrap_err();
    assert!(e.to_string().contains("add macvlan mv3 on index 999999"), "{e}");
}

#[test]
fn vxlan_and_ifb() {
    require_privileges();
    let t = TestNs::new("vx");
    let h = t.handle();
    h.veth_add("twu0", "twu1", None, None, None, None).unwrap();
    let under = get(&h, "twu0");
    h.addr_add(under.index, "192.0.2.1/24".parse().unwrap(), false).unwrap();
    let conf = VxlanConf {
        name: "twvx".into(),
        vni: 42,
        local: Some("192.0.2.1".parse().unwrap()),
        parent: Some(under.index),
        port: 4789,
        learning: false,
        mtu: Some(1450),
    };
    h.vxlan_add(&conf).unwrap();
    let vx = get(&h, "twvx");
    assert_eq!((vx.kind.as_deref(), vx.mtu), (Some("vxlan"), 1450));
    let d = &ip_link(&t, "twvx")["linkinfo"]["info_data"];
    assert_eq!(d["id"], 42);
    assert_eq!(d["local"], "192.0.2.1");
    assert_eq!(d["port"], 4789);
    assert_eq!(d["learning"], false);
    assert_eq!(d["link"], "twu0");

    let e = h.vxlan_add(&VxlanConf { vni: 1 << 24, ..conf }).unwrap_err();
    assert!(e.to_string().contains("vxlan id"), "{e}");

    h.ifb_add("twifb0", Some(1500)).unwrap();
    assert_eq!(get(&h, "twifb0").kind.as_deref(), Some("ifb"));
}

#[test]
fn deleting_the_namespace_removes_the_peer_on_the_other_side() {
    require_privileges();
    let host = TestNs::new("gone");
    let h = host.handle();
    {
        let c = TestNs::new("gonec");
        h.veth_add("twgone", "eth0", Some(c.ns()), None, None, None).unwrap();
        assert!(h.link_get("twgone").unwrap().is_some());
    }
    assert!(wait_until(std::time::Duration::from_secs(10), || h.link_get("twgone").unwrap().is_none()));
}

#[test]
fn alias_is_set_read_back_and_cleared() {
    require_privileges();
    let t = TestNs::new("alias");
    let h = t.handle();
    h.ifb_add("twifba", None).unwrap();
    let ifb = get(&h, "twifba");
    assert_eq!(ifb.alias, None);
    h.link_set_alias(ifb.index, "twill net/c1/eth0").unwrap();
    assert_eq!(get(&h, "twifba").alias.as_deref(), Some("twill net/c1/eth0"));
    assert_eq!(ip_link(&t, "twifba")["ifalias"], "twill net/c1/eth0");
    let listed = h.link_list().unwrap().into_iter().find(|l| l.index == ifb.index).unwrap();
    assert_eq!(listed.alias.as_deref(), Some("twill net/c1/eth0"), "dumps carry the alias too");
    h.link_set_alias(ifb.index, "").unwrap();
    assert_eq!(get(&h, "twifba").alias, None);
    let e = h.link_set_alias(999_999, "x").unwrap_err();
    assert!(e.to_string().contains("set alias \"x\" on link index 999999"), "{e}");
}
