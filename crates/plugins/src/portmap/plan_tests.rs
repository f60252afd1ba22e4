use std::path::PathBuf;

use cni_spec::{Interface, IpConfig};
use serde_json::json;

use super::*;
use crate::fixture::{merged, net_conf};

/// Compares `actual` with `testdata/NAME`, or rewrites it under TWILL_BLESS=1.
fn check_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/portmap/testdata").join(name);
    if std::env::var_os("TWILL_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with TWILL_BLESS=1 to create it)", path.display()));
    assert_eq!(actual, expected, "golden file {name} differs");
}

fn conf(extra: serde_json::Value) -> PortmapConf {
    let v = json!({"cniVersion": "1.0.0", "name": "net", "type": "portmap", "runtimeConfig": {
    "portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "192.0.2.1"},
        {"hostPort": 9999, "containerPort": 9, "protocol": "sctp"},
        {"hostPort": 8443, "containerPort": 443, "protocol": "tcp", "hostIP": "2001:db8::1"}
    ]}});
    PortmapConf::parse(&net_conf(&merged(v, &extra))).unwrap()
}

fn dual() -> PodIps {
    PodIps { v4: Some("10.88.0.2/24".parse().unwrap()), v6: Some("fd00:88::2/64".parse().unwrap()) }
}

/// An entry's key and data as nft prints them.
fn key(e: &Entry) -> String {
    e.elem.key.iter().map(fw::nft::text::key_part_text).collect::<Vec<_>>().join(" . ")
}

fn data(e: &Entry) -> Option<String> {
    let text = fw::nft::text::elem_text(&e.elem);
    text.split_once(" : ").map(|(_, d)| d.to_string())
}

#[test]
fn table_is_golden() {
    check_golden("table.nft", &table().text());
}

#[test]
fn add_batch_is_golden() {
    let p = plan(&conf(json!({})), &dual(), "net/c1/eth0");
    check_golden("add.nft", &add_batch(&p, true).text());
}

#[test]
fn variant_is_golden() {
    let p = plan(&conf(json!({"conditionsV4": ["ip saddr != 192.0.2.0/24"]})), &dual(), "net/c1/eth0");
    assert_eq!(p.variants.len(), 1);
    let mut text = variant_batch(&p.variants[0]).text();
    text += &add_batch(&p, true).text();
    check_golden("variant.nft", &text);
}

#[test]
fn mappings_follow_families_and_host_ips() {
    let p = plan(&conf(json!({})), &dual(), "o");
    let keys: Vec<_> = p.dnat.iter().map(|e| (e.set.as_str(), key(e))).collect();
    let keys: Vec<(&str, &str)> = keys.iter().map(|(s, k)| (*s, k.as_str())).collect();
    assert_eq!(
        keys,
        [
            ("port4", "tcp . 8080"),
            ("hostip4", "192.0.2.1 . udp . 5353"),
            ("port4", "sctp . 9999"),
            ("port6", "tcp . 8080"),
            ("port6", "sctp . 9999"),
            ("hostip6", "2001:db8::1 . tcp . 8443"),
        ]
    );
    assert_eq!(data(&p.dnat[3]).as_deref(), Some("fd00:88::2 . 80"));
    assert_eq!(p.localnet, Some("10.88.0.2".parse().unwrap()));
    assert_eq!(p.pods, [dual().v4.unwrap(), dual().v6.unwrap()]);
    let v4_only = plan(&conf(json!({})), &PodIps { v6: None, ..dual() }, "o");
    assert_eq!(v4_only.dnat.len(), 3);
    assert!(v4_only.masq.iter().all(|e| e.set == "masq4"));
}

