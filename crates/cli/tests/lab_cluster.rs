//! The cluster on the path a real deployment uses, end to end: a 3-node lab on a 3-member
//! etcd with TLS and client certificates. Pods attached by `twill lab pod add` and by
//! `twill cni add` run by hand inside a node (with CRI-style CNI_ARGS, as a kubelet's runtime
//! passes them) are registered by the CNI chain and appear in `twill cluster get pods`; a
//! NetworkPolicy applied with `twill cluster apply` is enforced on both and lifted by
//! `delete -f`; losing an etcd member breaks nothing; a datastore outage fails no ADD or DEL
//! (the records catch up); deleting the pods removes their records.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/lab.rs"]
mod lab_support;
use lab_support::{Lab, TWILL, wait_for};

const DENY_Y: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-from-others, namespace: y}
spec:
  podSelector: {}
  ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {may: enter}}}]}]
";

/// `twill cni add|del` for a hand-made container namespace on `node`, with the node's
/// network list and plugins, and the arguments a CRI runtime passes.
fn cni(lab: &Lab, verb: &str, node: &str, netns: &str, id: &str, ns: &str, name: &str) -> Output {
    let s = lab.status();
    let n = s["nodes"].as_array().unwrap().iter().find(|n| n["name"] == node).unwrap();
    let args =
        format!("IgnoreUnknown=1;K8S_POD_NAMESPACE={ns};K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID={id}");
    let cache = format!("/run/twill-lab-{}/manual-cache", lab.prefix);
    let path = format!("/run/netns/{netns}");
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        n["netns"].as_str().unwrap(),
        TWILL,
        "cni",
        verb,
        n["network"].as_str().unwrap(),
        &path,
    ])
    .env("CNI_PATH", n["cni_bin_dir"].as_str().unwrap())
    .env("NETCONFPATH", n["cni_conf_dir"].as_str().unwrap())
    .env("CNI_CONTAINERID", id)
    .env("CNI_ARGS", args)
    .env("CNI_CACHE_DIR", cache);
    cmd.output().unwrap()
}

fn assert_ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A container namespace made by hand, running the lab's server once attached; the server
/// is killed (by its pid) and the namespace removed on drop.
struct Container(String, Option<std::process::Child>);

impl Container {
    fn new(lab: &Lab, tag: &str) -> Container {
        let name = format!("{}-c-{tag}", lab.prefix);
        assert!(Command::new("ip").args(["netns", "add", &name]).status().unwrap().success());
        Container(name, None)
    }

    /// Starts `twill lab serve` (ports 80 and 81) inside.
    fn serve(&mut self, who: &str) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.0, TWILL, "lab", "serve", "--who", who])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.1 = Some(child);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(mut c) = self.1.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `NS/NAME` → the pod's record, as `twill cluster get pods -o json` shows it from `node`.
fn pods(lab: &Lab, node: &str) -> Vec<Value> {
    let text = lab.cluster_ok(node, &["get", "pods", "-o", "json"]);
    serde_json::from_str::<Value>(&text).unwrap().as_array().unwrap().clone()
}

fn pod<'a>(pods: &'a [Value], key: &str) -> Option<&'a Value> {
    pods.iter()
        .find(|p| format!("{}/{}", p["namespace"].as_str().unwrap(), p["name"].as_str().unwrap()) == key)
}

/// Waits until `key` is (or is no longer) in `get pods`.
fn wait_pod(lab: &Lab, key: &str, present: bool) {
    wait_for(&format!("{key} present={present}"), Duration::from_secs(10), || {
        pod(&pods(lab, "node-1"), key).is_some_and(|p| !p["ips"].as_array().unwrap().is_empty()) == present
    });
}

fn probe_connects(lab: &Lab, from: &str, to: &str) -> bool {
    lab.probe(from, to, &["--port", "80"]).is_some()
}

