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
fn bad_bgp_settings_fail_before_anything_is_touched() {
    for (extra, want) in [
        (&["--bgp-as", "0"][..], "--backend bgp: --bgp-as 0 is reserved"),
        (&["--bgp-hold-seconds", "1"], "--backend bgp: --bgp-hold-seconds 1 must be 3 to 65535"),
        (&["--node-labels", "rack"], "--node-labels rack: not key=value"),
    ] {
        let mut all = vec!["--backend", "bgp"];
        all.extend_from_slice(extra);
        let out = twilld(&all);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{extra:?}: {err}");
    }
    assert!(!std::path::Path::new("/nonexistent/twill-agent-cli-test").exists());
    assert!(!std::path::Path::new("/nonexistent/state").exists());
}

#[test]
fn invalid_values_are_named() {
    let out = twilld(&["--backend", "vxlan", "--cluster-cidr", "10.244.1.0/16", "--log-format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let line = String::from_utf8_lossy(&out.stderr);
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON log line");
    assert_eq!(v["level"], "error");
    assert!(
        v["error"].as_str().unwrap().contains("--cluster-cidr: cluster CIDR 10.244.1.0/16 has host bits set"),
        "{v}"
    );
    let out = twilld(&["--backend", "udp"]);
    assert_eq!(out.status.code(), Some(2), "clap rejects unknown backends");
}
