//! The runtime driven through a scripted `Exec`: no binaries, no privileges. Asserts what each
//! plugin receives (env + stdin) and what the cache holds.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cni_exec::{Error, Exec, InvokeArgs, LoadedList, Runtime, RuntimeConf};
use cni_spec::{Attachment, NetConfList};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
struct Call {
    plugin: String,
    command: &'static str,
    container_id: String,
    stdin: Value,
}

/// Each plugin answers ADD with a result naming itself as an interface appended to prevResult.
#[derive(Clone, Default)]
struct Scripted {
    calls: Arc<Mutex<Vec<Call>>>,
    fail_on: Option<(&'static str, &'static str)>,
}

impl Exec for Scripted {
    fn find(&self, plugin_type: &str, _path: &[PathBuf]) -> Result<PathBuf, Error> {
        if plugin_type == "missing" {
            return Err(Error::PluginNotFound { plugin: plugin_type.into(), path: vec![] });
        }
        Ok(PathBuf::from(format!("/fake/{plugin_type}")))
    }

    fn exec(&self, plugin: &Path, stdin: &[u8], args: &InvokeArgs) -> Result<Vec<u8>, Error> {
        let name = plugin.file_name().unwrap().to_string_lossy().into_owned();
        let stdin: Value = serde_json::from_slice(stdin).unwrap();
        self.calls.lock().unwrap().push(Call {
            plugin: name.clone(),
            command: args.command,
            container_id: args.container_id.clone(),
            stdin: stdin.clone(),
        });
        if self.fail_on.is_some_and(|(p, c)| p == name && c == args.command) {
            let err = json!({"cniVersion": stdin["cniVersion"], "code": 11, "msg": "busy", "details": name});
            return Err(cni_exec::plugin_failure(plugin, "exit status: 1", err.to_string().as_bytes()));
        }
        if args.command != "ADD" {
            return Ok(Vec::new());
        }
        let mut result = stdin.get("prevResult").cloned().unwrap_or_else(|| {
            json!({"cniVersion": stdin["cniVersion"], "ips": [{"address": "10.9.0.5/24", "gateway": "10.9.0.1"}]})
        });
        let ifaces = result.as_object_mut().unwrap().entry("interfaces").or_insert_with(|| json!([]));
        ifaces.as_array_mut().unwrap().push(json!({"name": name}));
        Ok(result.to_string().into_bytes())
    }
}

fn list(version: &str, extra: Value) -> LoadedList {
    let mut raw = json!({
        "cniVersion": version,
        "name": "testnet",
        "plugins": [
            {"type": "first", "capabilities": {"portMappings": true}},
            {"type": "second", "capabilities": {"bandwidth": false}}
        ]
    });
    for (k, v) in extra.as_object().unwrap() {
        raw[k] = v.clone();
    }
    let bytes = serde_json::to_vec(&raw).unwrap();
    LoadedList { list: NetConfList::parse(&bytes).unwrap(), bytes, source: "/x.conflist".into() }
}

fn rt(id: &str) -> RuntimeConf {
    let mut caps = serde_json::Map::new();
    caps.insert("portMappings".into(), json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]));
    caps.insert("bandwidth".into(), json!({"ingressRate": 1000}));
    RuntimeConf {
        container_id: id.into(),
        netns: "/run/netns/x".into(),
        ifname: "eth0".into(),
        args: vec![],
        capability_args: caps,
    }
}

