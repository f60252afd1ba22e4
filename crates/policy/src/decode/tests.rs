use super::*;
use crate::model::{Direction, Peer, PortSpec, Protocol};
use crate::selector::{LabelSelector, Operator};

fn one_policy(yaml: &str) -> NetworkPolicy {
    match parse_yaml(yaml).unwrap().as_slice() {
        [Object::NetworkPolicy(p)] => p.clone(),
        other => panic!("expected one policy, got {other:?}"),
    }
}

fn error(yaml: &str) -> String {
    parse_yaml(yaml).unwrap_err().to_string()
}

const HEAD: &str =
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n";

fn spec(body: &str) -> String {
    format!("{HEAD}spec:\n{body}")
}

#[test]
fn parses_a_full_policy() {
    let p = one_policy(&spec(
        r#"
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
      namespaceSelector:
        matchExpressions: [{key: ns, operator: In, values: [y, z]}]
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports:
    - port: 80
    - {protocol: UDP, port: 1000, endPort: 2000}
    - {protocol: SCTP, port: serve-81-sctp}
    - protocol: TCP
  egress:
  - {}
"#,
    ));
    assert_eq!((p.namespace.as_str(), p.name.as_str()), ("x", "p"));
    assert_eq!(p.pod_selector, LabelSelector::labels([("pod", "a")]));
    assert_eq!(p.policy_types, vec![Direction::Ingress, Direction::Egress], "egress rules imply Egress");
    let rule = &p.ingress[0];
    match &rule.peers[0] {
        Peer::Pods { namespaces: Some(ns), pods: Some(pods) } => {
            assert_eq!(ns.match_expressions[0].operator, Operator::In);
            assert_eq!(pods, &LabelSelector::labels([("pod", "b")]));
        }
        other => panic!("{other:?}"),
    }
    match &rule.peers[1] {
        Peer::IpBlock(b) => assert_eq!(b.except.len(), 1),
        other => panic!("{other:?}"),
    }
    let ports: Vec<_> = rule.ports.iter().map(|p| (p.protocol, p.port.clone())).collect();
    assert_eq!(
        ports,
        vec![
            (Protocol::Tcp, Some(PortSpec::Number(80))),
            (Protocol::Udp, Some(PortSpec::Range(1000, 2000))),
            (Protocol::Sctp, Some(PortSpec::Named("serve-81-sctp".into()))),
            (Protocol::Tcp, None),
        ]
    );
    assert_eq!(p.egress.len(), 1);
    assert!(p.egress[0].peers.is_empty() && p.egress[0].ports.is_empty());
}

#[test]
fn policy_types_inference() {
    let p = one_policy(&spec("  podSelector: {}\n"));
    assert_eq!(p.policy_types, vec![Direction::Ingress], "Ingress always");
    let p = one_policy(&spec("  egress: []\n"));
    assert_eq!(p.policy_types, vec![Direction::Ingress], "an empty egress list has no rules");
    let p = one_policy(&spec("  policyTypes: [Egress]\n  ingress: [{}]\n"));
    assert_eq!(p.policy_types, vec![Direction::Egress], "explicit types win");
    assert!(p.rules(Direction::Ingress).is_empty());
    let p = one_policy(&spec("  policyTypes: []\n  egress: [{}]\n"));
    assert_eq!(p.policy_types, vec![Direction::Ingress, Direction::Egress], "an empty list is defaulted");
    let p = one_policy(HEAD);
    assert_eq!(p.policy_types, vec![Direction::Ingress], "no spec at all: deny ingress to the namespace");
    assert!(p.pod_selector.is_empty());
}

