//! Flow logs end to end (docs/flows.md), as a user reads them: a 2-node lab whose twillds run
//! `--flow-logs all`, a policy letting only x/a reach y/b on TCP 80 (its rule 1), and then
//! `twill lab flows -o json` must show x/a's connection allowed by that rule, x/c's
//! connection denied by default with the policy that isolates y/b (`--denied`), and a
//! datagram x/c forged with x/a's address dropped by the node's spoof check. `twill cluster
//! flows --agent` on the node shows the same records. Then an AdminNetworkPolicy Deny beats the
//! NetworkPolicy rule that would let x/c in, and its record names tier, policy and rule; `lab
//! flows --follow` prints a new record as it comes.

#[path = "support/forge.rs"]
mod forge;
#[path = "support/lab.rs"]
mod lab_support;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lab_support::{Lab, wait_for};
use netns::NetNs;
use serde_json::Value;

const POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-xa, namespace: y}
spec:
  podSelector: {matchLabels: {pod: b}}
  ingress:
  - from: [{podSelector: {matchLabels: {pod: c}}}]
    ports: [{port: 81}]
  - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}]
    ports: [{port: 80}]
";

/// Ingress of y/b: x/a is passed on to NetworkPolicy (rule 0), x/c is denied (rule 1) —
/// although the NetworkPolicy's rule 0 would let x/c in on port 81.
const ADMIN: &str = "apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: no-c}
spec:
  priority: 5
  subject: {pods: {namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}}
  ingress:
  - {name: pass-a, action: Pass, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}]}
  - {name: deny-c, action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: c}}}}]}
";

/// `twill lab apply -f -` with `yaml`; waits until every node enforces it.
fn apply(lab: &Lab, yaml: &str) {
    let mut child = lab.command(&["apply", "-f", "-"]).stdin(std::process::Stdio::piped()).spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), yaml.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success(), "lab apply");
}

fn records(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"))).collect()
}

fn find(records: &[Value], f: impl Fn(&Value) -> bool) -> Option<&Value> {
    records.iter().find(|r| f(r))
}

fn pod_netns(lab: &Lab, pod: &str) -> NetNs {
    let status = lab.status();
    let p = status["pods"].as_array().unwrap().iter().find(|p| p["pod"] == pod).unwrap().clone();
    NetNs::open(netns::named_path(p["netns"].as_str().unwrap())).unwrap()
}

#[test]
fn flows_show_the_rule_the_default_deny_and_spoofed_packets() {
    let lab = Lab::up("flows", &["--nodes", "2", "--flow-logs", "all"]);
    for ns in ["x", "y"] {
        lab.ok(&["ns", "add", ns, "--labels", &format!("ns={ns}")]);
    }
    for (pod, node, label) in [("x/a", "1", "pod=a"), ("y/b", "2", "pod=b"), ("x/c", "2", "pod=c")] {
        lab.ok(&["pod", "add", pod, "--node", node, "--labels", label]);
    }
    apply(&lab, POLICY);

    let tcp80 = ["--port", "80", "--protocol", "tcp"];
    assert!(lab.reach("x/a", "y/b", &tcp80).is_some(), "x/a reaches y/b:80");
    assert!(lab.probe("x/c", "y/b", &tcp80).is_none(), "x/c is denied");
    let (xa, yb): (IpAddr, IpAddr) = (lab.pod_ip("x/a").parse().unwrap(), lab.pod_ip("y/b").parse().unwrap());
    let forged = "forged by x/c";
    let _ = forge::udp_from(&pod_netns(&lab, "x/c"), xa, SocketAddr::new(yb, 80), forged, 3);

    let mut denied = Vec::new();
    wait_for("a denied and a spoofed record", Duration::from_secs(10), || {
        denied = records(&lab.ok(&["flows", "--denied", "-o", "json"]));
        let spoofed = denied.iter().any(|r| r["reason"] == "spoofed ip4");
        let refused = denied.iter().any(|r| r["src_pod"] == "x/c" && r["dst_pod"] == "y/b");
        spoofed && refused
    });
    assert!(denied.iter().all(|r| r["verdict"] == "denied"), "{denied:#?}");
    let refused = find(&denied, |r| r["src_pod"] == "x/c").unwrap();
    assert_eq!(
        (&refused["node"], &refused["direction"], &refused["tier"], &refused["reason"]),
        (
            &Value::from("node-2"),
            &Value::from("ingress"),
            &Value::from("NetworkPolicy"),
            &Value::from("default deny")
        ),
        "{refused:#}"
    );
    assert_eq!(refused["policies"], serde_json::json!(["y/only-xa"]), "{refused:#}");
    assert_eq!(
        (&refused["proto"], &refused["dport"]),
        (&Value::from("tcp"), &Value::from(80)),
        "{refused:#}"
    );
    let spoofed = find(&denied, |r| r["reason"] == "spoofed ip4").unwrap();
    assert_eq!((&spoofed["tier"], &spoofed["node"]), (&Value::from("spoofchk"), &Value::from("node-2")));
    assert_eq!((&spoofed["src"], &spoofed["dst_pod"]), (&Value::from(xa.to_string()), &Value::from("y/b")));
    assert!(spoofed.get("src_pod").is_none(), "a forged source is not attributed: {spoofed:#}");

    let to_yb = records(&lab.ok(&["flows", "--pod", "y/b", "-o", "json"]));
    let allowed = find(&to_yb, |r| r["src_pod"] == "x/a" && r["direction"] == "ingress").expect("x/a → y/b");
    assert_eq!(
        (&allowed["verdict"], &allowed["policy"]),
        (&Value::from("allowed"), &Value::from("y/only-xa"))
    );
    assert_eq!(
        (&allowed["rule"], &allowed["node"]),
        (&Value::from(1), &Value::from("node-2")),
        "{allowed:#}"
    );
    // x/a's egress on node-1: no policy selects x/a.
    assert!(find(&to_yb, |r| r["node"] == "node-1" && r["reason"] == "no policy").is_some(), "{to_yb:#?}");
    assert!(to_yb.iter().all(|r| r["src_pod"] == "y/b" || r["dst_pod"] == "y/b"), "{to_yb:#?}");

    let text = lab.ok(&["flows", "-n", "y", "--denied"]);
    assert!(text.lines().any(|l| l.contains("NetworkPolicy default deny (y/only-xa)")), "{text}");
    let on_node = lab.cluster_ok("node-2", &["flows", "--agent", "127.0.0.1:9099", "--denied", "-o", "json"]);
    assert_eq!(records(&on_node).len(), records(&lab.ok(&["flows", "--denied", "-o", "json"])).len());
    admin_tier(&lab);
    follow(&lab);
}

