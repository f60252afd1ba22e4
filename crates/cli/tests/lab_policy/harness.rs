//! The policy test bed: one lab (its own `TWILL_LAB_PREFIX`), the Kubernetes e2e world in
//! it (namespaces x, y, z labelled `ns=NAME`, pods a, b, c labelled `pod=NAME` on nodes 1, 2,
//! 3), a model of what was written (labels, policies) from which the expected truth tables
//! are computed with `twill_policy::evaluate`, and the measured table of `twill lab matrix`.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use crate::twilld::ensure_twilld;
use policy::{
    AdminPolicy, Endpoint, Family, NamedPort, Namespace, NetworkPolicy, NsName, Object, Pod, Protocol, Tier,
    World, evaluate_family, parse_yaml,
};
use serde_json::Value;

pub const TWILL: &str = env!("CARGO_BIN_EXE_twill");
pub const NAMESPACES: [&str; 3] = ["x", "y", "z"];
pub const PODS: [&str; 3] = ["a", "b", "c"];

/// A lab of its own, taken down on drop (also when the test fails).
pub struct Lab {
    pub prefix: String,
}

impl Lab {
    pub fn up(args: &[&str]) -> Lab {
        testkit::require_privileges();
        // Same-node pods are isolated through br_netfilter, which twilld turns on per node.
        testkit::require_br_netfilter();
        ensure_twilld(TWILL);
        let lab = Lab { prefix: format!("tpol{}", std::process::id()) };
        let mut all = vec!["lab", "up"];
        all.extend_from_slice(args);
        lab.ok(&all);
        lab
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(TWILL).args(args).env("TWILL_LAB_PREFIX", &self.prefix).output().unwrap()
    }

    /// `twill ARGS`; panics with the output unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "twill {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `twill lab apply -f -` with `yaml` on stdin.
    pub fn apply(&self, yaml: &str) -> String {
        self.manifest("apply", yaml)
    }

