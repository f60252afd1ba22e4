//! The plugin through the skel, as a runtime invokes it, against a temporary data dir.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use cni_spec::Version;
use serde_json::{Value, json};

use super::HostLocal;
use super::error::{ADDRESS_TAKEN, NOT_RESERVED, RANGE_EXHAUSTED};

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("twill-hl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Dir(dir)
    }

    /// Every file of the network's directory with its content.
    fn files(&self) -> BTreeMap<String, String> {
        let Ok(entries) = std::fs::read_dir(self.0.join("net")) else { return BTreeMap::new() };
        entries
            .flatten()
            .map(|e| {
                let content = std::fs::read(e.path()).unwrap();
                (e.file_name().to_string_lossy().into_owned(), String::from_utf8(content).unwrap())
            })
            .collect()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn conf(version: &str, dir: &Path, ipam: Value) -> Value {
    let mut ipam = ipam;
    ipam["type"] = json!("host-local");
    ipam["dataDir"] = json!(dir.display().to_string());
    json!({"cniVersion": version, "name": "net", "type": "host-local", "ipam": ipam})
}

/// One invocation through the skel; returns the exit code and stdout as JSON.
fn invoke(command: &str, id: &str, cni_args: &str, conf: &Value) -> (i32, Value) {
    let env: HashMap<String, String> = [
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", id),
        ("CNI_NETNS", "/var/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        ("CNI_ARGS", cni_args),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = cni_skel::run(&HostLocal, "", &env, &mut conf.to_string().as_bytes(), &mut out, &mut err);
    let value = if out.is_empty() { Value::Null } else { serde_json::from_slice(&out).unwrap() };
    (code, value)
}

fn ok(command: &str, id: &str, conf: &Value) -> Value {
    let (code, out) = invoke(command, id, "", conf);
    assert_eq!(code, 0, "{command} {id}: {out}");
    out
}

fn fails(command: &str, id: &str, cni_args: &str, conf: &Value) -> (u64, String) {
    let (code, out) = invoke(command, id, cni_args, conf);
    assert_eq!(code, 1, "{command} {id} should fail: {out}");
    (out["code"].as_u64().unwrap(), out["msg"].as_str().unwrap().to_string())
}

#[test]
fn lifecycle_in_every_version() {
    for version in Version::ALL {
        let dir = Dir::new(&format!("life-{version}"));
        let conf = conf(
            version.as_str(),
            &dir.0,
            json!({"subnet": "10.1.0.0/24", "routes": [{"dst": "0.0.0.0/0"}]}),
        );
        let out = ok("ADD", "c1", &conf);
        assert_eq!(out["cniVersion"], version.as_str());
        let (ip, gw) = if version.is_legacy_result() {
            (&out["ip4"]["ip"], &out["ip4"]["gateway"])
        } else {
            (&out["ips"][0]["address"], &out["ips"][0]["gateway"])
        };
        assert_eq!((ip, gw), (&json!("10.1.0.2/24"), &json!("10.1.0.1")), "{version}: {out}");
        let held = files(&[("10.1.0.2", "c1\r\neth0"), ("last_reserved_ip.0", "10.1.0.2"), ("lock", "")]);
        assert_eq!(dir.files(), held, "{version}");
        if version.supports_check() {
            let mut check = conf.clone();
            check["prevResult"] = out.clone();
            ok("CHECK", "c1", &check);
            assert_eq!(fails("CHECK", "c2", "", &check).0, u64::from(ADDRESS_TAKEN), "{version}");
            assert_eq!(fails("CHECK", "c2", "", &conf).0, u64::from(NOT_RESERVED), "{version}");
        }
        ok("DEL", "c1", &conf);
        let freed = files(&[("last_reserved_ip.0", "10.1.0.2"), ("lock", "")]);
        assert_eq!(dir.files(), freed, "{version}");
        ok("DEL", "c1", &conf);
        if version.supports_gc() {
            ok("STATUS", "", &conf);
            let mut gc = conf.clone();
            gc["cni.dev/valid-attachments"] = json!([]);
            ok("GC", "", &gc);
            assert_eq!(dir.files(), freed);
        }
    }
}

#[test]
fn dual_stack_in_range_set_order() {
    let dir = Dir::new("dual");
    let ranges = json!({"ranges": [[{"subnet": "fd00:1::/64"}], [{"subnet": "10.2.0.0/24", "gateway": "10.2.0.254"}]]});
    let out = ok("ADD", "c1", &conf("1.0.0", &dir.0, ranges.clone()));
    assert_eq!(
        out["ips"],
        json!([{"address": "fd00:1::2/64", "gateway": "fd00:1::1"}, {"address": "10.2.0.1/24", "gateway": "10.2.0.254"}])
    );
    let legacy = ok("ADD", "c2", &conf("0.2.0", &dir.0, ranges));
    assert_eq!((&legacy["ip4"]["ip"], &legacy["ip6"]["ip"]), (&json!("10.2.0.2/24"), &json!("fd00:1::3/64")));
}

#[test]
fn requested_addresses_and_conflicts() {
    let dir = Dir::new("req");
    let mut conf = conf("1.0.0", &dir.0, json!({"subnet": "10.3.0.0/24"}));
    let (code, out) = invoke("ADD", "c1", "IgnoreUnknown=1;IP=10.3.0.50", &conf);
    assert_eq!((code, &out["ips"][0]["address"]), (0, &json!("10.3.0.50/24")));
    let (code, msg) = fails("ADD", "c2", "IP=10.3.0.50", &conf);
    assert_eq!(code, u64::from(ADDRESS_TAKEN));
    assert_eq!(
        msg,
        "failed to allocate for range 0: requested IP address 10.3.0.50 is not available in range set 10.3.0.1-10.3.0.254"
    );
    assert_eq!(
        fails("ADD", "c2", "IP=10.3.0.1", &conf),
        (101, "failed to allocate for range 0: requested ip 10.3.0.1 is subnet's gateway".into())
    );
    assert_eq!(
        fails("ADD", "c2", "IP=10.9.0.1", &conf),
        (7, "failed to allocate all requested IPs: 10.9.0.1".into())
    );
    assert_eq!(fails("ADD", "c2", "IP=nonsense", &conf).0, 4);
    conf["runtimeConfig"] = json!({"ips": ["10.3.0.60/24"]});
    assert_eq!(ok("ADD", "c2", &conf)["ips"][0]["address"], "10.3.0.60/24");
    let names: Vec<String> = dir.files().into_keys().collect();
    assert_eq!(names, ["10.3.0.50", "10.3.0.60", "last_reserved_ip.0", "lock"]);
}

#[test]
fn exhaustion_has_its_code_and_reserves_nothing() {
    let dir = Dir::new("full");
    let conf = conf(
        "1.0.0",
        &dir.0,
        json!({"subnet": "10.4.0.0/24", "rangeStart": "10.4.0.10", "rangeEnd": "10.4.0.11"}),
    );
    ok("ADD", "c1", &conf);
    ok("ADD", "c2", &conf);
    let before = dir.files();
    let (code, msg) = fails("ADD", "c3", "", &conf);
    assert_eq!(code, u64::from(RANGE_EXHAUSTED));
    assert_eq!(
        msg,
        "failed to allocate for range 0: no IP addresses available in range set: 10.4.0.10-10.4.0.11"
    );
    assert_eq!(dir.files(), before);
}

#[test]
fn gc_frees_what_is_not_valid() {
    let dir = Dir::new("gc");
    let mut conf = conf("1.1.0", &dir.0, json!({"subnet": "10.5.0.0/24"}));
    for id in ["keep", "stale1", "stale2"] {
        ok("ADD", id, &conf);
    }
    assert_eq!(fails("GC", "", "", &conf).0, 7, "no valid list, nothing freed");
    assert_eq!(dir.files().len(), 5);
    conf["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    ok("GC", "", &conf);
    let left = files(&[("10.5.0.2", "keep\r\neth0"), ("last_reserved_ip.0", "10.5.0.4"), ("lock", "")]);
    assert_eq!(dir.files(), left);
}

#[test]
fn del_and_gc_create_nothing() {
    let dir = Dir::new("nothing");
    let mut conf = conf("1.1.0", &dir.0, json!({}));
    ok("DEL", "c1", &conf);
    conf["cni.dev/valid-attachments"] = json!([]);
    ok("GC", "", &conf);
    assert!(!dir.0.exists());
    let err = fails("ADD", "c1", "", &conf);
    assert_eq!(err, (7, "ipam: no IP ranges specified".into()));
    // STATUS tells what ADD would: this config cannot serve one.
    assert_eq!(fails("STATUS", "", "", &conf), err);
    assert!(!dir.0.exists());
    // Unless the runtime brings the ranges with each ADD.
    conf["capabilities"] = json!({"ipRanges": true});
    ok("STATUS", "", &conf);
}

#[test]
fn status_is_not_available_while_a_range_set_is_exhausted() {
    let dir = Dir::new("full");
    // 10.8.0.0/30 has one address to hand out; the IPv6 set has plenty.
    let conf =
        conf("1.1.0", &dir.0, json!({"ranges": [[{"subnet": "10.8.0.0/30"}], [{"subnet": "fd00:8::/64"}]]}));
    ok("STATUS", "", &conf);
    assert!(!dir.0.exists(), "STATUS creates nothing");
    ok("ADD", "c1", &conf);
    let (code, msg) = fails("STATUS", "", "", &conf);
    assert_eq!(code, 50);
    assert!(msg.contains("network net: failed to allocate for range 0: no IP addresses available"), "{msg}");
    assert_eq!(fails("ADD", "c2", "", &conf).0, u64::from(RANGE_EXHAUSTED));
    ok("DEL", "c1", &conf);
    ok("STATUS", "", &conf);
}

#[test]
fn status_reports_an_unusable_data_dir() {
    let dir = Dir::new("status");
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join("file"), b"").unwrap();
    let conf = conf("1.1.0", &dir.0.join("file"), json!({"subnet": "10.6.0.0/24"}));
    let (code, msg) = fails("STATUS", "", "", &conf);
    assert_eq!(code, 50);
    assert!(msg.contains("is not usable"), "{msg}");
    assert_eq!(fails("ADD", "c1", "", &conf).0, 5);
}

#[test]
fn check_compares_prev_result() {
    let dir = Dir::new("check");
    let conf = conf("1.0.0", &dir.0, json!({"subnet": "10.7.0.0/24"}));
    let out = ok("ADD", "c1", &conf);
    ok("ADD", "c2", &conf);
    let mut check = conf.clone();
    check["prevResult"] = out;
    ok("CHECK", "c1", &check);
    check["prevResult"]["ips"][0]["address"] = json!("10.7.0.3/24");
    assert_eq!(fails("CHECK", "c1", "", &check).0, u64::from(ADDRESS_TAKEN));
    check["prevResult"]["ips"][0]["address"] = json!("10.7.0.9/24");
    assert_eq!(fails("CHECK", "c1", "", &check).0, u64::from(NOT_RESERVED));
    // Addresses outside the network's ranges are another plugin's business.
    check["prevResult"]["ips"][0]["address"] = json!("192.168.0.9/24");
    ok("CHECK", "c1", &check);
}
