//! Runs scenarios against the lab: writes through the CLI, keeps the model in step, measures
//! tables and compares them with `evaluate` (and the hand-written ones). Failures are
//! collected, so one run reports every scenario that went wrong.

use std::time::Duration;

use policy::{NsName, Protocol};
use serde_json::Value;

use super::harness::{Lab, Model, PODS, all_pods, baseline_ns_labels, table};
use super::scenarios::{Scenario, Step};

pub struct Runner<'a> {
    pub lab: &'a Lab,
    pub model: Model,
    pub failures: Vec<String>,
    /// Seconds from a write to every agent enforcing it, as `twill lab` reported them.
    pub propagation: Vec<f64>,
    pub checks: usize,
}

impl<'a> Runner<'a> {
    pub fn new(lab: &'a Lab) -> Runner<'a> {
        Runner {
            lab,
            model: Model::new(&lab.status()),
            failures: Vec::new(),
            propagation: Vec::new(),
            checks: 0,
        }
    }

    pub fn run(&mut self, s: &Scenario) {
        eprintln!("scenario: {}", s.name);
        for step in &s.steps {
            self.step(s.name, step);
        }
        self.reset();
    }

    fn step(&mut self, scenario: &str, step: &Step) {
        match step {
            Step::Apply(yaml) => {
                let out = self.lab.apply(yaml);
                self.record_propagation(&out);
                self.model.apply(yaml);
            }
            Step::DeleteManifest(yaml) => {
                let out = self.lab.manifest("delete", yaml);
                self.record_propagation(&out);
                for object in policy::parse_yaml(yaml).unwrap() {
                    match object {
                        policy::Object::NetworkPolicy(p) => {
                            self.model.policies.remove(&p.key());
                        }
                        policy::Object::AdminPolicy(p) => {
                            self.model.admins.remove(&(p.tier, p.name));
                        }
                        _ => {}
                    }
                }
            }
            Step::DeletePolicy(p) => {
                let out = self.lab.ok(&["lab", "policy", "delete", p]);
                self.record_propagation(&out);
                self.model.policies.remove(&p.parse::<NsName>().unwrap());
            }
            Step::PodLabel(pod, changes) => {
                self.label(&["lab", "pod", "label", pod], changes, true);
                apply_changes(&mut self.model.pod_mut(pod).labels, changes);
            }
            Step::NsLabel(ns, changes) => {
                self.label(&["lab", "ns", "label", ns], changes, true);
                apply_changes(self.model.ns_labels.get_mut(*ns).unwrap(), changes);
            }
            Step::Check { port, proto, v6, want } => self.check(scenario, *port, *proto, *v6, *want),
            Step::Explain(from, to, contains) => self.explain(scenario, from, to, contains),
        }
    }

    fn label(&mut self, head: &[&str], changes: &[&str], wait: bool) {
        let mut args = head.to_vec();
        args.extend_from_slice(changes);
        if !wait {
            args.push("--no-wait");
        }
        let out = self.lab.ok(&args);
        if wait {
            self.record_propagation(&out);
        }
    }

    fn record_propagation(&mut self, out: &str) {
        let secs = out.lines().find_map(|l| l.split(" after ").nth(1)?.split('s').next()?.parse().ok());
        match secs {
            Some(s) => self.propagation.push(s),
            None => self.failures.push(format!("no `in force ... after Ns` line in:\n{out}")),
        }
    }

    /// Measures the table; on a mismatch waits a resync period and measures once more, then
    /// reports each differing cell with the model's explanation.
    pub fn check(&mut self, scenario: &str, port: u16, proto: Protocol, v6: bool, want: Option<&str>) {
        self.checks += 1;
        let label = format!("{scenario}: {}/{port}{}", proto.as_nft(), if v6 { " IPv6" } else { "" });
        let expected = self.model.expected(port, proto, v6);
        if let Some(want) = want.map(table)
            && want != expected
        {
            self.failures.push(format!(
                "{label}: evaluate disagrees with the hand-written table\nhand:\n{want}evaluate:\n{expected}"
            ));
        }
        let (mut got, mut json) = self.lab.matrix(port, proto, v6);
        if got != expected {
            eprintln!("{label}: table differs, measuring again after a resync period");
            std::thread::sleep(Duration::from_millis(2500));
            (got, json) = self.lab.matrix(port, proto, v6);
        }
        if got != expected {
            let why = self.differences(&got, &expected, &json, port, proto, v6);
            self.failures
                .push(format!("{label}: measured table differs\nexpected:\n{expected}measured:\n{got}{why}"));
        }
    }

    fn differences(
        &self,
        got: &str,
        expected: &str,
        json: &Value,
        port: u16,
        proto: Protocol,
        v6: bool,
    ) -> String {
        let pods = all_pods();
        let cells =
            |t: &str| -> Vec<char> { t.chars().filter(|c| *c == '.' || *c == 'X' || *c == '?').collect() };
        let (g, e) = (cells(got), cells(expected));
        let mut out = String::new();
        for (i, (gc, ec)) in g.iter().zip(&e).enumerate().filter(|(_, (a, b))| a != b) {
            let (from, to) = (&pods[i / 9], &pods[i % 9]);
            let detail = &json["cells"][i / 9][i % 9]["detail"];
            out.push_str(&format!("  {from} -> {to}: measured {gc} ({detail}), expected {ec}:\n"));
            out.push_str(&format!("{}\n", self.model.explain(from, to, port, proto, v6)));
        }
        out
    }

    fn explain(&mut self, scenario: &str, from: &str, to: &str, contains: &str) {
        let printed = self.lab.ok(&["policy", "explain", from, to, "--port", "80"]);
        let want = self.model.explain(&from.parse().unwrap(), &to.parse().unwrap(), 80, Protocol::Tcp, false);
        if printed.trim_end() != want || !printed.contains(contains) {
            self.failures.push(format!(
                "{scenario}: `twill policy explain {from} {to} --port 80` printed\n{printed}expected\n{want}\n(containing {contains:?})"
            ));
        }
    }

    /// Back to the baseline: no policies, `ns=NAME` and `pod=NAME` labels only. Only the
    /// last write waits until every agent enforces the whole reset.
    pub fn reset(&mut self) {
        // Admin policies have no `lab policy delete`: a scenario deletes its own manifest.
        let admins: Vec<String> =
            self.model.admins.values().map(|p| format!("{} {}", p.tier.kind(), p.name)).collect();
        assert!(
            admins.is_empty(),
            "a scenario left admin policies behind: {admins:?}; end it with DeleteManifest"
        );
        let mut writes: Vec<Vec<String>> = Vec::new();
        let words = |head: &[&str], tail: Vec<String>| -> Vec<String> {
            head.iter().map(|s| s.to_string()).chain(tail).collect()
        };
        for p in std::mem::take(&mut self.model.policies).into_keys() {
            writes.push(words(&["lab", "policy", "delete"], vec![p.to_string()]));
        }
        for (ns, labels) in self.model.ns_labels.iter_mut() {
            let base = baseline_ns_labels(ns);
            if *labels != base {
                writes.push(words(&["lab", "ns", "label", ns], diff(labels, &base)));
                *labels = base;
            }
        }
        for pod in self.model.pods.iter_mut().filter(|p| PODS.contains(&p.name.as_str())) {
            let base = [("pod".to_string(), pod.name.clone())].into();
            if pod.labels != base {
                writes
                    .push(words(&["lab", "pod", "label", &pod.key().to_string()], diff(&pod.labels, &base)));
                pod.labels = base;
            }
        }
        let last = writes.len().saturating_sub(1);
        for (i, mut w) in writes.into_iter().enumerate() {
            if i < last {
                w.push("--no-wait".into());
            }
            let args: Vec<&str> = w.iter().map(String::as_str).collect();
            self.lab.ok(&args);
        }
    }
}

/// `k=v` and `k-` that turn `from` into `to`.
fn diff(
    from: &std::collections::BTreeMap<String, String>,
    to: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let removals = from.keys().filter(|k| !to.contains_key(*k)).map(|k| format!("{k}-"));
    let sets = to.iter().filter(|(k, v)| from.get(*k) != Some(v)).map(|(k, v)| format!("{k}={v}"));
    removals.chain(sets).filter(|c| !c.starts_with("kubernetes.io/metadata.name")).collect()
}

fn apply_changes(labels: &mut std::collections::BTreeMap<String, String>, changes: &[&str]) {
    for c in changes {
        match c.strip_suffix('-') {
            Some(k) if !c.contains('=') => {
                labels.remove(k);
            }
            _ => {
                let (k, v) = c.split_once('=').unwrap();
                labels.insert(k.into(), v.into());
            }
        }
    }
}
