//! The admin tiers' decoder: what it reads, and every refusal naming its field.

use super::*;
use crate::model::Protocol;

fn error(yaml: &str) -> String {
    parse_yaml(yaml).unwrap_err().to_string()
}

const ANP_HEAD: &str =
    "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: deny-y}\n";

#[test]
fn parses_an_admin_network_policy() {
    use crate::admin::{Action, AdminPeer, AdminPort, Subject, Tier};
    let yaml = format!(
        "{ANP_HEAD}spec:
  priority: 10
  subject: {{pods: {{namespaceSelector: {{}}, podSelector: {{matchLabels: {{app: web}}}}}}}}
  ingress:
  - {{name: deny-y, action: Deny, from: [{{namespaces: {{matchLabels: {{team: y}}}}}}]}}
  egress:
  - action: Pass
    to: [{{networks: [10.0.0.1/8, 'fd00::/64']}}, {{pods: {{namespaceSelector: {{}}, podSelector: {{}}}}}}]
    ports: [{{portNumber: {{port: 80}}}}, {{portRange: {{protocol: UDP, start: 1000, end: 2000}}}}]
status: {{conditions: []}}
"
    );
    let p = match parse_yaml(&yaml).unwrap().as_slice() {
        [Object::AdminPolicy(p)] => p.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!((p.tier, p.name.as_str(), p.priority), (Tier::Admin, "deny-y", 10));
    assert!(matches!(p.subject, Subject::Pods { .. }));
    assert_eq!(p.ingress[0].action, Action::Deny);
    assert_eq!(p.ingress[0].name, "deny-y");
    assert!(p.ingress[0].ports.is_empty());
    assert_eq!(p.egress[0].action, Action::Pass);
    match &p.egress[0].peers[0] {
        AdminPeer::Networks(n) => assert_eq!(n[0].to_string(), "10.0.0.0/8", "host bits cleared"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        p.egress[0].ports,
        vec![AdminPort::Number(Protocol::Tcp, 80), AdminPort::Range(Protocol::Udp, 1000, 2000)]
    );
}

#[test]
fn admin_policy_errors_name_their_field() {
    let anp = |spec: &str| error(&format!("{ANP_HEAD}spec:\n{spec}"));
    let subject = "  subject: {namespaces: {}}\n";
    let cases = [
        (format!("  priority: 1001\n{subject}"), "spec.priority: 1001 must be between 0 and 1000, inclusive"),
        ("  priority: 1\n".to_string(), "spec.subject: required value"),
        (
            "  priority: 1\n  subject: {namespaces: {}, pods: {namespaceSelector: {}, podSelector: {}}}\n"
                .into(),
            "spec.subject: must specify exactly one of `namespaces` or `pods`",
        ),
        (
            format!("  priority: 1\n{subject}  ingress: [{{action: Drop, from: [{{namespaces: {{}}}}]}}]\n"),
            "spec.ingress[0].action: unsupported value \"Drop\": supported values: \"Allow\", \"Deny\", \"Pass\"",
        ),
        (
            format!("  priority: 1\n{subject}  ingress: [{{action: Deny, from: []}}]\n"),
            "spec.ingress[0].from: must have at least 1 item",
        ),
        (
            format!(
                "  priority: 1\n{subject}  ingress: [{{action: Deny, from: [{{networks: [10.0.0.0/8]}}]}}]\n"
            ),
            "spec.ingress[0].from[0].networks: unknown field",
        ),
        (
            format!(
                "  priority: 1\n{subject}  egress: [{{action: Deny, to: [{{domainNames: [a.example]}}]}}]\n"
            ),
            "spec.egress[0].to[0].domainNames: not supported by twill",
        ),
        (
            format!(
                "  priority: 1\n{subject}  egress: [{{action: Deny, to: [{{nodes: {{}}}}], ports: [{{namedPort: http}}]}}]\n"
            ),
            "spec.egress[0].ports: a named port cannot be used with a `networks` or `nodes` peer",
        ),
        (
            format!(
                "  priority: 1\n{subject}  egress: [{{action: Deny, to: [{{networks: [10.0.0.0/8]}}], ports: [{{namedPort: http}}]}}]\n"
            ),
            "spec.egress[0].ports: a named port cannot be used with a `networks` or `nodes` peer",
        ),
        (
            format!(
                "  priority: 1\n{subject}  egress: [{{action: Deny, to: [{{namespaces: {{}}}}], ports: [{{portRange: {{start: 90, end: 90}}}}]}}]\n"
            ),
            "spec.egress[0].ports[0].portRange.end: 90 must be greater than `start` (90)",
        ),
        (
            format!(
                "  priority: 1\n{subject}  egress: [{{action: Deny, to: [{{namespaces: {{}}}}], ports: [{{portNumber: {{port: 80}}, namedPort: x}}]}}]\n"
            ),
            "spec.egress[0].ports[0]: must specify exactly one of",
        ),
    ];
    for (spec, want) in cases {
        let e = anp(&spec);
        assert!(e.starts_with("document 1: AdminNetworkPolicy deny-y: "), "{e}");
        assert!(e.contains(want), "{e}\n  wanted: {want}");
    }
    let rules: String = (0..101).map(|_| "  - {action: Deny, from: [{namespaces: {}}]}\n").collect();
    let e = anp(&format!("  priority: 1\n{subject}  ingress:\n{rules}"));
    assert!(e.contains("spec.ingress: must have at most 100 items, not 101"), "{e}");
}

#[test]
fn baseline_is_named_default_and_cannot_pass() {
    let head = "apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\n";
    let spec = "spec: {subject: {namespaces: {}}, ingress: [{action: Pass, from: [{namespaces: {}}]}]}\n";
    let e = error(&format!("{head}metadata: {{name: other}}\n{spec}"));
    assert!(e.contains("BaselineAdminNetworkPolicy: metadata.name: must be \"default\""), "{e}");
    let e = error(&format!("{head}metadata: {{name: default}}\n{spec}"));
    assert!(
        e.contains("BaselineAdminNetworkPolicy default: spec.ingress[0].action: unsupported value \"Pass\": supported values: \"Allow\", \"Deny\""),
        "{e}"
    );
    let e = error(&format!(
        "{head}metadata: {{name: default}}\nspec: {{priority: 3, subject: {{namespaces: {{}}}}}}\n"
    ));
    assert!(e.contains("spec.priority: unknown field"), "{e}");
    let e = error("apiVersion: policy.networking.k8s.io/v1\nkind: AdminNetworkPolicy\nmetadata: {name: a}\n");
    assert!(e.contains("use \"policy.networking.k8s.io/v1alpha1\""), "{e}");
    let p = crate::parse_admin_spec(
        crate::Tier::Baseline,
        "default",
        &serde_json::json!({"subject": {"namespaces": {}}, "egress": [{"action": "Deny", "to": [{"networks": ["0.0.0.0/0"]}]}]}),
    )
    .unwrap();
    assert_eq!((p.tier, p.egress.len()), (crate::Tier::Baseline, 1));
}
