//! `twill cluster` as an operator runs it, against a file datastore and against real etcd
//! servers (plain HTTP, and TLS with client certificates): apply (all or nothing, errors
//! naming document and field), get in every format, label, delete, explain; TLS mistakes are
//! clear errors with a non-zero exit, for `twill cluster` and for twilld at start.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::{EtcdCluster, EtcdOpts, ServerTls, TempDir};

const TWILL: &str = env!("CARGO_BIN_EXE_twill");

const MANIFEST: &str = "apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: web}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-only, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{port: pg}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, namespace: shop, labels: {app: db}}
spec: {containers: [{name: pg, ports: [{name: pg, containerPort: 5432}]}]}
";

fn twill(datastore: &str, extra_env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(TWILL);
    cmd.arg("cluster").args(args).env("TWILL_DATASTORE", datastore).env_remove("TWILL_ETCD_CACERT");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: Output) -> String {
    assert!(!out.status.success(), "unexpectedly succeeded: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Everything an operator does, against `ds` (with `env` for TLS).
fn operate(ds: &str, env: &[(&str, &str)], dir: &Path) {
    let run = |args: &[&str]| twill(ds, env, args);
    let file = dir.join("shop.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let f = file.to_str().unwrap();
    let out = ok(run(&["apply", "-f", f]));
    assert_eq!(out, "namespace shop created\nnetworkpolicy shop/web-only created\npod shop/db-0 created\n");
    assert!(ok(run(&["apply", "-f", f])).ends_with("pod shop/db-0 unchanged\n"));

    // An invalid document anywhere: nothing of the file is written.
    let bad = dir.join("bad.yaml");
    let text = MANIFEST.replace("web-only", "second").replace("containerPort: 5432", "containerPort: 99999");
    std::fs::write(&bad, format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: other}}\n---\n{text}"))
        .unwrap();
    let e = err(run(&["apply", "-f", bad.to_str().unwrap()]));
    assert!(e.contains("document 4: Pod shop/db-0: spec.containers[0].ports[0].containerPort"), "{e}");
    assert!(e.contains("nothing was changed"), "{e}");
    assert!(!ok(run(&["get", "namespaces"])).contains("other"), "nothing of the bad file was written");

    let ns = ok(run(&["get", "ns"]));
    assert!(
        ns.contains("shop") && ns.contains("team=web") && ns.contains("kubernetes.io/metadata.name=shop"),
        "{ns}"
    );
    let pols: Value =
        serde_json::from_str(&ok(run(&["get", "networkpolicies", "-n", "shop", "-o", "json"]))).unwrap();
    assert_eq!(pols[0]["name"], "web-only");
    assert!(ok(run(&["get", "netpol", "-o", "yaml"])).contains("name: web-only"));
    assert_eq!(ok(run(&["get", "pods"])).lines().count(), 1, "a pod nobody attached is not listed");

    ok(run(&["label", "namespace", "shop", "tier=front", "team-"]));
    let ns: Value = serde_json::from_str(&ok(run(&["get", "ns", "-o", "json"]))).unwrap();
    assert_eq!(ns[0]["labels"], serde_json::json!({"kubernetes.io/metadata.name": "shop", "tier": "front"}));
    ok(run(&["label", "pod", "shop/db-0", "version=2"]));
    assert!(
        err(run(&["label", "namespace", "shop", "kubernetes.io/metadata.name=x"]))
            .contains("set by the cluster")
    );
    assert!(err(run(&["label", "pod", "shop/db-0", "bad key=1"])).contains("label change"));
    assert!(err(run(&["get", "deployments"])).contains("unknown kind"));

    let out = ok(run(&["delete", "-f", f]));
    assert!(
        out.contains("networkpolicy shop/web-only deleted") && out.contains("pod shop/db-0 deleted"),
        "{out}"
    );
    let e = err(run(&["delete", "-f", f]));
    assert!(e.contains("not found: namespace shop, networkpolicy shop/web-only, pod shop/db-0"), "{e}");
}

#[test]
fn file_datastore() {
    let dir = TempDir::new("cluster-cli");
    operate(&format!("file:{}", dir.path().join("store").display()), &[], dir.path());
    let e = err(Command::new(TWILL)
        .args(["cluster", "get", "nodes"])
        .env_remove("TWILL_DATASTORE")
        .output()
        .unwrap());
    assert!(e.contains("no datastore"), "{e}");
}

#[test]
fn etcd_over_plain_http() {
    let dir = TempDir::new("cluster-cli-etcd");
    let etcd = EtcdCluster::start();
    operate(&etcd.endpoint(), &[], dir.path());
}

#[test]
fn etcd_with_tls_and_clear_tls_errors() {
    let dir = TempDir::new("cluster-cli-tls");
    let pki = cluster::pki::generate(&dir.path().join("pki"), &["127.0.0.1".into()]).unwrap();
    let other = cluster::pki::generate(&dir.path().join("other"), &["127.0.0.1".into()]).unwrap();
    let tls = ServerTls {
        ca: pki.ca.clone(),
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_auth: true,
    };
    let etcd = EtcdCluster::start_with(EtcdOpts { members: 1, hosts: None, tls: Some(tls) }, None);
    let p = |p: &Path| p.display().to_string();
    let (ca, cert, key) = (p(&pki.ca), p(&pki.client_cert), p(&pki.client_key));
    let env = [
        ("TWILL_ETCD_CACERT", ca.as_str()),
        ("TWILL_ETCD_CERT", cert.as_str()),
        ("TWILL_ETCD_KEY", key.as_str()),
    ];
    operate(&etcd.endpoint(), &env, dir.path());

    let wrong_ca = p(&other.ca);
    let e =
        err(twill(&etcd.endpoint(), &[("TWILL_ETCD_CACERT", &wrong_ca), env[1], env[2]], &["get", "nodes"]));
    assert!(e.contains("TLS") && e.contains("invalid peer certificate"), "{e}");
    let e = err(twill(&etcd.endpoint(), &[env[0]], &["get", "nodes"]));
    assert!(e.contains("TLS") && e.contains("--etcd-cert"), "{e}");
    let e = err(twill(&etcd.endpoint(), &[], &["get", "nodes"]));
    assert!(e.contains("--etcd-cacert"), "https without a CA: {e}");

    // twilld refuses to start with a wrong CA or without its client certificate (run in a
    // namespace of its own, so nothing it might touch is the host's).
    testkit::require_privileges();
    let ns = testkit::TestNs::new("tlserr");
    let tls = ServerTls {
        ca: pki.ca.clone(),
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_auth: true,
    };
    let opts = EtcdOpts { members: 1, hosts: Some(vec![("127.0.0.1".into(), 2379)]), tls: Some(tls) };
    let etcd = EtcdCluster::start_with(opts, Some(ns.ns()));
    let twilld = Path::new(TWILL).with_file_name("twilld");
    assert!(twilld.is_file(), "build twilld first (scripts/test.sh builds every binary)");
    for (tls_args, what) in [
        (
            vec!["--etcd-cacert", &wrong_ca, "--etcd-cert", &cert, "--etcd-key", &key],
            "invalid peer certificate",
        ),
        (vec!["--etcd-cacert", &ca], "--etcd-cert"),
    ] {
        let state = dir.path().join("twilld");
        let out = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(&twilld)
            .args([
                "--node",
                "n1",
                "--node-ip",
                "10.99.0.1",
                "--underlay-iface",
                "lo",
                "--cluster-cidr",
                "10.244.0.0/16",
            ])
            .args(["--datastore", &etcd.endpoint(), "--health-listen", "127.0.0.1:0"])
            .args(["--cni-conf-dir", &p(&state.join("net")), "--cni-bin-dir", &p(&state.join("bin"))])
            .args(["--state-dir", &p(&state.join("state"))])
            .args(tls_args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "twilld must fail at start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(e.contains("TLS") && e.contains(what), "{e}");
    }
}
