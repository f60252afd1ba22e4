//! The multus plugin end to end, driven through the runtime side (libcni's behaviour) with
//! twill's real binaries in network namespaces: pods get the cluster network plus the
//! NetworkAttachmentDefinitions their annotation selects, for every cniVersion from 0.3.1 to
//! 1.1.0; bad selections attach nothing; a failing secondary rolls everything back; DEL works
//! after the definition was deleted and with the datastore gone; `default-route` moves the
//! pod's default route; GC and STATUS; and the seed notes' `00-multus.conf` as written.
//! Traffic never leaves the namespaces created here.

#[path = "multus/bed.rs"]
mod bed;
mod support;

use bed::{Bed, conf_list, links};
use cni_spec::{Attachment, CniResult, Version};
use serde_json::json;
use testkit::TestNs;

const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";

fn code(e: &cni_exec::Error) -> u32 {
    e.to_cni().code.code()
}

/// Interface names of the result's pod-side interfaces and the address on each.
fn pod_side(r: &CniResult) -> Vec<(String, String)> {
    r.ips
        .iter()
        .filter_map(|ip| {
            let i = &r.interfaces[ip.interface?];
            i.sandbox.as_ref().map(|_| (i.name.clone(), ip.address.to_string()))
        })
        .collect()
}

fn lifecycle(version: &str, n: u8) {
    let tag = format!("mu{n}");
    let bed = Bed::new(&tag, n);
    bed.apply(&bed.definitions());
    let net = bed.multus(version, json!({}));
    let (a, b) = (TestNs::new(&format!("{tag}a")), TestNs::new(&format!("{tag}b")));
    // a: the text form, from its PodMeta in the datastore; b: JSON, from the runtime.
    bed.pod_meta("x", "a", &[(NETWORKS, "data, side@side0")]);
    let want_b =
        format!(r#"[{{"name": "data", "ips": ["10.{n}.0.50/24"], "mac": "02:00:00:00:{n:02x}:50"}}]"#);
    let (ra, rb) = (bed.rt("x", "a", &a), bed.rt_annotated("x", "b", &b, &[(NETWORKS, &want_b)]));
    let result = bed.world.add(&net, &ra);
    assert_eq!(result.cni_version, Version::parse(version).unwrap());
    assert_eq!(
        pod_side(&result),
        [
            ("eth0".to_string(), format!("10.{n}.2.2/24")),
            ("net1".to_string(), format!("10.{n}.0.2/24")),
            ("side0".to_string(), format!("10.{n}.1.2/24"))
        ],
        "{version}"
    );
    assert_eq!(links(&a), ["eth0", "net1", "side0"], "{version}");
    let rb_result = bed.world.add(&net, &rb);
    assert_eq!(pod_side(&rb_result)[1], ("net1".to_string(), format!("10.{n}.0.50/24")), "{version}: ips");
    let mac = b
        .handle()
        .link_get("net1")
        .unwrap()
        .unwrap()
        .mac
        .map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"));
    assert_eq!(mac, Some(format!("02:00:00:00:{n:02x}:50")), "{version}: mac");
    let ping = |from: &TestNs, to: &str| from.exec(&["ping", "-c1", "-w3", to]).status.success();
    assert!(ping(&a, &format!("10.{n}.0.50")), "{version}: pod to pod over net1");
    assert!(ping(&b, &format!("10.{n}.0.254")), "{version}: pod to the data network's gateway");
    if Version::parse(version).unwrap().supports_check() {
        bed.world.runtime.check(&net, &ra).unwrap_or_else(|e| panic!("{version} check: {e}"));
    }
    let journal = bed.journal();
    let status =
        &journal.iter().find(|j| j.network == "multus-cni-network" && j.name == "a").unwrap().network_status;
    let summary: Vec<(&str, &str, bool)> =
        status.iter().map(|s| (s.name.as_str(), s.interface.as_str(), s.default)).collect();
    assert_eq!(
        summary,
        [("twill", "eth0", true), ("x/data", "net1", false), ("x/side", "side0", false)],
        "{version}"
    );
    assert_eq!(status[1].ips, [format!("10.{n}.0.2")]);
    for rt in [&ra, &rb] {
        bed.world.runtime.del(&net, rt).unwrap_or_else(|e| panic!("{version} del: {e}"));
        bed.world.runtime.del(&net, rt).unwrap_or_else(|e| panic!("{version} second del: {e}"));
    }
    assert!(links(&a).is_empty() && links(&b).is_empty(), "{version}");
    assert_eq!(bed.reservations(), Vec::<String>::new(), "{version}");
    assert!(bed.files("multus").is_empty(), "{version}: {:?}", bed.files("multus"));
    assert!(bed.journal().is_empty(), "{version}");
}

#[test]
fn lifecycle_0_3_1() {
    lifecycle("0.3.1", 201);
}

#[test]
fn lifecycle_0_4_0() {
    lifecycle("0.4.0", 202);
}

#[test]
fn lifecycle_1_0_0() {
    lifecycle("1.0.0", 203);
}

#[test]
fn lifecycle_1_1_0() {
    lifecycle("1.1.0", 204);
}

/// Nothing in the host or the pod but what was there: no veth, no reservation, no cache.
fn assert_untouched(bed: &Bed, pod: &TestNs, what: &str) {
    assert!(links(pod).is_empty(), "{what}: {:?}", links(pod));
    let host = bed.world.host_links();
    assert!(!host.iter().any(|l| l.starts_with("veth")), "{what}: {host:?}");
    assert_eq!(bed.reservations(), Vec::<String>::new(), "{what}");
    assert!(bed.files("multus/attachments").is_empty(), "{what}");
}

#[test]
fn bad_selections_attach_nothing() {
    let bed = Bed::new("mubad", 205);
    bed.apply(&bed.definitions());
    let net = bed.multus("1.0.0", json!({}));
    let pod = TestNs::new("mubadp");
    for (value, want) in [
        ("data/x/y", "more than one '/'"),
        ("missing", "network-attachment-definition x/missing not found"),
        ("data, side@net1", "x/data and x/side would both be interface net1"),
        (r#"[{"name": "data", "mac": "zz"}]"#, "mac: \"zz\""),
    ] {
        let rt = bed.rt_annotated("x", "p", &pod, &[(NETWORKS, value)]);
        let e = bed.world.runtime.add(&net, &rt).unwrap_err();
        assert_eq!(code(&e), 7, "{value}: {e}");
        assert!(e.to_string().contains(want), "{value}: {e}");
        assert_untouched(&bed, &pod, value);
    }
}

#[test]
fn a_failing_secondary_rolls_everything_back() {
    let bed = Bed::new("murb", 206);
    bed.apply(&bed.definitions());
    bed.apply(
        r#"
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: broken, namespace: x}
spec: {config: '{"cniVersion": "1.0.0", "type": "macvlan", "master": "nosuch0", "ipam": {"type": "host-local", "subnet": "10.206.9.0/24"}}'}
"#,
    );
    let net = bed.multus("1.0.0", json!({}));
    let pod = TestNs::new("murbp");
    let rt = bed.rt_annotated("x", "p", &pod, &[(NETWORKS, "side, broken")]);
    let e = bed.world.runtime.add(&net, &rt).unwrap_err();
    assert!(e.to_string().contains("add x/broken (net2)") && e.to_string().contains("nosuch0"), "{e}");
    assert_untouched(&bed, &pod, "rolled back");
    assert!(bed.journal().is_empty());
    bed.world.runtime.del(&net, &rt).unwrap();
}

#[test]
fn del_needs_neither_the_definition_nor_the_datastore() {
    let bed = Bed::new("mudel", 207);
    let mut etcd = testkit::etcd::EtcdCluster::start_with(Default::default(), Some(bed.world.host.ns()));
    let endpoint = etcd.endpoint();
    let store = bed.world.host.ns().run(|| {
        cluster::DatastoreConf::parse(&endpoint, cluster::EtcdTls::default()).unwrap().open().unwrap()
    });
    let store = store.unwrap();
    let objects = cluster::manifest::parse_manifests(&bed.definitions()).unwrap();
    let ns = bed.world.host.ns();
    ns.run(|| cluster::ops::apply(store.as_ref(), &objects).unwrap()).unwrap();
    let net = bed.multus("1.1.0", json!({"datastore": endpoint}));
    let pod = TestNs::new("mudelp");
    let rt = bed.rt_annotated("x", "p", &pod, &[(NETWORKS, "data,side")]);
    bed.world.add(&net, &rt);
    assert_eq!(links(&pod), ["eth0", "net1", "net2"]);
    ns.run(|| cluster::ops::delete(store.as_ref(), &objects).unwrap()).unwrap();
    // Frozen, not killed: a frozen etcd accepts connections and answers nothing, so a DEL
    // that asked it anything would sit out the client's request timeout.
    etcd.freeze(0, true);
    let started = std::time::Instant::now();
    bed.world.runtime.del(&net, &rt).unwrap_or_else(|e| panic!("DEL with the datastore frozen: {e}"));
    let took = started.elapsed();
    assert!(took < cluster::store::etcd::REQUEST_TIMEOUT, "DEL waited for the datastore: {took:?}");
    assert!(links(&pod).is_empty());
    assert_eq!(bed.reservations(), Vec::<String>::new());
    bed.world.runtime.del(&net, &rt).unwrap();
    etcd.freeze(0, false);
    etcd.kill(0);
    // An ADD needing the datastore while it is down is "try again later".
    let e = bed.world.runtime.add(&net, &bed.rt("x", "q", &pod)).unwrap_err();
    assert_eq!(code(&e), 11, "{e}");
    assert_untouched(&bed, &pod, "ADD without a datastore");
}

#[test]
fn default_route_moves_to_the_selected_attachment() {
    let bed = Bed::new("mugw", 208);
    bed.apply(&bed.definitions());
    let net = bed.multus("1.0.0", json!({}));
    let pod = TestNs::new("mugwp");
    let sel = r#"[{"name": "data", "default-route": ["10.208.0.254"]}]"#;
    let rt = bed.rt_annotated("x", "p", &pod, &[(NETWORKS, sel)]);
    let result = bed.world.add(&net, &rt);
    let routes = pod.exec_ok(&["ip", "-4", "route", "show", "default"]);
    assert_eq!(routes.trim(), "default via 10.208.0.254 dev net1", "{routes}");
    let defaults: Vec<String> =
        result.routes.iter().filter(|r| r.dst.prefix_len() == 0).map(|r| format!("{:?}", r.gw)).collect();
    assert_eq!(defaults, ["Some(10.208.0.254)"]);
    assert!(pod.exec(&["ping", "-c1", "-w3", "10.208.0.254"]).status.success());
    bed.world.runtime.check(&net, &rt).unwrap_or_else(|e| panic!("CHECK sees the moved routes: {e}"));
    bed.world.runtime.del(&net, &rt).unwrap();
    assert_untouched(&bed, &pod, "after DEL");
}

#[test]
fn the_default_network_annotation_replaces_the_cluster_network() {
    let bed = Bed::new("mudn", 211);
    bed.apply(&bed.definitions());
    let net = bed.multus("1.0.0", json!({}));
    let pod = TestNs::new("mudnp");
    let annotations = [("v1.multus-cni.io/default-network", "side"), (NETWORKS, "data")];
    let rt = bed.rt_annotated("x", "p", &pod, &annotations);
    let result = bed.world.add(&net, &rt);
    assert_eq!(
        pod_side(&result),
        [
            ("eth0".to_string(), "10.211.1.2/24".to_string()),
            ("net1".to_string(), "10.211.0.2/24".to_string())
        ],
        "eth0 on x/side instead of the cluster network"
    );
    assert!(!bed.world.host_links().iter().any(|l| l == "mbr211"), "the cluster network was not attached");
    let status = &bed.journal();
    assert!(status.is_empty(), "x/side has no twill-pod, so no journal: {status:?}");
    bed.world.runtime.del(&net, &rt).unwrap();
    assert_untouched(&bed, &pod, "after DEL");
}

#[test]
fn gc_and_status() {
    let bed = Bed::new("mugc", 209);
    bed.apply(&bed.definitions());
    let net = bed.multus("1.1.0", json!({}));
    let (keep, stale) = (TestNs::new("mugck"), TestNs::new("mugcs"));
    let (rk, rs) = (
        bed.rt_annotated("x", "keep", &keep, &[(NETWORKS, "data")]),
        bed.rt_annotated("x", "stale", &stale, &[(NETWORKS, "data,side")]),
    );
    bed.world.add(&net, &rk);
    bed.world.add(&net, &rs);
    assert!(bed.world.runtime.status(&net).unwrap());
    let valid = Attachment { container_id: rk.container_id.clone(), ifname: "eth0".into() };
    let report = bed.world.runtime.gc(&net, &[valid]).unwrap();
    assert!(report.gc_sent);
    assert!(links(&stale).is_empty(), "{:?}", links(&stale));
    assert_eq!(links(&keep), ["eth0", "net1"]);
    assert_eq!(bed.reservations().len(), 2, "{:?}", bed.reservations());
    let names: Vec<String> = bed.journal().into_iter().map(|a| a.name).collect();
    assert!(names.iter().all(|n| n == "keep"), "{names:?}");
    bed.world.runtime.del(&net, &rk).unwrap();
    assert_eq!(bed.reservations(), Vec::<String>::new());
    let missing = bed.multus("1.1.0", json!({"readinessindicatorfile": bed.path("not-ready")}));
    let e = bed.world.runtime.status(&missing).unwrap_err();
    assert_eq!(code(&e), 50, "{e}");
    let down = bed.multus("1.1.0", json!({"datastore": "etcd:http://127.0.0.1:9"}));
    let e = bed.world.runtime.status(&down).unwrap_err();
    assert_eq!(code(&e), 50, "{e}");
}

/// The seed notes' `00-multus.conf` as written — `kubeconfig`, the portMappings and bandwidth
/// capabilities, one delegate list — with twill's bridge and host-local where calico was.
#[test]
fn the_seed_example_as_written() {
    let bed = Bed::new("museed", 210);
    let conf = json!({
      "cniVersion": "0.3.1",
      "name": "multus-cni-network",
      "type": "multus",
      "capabilities": {"portMappings": true, "bandwidth": true},
      "kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig",
      "cniDir": bed.path("multus"),
      "delegates": [{
        "name": "k8s-pod-network",
        "cniVersion": "0.3.1",
        "plugins": [
          {"type": "bridge", "bridge": "mbr210", "isGateway": true, "mtu": 0,
           "ipam": {"type": "host-local", "dataDir": bed.path("ipam"), "subnet": "10.210.2.0/24"}},
          {"type": "portmap", "snat": true, "capabilities": {"portMappings": true}},
          {"type": "bandwidth", "capabilities": {"bandwidth": true}}
        ]
      }]
    });
    let net = conf_list(&conf);
    let pod = TestNs::new("museedp");
    let mut rt = bed.world.rt("seed", &pod);
    rt.capability_args
        .insert("portMappings".into(), json!([{"hostPort": 8210, "containerPort": 80, "protocol": "tcp"}]));
    rt.capability_args.insert(
        "bandwidth".into(),
        json!({"ingressRate": 1000000, "ingressBurst": 100000, "egressRate": 1000000, "egressBurst": 100000}),
    );
    let result = bed.world.add(&net, &rt);
    assert_eq!(pod_side(&result), [("eth0".to_string(), "10.210.2.2/24".to_string())]);
    let ruleset = bed.world.host.exec_ok(&["nft", "list", "ruleset"]);
    assert!(ruleset.contains("8210"), "portmap got the runtime's portMappings through multus");
    let host_veth = result.interfaces.iter().find(|i| i.sandbox.is_none() && i.name != "mbr210").unwrap();
    let qdisc = bed.world.host.exec_ok(&["tc", "qdisc", "show", "dev", &host_veth.name]);
    assert!(qdisc.contains("tbf"), "bandwidth got its capability: {qdisc}");
    bed.world.runtime.del(&net, &rt).unwrap();
    assert!(links(&pod).is_empty());
    assert!(!bed.world.host.exec_ok(&["nft", "list", "ruleset"]).contains("8210"));
    // The second `00-multus.conf` of the notes: type multus-shim and clusterNetwork as a path.
    let list = bed.dir().join("10-k8s.conflist");
    std::fs::write(&list, conf["delegates"][0].to_string()).unwrap();
    let shim = conf_list(&json!({"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "multus-shim",
        "capabilities": {"bandwidth": true, "portMappings": true}, "clusterNetwork": list, "cniDir": bed.path("multus")}));
    bed.world.add(&shim, &rt);
    assert_eq!(links(&pod), ["eth0"]);
    bed.world.runtime.del(&shim, &rt).unwrap();
    assert_eq!(bed.reservations(), Vec::<String>::new());
}
