//! AdminNetworkPolicy and BaselineAdminNetworkPolicy end to end: ONE real 3-node lab (dual
//! stack, vxlan, its own `TWILL_LAB_PREFIX`) with the Kubernetes e2e world (namespaces x, y,
//! z × pods a, b, c on nodes 1, 2, 3) and every twilld enforcing the three tiers. Each
//! scenario writes its manifests with `twill lab apply -f`, measures FULL 9×9 truth tables
//! with `twill lab matrix --json` and compares them with `twill_policy::evaluate` and with a
//! hand-written table, then deletes them with `twill lab delete -f`. The scenarios follow the
//! network-policy-api conformance suite (core): ANP ingress and egress Allow/Deny/Pass by
//! priority and rule order, the baseline, and how the tiers meet NetworkPolicy.

#[allow(dead_code)]
#[path = "lab_policy/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "lab_policy/runner.rs"]
mod runner;
#[allow(dead_code)]
#[path = "lab_policy/scenarios.rs"]
mod scenarios;
#[allow(dead_code)]
#[path = "lab_policy/tables.rs"]
mod tables;
#[allow(dead_code)]
#[path = "support/twilld.rs"]
mod twilld;

use harness::{Lab, NAMESPACES, PODS};
use policy::Protocol::{self, Tcp, Udp};
use runner::Runner;
use scenarios::{Scenario, Step};
use tables::ALL_OPEN;
use testkit::policy_docs::{SUBJECT_X, anp, banp, from_ns, np};
use testkit::truth::{
    FROM_Y_DENIED_INTO_X, FROM_Y_TO_PODS_A_DENIED, FROM_Z_DENIED_INTO_X, INTO_X_FROM_Y_ONLY,
    INTO_X_FROM_Z_ONLY, INTO_Y_FROM_X_AND_Z_DENIED, WITHIN_NAMESPACES_ONLY, WITHIN_X_DENIED,
};

fn check(port: u16, proto: Protocol, want: &'static str) -> Step {
    Step::Check { port, proto, v6: false, want: Some(want) }
}

/// Apply, the checks, delete: every scenario cleans up after itself.
fn scenario(name: &'static str, yaml: String, checks: Vec<Step>) -> Scenario {
    let mut steps = vec![Step::Apply(yaml.clone())];
    steps.extend(checks);
    steps.push(Step::DeleteManifest(yaml));
    Scenario { name, steps }
}

fn tiers_against_network_policy() -> Vec<Scenario> {
    let deny_y = np("x", "allow-all", "podSelector: {}\ningress: [{}]")
        + &anp(
            "deny-y",
            10,
            &format!("{SUBJECT_X}\ningress:\n- {{name: deny-y, action: Deny, from: {}}}", from_ns("y")),
        );
    let allow_z = np("x", "deny-all", "podSelector: {}")
        + &anp("allow-z", 10, &format!("{SUBJECT_X}\ningress:\n- {{action: Allow, from: {}}}", from_ns("z")));
    let pass = np(
        "x",
        "from-y-a",
        "podSelector: {}\ningress:\n- from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}]",
    ) + &anp(
        "pass-y",
        5,
        &format!("{SUBJECT_X}\ningress:\n- {{action: Pass, from: {}}}", from_ns("y")),
    ) + &anp(
        "deny-all",
        10,
        &format!("{SUBJECT_X}\ningress:\n- {{action: Deny, from: [{{namespaces: {{}}}}]}}"),
    );
    vec![
        scenario(
            "an AdminNetworkPolicy Deny beats a NetworkPolicy allow",
            deny_y,
            vec![
                check(80, Tcp, FROM_Y_DENIED_INTO_X),
                check(81, Udp, FROM_Y_DENIED_INTO_X),
                Step::Check { port: 80, proto: Tcp, v6: true, want: Some(FROM_Y_DENIED_INTO_X) },
                Step::Explain(
                    "y/a",
                    "x/b",
                    "denied by AdminNetworkPolicy deny-y (priority 10) ingress[0] \"deny-y\" Deny",
                ),
            ],
        ),
        scenario(
            "an AdminNetworkPolicy Allow beats a NetworkPolicy deny",
            allow_z,
            vec![check(80, Tcp, INTO_X_FROM_Z_ONLY)],
        ),
        scenario(
            "Pass falls through to NetworkPolicy",
            pass,
            vec![
                check(80, Tcp, INTO_X_FROM_Y_ONLY),
                Step::Explain(
                    "y/b",
                    "x/a",
                    "passed by AdminNetworkPolicy pass-y (priority 5) ingress[0] Pass",
                ),
            ],
        ),
    ]
}