    /// `twill lab VERB -f -` with `yaml` on stdin.
    pub fn manifest(&self, verb: &str, yaml: &str) -> String {
        use std::io::Write;
        let mut child = Command::new(TWILL)
            .args(["lab", verb, "-f", "-"])
            .env("TWILL_LAB_PREFIX", &self.prefix)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{verb} failed:\n{text}{}\n{yaml}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// The measured table: 9 rows of `... ... ...`, and the JSON it came from.
    pub fn matrix(&self, port: u16, proto: Protocol, v6: bool) -> (String, Value) {
        let port = port.to_string();
        let proto = proto.as_nft();
        let mut args = vec!["lab", "matrix", "--json", "--port", &port, "--protocol", proto];
        if v6 {
            args.push("--ipv6");
        }
        let json: Value = serde_json::from_str(&self.ok(&args)).unwrap();
        let names: Vec<String> =
            json["pods"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().into()).collect();
        assert_eq!(names, all_pods().iter().map(NsName::to_string).collect::<Vec<_>>());
        let rows: Vec<String> =
            json["marks"].as_array().unwrap().iter().map(|r| spaced(r.as_str().unwrap())).collect();
        (rows.join("\n") + "\n", json)
    }

    pub fn status(&self) -> Value {
        serde_json::from_str(&self.ok(&["lab", "status", "--json"])).unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let out = self.run(&["lab", "down"]);
        eprintln!(
            "lab down: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `x/a` ... `z/c`: rows and columns of every table.
pub fn all_pods() -> Vec<NsName> {
    NAMESPACES.iter().flat_map(|ns| PODS.iter().map(move |p| NsName::new(ns, p))).collect()
}

/// `.X.......` as `.X. ... ...`.
fn spaced(marks: &str) -> String {
    let chars: Vec<char> = marks.chars().collect();
    chars.chunks(3).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join(" ")
}

/// A hand-written table, normalised (indentation and blank lines dropped).
pub fn table(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect()
}

/// What the test wrote to the cluster, to compute what the cluster should do.
pub struct Model {
    pub pods: Vec<Pod>,
    pub ns_labels: BTreeMap<String, BTreeMap<String, String>>,
    pub policies: BTreeMap<NsName, NetworkPolicy>,
    /// AdminNetworkPolicies and the BaselineAdminNetworkPolicy.
    pub admins: BTreeMap<(Tier, String), AdminPolicy>,
}

impl Model {
    /// The pods as the lab reports them (addresses, nodes), labels as the test set them.
    pub fn new(status: &Value) -> Model {
        let pods = status["pods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let r: NsName = p["pod"].as_str().unwrap().parse().unwrap();
                Pod {
                    labels: serde_json::from_value(p["labels"].clone()).unwrap(),
                    ips: p["ips"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|ip| ip.as_str().unwrap().parse().unwrap())
                        .collect(),
                    ports: e2e_ports(),
                    node: p["node"].as_str().unwrap().into(),
                    namespace: r.namespace,
                    name: r.name,
                }
            })
            .collect();
        let ns_labels = NAMESPACES.iter().map(|ns| (ns.to_string(), baseline_ns_labels(ns))).collect();
        Model { pods, ns_labels, policies: BTreeMap::new(), admins: BTreeMap::new() }
    }

    pub fn apply(&mut self, yaml: &str) {
        for object in parse_yaml(yaml).unwrap_or_else(|e| panic!("bad test manifest: {e}\n{yaml}")) {
            match object {
                Object::NetworkPolicy(p) => {
                    self.policies.insert(p.key(), p);
                }
                Object::AdminPolicy(p) => {
                    self.admins.insert((p.tier, p.name.clone()), p);
                }
                Object::Namespace(ns) => {
                    self.ns_labels.insert(ns.name.clone(), ns.labels);
                }
                Object::Pod(p) => {
                    let r = NsName::new(&p.namespace, &p.name);
                    if let Some(pod) = self.pods.iter_mut().find(|q| q.key() == r) {
                        pod.labels = p.labels;
                    }
                }
            }
        }
    }

    pub fn pod_mut(&mut self, pod: &str) -> &mut Pod {
        let r: NsName = pod.parse().unwrap();
        self.pods.iter_mut().find(|p| p.key() == r).unwrap()
    }

    pub fn world(&self) -> World {
        let mut w = World::new();
        for (name, labels) in &self.ns_labels {
            w.add_namespace(Namespace::new(name, labels.clone()));
        }
        self.pods.iter().cloned().for_each(|p| w.add_pod(p));
        self.policies.values().cloned().for_each(|p| w.add_policy(p));
        self.admins.values().cloned().for_each(|p| w.add_admin_policy(p));
        w
    }

    /// The truth table `twill_policy::evaluate` computes, in the matrix's format.
    pub fn expected(&self, port: u16, proto: Protocol, v6: bool) -> String {
        let w = self.world();
        let family = if v6 { Family::V6 } else { Family::V4 };
        let mut out = String::new();
        for from in all_pods() {
            let row: String = all_pods()
                .into_iter()
                .map(|to| {
                    let v = evaluate_family(
                        &w,
                        &Endpoint::Pod(from.clone()),
                        &Endpoint::Pod(to),
                        port,
                        proto,
                        family,
                    );
                    if v.allowed() { '.' } else { 'X' }
                })
                .collect();
            out.push_str(&spaced(&row));
            out.push('\n');
        }
        out
    }

    /// Why `from` may or may not reach `to`, for failure messages.
    pub fn explain(&self, from: &NsName, to: &NsName, port: u16, proto: Protocol, v6: bool) -> String {
        let family = if v6 { Family::V6 } else { Family::V4 };
        let (a, b) = (Endpoint::Pod(from.clone()), Endpoint::Pod(to.clone()));
        evaluate_family(&self.world(), &a, &b, port, proto, family).to_string()
    }
}

pub fn baseline_ns_labels(ns: &str) -> BTreeMap<String, String> {
    Namespace::new(ns, [("ns".to_string(), ns.to_string())].into()).labels
}

/// The named ports every lab pod has (`serve-80-tcp`, ...), as the lab records them.
pub fn e2e_ports() -> Vec<NamedPort> {
    let mut out = Vec::new();
    for port in [80, 81] {
        for protocol in Protocol::ALL {
            out.push(NamedPort { name: format!("serve-{port}-{}", protocol.as_nft()), port, protocol });
        }
    }
    out
}
