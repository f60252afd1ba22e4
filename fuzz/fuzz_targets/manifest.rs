//! Kubernetes manifests: `twill lab apply|delete -f` (YAML streams of NetworkPolicy,
//! Namespace and List) and JSON objects. Beyond no panic: the lab's reader accepts exactly
//! what the policy decoder accepts, and every policy it stores reads back (as twilld reads
//! the record) as the very policy that was validated.
#![no_main]

use libfuzzer_sys::fuzz_target;
use policy::{Object, parse_policy_spec, parse_value, parse_yaml};
use twill_fuzz::manifest::{Manifest, parse_manifests};

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
        (Ok(_), Err(e)) => panic!("validated but not storable: {e:#}"),
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
        (Object::Namespace(ns), Manifest::Namespace(r)) => {
            assert_eq!(ns.name, r.name);
            assert_eq!(ns.labels, r.labels);
        }
        _ => panic!("objects and records out of order"),
    }
}
