//! The multus test bed: a fake host with twill's plugins (multus among them), a `data0`
//! master whose peer sits in a "wire" namespace holding the data network's gateway address,
//! a file datastore for NetworkAttachmentDefinitions and pods' annotations, and helpers to
//! build the multus config and look at what an attachment left behind.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use cluster::manifest::parse_manifests;
use cluster::{Datastore, DatastoreConf, EtcdTls, PodMeta, Registry};
use cni_exec::{LoadedList, RuntimeConf};
use cni_spec::NetConfList;
use serde_json::{Value, json};
use testkit::TestNs;

use crate::support::World;

pub const PLUGINS: [&str; 8] =
    ["multus", "multus-shim", "bridge", "host-local", "macvlan", "portmap", "bandwidth", "twill-pod"];

pub struct Bed {
    pub world: World,
    /// Holds the data network's far end (and its gateway address) while the bed lives.
    _wire: TestNs,
    /// Third octet base: the cluster network is 10.N.2.0/24, the data network 10.N.0.0/24.
    pub n: u8,
}

impl Bed {
    pub fn new(tag: &str, n: u8) -> Bed {
        let world = World::new(tag, &PLUGINS, &[]);
        let wire = TestNs::new(&format!("{tag}w"));
        world.host.exec_ok(&[
            "ip",
            "link",
            "add",
            "data0",
            "type",
            "veth",
            "peer",
            "name",
            "wire0",
            "netns",
            wire.name(),
        ]);
        world.host.exec_ok(&["ip", "link", "set", "data0", "up"]);
        wire.exec_ok(&["ip", "link", "set", "wire0", "up"]);
        wire.exec_ok(&["ip", "addr", "add", &format!("10.{n}.0.254/24"), "dev", "wire0"]);
        Bed { world, _wire: wire, n }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.world.dir
    }

    pub fn datastore_url(&self) -> String {
        format!("file:{}", self.dir().join("datastore").display())
    }

    pub fn store(&self) -> Arc<dyn Datastore> {
        DatastoreConf::parse(&self.datastore_url(), EtcdTls::default()).unwrap().open().unwrap()
    }

    /// The cluster network: twill's bridge with host-local, then twill-pod journalling.
    pub fn cluster_network(&self, version: &str) -> Value {
        json!({"cniVersion": version, "name": "twill", "plugins": [
            {"type": "bridge", "bridge": format!("mbr{}", self.n), "isGateway": true, "isDefaultGateway": true,
             "ipam": {"type": "host-local", "dataDir": self.path("ipam"), "ranges": [[{"subnet": format!("10.{}.2.0/24", self.n)}]]}},
            {"type": "twill-pod", "journalDir": self.path("journal")}
        ]})
    }

    pub fn path(&self, name: &str) -> String {
        self.dir().join(name).display().to_string()
    }

    /// A multus config over the cluster network, its datastore and caches in the bed.
    pub fn multus(&self, version: &str, extra: Value) -> LoadedList {
        let mut conf = json!({
            "cniVersion": version, "name": "multus-cni-network", "type": "multus",
            "delegates": [self.cluster_network(version)],
            "cniDir": self.path("multus"), "confDir": self.path("multus.d"),
            "datastore": self.datastore_url(),
            "capabilities": {"io.kubernetes.cri.pod-annotations": true},
            "logLevel": "debug", "logFile": self.path("multus.log"), "logToStderr": false,
        });
        conf.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        conf_list(&conf)
    }

    /// NetworkAttachmentDefinitions (and other objects) applied as `twill cluster apply`.
    pub fn apply(&self, yaml: &str) {
        cluster::ops::apply(self.store().as_ref(), &parse_manifests(yaml).unwrap()).unwrap();
    }

    /// The macvlan definition `x/data` on `data0` (host-local, accepting requested IPs) and
    /// the bridge definition `x/side`.
    pub fn definitions(&self) -> String {
        let n = self.n;
        format!(
            r#"
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {{name: data, namespace: x}}
spec:
  config: '{{"cniVersion": "1.0.0", "type": "macvlan", "master": "data0", "capabilities": {{"ips": true, "mac": true}},
    "ipam": {{"type": "host-local", "dataDir": "{dir}/ipam", "ranges": [[{{"subnet": "10.{n}.0.0/24", "rangeEnd": "10.{n}.0.200"}}]]}}}}'
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {{name: side, namespace: x}}
spec:
  config: '{{"cniVersion": "1.0.0", "name": "side", "plugins": [{{"type": "bridge", "bridge": "sbr{n}",
    "ipam": {{"type": "host-local", "dataDir": "{dir}/ipam", "subnet": "10.{n}.1.0/24"}}}}]}}'
"#,
            dir = self.dir().display()
        )
    }

    /// The pod's PodMeta, with `annotations`.
    pub fn pod_meta(&self, ns: &str, name: &str, annotations: &[(&str, &str)]) {
        let meta = PodMeta {
            namespace: ns.into(),
            name: name.into(),
            annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..PodMeta::default()
        };
        Registry::new(self.store().as_ref()).put_pod_meta(&meta).unwrap();
    }

    /// The runtime's view of pod `ns/name` in `netns` (CNI_ARGS as CRI runtimes pass them).
    pub fn rt(&self, ns: &str, name: &str, pod: &TestNs) -> RuntimeConf {
        let mut rt = self.world.rt(&format!("{ns}_{name}"), pod);
        rt.args = vec![
            ("IgnoreUnknown".into(), "1".into()),
            ("K8S_POD_NAMESPACE".into(), ns.into()),
            ("K8S_POD_NAME".into(), name.into()),
        ];
        rt
    }

    /// The same, with annotations the runtime passes (as containerd does).
    pub fn rt_annotated(
        &self,
        ns: &str,
        name: &str,
        pod: &TestNs,
        annotations: &[(&str, &str)],
    ) -> RuntimeConf {
        let mut rt = self.rt(ns, name, pod);
        let map: BTreeMap<&str, &str> = annotations.iter().copied().collect();
        rt.capability_args.insert("io.kubernetes.cri.pod-annotations".into(), json!(map));
        rt
    }

    /// Files left in a directory of the bed (recursively), sorted.
    pub fn files(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.dir().join(name), &mut out);
        out.sort();
        out
    }

    /// Reservations host-local still holds, in every network.
    pub fn reservations(&self) -> Vec<String> {
        self.files("ipam")
            .into_iter()
            .filter(|f| !f.ends_with("/lock") && !f.contains("last_reserved_ip"))
            .collect()
    }

    pub fn journal(&self) -> Vec<cluster::attachment::Attachment> {
        cluster::attachment::Journal::new(self.dir().join("journal")).list().unwrap()
    }
}

fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p: PathBuf = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p.display().to_string());
        }
    }
}

/// A single-plugin config as a runtime loads a `.conf` file.
pub fn conf_list(conf: &Value) -> LoadedList {
    let bytes = serde_json::to_vec(conf).unwrap();
    LoadedList {
        list: NetConfList::from_conf(&bytes).unwrap(),
        bytes,
        source: PathBuf::from("00-multus.conf"),
    }
}

/// Interface names inside `ns`, loopback left out.
pub fn links(ns: &TestNs) -> Vec<String> {
    let mut names: Vec<String> =
        ns.handle().link_list().unwrap().into_iter().map(|l| l.name).filter(|n| n != "lo").collect();
    names.sort();
    names
}
