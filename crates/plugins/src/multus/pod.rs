//! Which pod an ADD is for and what its annotations say. The pod is named by `CNI_ARGS`
//! (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`, as CRI runtimes pass them). Its annotations are the
//! runtime's when it passes them (`runtimeConfig` `io.kubernetes.cri.pod-annotations`, as
//! containerd does for plugins declaring that capability: they are what the kubelet knows of
//! the pod right now), else the operator's from the datastore (the pod's PodMeta).

use std::collections::BTreeMap;

use cni_skel::CmdArgs;
use cni_spec::{Error, NetConf};

use super::resolve::Cluster;
use crate::twill_pod::ANNOTATIONS_CAPABILITY;

/// The pod of an attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    /// Whether the runtime named it (else it is `default/CONTAINERID`, and has no record).
    pub known: bool,
}

impl Pod {
    pub fn qualified(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

pub fn identity(args: &CmdArgs) -> Pod {
    let non_empty = |k: &str| args.arg(k).filter(|v| !v.is_empty()).map(str::to_string);
    match (non_empty("K8S_POD_NAMESPACE"), non_empty("K8S_POD_NAME")) {
        (Some(namespace), Some(name)) => Pod { namespace, name, known: true },
        _ => Pod { namespace: "default".into(), name: args.container_id.clone(), known: false },
    }
}

/// The pod's annotations: the runtime's, else its PodMeta's, else none.
pub fn annotations(
    conf: &NetConf,
    pod: &Pod,
    cluster: &mut dyn Cluster,
) -> Result<BTreeMap<String, String>, Error> {
    if let Some(given) = cni_spec::runtime_config::<BTreeMap<String, String>>(conf, ANNOTATIONS_CAPABILITY)? {
        return Ok(given);
    }
    if !pod.known || !cluster.available() {
        return Ok(BTreeMap::new());
    }
    Ok(cluster.pod_annotations(&pod.namespace, &pod.name)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::super::resolve::fake::FakeCluster;
    use super::*;
    use cni_skel::Command;

    fn args(pairs: &[(&str, &str)]) -> CmdArgs {
        let mut a = CmdArgs::new(Command::Add);
        a.container_id = "c1".into();
        a.args = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        a
    }

    #[test]
    fn runtime_annotations_win_and_spare_the_datastore() {
        let pod = identity(&args(&[("K8S_POD_NAMESPACE", "x"), ("K8S_POD_NAME", "a")]));
        assert_eq!(pod, Pod { namespace: "x".into(), name: "a".into(), known: true });
        let mut cluster = FakeCluster { available: true, ..FakeCluster::default() };
        cluster.pods.insert(("x".into(), "a".into()), BTreeMap::from([("k".into(), "stored".into())]));
        let conf = |rc: &str| {
            NetConf::parse(format!(r#"{{"cniVersion":"1.0.0","name":"m","type":"multus"{rc}}}"#).as_bytes())
                .unwrap()
        };
        let given = annotations(
            &conf(r#","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k":"runtime"}}"#),
            &pod,
            &mut cluster,
        )
        .unwrap();
        assert_eq!((given["k"].as_str(), cluster.lookups), ("runtime", 0));
        let stored = annotations(&conf(""), &pod, &mut cluster).unwrap();
        assert_eq!((stored["k"].as_str(), cluster.lookups), ("stored", 1));
        let anonymous = identity(&args(&[]));
        assert_eq!((anonymous.qualified(), anonymous.known), ("default/c1".to_string(), false));
        assert!(annotations(&conf(""), &anonymous, &mut cluster).unwrap().is_empty());
        assert_eq!(cluster.lookups, 1, "a pod the runtime did not name has no record to read");
    }
}