fn baseline() -> Vec<Scenario> {
    let default = np(
        "y",
        "from-x",
        "podSelector: {}\ningress:\n- from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: x}}}]",
    ) + &banp(
        "subject: {namespaces: {}}\ningress:\n- {name: deny-all, action: Deny, from: [{namespaces: {}}]}",
    );
    let pass_then_baseline = anp(
        "pass-y",
        1,
        &format!("{SUBJECT_X}\ningress:\n- {{action: Pass, from: {}}}", from_ns("y")),
    ) + &banp(&format!(
        "{SUBJECT_X}\ningress:\n- {{action: Allow, from: {}}}\n- {{action: Deny, from: [{{namespaces: {{}}}}]}}",
        from_ns("z")
    ));
    vec![
        scenario(
            "a BaselineAdminNetworkPolicy is the default where no NetworkPolicy selects",
            default,
            vec![
                check(80, Tcp, WITHIN_NAMESPACES_ONLY),
                Step::Explain(
                    "z/a",
                    "x/a",
                    "denied by BaselineAdminNetworkPolicy default ingress[0] \"deny-all\" Deny",
                ),
            ],
        ),
        scenario(
            "Pass with no NetworkPolicy lands in the baseline",
            pass_then_baseline,
            vec![check(80, Tcp, INTO_X_FROM_Z_ONLY)],
        ),
    ]
}

fn order_ports_egress() -> Vec<Scenario> {
    let priorities = anp(
        "late-allow",
        20,
        &format!("{SUBJECT_X}\ningress:\n- {{action: Allow, from: {}}}", from_ns("y")),
    ) + &anp(
        "early-deny",
        10,
        &format!(
            "{SUBJECT_X}\ningress:\n- {{action: Deny, from: {}, ports: [{{portNumber: {{port: 80}}}}]}}",
            from_ns("y")
        ),
    );
    let named = anp(
        "no-udp-80-to-a",
        3,
        "subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: y}}}\negress:\n\
         - action: Deny\n  to: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}]\n  \
         ports: [{namedPort: serve-80-udp}, {portRange: {protocol: TCP, start: 81, end: 82}}]",
    );
    let combine = anp(
        "x-not-to-y",
        1,
        &format!("{SUBJECT_X}\negress:\n- {{action: Deny, to: {}}}", from_ns("y")),
    ) + &banp(&format!(
        "subject: {{namespaces: {{matchLabels: {{kubernetes.io/metadata.name: y}}}}}}\ningress:\n- {{action: Deny, from: {}}}",
        from_ns("z")
    ));
    vec![
        scenario(
            "priorities order policies; ports narrow a rule",
            priorities,
            vec![check(80, Tcp, FROM_Y_DENIED_INTO_X), check(81, Tcp, ALL_OPEN), check(80, Udp, ALL_OPEN)],
        ),
        scenario(
            "egress Deny by named port and port range",
            named,
            vec![
                check(80, Udp, FROM_Y_TO_PODS_A_DENIED),
                check(81, Tcp, FROM_Y_TO_PODS_A_DENIED),
                check(80, Tcp, ALL_OPEN),
            ],
        ),
        scenario(
            "admin egress and baseline ingress combine",
            combine,
            vec![check(80, Tcp, INTO_Y_FROM_X_AND_Z_DENIED)],
        ),
    ]
}

