//! Network configuration lists.

use cni_spec::{ErrorCode, NetConfList, Version};
use serde_json::json;

fn parse(v: serde_json::Value) -> Result<NetConfList, cni_spec::Error> {
    NetConfList::parse(v.to_string().as_bytes())
}

fn list() -> serde_json::Value {
    json!({
        "cniVersion": "1.0.0",
        "cniVersions": ["0.3.1", "1.1.0"],
        "name": "podnet",
        "disableCheck": true,
        "disableGC": "TRUE",
        "loadOnlyInlinedPlugins": false,
        "plugins": [
            {"type": "bridge", "bridge": "cni0", "ipam": {"type": "host-local"}},
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ],
        "x-extra": 1
    })
}

#[test]
fn parses_all_fields() {
    let l = parse(list()).unwrap();
    assert_eq!(l.cni_version, "1.0.0");
    assert_eq!(l.cni_versions, ["0.3.1", "1.1.0"]);
    assert_eq!(l.name, "podnet");
    assert!(l.disable_check && l.disable_gc && !l.load_only_inlined_plugins);
    assert_eq!(l.plugins.len(), 2);
    assert_eq!(l.plugins[1]["type"], "portmap");
    assert_eq!(l.raw.get("x-extra"), Some(&json!(1)));
}

#[test]
fn negotiates_the_highest_common_version() {
    let l = parse(list()).unwrap();
    assert_eq!(l.negotiate(&Version::ALL).unwrap(), Version::V1_1_0);
    assert_eq!(l.negotiate(&[Version::V0_3_1, Version::V1_0_0]).unwrap(), Version::V1_0_0);
    assert_eq!(l.negotiate(&[Version::V0_3_1]).unwrap(), Version::V0_3_1);
    let err = l.negotiate(&[Version::V0_4_0]).unwrap_err();
    assert_eq!(err.code, ErrorCode::IncompatibleVersion);
}

#[test]
fn negotiation_ignores_future_versions_and_defaults_to_0_1_0() {
    let l =
        parse(json!({"name": "n", "cniVersions": ["3.0.0", "0.4.0"], "plugins": [{"type": "x"}]})).unwrap();
    assert_eq!(l.negotiate(&Version::ALL).unwrap(), Version::V0_4_0);
    let bare = parse(json!({"name": "n", "plugins": [{"type": "x"}]})).unwrap();
    assert_eq!(bare.negotiate(&Version::ALL).unwrap(), Version::V0_1_0);
}

#[test]
fn flags_default_to_false_and_accept_strings() {
    let l = parse(json!({"name": "n", "plugins": [{"type": "x"}]})).unwrap();
    assert!(!l.disable_check && !l.disable_gc && !l.load_only_inlined_plugins);
    let l =
        parse(json!({"name": "n", "disableCheck": "False", "disableGC": false, "plugins": [{"type": "x"}]}))
            .unwrap();
    assert!(!l.disable_check && !l.disable_gc);
}

#[test]
fn plugin_conf_injects_name_and_version() {
    let l = parse(list()).unwrap();
    let conf = l.plugin_conf(1, Version::V1_1_0).unwrap();
    assert_eq!(conf["name"], "podnet");
    assert_eq!(conf["cniVersion"], "1.1.0");
    assert_eq!(conf["capabilities"], json!({"portMappings": true}));
    assert_eq!(l.plugin_conf(2, Version::V1_1_0), None);
}

#[test]
fn bad_lists_and_their_codes() {
    let cases = [
        (json!([]), ErrorCode::Decode, "JSON object"),
        (json!({"plugins": [{"type": "x"}]}), ErrorCode::InvalidConfig, "name"),
        (json!({"name": "", "plugins": [{"type": "x"}]}), ErrorCode::InvalidConfig, "name"),
        (json!({"name": 3, "plugins": [{"type": "x"}]}), ErrorCode::Decode, "'name'"),
        (json!({"name": "n"}), ErrorCode::InvalidConfig, "plugins"),
        (json!({"name": "n", "plugins": []}), ErrorCode::InvalidConfig, "no plugins"),
        (json!({"name": "n", "plugins": {}}), ErrorCode::Decode, "'plugins'"),
        (json!({"name": "n", "plugins": ["bridge"]}), ErrorCode::Decode, "plugin 0"),
        (json!({"name": "n", "plugins": [{"type": "x"}, {}]}), ErrorCode::InvalidConfig, "plugin 1"),
        (json!({"name": "n", "plugins": [{"type": ""}]}), ErrorCode::InvalidConfig, "plugin 0"),
        (json!({"name": "n", "plugins": [{"type": 1}]}), ErrorCode::Decode, "plugin 0"),
        (json!({"name": "n", "cniVersion": 1, "plugins": [{"type": "x"}]}), ErrorCode::Decode, "cniVersion"),
        (
            json!({"name": "n", "cniVersions": "1.0.0", "plugins": [{"type": "x"}]}),
            ErrorCode::Decode,
            "cniVersions",
        ),
        (json!({"name": "n", "cniVersions": [1], "plugins": [{"type": "x"}]}), ErrorCode::Decode, "entry 0"),
        (
            json!({"name": "n", "disableCheck": "yes", "plugins": [{"type": "x"}]}),
            ErrorCode::InvalidConfig,
            "disableCheck",
        ),
        (json!({"name": "n", "disableGC": 1, "plugins": [{"type": "x"}]}), ErrorCode::Decode, "disableGC"),
    ];
    for (input, code, needle) in cases {
        let err = parse(input.clone()).unwrap_err();
        assert_eq!(err.code, code, "{input}: {err}");
        assert!(err.msg.contains(needle), "{input}: {err}");
    }
    assert_eq!(NetConfList::parse(b"{").unwrap_err().code, ErrorCode::Decode);
}

#[test]
fn from_conf_wraps_a_single_plugin() {
    let conf = json!({"cniVersion": "0.3.1", "name": "legacy", "type": "bridge", "bridge": "br0"});
    let l = NetConfList::from_conf(conf.to_string().as_bytes()).unwrap();
    assert_eq!((l.name.as_str(), l.cni_version.as_str()), ("legacy", "0.3.1"));
    assert_eq!(l.plugins, vec![conf.as_object().unwrap().clone()]);
    assert_eq!(l.raw["plugins"][0], conf);
    assert!(!l.disable_check);
    assert_eq!(l.negotiate(&Version::ALL).unwrap(), Version::V0_3_1);
    let reparsed = NetConfList::parse(&serde_json::to_vec(&l.raw).unwrap()).unwrap();
    assert_eq!(reparsed, l);
}

#[test]
fn from_conf_errors() {
    let no_type = NetConfList::from_conf(br#"{"name": "n"}"#).unwrap_err();
    assert_eq!(no_type.code, ErrorCode::InvalidConfig);
    let no_name = NetConfList::from_conf(br#"{"type": "x"}"#).unwrap_err();
    assert_eq!(no_name.code, ErrorCode::InvalidConfig);
    assert_eq!(NetConfList::from_conf(b"[]").unwrap_err().code, ErrorCode::Decode);
}