/// `lab flows --follow` prints what is there, then new records as they come.
fn follow(lab: &Lab) {
    // The newest denied record of each node before following.
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    for r in records(&lab.ok(&["flows", "--denied", "-o", "json"])) {
        let (node, seq) = (r["node"].as_str().unwrap().to_string(), r["seq"].as_u64().unwrap());
        let e = last.entry(node).or_default();
        *e = (*e).max(seq);
    }
    assert!(!last.is_empty(), "no denied record to follow from");
    let mut child = lab.command(&["flows", "--follow", "--denied", "-o", "json"]);
    let mut child = child.stdout(std::process::Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut next = |limit: Duration, f: &dyn Fn(&Value) -> bool| -> Option<Value> {
        let deadline = Instant::now() + limit;
        while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let r: Value = serde_json::from_str(&l).unwrap();
            if f(&r) {
                return Some(r);
            }
            seen.push(r);
        }
        None
    };
    let is_last = |r: &Value| last.get(r["node"].as_str().unwrap()) == r["seq"].as_u64().as_ref();
    // What was there before: every node's newest record among it.
    for _ in 0..last.len() {
        next(Duration::from_secs(20), &is_last).expect("--follow did not print what was there");
    }
    assert!(lab.probe("x/c", "y/b", &["--port", "81", "--protocol", "tcp"]).is_none());
    let probed = |r: &Value| r["src_pod"] == "x/c" && r["dport"] == 81;
    let is_new =
        |r: &Value| last.get(r["node"].as_str().unwrap()).is_none_or(|l| r["seq"].as_u64() > Some(*l));
    let new = next(Duration::from_secs(10), &|r| probed(r) && is_new(r));
    let _ = child.kill();
    let _ = child.wait();
    let new = new.unwrap_or_else(|| panic!("no new record of x/c's probe while following; came: {seen:#?}"));
    assert_eq!(new["tier"], "AdminNetworkPolicy", "{new:#}");
}

/// An AdminNetworkPolicy Deny beats the NetworkPolicy rule that would allow x/c on port 81,
/// and its record names the tier, the policy and the rule; x/a, passed on, is still allowed
/// by the NetworkPolicy's rule.
fn admin_tier(lab: &Lab) {
    apply(lab, ADMIN);
    let tcp81 = ["--port", "81", "--protocol", "tcp"];
    assert!(lab.probe("x/c", "y/b", &tcp81).is_none(), "the AdminNetworkPolicy denies x/c");
    assert!(lab.reach("x/a", "y/b", &["--port", "80", "--protocol", "tcp"]).is_some(), "x/a is passed on");
    let mut seen = Vec::new();
    let xa_in = |r: &&Value| r["src_pod"] == "x/a" && r["direction"] == "ingress";
    wait_for("the AdminNetworkPolicy's record and x/a's second", Duration::from_secs(10), || {
        seen = records(&lab.ok(&["flows", "--pod", "y/b", "-o", "json"]));
        seen.iter().any(|r| r["tier"] == "AdminNetworkPolicy") && seen.iter().filter(xa_in).count() >= 2
    });
    let denied = find(&seen, |r| r["tier"] == "AdminNetworkPolicy").unwrap();
    assert_eq!(
        (&denied["verdict"], &denied["policy"], &denied["rule"]),
        (&Value::from("denied"), &Value::from("no-c"), &Value::from(1)),
        "{denied:#}"
    );
    assert_eq!((&denied["src_pod"], &denied["dport"]), (&Value::from("x/c"), &Value::from(81)), "{denied:#}");
    let allowed: Vec<&Value> = seen.iter().filter(xa_in).collect();
    assert!(
        allowed.len() >= 2 && allowed.iter().all(|r| r["policy"] == "y/only-xa" && r["rule"] == 1),
        "{allowed:#?}"
    );
}