/// The conformance suite's ingress rules case: shadowed rules, port-specific Deny before Pass,
/// an Allow on one port before a Deny of everything else.
fn rule_order() -> Scenario {
    let (x, y, z) = (from_ns("x"), from_ns("y"), from_ns("z"));
    let http = "ports: [{portNumber: {protocol: TCP, port: 80}}]";
    let yaml = anp(
        "ingress-tcp",
        3,
        &format!(
            "{SUBJECT_X}\ningress:\n\
             - {{name: allow-from-y, action: Allow, from: {y}}}\n\
             - {{name: deny-from-y, action: Deny, from: {y}}}\n\
             - {{name: pass-from-y, action: Pass, from: {y}}}\n\
             - {{name: deny-from-z-80, action: Deny, from: {z}, {http}}}\n\
             - {{name: pass-from-z-80, action: Pass, from: {z}, {http}}}\n\
             - {{name: allow-from-x-80, action: Allow, from: {x}, {http}}}\n\
             - {{name: deny-from-x, action: Deny, from: {x}}}"
        ),
    );
    scenario(
        "rules in order: shadowed rules, Deny before Pass, Allow before Deny",
        yaml,
        vec![
            check(80, Tcp, FROM_Z_DENIED_INTO_X),
            check(81, Tcp, WITHIN_X_DENIED),
            check(80, Udp, WITHIN_X_DENIED),
        ],
    )
}

/// `networks` peers: node-2's pod subnet (pods b), measured against evaluate only.
fn networks(node2_v4: &str) -> Scenario {
    let yaml = anp(
        "no-b-net",
        7,
        &format!("{SUBJECT_X}\negress:\n- {{action: Deny, to: [{{networks: [{node2_v4}]}}]}}"),
    );
    scenario(
        "egress Deny to a network",
        yaml,
        vec![check(
            80,
            Tcp,
            "
            .X. .X. .X.
            ... .X. .X.
            .X. .X. .X.
            ... ... ...
            ... ... ...
            ... ... ...
            ... ... ...
            ... ... ...
            ... ... ...",
        )],
    )
}

#[test]
fn admin_tiers_in_a_three_node_lab() {
    let lab = Lab::up(&["--nodes", "3", "--backend", "vxlan", "--ipv6"]);
    for ns in NAMESPACES {
        lab.ok(&["lab", "ns", "add", ns, "--labels", &format!("ns={ns}")]);
        for (i, pod) in PODS.iter().enumerate() {
            let (name, node) = (format!("{ns}/{pod}"), (i + 1).to_string());
            lab.ok(&["lab", "pod", "add", &name, "--node", &node, "--labels", &format!("pod={pod}")]);
        }
    }
    let status = lab.status();
    let node2_v4 = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "node-2")
        .and_then(|n| n["subnets"].as_array()?.iter().filter_map(|s| s.as_str()).find(|s| !s.contains(':')))
        .unwrap()
        .to_string();
    let mut r = Runner::new(&lab);
    let mut all = tiers_against_network_policy();
    all.extend(baseline());
    all.extend(order_ports_egress());
    all.push(rule_order());
    all.push(networks(&node2_v4));
    for s in &all {
        r.run(s);
    }
    cluster_get(&lab, &mut r.failures, &status);
    r.check("all policies deleted", 80, Tcp, false, Some(ALL_OPEN));
    assert!(r.failures.is_empty(), "{} failure(s):\n\n{}", r.failures.len(), r.failures.join("\n\n"));
}

/// `twill cluster get anp|banp` lists what `twill lab apply` stored.
fn cluster_get(lab: &Lab, failures: &mut Vec<String>, status: &serde_json::Value) {
    let yaml =
        anp("listed", 42, &format!("{SUBJECT_X}\ningress:\n- {{action: Deny, from: {}}}", from_ns("y")))
            + &banp("subject: {namespaces: {}}");
    lab.apply(&yaml);
    let store = status["datastore"].as_str().unwrap();
    let anp_table = lab.ok(&["cluster", "get", "anp", "--datastore", store]);
    let banp_json =
        lab.ok(&["cluster", "get", "baselineadminnetworkpolicies", "--datastore", store, "-o", "json"]);
    lab.manifest("delete", &yaml);
    if !anp_table.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["listed", "42", "1", "0"]) {
        failures.push(format!("`twill cluster get anp` printed:\n{anp_table}"));
    }
    if !banp_json.contains("\"name\": \"default\"") {
        failures.push(format!("`twill cluster get banp -o json` printed:\n{banp_json}"));
    }
}