#[test]
fn pods_of_any_runtime_are_registered_and_governed_on_a_tls_etcd_cluster() {
    let mut lab = Lab::up("cl", &["--nodes", "3", "--datastore", "etcd", "--etcd-members", "3"]);
    let s = lab.status();
    assert!(s["datastore"].as_str().unwrap().starts_with("etcd:https://"), "{s}");
    for key in ["etcd_cacert", "etcd_cert", "etcd_key"] {
        assert!(std::path::Path::new(s[key].as_str().unwrap()).is_file(), "{key}: {s}");
    }
    lab.ok(&["pod", "add", "x/client", "--node", "1"]);
    lab.ok(&["pod", "add", "x/friend", "--node", "1", "--labels", "may=enter"]);
    lab.ok(&["pod", "add", "y/server", "--node", "2"]);

    // A pod attached by hand on node 3, the way a runtime would, with CRI's CNI_ARGS.
    let mut c = Container::new(&lab, "m");
    let added = Instant::now();
    assert_ok("cni add", &cni(&lab, "add", "node-3", &c.0, "manual0001", "y", "manual"));
    wait_pod(&lab, "y/manual", true);
    eprintln!("y/manual was in `twill cluster get pods` {:?} after its ADD began", added.elapsed());
    let all = pods(&lab, "node-2");
    let manual = pod(&all, "y/manual").unwrap();
    assert_eq!(manual["node"], "node-3");
    assert_eq!(manual["container_id"], "manual0001");
    let manual_ip = manual["ips"][0].as_str().unwrap().to_string();
    c.serve("y/manual");
    for key in ["x/client", "x/friend", "y/server"] {
        assert!(pod(&all, key).is_some_and(|p| !p["ips"].as_array().unwrap().is_empty()), "{key}: {all:?}");
    }
    wait_for("the hand-made pod's server", Duration::from_secs(10), || {
        probe_connects(&lab, "x/client", &manual_ip)
    });

    // Policy through `twill cluster apply`, from a node, enforced on lab pods and on the
    // hand-made one; `delete -f` lifts it.
    let dir = lab.state_dir();
    std::fs::write(dir.join("deny.yaml"), DENY_Y).unwrap();
    let file = dir.join("deny.yaml").display().to_string();
    assert!(lab.cluster_ok("node-1", &["apply", "-f", &file]).contains("created"));
    // `cluster apply` does not wait for enforcement, and each node's agent applies the
    // policy in its own pass: wait for both nodes.
    wait_for("policy in force on the lab pod and the hand-made one", Duration::from_secs(10), || {
        !probe_connects(&lab, "x/client", "y/server") && !probe_connects(&lab, "x/client", &manual_ip)
    });
    assert!(probe_connects(&lab, "x/friend", "y/server"), "the allowed peer");
    assert!(probe_connects(&lab, "x/friend", &manual_ip), "the allowed peer, hand-made pod");

    // One etcd member lost (the first, whose namespace the lab itself uses): nothing breaks.
    lab.ok(&["etcd", "kill", "--member", "1"]);
    lab.ok(&["pod", "add", "y/late", "--node", "3"]);
    // A new pod is open until its node has seen its record (as in Kubernetes); then isolated.
    wait_for("policy on the new pod", Duration::from_secs(10), || {
        !probe_connects(&lab, "x/client", "y/late")
    });
    lab.cluster_ok("node-2", &["label", "pod", "x/client", "may=enter"]);
    wait_for("relabel in force", Duration::from_secs(10), || probe_connects(&lab, "x/client", "y/server"));
    lab.cluster_ok("node-2", &["label", "pod", "x/client", "may-"]);
    lab.ok(&["etcd", "start", "--member", "1"]);

    assert!(lab.cluster_ok("node-3", &["delete", "-f", &file]).contains("deleted"));
    wait_for("policy lifted", Duration::from_secs(10), || probe_connects(&lab, "x/client", "y/server"));

    // Deleting the pods removes their records.
    assert_ok("cni del", &cni(&lab, "del", "node-3", &c.0, "manual0001", "y", "manual"));
    wait_pod(&lab, "y/manual", false);
    lab.ok(&["pod", "del", "y/late"]);
    assert!(pod(&pods(&lab, "node-1"), "y/late").is_none());
    drop(c);
    lab.down();
}

#[test]
fn a_datastore_outage_fails_no_add_or_del_and_the_records_catch_up() {
    let mut lab = Lab::up("co", &["--nodes", "2", "--datastore", "etcd"]);
    lab.ok(&["pod", "add", "x/a", "--node", "1"]);
    lab.ok(&["etcd", "stop"]);
    let c = Container::new(&lab, "o");
    assert_ok("cni add while etcd is down", &cni(&lab, "add", "node-2", &c.0, "outage0001", "x", "b"));
    lab.ok(&["etcd", "start"]);
    wait_pod(&lab, "x/b", true);
    lab.ok(&["etcd", "stop"]);
    assert_ok("cni del while etcd is down", &cni(&lab, "del", "node-2", &c.0, "outage0001", "x", "b"));
    lab.ok(&["etcd", "start"]);
    wait_pod(&lab, "x/b", false);
    assert!(pod(&pods(&lab, "node-1"), "x/a").is_some(), "the other pod stays");
    drop(c);
    lab.down();
}
