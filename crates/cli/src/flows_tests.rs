use std::cell::RefCell;

use super::*;

fn record(node: &str, seq: u64, time: f64) -> FlowRecord {
    serde_json::from_value(serde_json::json!({
        "seq": seq, "time": time, "node": node, "verdict": "allowed", "direction": "ingress",
        "tier": "NetworkPolicy", "policy": "x/web", "rule": 1, "reason": "rule", "proto": "tcp",
        "src": "10.0.0.3", "sport": 40000, "dst": "10.0.0.2", "dport": 80,
        "src_pod": "x/client", "dst_pod": "x/web"
    }))
    .unwrap()
}

/// Two nodes' canned answers; node b fails when `b_down`.
struct Fake {
    answers: BTreeMap<String, Vec<FlowRecord>>,
    b_down: bool,
    asked: RefCell<Vec<String>>,
}

impl FlowSource for Fake {
    fn nodes(&self) -> Result<Vec<String>> {
        Ok(self.answers.keys().cloned().collect())
    }

    fn get(&self, node: &str, path: &str) -> Result<(u16, String)> {
        self.asked.borrow_mut().push(format!("{node}{path}"));
        if node == "b" && self.b_down {
            bail!("connection refused");
        }
        let after = path.split("after=").nth(1).and_then(|s| s.split('&').next()?.parse::<u64>().ok());
        let body: String = self.answers[node]
            .iter()
            .filter(|r| after.is_none_or(|a| r.seq > a))
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        Ok((200, body))
    }
}

#[test]
fn queries_carry_the_filters() {
    let args = FlowsArgs {
        denied: true,
        namespace: Some("x".into()),
        pod: Some("x/a b".into()),
        ..FlowsArgs::default()
    };
    assert_eq!(query_path(&args, Some(4)), "/flows?after=4&denied=true&namespace=x&pod=x%2Fa%20b");
    assert_eq!(query_path(&FlowsArgs::default(), None), "/flows");
}

#[test]
fn polls_merge_nodes_by_time_and_remember_where_they_were() {
    let answers = [
        ("a".to_string(), vec![record("a", 0, 3.0), record("a", 1, 5.0)]),
        ("b".to_string(), vec![record("b", 0, 4.0)]),
    ];
    let fake = Fake { answers: answers.into(), b_down: false, asked: RefCell::default() };
    let mut after = BTreeMap::new();
    let got = poll(&fake, &FlowsArgs::default(), &mut after).unwrap();
    assert_eq!(
        got.iter().map(|r| (r.node.as_str(), r.seq)).collect::<Vec<_>>(),
        [("a", 0), ("b", 0), ("a", 1)]
    );
    assert!(poll(&fake, &FlowsArgs::default(), &mut after).unwrap().is_empty());
    assert_eq!(fake.asked.borrow()[2..], ["a/flows?after=1".to_string(), "b/flows?after=0".to_string()]);
}

#[test]
fn a_silent_node_is_a_warning_all_silent_an_error() {
    let answers = [("a".to_string(), vec![record("a", 0, 3.0)]), ("b".to_string(), vec![])];
    let fake = Fake { answers: answers.into(), b_down: true, asked: RefCell::default() };
    assert_eq!(poll(&fake, &FlowsArgs::default(), &mut BTreeMap::new()).unwrap().len(), 1);
    let only_b =
        Fake { answers: [("b".to_string(), vec![])].into(), b_down: true, asked: RefCell::default() };
    let e = poll(&only_b, &FlowsArgs::default(), &mut BTreeMap::new()).unwrap_err();
    assert!(format!("{e:#}").contains("b: connection refused"), "{e:#}");
}

#[test]
fn lines_say_what_decided() {
    let r = record("n1", 0, 3600.0 * 25.0 + 61.5);
    let line = render(&r);
    assert!(
        line.starts_with("01:01:01.500 n1       allowed ingress tcp    x/client(10.0.0.3):40000"),
        "{line}"
    );
    assert!(line.ends_with("NetworkPolicy x/web ingress[1]"), "{line}");
    let mut denied = record("n1", 0, 0.0);
    (denied.verdict, denied.policy, denied.rule, denied.reason) =
        ("denied".into(), None, None, "default deny".into());
    denied.policies = vec!["x/web".into(), "x/other".into()];
    assert_eq!(decided_by(&denied), "NetworkPolicy default deny (x/web, x/other)");
    let spoof =
        FlowRecord { tier: "spoofchk".into(), reason: "spoofed ip4".into(), policies: vec![], ..denied };
    assert_eq!(decided_by(&spoof), "spoofchk: spoofed ip4");
}
