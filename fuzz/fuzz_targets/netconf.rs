//! Network configurations (stdin of every plugin) and configuration lists (`.conflist` and
//! legacy `.conf` files a runtime loads): no panic, and what parses survives its own output.
#![no_main]

use cni_spec::{ErrorCode, NetConf, NetConfList, Version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(conf) = NetConf::parse(data) {
        net_conf(&conf);
    }
    if let Ok(list) = NetConfList::parse(data) {
        conf_list(&list);
    }
    if let Ok(list) = NetConfList::from_conf(data) {
        assert_eq!(list.plugins.len(), 1);
        conf_list(&list);
    }
});

fn net_conf(conf: &NetConf) {
    let again = NetConf::parse(&conf.to_bytes()).expect("a parsed config re-parses from its own bytes");
    assert_eq!(&again, conf, "config changed through to_bytes");
    let _ = conf.ipam_type();
    let (Ok(version), Ok(Some(prev))) = (conf.version(), conf.prev_result()) else { return };
    // prevResult written back in the config's version reads as the result converted to it.
    let mut with_prev = conf.clone();
    match with_prev.set_prev_result(&prev) {
        Ok(()) => {
            let back = with_prev.prev_result().expect("prevResult written by us reads back");
            assert_eq!(back, Some(prev.convert(version).expect("convert succeeds where to_json did")));
        }
        Err(e) => assert!(version.is_legacy_result(), "only 0.1.0/0.2.0 can refuse a result: {e:?}"),
    }
}

fn conf_list(list: &NetConfList) {
    assert!(!list.name.is_empty() && !list.plugins.is_empty());
    for supported in [&Version::ALL[..], &Version::ALL[..1], &Version::ALL[3..]] {
        let Ok(version) = list.negotiate(supported) else { continue };
        assert!(supported.contains(&version));
        for i in 0..list.plugins.len() {
            let map = list.plugin_conf(i, version).expect("every plugin index has a config");
            // Each plugin has a non-empty string type, so the runtime never sends a config
            // the plugin would reject as "missing type" (code 7); other fields may be of the
            // wrong type (code 6).
            match NetConf::from_map(map) {
                Ok(conf) => {
                    assert_eq!(conf.version().ok(), Some(version));
                    assert_eq!(conf.name, list.name);
                }
                Err(e) => assert_eq!(e.code, ErrorCode::Decode, "{e:?}"),
            }
        }
        assert!(list.plugin_conf(list.plugins.len(), version).is_none());
    }
}
