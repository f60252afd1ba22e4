//! twilld's command line, run as a binary: bad flags fail before anything is touched.

use std::process::Command;

fn twilld(extra: &[&str]) -> std::process::Output {
    let base = [
        "--node",
        "node-1",
        "--node-ip",
        "10.99.0.11",
        "--underlay-iface",
        "eth0",
        "--datastore",
        "file:/nonexistent/twill-agent-cli-test",
        "--cluster-cidr",
        "10.244.0.0/16",
        "--cni-conf-dir",
        "/nonexistent/net.d",
        "--cni-bin-dir",
        "/nonexistent/bin",
        "--state-dir",
        "/nonexistent/state",
        "--health-listen",
        "127.0.0.1:0",
    ];
    Command::new(env!("CARGO_BIN_EXE_twilld")).args(base).args(extra).output().expect("run twilld")
}

#[test]
fn bgp_backend_is_not_implemented() {
    let out = twilld(&["--backend", "bgp"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--backend bgp is not implemented yet"), "{err}");
    assert!(!std::path::Path::new("/nonexistent/twill-agent-cli-test").exists());
}

#[test]
fn invalid_values_are_named() {
    let out = twilld(&["--backend", "vxlan", "--cluster-cidr", "10.244.1.0/16", "--log-format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let line = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON log line");
    assert_eq!(v["level"], "ERROR");
    assert_eq!(v["message"], "twilld failed");
    assert!(
        v["error"].as_str().unwrap().contains("--cluster-cidr: cluster CIDR 10.244.1.0/16 has host bits set"),
        "{v}"
    );
    let out = twilld(&["--backend", "udp"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects unknown backends");
}

/// twilld with `args` only and the given environment (nothing inherited that could change
/// its settings).
fn twilld_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_twilld"));
    for var in ["TWILL_DATASTORE", "TWILL_ETCD_CACERT", "TWILL_ETCD_CERT", "TWILL_ETCD_KEY"] {
        cmd.env_remove(var);
    }
    cmd.args(args).envs(env.iter().copied()).output().expect("run twilld")
}

fn config_file(tag: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("twilld-cli-{tag}-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

const FILE: &str = r#"
node = "node-1"
node-ip = "10.99.0.11"
underlay-iface = "eth0"
datastore = "file:/nonexistent/twill-agent-cli-test"
cluster-cidr = "10.244.1.0/16"
cni-conf-dir = "/nonexistent/net.d"
cni-bin-dir = "/nonexistent/bin"
state-dir = "/nonexistent/state"
health-listen = "127.0.0.1:0"
log-format = "json"
"#;

#[test]
fn config_file_environment_and_flags_in_that_order() {
    let path = config_file("layers", FILE);
    let conf = path.to_str().unwrap();
    // The file alone: its (bad) cluster CIDR is what fails, in its JSON log format.
    let out = twilld_env(&["--config", conf], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"level\":\"ERROR\"") && err.contains("has host bits set"), "{err}");
    // A flag overrides the file; the environment overrides the file's datastore...
    let fixed = ["--config", conf, "--cluster-cidr", "10.244.0.0/16", "--log-format", "text"];
    let out = twilld_env(&fixed, &[("TWILL_DATASTORE", "zk:env")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("zk:env"), "the environment beats the file: {err}");
    // ...and a flag overrides the environment.
    let flagged = [&fixed[..], &["--datastore", "etcd:https://127.0.0.1:1"]].concat();
    let out = twilld_env(&flagged, &[("TWILL_DATASTORE", "zk:env")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("need the CA that signed their certificates"),
        "the flag beats the environment: {err}"
    );
    assert!(!std::path::Path::new("/nonexistent/twill-agent-cli-test").exists());
    std::fs::remove_file(path).unwrap();
}

#[test]
fn config_file_errors_name_the_file_and_the_key() {
    let path = config_file("unknown", &format!("{FILE}nodes = 3\n"));
    let out = twilld_env(&["--config", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("config file {}: unknown key `nodes`", path.display())), "{err}");
    std::fs::remove_file(path).unwrap();
    let out = twilld_env(&["--node", "node-1"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--node-ip is required") && err.contains("`node-ip = ...`"), "{err}");
}
