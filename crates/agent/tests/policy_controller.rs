//! Kernel tier: the NetworkPolicy controller in a namespace of its own, fed by a file
//! datastore. It applies, updates by elements, keeps, repairs a deleted or edited table,
//! removes the table when no local pod is isolated, holds the table when a record is
//! unusable, and never touches other nftables tables or iptables rules.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use support::TempDir;
use testkit::TestNs;
use tracing::Dispatch;
use twill_agent::log::{LogFormat, dispatch};
use twill_agent::metrics::Metrics;
use twill_agent::policy::PolicyController;
use twill_agent::record::NamedPort;
use twill_agent::store::FileStore;
use twill_agent::{NamespaceRecord, PodRecord, PolicyRecord, Registry};

/// A log sink the test can read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct Node {
    ns: TestNs,
    _dir: TempDir,
    store: FileStore,
    controller: PolicyController,
    metrics: Metrics,
    log: Dispatch,
    captured: Captured,
}

impl Node {
    fn new(tag: &str) -> Node {
        testkit::require_privileges();
        let dir = TempDir::new(tag);
        let store = FileStore::open(dir.path()).unwrap();
        let captured = Captured::default();
        let sink = captured.clone();
        let log = dispatch(LogFormat::Text, move || sink.clone());
        let ns = TestNs::new(tag);
        Node {
            ns,
            _dir: dir,
            store,
            controller: PolicyController::new("node-1"),
            metrics: Metrics::default(),
            log,
            captured,
        }
    }

    fn reg(&self) -> Registry<'_> {
        Registry::new(&self.store)
    }

    /// One controller pass inside the node's namespace (nft runs where its caller is), its
    /// log captured: the pass runs on a thread of its own, so the subscriber goes with it.
    fn sync(&mut self) -> bool {
        let Node { ns, store, controller, metrics, log, .. } = self;
        let netns = ns.ns();
        let pass =
            || tracing::dispatcher::with_default(log, || controller.sync(&*store, netns, &metrics.policy));
        netns.run(pass).unwrap()
    }

    fn nft(&self, args: &[&str]) -> String {
        let mut argv = vec!["nft"];
        argv.extend_from_slice(args);
        self.ns.exec_ok(&argv)
    }

    fn table(&self) -> Option<String> {
        let out = self.ns.exec(&["nft", "list", "table", "inet", "twill_policy"]);
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn metric(&self, line_start: &str) -> String {
        let text = self.metrics.render();
        text.lines()
            .find_map(|l| l.strip_prefix(line_start).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no {line_start} in {text}"))
    }
}

fn pod(ns: &str, name: &str, node: &str, ip: &str, labels: &[(&str, &str)]) -> PodRecord {
    PodRecord {
        namespace: ns.into(),
        name: name.into(),
        node: node.into(),
        ips: vec![ip.parse().unwrap()],
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ports: vec![NamedPort { name: "serve-80-sctp".into(), port: 80, protocol: "SCTP".into() }],
        ..Default::default()
    }
}

fn policy(ns: &str, name: &str, spec: serde_json::Value) -> PolicyRecord {
    PolicyRecord { namespace: ns.into(), name: name.into(), spec }
}

/// x/a on this node isolated, allowing y's pods on SCTP's named port; the other pods elsewhere.
fn cluster(node: &Node) {
    let reg = node.reg();
    reg.put_namespace(&NamespaceRecord { name: "y".into(), labels: [("team".into(), "blue".into())].into() })
        .unwrap();
    reg.put_pod(&pod("x", "a", "node-1", "10.244.1.2", &[("pod", "a")])).unwrap();
    reg.put_pod(&pod("y", "b", "node-2", "10.244.2.2", &[])).unwrap();
    reg.put_policy(&policy(
        "x",
        "from-blue",
        json!({"podSelector": {"matchLabels": {"pod": "a"}},
               "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}],
                            "ports": [{"protocol": "SCTP", "port": "serve-80-sctp"}]}]}),
    ))
    .unwrap();
}

