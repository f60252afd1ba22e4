//! Capability arguments (`runtimeConfig`: portMappings, bandwidth, ips, mac, ipRanges, the GC
//! attachment list) and per-plugin options, read by the real plugins' configuration parsers.
//! Input: NUL-separated plugin name (empty: all), CNI_ARGS, network config.
//!
//! Only verbs without effects run: STATUS (which parses the whole config) of the plugins
//! whose STATUS touches nothing, and `static`'s ADD (it keeps no state). No CNI_PATH is
//! given, so an IPAM delegate is never found, let alone executed.
#![no_main]

use cni_skel::{CmdArgs, Command};
use cni_spec::{
    Bandwidth, CniResult, NetConf, PortMapping, parse_cni_args, runtime_config, valid_attachments,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use twill_fuzz::{fields, text};

/// Plugins whose STATUS only reads its config (macvlan looks up its master on the host,
/// host-local looks at its data dir; both are left out).
const PURE_STATUS: [&str; 9] =
    ["bandwidth", "bridge", "firewall", "loopback", "portmap", "ptp", "sbr", "static", "tuning"];

fuzz_target!(|data: &[u8]| {
    let f = fields(data, 3);
    let Ok(conf) = NetConf::parse(f[2]) else { return };
    conventions(&conf);
    let raw_args = text(f[1]);
    let Ok(pairs) = parse_cni_args(&raw_args) else { return };
    let name = text(f[0]);
    let args = |command| CmdArgs {
        container_id: "fuzz".into(),
        ifname: "eth0".into(),
        args: pairs.clone(),
        raw_args: raw_args.clone(),
        stdin: f[2].to_vec(),
        ..CmdArgs::new(command)
    };
    for plugin_name in PURE_STATUS.iter().filter(|p| name.is_empty() || **p == name) {
        let plugin = plugins::plugin_by_name(plugin_name).expect("a known plugin");
        if let Err(e) = plugin.status(&args(Command::Status), &conf) {
            assert!(!e.msg.is_empty(), "{plugin_name}: error without message");
        }
    }
    if name.is_empty() || name == "static" {
        let plugin = plugins::plugin_by_name("static").expect("static exists");
        if let (Ok(result), Ok(version)) = (plugin.add(&args(Command::Add), &conf), conf.version()) {
            static_result(&result, version);
        }
    }
});

fn conventions(conf: &NetConf) {
    round_trip::<Vec<PortMapping>>(conf, "portMappings");
    round_trip::<Bandwidth>(conf, "bandwidth");
    round_trip::<Vec<String>>(conf, "ips");
    if let Ok(Some(list)) = valid_attachments(conf) {
        let again: Vec<cni_spec::Attachment> =
            serde_json::from_value(serde_json::to_value(&list).expect("serializes")).expect("reads back");
        assert_eq!(again, list);
    }
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(conf: &NetConf, key: &str) {
    if let Ok(Some(v)) = runtime_config::<T>(conf, key) {
        let again: T =
            serde_json::from_value(serde_json::to_value(&v).expect("serializes")).expect("reads back");
        assert_eq!(again, v, "runtimeConfig.{key} changed through JSON");
    }
}

/// static's ADD answers in the config's version whenever the result fits it.
fn static_result(result: &CniResult, version: cni_spec::Version) {
    match result.to_json(version) {
        Ok(json) => assert_eq!(
            &CniResult::from_json(&json).expect("reads back"),
            &result.convert(version).expect("converts")
        ),
        Err(e) => assert!(version.is_legacy_result(), "{e:?}"),
    }
}
