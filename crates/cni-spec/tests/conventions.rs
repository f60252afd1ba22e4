//! CONVENTIONS.md helpers and name validation.

use cni_spec::{
    Attachment, Bandwidth, ErrorCode, NetConf, PortMapping, parse_cni_args, runtime_config,
    valid_attachments, validate_container_id, validate_ifname, validate_network_name,
};
use serde_json::json;

fn conf(v: serde_json::Value) -> NetConf {
    NetConf::parse(v.to_string().as_bytes()).unwrap()
}

#[test]
fn cni_args_split_into_ordered_pairs() {
    assert_eq!(parse_cni_args("").unwrap(), vec![]);
    let pairs = parse_cni_args("IgnoreUnknown=1;K8S_POD_NAME=web-0;EMPTY=").unwrap();
    let expected = [("IgnoreUnknown", "1"), ("K8S_POD_NAME", "web-0"), ("EMPTY", "")];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(pairs, expected);
}

#[test]
fn malformed_cni_args_are_code_4_naming_the_pair() {
    for (input, pair) in
        [("A", "\"A\""), ("A=1;B", "\"B\""), ("A=1=2", "\"A=1=2\""), ("=1", "\"=1\""), ("A=1;", "\"\"")]
    {
        let err = parse_cni_args(input).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidEnvironment, "{input}");
        assert!(err.msg.contains(pair), "{input}: {err}");
        assert!(err.msg.contains("CNI_ARGS"), "{err}");
    }
}

#[test]
fn port_mappings_and_bandwidth_use_camel_case() {
    let c = conf(json!({"type": "portmap", "runtimeConfig": {
        "portMappings": [
            {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": -1, "containerPort": 70000, "protocol": "udp", "hostIP": "127.0.0.1"}
        ],
        "bandwidth": {"ingressRate": 2048, "egressBurst": 1600}
    }}));
    let maps: Vec<PortMapping> = runtime_config(&c, "portMappings").unwrap().unwrap();
    assert_eq!(
        maps[0],
        PortMapping { host_port: 8080, container_port: 80, protocol: "tcp".into(), host_ip: None }
    );
    assert_eq!((maps[1].host_port, maps[1].container_port), (-1, 70000));
    assert_eq!(maps[1].host_ip.as_deref(), Some("127.0.0.1"));
    let bw: Bandwidth = runtime_config(&c, "bandwidth").unwrap().unwrap();
    assert_eq!(bw, Bandwidth { ingress_rate: Some(2048), egress_burst: Some(1600), ..Bandwidth::default() });
    assert_eq!(serde_json::to_value(&bw).unwrap(), json!({"ingressRate": 2048, "egressBurst": 1600}));
    assert_eq!(
        serde_json::to_value(&maps[0]).unwrap(),
        json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"})
    );
}

#[test]
fn runtime_config_absent_or_malformed() {
    let c = conf(json!({"type": "x", "runtimeConfig": {"bandwidth": "fast", "mac": null}}));
    assert_eq!(runtime_config::<Bandwidth>(&c, "missing").unwrap(), None);
    assert_eq!(runtime_config::<String>(&c, "mac").unwrap(), None);
    let err = runtime_config::<Bandwidth>(&c, "bandwidth").unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidConfig);
    assert!(err.msg.contains("runtimeConfig.bandwidth"), "{err}");
}

#[test]
fn valid_attachments_from_every_place() {
    let list = json!([{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c2", "ifname": "net1"}]);
    let expected = vec![
        Attachment { container_id: "c1".into(), ifname: "eth0".into() },
        Attachment { container_id: "c2".into(), ifname: "net1".into() },
    ];
    let top = conf(json!({"type": "x", "cni.dev/valid-attachments": list}));
    assert_eq!(valid_attachments(&top).unwrap(), Some(expected.clone()));
    let rc = conf(json!({"type": "x", "runtimeConfig": {"cni.dev/valid-attachments": list}}));
    assert_eq!(valid_attachments(&rc).unwrap(), Some(expected.clone()));
    let legacy = conf(json!({"type": "x", "cni.dev/attachments": list}));
    assert_eq!(valid_attachments(&legacy).unwrap(), Some(expected));
    let empty = conf(json!({"type": "x", "cni.dev/valid-attachments": []}));
    assert_eq!(valid_attachments(&empty).unwrap(), Some(vec![]));
    assert_eq!(valid_attachments(&conf(json!({"type": "x"}))).unwrap(), None);
}

#[test]
fn malformed_valid_attachments_are_code_7() {
    let c = conf(json!({"type": "x", "cni.dev/valid-attachments": [{"containerID": "c1"}]}));
    let err = valid_attachments(&c).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidConfig);
    assert!(err.msg.contains("cni.dev/valid-attachments"), "{err}");
}

#[test]
fn container_ids() {
    for ok in ["a", "0abc", "pod_1.x-y", "A"] {
        validate_container_id(ok).unwrap();
    }
    assert_eq!(validate_container_id("").unwrap_err().code, ErrorCode::UnknownContainer);
    for bad in ["-a", "_a", ".a", "a b", "a/b", "é"] {
        assert_eq!(validate_container_id(bad).unwrap_err().code, ErrorCode::InvalidEnvironment, "{bad}");
    }
}

#[test]
fn network_names() {
    validate_network_name("pod-net.v1_x").unwrap();
    for bad in ["", "-x", "a b", "a/b"] {
        assert_eq!(validate_network_name(bad).unwrap_err().code, ErrorCode::InvalidConfig, "{bad}");
    }
}

#[test]
fn interface_names() {
    for ok in ["eth0", "a", "123456789012345", "net-1.x"] {
        validate_ifname(ok).unwrap();
    }
    for bad in ["", "1234567890123456", ".", "..", "a/b", "a:b", "a b", "a\tb"] {
        assert_eq!(validate_ifname(bad).unwrap_err().code, ErrorCode::InvalidEnvironment, "{bad:?}");
    }
}