#[test]
fn many_documents_and_namespaces() {
    let yaml = format!(
        "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: y\n  labels: {{team: blue}}\n---\n{}---\n",
        spec("  podSelector: {}\n")
    );
    let objs = parse_yaml(&yaml).unwrap();
    assert_eq!(objs.len(), 2);
    match &objs[0] {
        Object::Namespace(ns) => {
            assert_eq!(ns.name, "y");
            assert_eq!(ns.labels["team"], "blue");
            assert_eq!(ns.labels[crate::NAMESPACE_NAME_LABEL], "y");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(objs[1], Object::NetworkPolicy(_)));
}

#[test]
fn list_kind_and_json_values() {
    let v = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "z"}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "q"}, "spec": {}}
    ]});
    let objs = parse_value(&v).unwrap();
    assert_eq!(objs.len(), 2);
    match &objs[1] {
        Object::NetworkPolicy(p) => assert_eq!(p.namespace, "default", "like kubectl's default namespace"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn other_kinds_are_named() {
    let e = error("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n");
    assert_eq!(
        e,
        "document 1: unsupported kind \"Service\": twill reads NetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy, Namespace, Pod and List"
    );
    let e = error(&format!("{}---\napiVersion: apps/v1\nkind: Deployment\n", spec("  podSelector: {}\n")));
    assert!(e.starts_with("document 2: unsupported kind \"Deployment\""), "{e}");
    let e = error("apiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: a}\n");
    assert!(e.contains("apiVersion: \"extensions/v1beta1\" is not supported"), "{e}");
    let e = error("apiVersion: v1\nmetadata: {name: a}\n");
    assert_eq!(e, "document 1: manifest: kind: required value");
}

#[test]
fn yaml_errors_name_the_document() {
    let e = error("kind: [unclosed\n");
    assert!(e.starts_with("document 1: invalid YAML"), "{e}");
    let e = error(&format!("{}---\nkind: [unclosed\n", spec("  podSelector: {}\n")));
    assert!(e.starts_with("document 2: invalid YAML"), "{e}");
}

#[test]
fn validation_errors_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (
            "  podSelector: {matchExpressions: [{key: pod, operator: Equals, values: [a]}]}\n",
            "spec.podSelector.matchExpressions[0].operator: unsupported value \"Equals\"",
        ),
        (
            "  podSelector: {matchExpressions: [{key: pod, operator: In}]}\n",
            "spec.podSelector.matchExpressions[0].values: must be specified when `operator` is In",
        ),
        (
            "  podSelector: {matchExpressions: [{key: pod, operator: Exists, values: [a]}]}\n",
            "spec.podSelector.matchExpressions[0].values: may not be specified when `operator` is Exists",
        ),
        (
            "  podSelector: {matchLabels: {pod: 1}}\n",
            "spec.podSelector.matchLabels.pod: must be a string, not a number",
        ),
        (
            "  podSelector: {matchLabels: {\"bad key\": a}}\n",
            "spec.podSelector.matchLabels.bad key: name part of label key",
        ),
        (
            "  policyTypes: [Ingress, Egress, Ingress]\n",
            "spec.policyTypes: may not specify more than two policyTypes",
        ),
        ("  policyTypes: [ingress]\n", "spec.policyTypes[0]: unsupported value \"ingress\""),
        ("  ingress: [{from: [{}]}]\n", "spec.ingress[0].from[0]: must specify a peer"),
        (
            "  ingress: [{from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}]\n",
            "spec.ingress[0].from[0]: may not specify more than 1 peer type",
        ),
        (
            "  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/33}}]}]\n",
            "spec.egress[0].to[0].ipBlock.cidr: \"10.0.0.0/33\" must be a valid CIDR",
        ),
        (
            "  egress: [{to: [{ipBlock: {except: [10.0.0.0/9]}}]}]\n",
            "spec.egress[0].to[0].ipBlock.cidr: required value",
        ),
        (
            "  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]\n",
            "spec.egress[0].to[0].ipBlock.except[0]: 11.0.0.0/16 must be a strict subset of `cidr` 10.0.0.0/8",
        ),
        (
            "  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]}]\n",
            "spec.egress[0].to[0].ipBlock.except[0]: 10.0.0.0/8 must be a strict subset",
        ),
        (
            "  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [\"fd00::/64\"]}}]}]\n",
            "spec.egress[0].to[0].ipBlock.except[0]: fd00::/64 must be a strict subset",
        ),
        (
            "  ingress: [{ports: [{protocol: tcp}]}]\n",
            "spec.ingress[0].ports[0].protocol: unsupported value \"tcp\"",
        ),
        (
            "  ingress: [{ports: [{port: 0}]}]\n",
            "spec.ingress[0].ports[0].port: 0 must be between 1 and 65535",
        ),
        (
            "  ingress: [{ports: [{port: 65536}]}]\n",
            "spec.ingress[0].ports[0].port: 65536 must be between 1 and 65535",
        ),
        (
            "  ingress: [{ports: [{port: \"80\"}]}]\n",
            "spec.ingress[0].ports[0].port: \"80\" is not a valid port name",
        ),
        (
            "  ingress: [{ports: [{port: Http}]}]\n",
            "spec.ingress[0].ports[0].port: \"Http\" is not a valid port name",
        ),
        (
            "  ingress: [{ports: [{endPort: 90}]}]\n",
            "spec.ingress[0].ports[0].endPort: may not be specified without `port`",
        ),
        (
            "  ingress: [{ports: [{port: http, endPort: 90}]}]\n",
            "spec.ingress[0].ports[0].endPort: may not be specified when `port` is a name",
        ),
        (
            "  ingress: [{ports: [{port: 90, endPort: 80}]}]\n",
            "spec.ingress[0].ports[0].endPort: 80 must be greater than or equal to `port` (90)",
        ),
        (
            "  ingress: [{form: [{podSelector: {}}]}]\n",
            "spec.ingress[0].form: unknown field (expected one of: from, ports)",
        ),
        (
            "  egress: [{from: [{podSelector: {}}]}]\n",
            "spec.egress[0].from: unknown field (expected one of: to, ports)",
        ),
        ("  podSelecter: {}\n", "spec.podSelecter: unknown field"),
        ("  ingress: {}\n", "spec.ingress: must be a list, not an object"),
    ];
    for (body, want) in cases {
        let e = error(&spec(body));
        assert!(e.contains(want), "for\n{body}\nwant {want:?}\ngot  {e:?}");
        assert!(e.starts_with("document 1: NetworkPolicy x/p: "), "{e}");
    }
}

