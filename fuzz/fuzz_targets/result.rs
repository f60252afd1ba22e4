//! ADD results of every spec version (a plugin's stdout, a chained plugin's `prevResult`, the
//! runtime's cache) and their conversion. Beyond no panic:
//! - a result converted to a version is a fixpoint of converting to it again;
//! - conversion keeps every address (with its gateway) and every route (dst, gw), and the
//!   DNS settings, or refuses (0.1.0/0.2.0 only);
//! - what is written in a version reads back, through JSON text, as the converted result;
//! - 1.1.0 holds everything the model has.
#![no_main]

use cni_spec::{CniResult, Version};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    if let Ok(r) = CniResult::from_json(&value) {
        check(&r);
    }
    for version in Version::ALL {
        if let Ok(r) = CniResult::from_json_as(&value, version) {
            assert_eq!(r.cni_version, version);
            check(&r);
        }
    }
});

fn check(r: &CniResult) {
    let latest = r.convert(Version::V1_1_0).expect("every result converts to 1.1.0");
    assert_eq!(latest, CniResult { cni_version: Version::V1_1_0, ..r.clone() }, "1.1.0 lost something");
    for version in Version::ALL {
        let converted = match r.convert(version) {
            Ok(c) => c,
            Err(e) => {
                assert!(version.is_legacy_result(), "only 0.1.0/0.2.0 refuse a result: {e:?}");
                continue;
            }
        };
        assert_eq!(converted.cni_version, version);
        assert_eq!(converted.convert(version).expect("converts again"), converted, "not a fixpoint");
        assert_eq!(addresses(&converted), addresses(r), "addresses changed converting to {version}");
        assert_eq!(routes(&converted), routes(r), "routes changed converting to {version}");
        assert_eq!(converted.dns, r.dns, "dns changed converting to {version}");
        let text = serde_json::to_string(&converted.to_json(version).expect("to_json after convert"))
            .expect("results serialize");
        let reread: Value = serde_json::from_str(&text).expect("our JSON parses");
        assert_eq!(CniResult::from_json(&reread).expect("our JSON reads by its own cniVersion"), converted);
    }
}

fn addresses(r: &CniResult) -> Vec<String> {
    let mut v: Vec<String> = r.ips.iter().map(|i| format!("{} {:?}", i.address, i.gateway)).collect();
    v.sort();
    v
}

fn routes(r: &CniResult) -> Vec<String> {
    let mut v: Vec<String> = r.routes.iter().map(|x| format!("{} {:?}", x.dst, x.gw)).collect();
    v.sort();
    v
}
