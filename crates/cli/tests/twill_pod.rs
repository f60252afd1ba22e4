//! The `twill-pod` plugin as a runtime runs it, for every chained spec version: ADD records
//! the attachment (pod identity from CRI's CNI_ARGS, addresses from prevResult, annotations
//! from runtimeConfig) in the journal and passes the result on; CHECK verifies it; DEL
//! forgets it (twice is fine); GC keeps exactly the valid attachments; STATUS; bad configs
//! are code 7 and leave nothing.

use std::io::Write;
use std::process::{Command, Stdio};

use cluster::attachment::Journal;
use serde_json::{Value, json};
use testkit::TempDir;

const PLUGIN: &str = env!("CARGO_BIN_EXE_twill-cni");
const VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

struct Call<'a> {
    verb: &'a str,
    id: &'a str,
    args: &'a str,
}

fn run(call: &Call<'_>, conf: &Value) -> (i32, Value) {
    let mut child = Command::new(PLUGIN)
        .arg("twill-pod")
        .env_clear()
        .env("CNI_COMMAND", call.verb)
        .env("CNI_CONTAINERID", call.id)
        .env("CNI_NETNS", "/run/netns/none")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_ARGS", call.args)
        .env("CNI_PATH", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(conf.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v)
}

fn prev(version: &str, ip: &str) -> Value {
    json!({"cniVersion": version, "interfaces": [{"name": "eth0", "sandbox": "/run/netns/none"}],
           "ips": [{"address": format!("{ip}/24"), "interface": 0}]})
}

fn conf(version: &str, dir: &str, ip: &str) -> Value {
    json!({
        "cniVersion": version, "name": "twill", "type": "twill-pod", "journalDir": dir,
        "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {"k8s.v1.cni.cncf.io/networks": "macvlan"}},
        "prevResult": prev(version, ip),
    })
}

#[test]
fn every_verb_in_every_chained_version() {
    for version in VERSIONS {
        let tmp = TempDir::new("twill-pod");
        let dir = tmp.path().join("pods");
        let d = dir.display().to_string();
        let journal = Journal::new(&dir);
        let cri = "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0;K8S_POD_INFRA_CONTAINER_ID=c1";
        let add = Call { verb: "ADD", id: "c1", args: cri };
        let (code, result) = run(&add, &conf(version, &d, "10.244.1.5"));
        assert_eq!(code, 0, "{version}: {result}");
        assert_eq!(result["ips"][0]["address"], "10.244.1.5/24", "{version}: the result is passed on");
        let a = journal.get("twill", "c1", "eth0").unwrap().unwrap();
        assert_eq!(
            (a.namespace.as_str(), a.name.as_str(), a.netns.as_str()),
            ("shop", "db-0", "/run/netns/none")
        );
        assert_eq!(a.ips[0].to_string(), "10.244.1.5");
        assert_eq!(a.annotations["k8s.v1.cni.cncf.io/networks"], "macvlan");

        // Without CRI's arguments: default/CONTAINERID.
        let (code, _) = run(&Call { verb: "ADD", id: "c2", args: "" }, &conf(version, &d, "10.244.1.6"));
        assert_eq!(code, 0);
        let b = journal.get("twill", "c2", "eth0").unwrap().unwrap();
        assert_eq!((b.namespace.as_str(), b.name.as_str()), ("default", "c2"));

        if !version.starts_with("0.3") {
            let check = Call { verb: "CHECK", ..add };
            assert_eq!(run(&check, &conf(version, &d, "10.244.1.5")).0, 0, "{version}");
            let (code, e) = run(&check, &conf(version, &d, "10.244.1.9"));
            assert_ne!(code, 0, "{version}: CHECK with other addresses");
            assert!(e["msg"].as_str().unwrap().contains("registered as pod shop/db-0"), "{e}");
        }
        for _ in 0..2 {
            assert_eq!(run(&Call { verb: "DEL", ..add }, &conf(version, &d, "10.244.1.5")).0, 0, "{version}");
        }
        assert!(journal.get("twill", "c1", "eth0").unwrap().is_none());
        if version == "1.1.0" {
            run(&add, &conf(version, &d, "10.244.1.5"));
            let mut gc = json!({"cniVersion": version, "name": "twill", "type": "twill-pod", "journalDir": d,
                                "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}]});
            assert_eq!(run(&Call { verb: "GC", id: "", args: "" }, &gc).0, 0);
            let left: Vec<String> = journal.list().unwrap().into_iter().map(|a| a.container_id).collect();
            assert_eq!(left, ["c1"], "GC keeps exactly the valid attachments");
            gc.as_object_mut().unwrap().remove("cni.dev/valid-attachments");
            assert_eq!(run(&Call { verb: "STATUS", id: "", args: "" }, &gc).0, 0);
        }
    }
}

#[test]
fn bad_configurations_are_code_7_and_leave_nothing() {
    let tmp = TempDir::new("twill-pod-bad");
    let add = Call { verb: "ADD", id: "c1", args: "" };
    let mut no_dir = conf("1.0.0", "", "10.1.1.1");
    no_dir.as_object_mut().unwrap().remove("journalDir");
    let (code, e) = run(&add, &no_dir);
    assert_eq!((code, e["code"].as_u64()), (1, Some(7)), "{e}");
    let dir = tmp.path().join("pods").display().to_string();
    let mut no_prev = conf("1.0.0", &dir, "10.1.1.1");
    no_prev.as_object_mut().unwrap().remove("prevResult");
    let (_, e) = run(&add, &no_prev);
    assert_eq!(e["code"], 7, "{e}");
    assert!(e["msg"].as_str().unwrap().contains("chained plugin"), "{e}");
    assert!(Journal::new(tmp.path().join("pods")).list().unwrap().is_empty());
}