#[test]
fn metadata_errors() {
    let e = error("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {namespace: x}\n");
    assert_eq!(e, "document 1: NetworkPolicy: metadata.name: required value");
    let e = error("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: Bad_Name}\n");
    assert!(e.contains("metadata.name: \"Bad_Name\" must consist of"), "{e}");
    let e = error("apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n");
    assert!(e.contains("metadata.name: \"a.b\" must consist of"), "namespaces are DNS labels: {e}");
    let e = error("apiVersion: v1\nkind: Namespace\nmetadata: {name: y, labels: {team: \"a b\"}}\n");
    assert!(e.contains("Namespace y: metadata.labels.team: label value"), "{e}");
    let e = error(&format!("{HEAD}status: {{}}\n"));
    assert!(e.contains("status: unknown field"), "{e}");
}

#[test]
fn cidrs_with_host_bits_are_cleared() {
    let p = one_policy(&spec("  egress: [{to: [{ipBlock: {cidr: 10.1.2.3/16}}]}]\n"));
    match &p.egress[0].peers[0] {
        Peer::IpBlock(b) => assert_eq!(b.cidr.to_string(), "10.1.0.0/16"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn stored_specs() {
    let spec = serde_json::json!({"podSelector": {}, "ingress": [{"ports": [{"port": 80}]}]});
    let p = parse_policy_spec("x", "web", &spec).unwrap();
    assert_eq!((p.namespace.as_str(), p.name.as_str(), p.ingress.len()), ("x", "web", 1));
    let e = parse_policy_spec("x", "web", &serde_json::json!({"ingress": [{"ports": [{"port": 0}]}]}))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "document 1: NetworkPolicy x/web: spec.ingress[0].ports[0].port: 0 must be between 1 and 65535, inclusive"
    );
}

#[test]
fn agent_records_deserialize_as_pods_and_namespaces() {
    let pod: crate::Pod = serde_json::from_value(serde_json::json!({
        "namespace": "x", "name": "a", "node": "n1", "ips": ["10.244.1.10"], "labels": {"pod": "a"},
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]
    }))
    .unwrap();
    assert_eq!(pod.named_port("http", Protocol::Tcp), Some(80));
    let ns: crate::Namespace =
        serde_json::from_value(serde_json::json!({"name": "y", "labels": {}})).unwrap();
    assert_eq!(ns.name, "y");
}

#[test]
fn pods_give_labels_annotations_and_named_ports() {
    let objs = parse_yaml(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: x, labels: {app: web}, annotations: {k8s.v1.cni.cncf.io/networks: macvlan}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    ports: [{name: http, containerPort: 80}, {containerPort: 9090}, {name: dns, containerPort: 53, protocol: UDP}]\n",
    )
    .unwrap();
    let [Object::Pod(p)] = &objs[..] else { panic!("{objs:?}") };
    assert_eq!((p.namespace.as_str(), p.name.as_str()), ("x", "web"));
    assert_eq!(p.labels["app"], "web");
    assert_eq!(p.annotations["k8s.v1.cni.cncf.io/networks"], "macvlan");
    let ports: Vec<(&str, u16, Protocol)> =
        p.ports.iter().map(|n| (n.name.as_str(), n.port, n.protocol)).collect();
    assert_eq!(ports, [("http", 80, Protocol::Tcp), ("dns", 53, Protocol::Udp)]);
    for (bad, field) in [
        ("metadata: {name: p, labels: {'a b': c}}", "metadata.labels.a b"),
        (
            "metadata: {name: p}\nspec: {containers: [{ports: [{name: http, containerPort: 0}]}]}",
            "spec.containers[0].ports[0].containerPort",
        ),
        (
            "metadata: {name: p}\nspec: {containers: [{ports: [{name: x, containerPort: 1}, {name: x, containerPort: 2}]}]}",
            "spec.containers[0].ports[1].name",
        ),
        (
            "metadata: {name: p}\nspec: {containers: [{ports: [{name: x, containerPort: 1, protocol: tcp}]}]}",
            "spec.containers[0].ports[0].protocol",
        ),
    ] {
        let e = parse_yaml(&format!("apiVersion: v1\nkind: Pod\n{bad}\n")).unwrap_err().to_string();
        assert!(e.contains(field), "{bad}: {e}");
    }
}
