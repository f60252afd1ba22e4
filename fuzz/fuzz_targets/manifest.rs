//! Kubernetes manifests: `twill cluster apply|delete -f` and the lab's wrappers (YAML or JSON
//! streams of NetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy, Namespace, Pod
//! and List). Beyond no panic: the cluster's reader accepts exactly what the policy decoder
//! accepts, and every object it stores reads back (as twilld reads the record) as the very
//! object that was validated.
#![no_main]

use cluster::manifest::{Manifest, parse_manifests};
use libfuzzer_sys::fuzz_target;
use policy::{Object, parse_admin_spec, parse_policy_spec, parse_value, parse_yaml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let decoded = parse_yaml(text);
    let stored = parse_manifests(text);
    match (&decoded, &stored) {
        (Ok(objects), Ok(records)) => {
            assert_eq!(objects.len(), records.len());
            objects.iter().zip(records).for_each(|(o, r)| same(o, r));
        }
        (Err(_), Err(_)) => {}
        (Ok(_), Err(e)) => panic!("validated but not storable: {e}"),
        (Err(e), Ok(_)) => panic!("stored but not valid: {e}"),
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = parse_value(&value);
    }
});

fn same(object: &Object, record: &Manifest) {
    match (object, record) {
        (Object::NetworkPolicy(p), Manifest::Policy(r)) => {
            let back = parse_policy_spec(&r.namespace, &r.name, &r.spec).expect("a stored policy reads back");
            assert_eq!(&back, p, "stored policy reads back as another policy");
        }
        (Object::AdminPolicy(p), Manifest::AdminPolicy(tier, r)) => {
            let back = parse_admin_spec(*tier, &r.name, &r.spec).expect("a stored admin policy reads back");
            assert_eq!(&back, p, "stored admin policy reads back as another policy");
        }
        (Object::Namespace(ns), Manifest::Namespace(r)) => {
            assert_eq!(ns.name, r.name);
            assert_eq!(ns.labels, r.labels);
        }
        (Object::Pod(p), Manifest::Pod(r)) => {
            assert_eq!((&p.namespace, &p.name, &p.labels), (&r.namespace, &r.name, &r.labels));
            assert_eq!(p.annotations, r.annotations);
            let named: Vec<(&str, u16)> = p.ports.iter().map(|n| (n.name.as_str(), n.port)).collect();
            let stored: Vec<(&str, u16)> = r.ports.iter().map(|n| (n.name.as_str(), n.port)).collect();
            assert_eq!(named, stored);
        }
        _ => panic!("objects and records out of order"),
    }
}
