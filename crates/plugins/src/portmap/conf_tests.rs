use serde_json::{Value, json};

use super::*;
use crate::fixture::{merged, net_conf};

fn parse(v: Value) -> Result<PortmapConf, Error> {
    PortmapConf::parse(&net_conf(&v))
}

fn base(extra: Value) -> Value {
    merged(json!({"cniVersion": "1.0.0", "name": "n", "type": "portmap"}), &extra)
}

fn with_maps(maps: Value) -> Value {
    base(json!({"runtimeConfig": {"portMappings": maps}}))
}

#[test]
fn defaults_follow_the_reference() {
    let c = parse(base(json!({}))).unwrap();
    assert_eq!(c.backend, Backend::Nftables);
    assert!(c.snat && !c.masq_all);
    assert_eq!(c.mark_bit, 13);
    assert!(c.mappings.is_empty());
}

#[test]
fn mappings_are_parsed_and_deduplicated() {
    let c = parse(with_maps(json!([
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 8080, "containerPort": 80, "protocol": "TCP"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"},
        {"hostPort": 9, "containerPort": 9, "protocol": "sctp", "hostIP": "::"},
        {"hostPort": 10, "containerPort": 10}
    ])))
    .unwrap();
    assert_eq!(c.mappings.len(), 4);
    assert_eq!(c.mappings[1].dst(), Some("127.0.0.1".parse().unwrap()));
    assert!(c.mappings[1].applies_to(false) && !c.mappings[1].applies_to(true));
    assert_eq!(c.mappings[2].dst(), None, "unspecified hostIP matches any address");
    assert!(!c.mappings[2].applies_to(false), "but only of its family");
    assert_eq!(c.mappings[3].protocol, Protocol::Tcp, "no protocol means tcp");
}

#[test]
fn bad_mappings_are_code_7_with_a_clear_message() {
    let cases = [
        (json!({"hostPort": 0, "containerPort": 80}), "host port number 0"),
        (json!({"hostPort": 70000, "containerPort": 80}), "host port number 70000"),
        (json!({"hostPort": 80, "containerPort": -1}), "container port number -1"),
        (json!({"hostPort": 80, "containerPort": 80, "protocol": "icmp"}), "unknown protocol \"icmp\""),
        (json!({"hostPort": 80, "containerPort": 80, "hostIP": "300.1.1.1"}), "invalid hostIP \"300.1.1.1\""),
    ];
    for (m, needle) in cases {
        let err = parse(with_maps(json!([m]))).expect_err(needle);
        assert_eq!(err.code.code(), 7, "{err}");
        assert!(err.msg.contains(needle), "{err} lacks {needle}");
    }
    let twice = with_maps(json!([
        {"hostPort": 80, "containerPort": 80}, {"hostPort": 80, "containerPort": 81}
    ]));
    assert!(parse(twice).unwrap_err().msg.contains("tcp/80 is mapped twice"));
    let unspecified = with_maps(json!([
        {"hostPort": 80, "containerPort": 80}, {"hostPort": 80, "containerPort": 81, "hostIP": "0.0.0.0"}
    ]));
    assert!(parse(unspecified).unwrap_err().msg.contains("tcp/80 is mapped twice"));
    let other_family = with_maps(json!([
        {"hostPort": 80, "containerPort": 80, "hostIP": "::"}, {"hostPort": 80, "containerPort": 81, "hostIP": "0.0.0.0"}
    ]));
    assert_eq!(parse(other_family).unwrap().mappings.len(), 2);
    let shape = with_maps(json!({"hostPort": 80}));
    assert_eq!(parse(shape).unwrap_err().code.code(), 7);
}

#[test]
fn bad_options_are_code_7() {
    let cases = [
        json!({"markMasqBit": 32}),
        json!({"markMasqBit": -1}),
        json!({"markMasqBit": 5, "externalSetMarkChain": "KUBE-MARK-MASQ"}),
        json!({"backend": "pf"}),
        json!({"backend": "nftables", "externalSetMarkChain": "KUBE-MARK-MASQ"}),
        json!({"backend": "nftables", "conditionsV4": ["!", "-d", "192.0.2.0/24"]}),
        json!({"backend": "iptables", "conditionsV6": ["ip6 saddr != fc00::/7"]}),
        json!({"conditionsV4": ["ip saddr 10.0.0.1; flush ruleset"]}),
        json!({"externalSetMarkChain": "bad chain"}),
        json!({"snat": "yes"}),
    ];
    for extra in cases {
        let err = parse(base(extra.clone())).expect_err(&extra.to_string());
        assert_eq!(err.code.code(), 7, "{extra}: {err}");
    }
}

#[test]
fn iptables_only_options_select_iptables_when_backend_is_absent() {
    let c = parse(base(json!({"externalSetMarkChain": "KUBE-MARK-MASQ"}))).unwrap();
    assert_eq!(c.backend, Backend::Iptables);
    let c = parse(base(json!({"conditionsV4": ["!", "-d", "192.0.2.0/24"]}))).unwrap();
    assert_eq!(c.backend, Backend::Iptables);
    let c = parse(base(json!({"conditionsV4": ["ip saddr != 192.0.2.0/24"]}))).unwrap();
    assert_eq!(c.backend, Backend::Nftables);
    assert_eq!(c.conditions(false), ["ip saddr != 192.0.2.0/24"]);
    assert!(c.conditions(true).is_empty());
}