#[test]
fn masquerade_elements_follow_snat_and_masq_all() {
    let keys = |extra| plan(&conf(extra), &dual(), "o").masq.iter().map(key).collect::<Vec<_>>();
    assert_eq!(
        keys(json!({})),
        ["10.88.0.0/24 . 10.88.0.2", "127.0.0.0/8 . 10.88.0.2", "fd00:88::/64 . fd00:88::2"]
    );
    assert_eq!(keys(json!({"masqAll": true})), ["0.0.0.0/0 . 10.88.0.2", "::/0 . fd00:88::2"]);
    assert!(keys(json!({"snat": false})).is_empty());
    assert_eq!(plan(&conf(json!({"snat": false})), &dual(), "o").localnet, None);
    let host_route = PodIps { v4: Some("10.9.9.9/32".parse().unwrap()), v6: None };
    let p = plan(&conf(json!({})), &host_route, "o");
    assert_eq!(key(&p.masq[0]), "10.9.9.9 . 10.9.9.9");
}

#[test]
fn unspecified_host_ip_and_none_share_one_entry() {
    let mut c = conf(json!({}));
    let mut same = c.mappings[0];
    same.host_ip = Some("0.0.0.0".parse().unwrap());
    c.mappings.push(same);
    let p = plan(&c, &dual(), "o");
    assert_eq!(p.dnat.iter().filter(|e| e.set == "port4" && key(e) == "tcp . 8080").count(), 1);
}

#[test]
fn no_mappings_or_no_matching_family_plans_nothing() {
    let mut c = conf(json!({}));
    c.mappings.clear();
    assert!(plan(&c, &dual(), "o").is_empty());
    let mut c = conf(json!({}));
    c.mappings.retain(|m| m.host_ip.is_some_and(|ip| ip.is_ipv6()));
    let p = plan(&c, &PodIps { v6: None, ..dual() }, "o");
    assert!(p.is_empty() && p.masq.is_empty() && p.localnet.is_none() && p.pods.is_empty());
}

#[test]
fn pod_ips_come_from_the_sandbox_interface() {
    let iface = |name: &str, sandbox: Option<&str>| Interface {
        name: name.into(),
        sandbox: sandbox.map(str::to_string),
        ..Default::default()
    };
    let ip =
        |a: &str, i: Option<usize>| IpConfig { address: a.parse().unwrap(), gateway: None, interface: i };
    let prev = CniResult {
        interfaces: vec![iface("br0", None), iface("eth0", Some("/run/netns/x")), iface("net1", Some("/x"))],
        ips: vec![
            ip("10.0.0.1/24", Some(0)),
            ip("10.1.0.5/24", Some(2)),
            ip("10.2.0.5/24", Some(1)),
            ip("fd00::5/64", None),
            ip("10.3.0.5/24", Some(1)),
        ],
        ..Default::default()
    };
    let got = PodIps::from_result(&prev, "eth0");
    assert_eq!(got.v4, Some("10.2.0.5/24".parse().unwrap()));
    assert_eq!(got.v6, Some("fd00::5/64".parse().unwrap()));
}

#[test]
fn udp_flows_of_removed_elements_and_descriptions() {
    let p = plan(&conf(json!({"masqAll": true})), &PodIps { v6: None, ..dual() }, "me");
    let removed: Vec<Elem> = p.entries().map(|e| e.elem.clone()).collect();
    let flows = udp_flows(&removed);
    assert_eq!(flows, [UdpFlow { port: 5353, v6: false, pod: Some("10.88.0.2".parse().unwrap()) }]);
    assert_eq!(describe(&p.dnat[1].elem.key), "udp/5353 on 192.0.2.1");
    assert_eq!(describe(&p.dnat[0].elem.key), "tcp/8080");
}

#[test]
fn every_entry_goes_to_a_declared_set_of_the_right_shape() {
    let p = plan(&conf(json!({"conditionsV6": ["ip6 saddr != fc00::/7"]})), &dual(), "me");
    let sets = sets(&p.variants);
    for e in p.entries() {
        let set = sets.iter().find(|s| s.name == e.set).unwrap_or_else(|| panic!("no set {}", e.set));
        let types: Vec<_> = e.elem.key.iter().map(|k| k.data_type()).collect();
        assert_eq!(types, set.key, "{}", e.set);
    }
    assert!(p.dnat.iter().any(|e| e.set.starts_with("port6_")));
}
