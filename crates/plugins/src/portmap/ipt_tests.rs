use serde_json::json;

use super::*;
use crate::fixture::{merged, net_conf};

fn conf(extra: serde_json::Value) -> PortmapConf {
    let v = json!({"cniVersion": "1.0.0", "name": "net", "type": "portmap", "backend": "iptables",
    "runtimeConfig": {"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 8081, "containerPort": 81, "protocol": "tcp", "hostIP": "192.0.2.1"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}
    ]}});
    PortmapConf::parse(&net_conf(&merged(v, &extra))).unwrap()
}

#[test]
fn chain_names_fit_and_differ() {
    let a = pod_chain("net/c1/eth0");
    assert!(a.len() <= 28, "{a}");
    assert_ne!(a, pod_chain("net/c2/eth0"));
}

#[test]
fn pod_rules_mark_then_dnat_and_enter_per_protocol() {
    let c = conf(json!({"conditionsV4": ["!", "-s", "192.0.2.0/24"]}));
    let chain = pod_chain("o");
    let text = pod_rules(&c, "o", "10.88.0.2/24".parse().unwrap());
    let want = [
        format!("-A {chain} -p tcp --dport 8080 -s 10.88.0.0/24 -j TWILL-HP-SETMARK-13"),
        format!("-A {chain} -p tcp --dport 8080 -s 127.0.0.0/8 -j TWILL-HP-SETMARK-13"),
        format!("-A {chain} -p tcp --dport 8080 -j DNAT --to-destination 10.88.0.2:80"),
        format!("-A {chain} -p tcp --dport 8081 -d 192.0.2.1 -j DNAT --to-destination 10.88.0.2:81"),
        format!(
            "-A TWILL-HOSTPORT-DNAT -p tcp -m multiport --dports 8080,8081 ! -s 192.0.2.0/24 -m comment --comment \"twill-portmap o\" -j {chain}"
        ),
        "-A TWILL-HOSTPORT-DNAT -p udp -m multiport --dports 5353 ! -s 192.0.2.0/24 -m comment".to_string(),
    ];
    for w in want {
        assert!(text.contains(&w), "{text}\nlacks {w}");
    }
}

#[test]
fn v6_skips_v4_host_ips_and_localhost() {
    let text = pod_rules(&conf(json!({})), "o", "fd00::2/64".parse().unwrap());
    assert!(text.contains("-j DNAT --to-destination [fd00::2]:80"));
    assert!(!text.contains("8081") && !text.contains("127.0.0.0"));
    assert!(text.contains("-s fd00::/64 -j TWILL-HP-SETMARK-13"));
}

#[test]
fn external_mark_chain_and_masq_all() {
    let c = conf(json!({"externalSetMarkChain": "KUBE-MARK-MASQ", "masqAll": true}));
    let text = pod_rules(&c, "o", "10.88.0.2/24".parse().unwrap());
    assert!(text.contains("--dport 8080 -s 0.0.0.0/0 -j KUBE-MARK-MASQ"));
    assert!(!text.contains("127.0.0.0"));
    assert!(!shared_rules(&c, "").contains("SETMARK"), "no own mark chains");
}

#[test]
fn shared_chains_are_created_once() {
    let c = conf(json!({"markMasqBit": 5}));
    let text = shared_rules(&c, "");
    assert!(text.contains("-A PREROUTING -m addrtype --dst-type LOCAL -j TWILL-HOSTPORT-DNAT"));
    assert!(text.contains("-A TWILL-HP-SETMARK-5 -j MARK --set-xmark 0x20/0x20"));
    assert!(text.contains("-I POSTROUTING 1 -j TWILL-HP-MASQ-5"));
    let saved = ":TWILL-HOSTPORT-DNAT - [0:0]\n:TWILL-HP-SETMARK-5 - [0:0]\n";
    assert_eq!(shared_rules(&c, saved), "");
    assert!(shared_rules(&conf(json!({"snat": false})), "").lines().all(|l| !l.contains("MASQ")));
}