fn runtime(exec: &Scripted, tag: &str) -> (Runtime, PathBuf) {
    let dir = std::env::temp_dir().join(format!("twill-exec-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Runtime::with_exec(vec!["/fake".into()], &dir, Box::new(exec.clone())), dir)
}

#[test]
fn add_chains_prev_result_and_filters_capabilities() {
    let exec = Scripted::default();
    let (runtime, dir) = runtime(&exec, "add");
    let result = runtime.add(&list("1.0.0", json!({})), &rt("c1")).unwrap();
    assert_eq!(result.interfaces.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["first", "second"]);
    let calls = exec.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].stdin["runtimeConfig"]["portMappings"][0]["hostPort"], 8080);
    assert!(calls[1].stdin.get("runtimeConfig").is_none(), "bandwidth capability is declared false");
    assert!(calls[0].stdin.get("prevResult").is_none());
    assert_eq!(calls[1].stdin["prevResult"]["interfaces"][0]["name"], "first");
    assert_eq!(calls[1].stdin["name"], "testnet");
    assert_eq!(calls[1].stdin["cniVersion"], "1.0.0");
    let cached: Value =
        serde_json::from_slice(&std::fs::read(dir.join("results/testnet-c1-eth0")).unwrap()).unwrap();
    assert_eq!(cached["kind"], "cniCacheV1");
    assert_eq!(cached["result"]["interfaces"][1]["name"], "second");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn del_runs_in_reverse_with_cached_result_then_drops_cache() {
    let exec = Scripted::default();
    let (runtime, dir) = runtime(&exec, "del");
    let net = list("0.4.0", json!({}));
    runtime.add(&net, &rt("c2")).unwrap();
    exec.calls.lock().unwrap().clear();
    runtime.del(&net, &rt("c2")).unwrap();
    let calls = exec.calls.lock().unwrap().clone();
    assert_eq!(
        calls.iter().map(|c| (c.plugin.as_str(), c.command)).collect::<Vec<_>>(),
        [("second", "DEL"), ("first", "DEL")]
    );
    assert_eq!(calls[0].stdin["prevResult"]["interfaces"][1]["name"], "second");
    assert!(!dir.join("results/testnet-c2-eth0").exists());
    runtime.del(&net, &rt("c2")).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn check_uses_cache_and_respects_version_and_disable_check() {
    let exec = Scripted::default();
    let (runtime, dir) = runtime(&exec, "check");
    let net = list("1.0.0", json!({}));
    runtime.add(&net, &rt("c3")).unwrap();
    exec.calls.lock().unwrap().clear();
    runtime.check(&net, &rt("c3")).unwrap();
    let calls = exec.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].stdin["prevResult"]["interfaces"][1]["name"], "second");
    exec.calls.lock().unwrap().clear();
    runtime.check(&list("1.0.0", json!({"disableCheck": true})), &rt("c3")).unwrap();
    assert!(exec.calls.lock().unwrap().is_empty());
    let old = runtime.check(&list("0.3.1", json!({})), &rt("c3")).unwrap_err();
    assert_eq!(old.to_cni().code.code(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn failing_plugin_is_named_with_its_code() {
    let exec = Scripted { fail_on: Some(("second", "ADD")), ..Default::default() };
    let (runtime, dir) = runtime(&exec, "fail");
    let err = runtime.add(&list("1.0.0", json!({})), &rt("c4")).unwrap_err();
    assert!(err.to_string().contains("type=\"second\""), "{err}");
    assert_eq!(err.to_cni().code.code(), 11);
    assert!(!dir.join("results/testnet-c4-eth0").exists(), "a failed ADD caches nothing");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn gc_deletes_stale_attachments_and_sends_gc_from_1_1_0() {
    let exec = Scripted::default();
    let (runtime, dir) = runtime(&exec, "gc");
    let net = list("1.1.0", json!({}));
    for id in ["keep", "stale1", "stale2"] {
        runtime.add(&net, &rt(id)).unwrap();
    }
    exec.calls.lock().unwrap().clear();
    let valid = vec![Attachment { container_id: "keep".into(), ifname: "eth0".into() }];
    let report = runtime.gc(&net, &valid).unwrap();
    assert_eq!(
        report.deleted.iter().map(|a| a.container_id.as_str()).collect::<Vec<_>>(),
        ["stale1", "stale2"]
    );
    assert!(report.gc_sent);
    let calls = exec.calls.lock().unwrap().clone();
    let dels: Vec<_> = calls.iter().filter(|c| c.command == "DEL").map(|c| c.container_id.as_str()).collect();
    assert_eq!(dels, ["stale1", "stale1", "stale2", "stale2"]);
    let gcs: Vec<_> = calls.iter().filter(|c| c.command == "GC").collect();
    assert_eq!(gcs.len(), 2);
    assert_eq!(gcs[0].stdin["cni.dev/valid-attachments"], json!([{"containerID": "keep", "ifname": "eth0"}]));
    assert_eq!(gcs[0].stdin["cni.dev/attachments"], gcs[0].stdin["cni.dev/valid-attachments"]);
    assert_eq!(runtime.cache().list().unwrap().len(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gc_before_1_1_0_only_synthesises_del_and_disable_gc_does_nothing() {
    let exec = Scripted::default();
    let (runtime, dir) = runtime(&exec, "gcold");
    let net = list("1.0.0", json!({}));
    runtime.add(&net, &rt("old")).unwrap();
    let off = runtime.gc(&list("1.0.0", json!({"disableGC": true})), &[]).unwrap();
    assert!(off.deleted.is_empty() && !off.gc_sent);
    let report = runtime.gc(&net, &[]).unwrap();
    assert_eq!(report.deleted.len(), 1);
    assert!(!report.gc_sent);
    assert!(exec.calls.lock().unwrap().iter().all(|c| c.command != "GC"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn status_is_sent_only_from_1_1_0() {
    let exec = Scripted::default();
    let (runtime, dir) = runtime(&exec, "status");
    assert!(runtime.status(&list("1.1.0", json!({}))).unwrap());
    assert!(!runtime.status(&list("0.4.0", json!({}))).unwrap());
    assert_eq!(exec.calls.lock().unwrap().iter().filter(|c| c.command == "STATUS").count(), 2);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cni_versions_picks_the_highest() {
    let exec = Scripted::default();
    let (runtime, dir) = runtime(&exec, "versions");
    let net = list("0.4.0", json!({"cniVersions": ["1.0.0", "1.1.0", "9.9.9"]}));
    runtime.add(&net, &rt("v")).unwrap();
    assert_eq!(exec.calls.lock().unwrap()[0].stdin["cniVersion"], "1.1.0");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_identity_is_refused_before_any_plugin_runs() {
    let exec = Scripted::default();
    let (runtime, dir) = runtime(&exec, "ident");
    let mut bad = rt("c5");
    bad.ifname = "a/b".into();
    assert!(matches!(runtime.add(&list("1.0.0", json!({})), &bad), Err(Error::Config(_))));
    bad = rt("../x");
    assert!(matches!(runtime.del(&list("1.0.0", json!({})), &bad), Err(Error::Config(_))));
    assert!(exec.calls.lock().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(dir);
}