#[test]
fn applies_updates_keeps_repairs_and_removes() {
    let mut node = Node::new("polc");
    // Other users of the firewall, before and after twill.
    node.nft(&["add", "table", "inet", "other"]);
    node.nft(&[
        "add",
        "chain",
        "inet",
        "other",
        "c",
        "{ type filter hook forward priority 0; policy accept; }",
    ]);
    node.ns.exec_ok(&["iptables", "-A", "FORWARD", "-s", "192.0.2.1", "-j", "DROP"]);
    cluster(&node);

    assert!(node.sync(), "{}", node.captured.text());
    let table = node.table().expect("table applied");
    assert!(table.contains("10.244.2.2 . sctp . 80"), "SCTP named port resolved:\n{table}");
    assert!(table.contains("10.244.1.2 comment \"x/a\" : jump ingress_x.from-blue_"), "{table}");
    assert_eq!(node.metric("twill_policy_applies_total{kind=\"replaced\"}"), "1");
    assert_eq!(node.metric("twill_policy_isolated_pods"), "1");

    // Nothing changed: nothing done. A peer joins: elements only.
    assert!(node.sync());
    assert_eq!(node.metric("twill_policy_applies_total{kind=\"replaced\"}"), "1");
    node.reg().put_pod(&pod("y", "c", "node-3", "10.244.3.7", &[])).unwrap();
    assert!(node.sync());
    assert_eq!(node.metric("twill_policy_applies_total{kind=\"updated\"}"), "1");
    assert!(node.table().unwrap().contains("10.244.3.7 . sctp . 80"));

    // Someone deletes the table, then edits it: both are put back.
    node.nft(&["delete", "table", "inet", "twill_policy"]);
    assert!(node.sync());
    assert!(node.table().is_some());
    let set = node
        .table()
        .unwrap()
        .lines()
        .find(|l| l.contains("set ingress_x.from-blue_") && l.contains("_any4"))
        .map(|l| l.trim().trim_start_matches("set ").trim_end_matches(" {").to_string())
        .unwrap();
    node.nft(&["add", "element", "inet", "twill_policy", &set, "{ 0.0.0.0/0 }"]);
    assert!(node.sync());
    assert!(!node.table().unwrap().contains("0.0.0.0/0"), "the widened set was repaired");
    assert_eq!(node.metric("twill_policy_repairs_total"), "2");
    assert!(node.captured.text().contains("policy table had drifted; put it back"));

    // Policy gone: no table at all; the others' rules are untouched throughout.
    node.reg().delete_policy("x", "from-blue").unwrap();
    assert!(node.sync());
    assert_eq!(node.table(), None);
    assert_eq!(node.metric("twill_policy_applies_total{kind=\"removed\"}"), "1");
    assert!(node.nft(&["list", "table", "inet", "other"]).contains("chain c"));
    assert!(node.ns.exec_ok(&["iptables", "-S", "FORWARD"]).contains("-s 192.0.2.1/32 -j DROP"));
    assert_eq!(node.metric("twill_policy_errors_total"), "0");
}

#[test]
fn unusable_records_hold_the_table_and_a_restart_adopts_it() {
    let mut node = Node::new("polh");
    cluster(&node);
    assert!(node.sync());
    let before = node.table().unwrap();
    // A policy the API server would reject (a misspelt field) must not silently drop the
    // others' isolation: the table is held, the error logged once and counted every pass.
    node.reg().put_policy(&policy("x", "typo", json!({"podSelecter": {}}))).unwrap();
    node.reg().delete_policy("x", "from-blue").unwrap();
    assert!(!node.sync());
    assert!(!node.sync());
    assert_eq!(node.table().as_deref(), Some(before.as_str()));
    assert_eq!(node.metric("twill_policy_errors_total"), "2");
    let log = node.captured.text();
    assert_eq!(log.matches("cannot enforce NetworkPolicy").count(), 1, "{log}");
    assert!(log.contains("podSelecter"), "{log}");
    // Still held, a deleted table comes back.
    node.nft(&["delete", "table", "inet", "twill_policy"]);
    assert!(!node.sync());
    assert_eq!(node.table().as_deref(), Some(before.as_str()));

    // Fixed: the controller follows the cluster again (nothing is isolated any more).
    node.reg().delete_policy("x", "typo").unwrap();
    assert!(node.sync(), "{}", node.captured.text());
    assert_eq!(node.table(), None);
    assert!(node.captured.text().contains("policy table in sync again"));

    // A new agent (a restart) replaces whatever table it finds, stale ones included.
    cluster(&node);
    assert!(node.sync());
    node.reg().delete_policy("x", "from-blue").unwrap();
    node.controller = PolicyController::new("node-1");
    assert!(node.sync());
    assert_eq!(node.table(), None);
}
