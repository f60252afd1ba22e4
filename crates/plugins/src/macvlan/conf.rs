//! The macvlan plugin's configuration: the reference plugin's options, validated up front so a
//! bad config fails before anything is touched. What needs the kernel (the master's existence
//! and MTU) is checked in `master.rs`.

use cni_skel::CmdArgs;
use cni_spec::{Error, NetConf};
use nl::MacvlanMode;
use serde::Deserialize;

use crate::delegate::has_ipam;
use crate::mac::{self, MacField};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Raw {
    master: Option<String>,
    mode: Option<String>,
    mtu: Option<i64>,
    mac: Option<String>,
    link_in_container: bool,
    #[serde(rename = "bcqueuelen")]
    bc_queue_len: Option<u32>,
    runtime_config: Option<MacField>,
    spoofchk: bool,
}

/// A validated macvlan config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacvlanConf {
    /// The parent link; `None` means the interface of the default route.
    pub master: Option<String>,
    pub mode: MacvlanMode,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    /// The master is looked up (and the macvlan created) inside the container's namespace.
    pub link_in_container: bool,
    pub bc_queue_len: Option<u32>,
    pub has_ipam: bool,
    /// `spoofchk`: the pod may send only from its own addresses (crate::guard, in the pod's
    /// namespace: macvlan traffic never crosses the node's hooks).
    pub spoof_check: bool,
}

impl MacvlanConf {
    /// Reads and validates; the MAC comes from `mac`, then CNI_ARGS `MAC=`, then runtimeConfig
    /// `mac` (later wins, as in the reference).
    pub fn parse(conf: &NetConf, args: &CmdArgs) -> Result<MacvlanConf, Error> {
        let raw: Raw = conf.plugin_conf()?;
        let master = raw.master.filter(|m| !m.is_empty());
        if let Some(m) = &master {
            cni_spec::validate_ifname(m).map_err(|e| Error::invalid_config(format!("master: {}", e.msg)))?;
        }
        let mtu = match raw.mtu {
            None | Some(0) => None,
            Some(m) => Some(u32::try_from(m).map_err(|_| {
                Error::invalid_config(format!("invalid MTU {m}: must be 0 (master's) or positive"))
            })?),
        };
        if raw.spoofchk && !has_ipam(conf) {
            return Err(Error::invalid_config(
                "spoofchk needs an \"ipam\" section: it allows the pod's addresses only",
            ));
        }
        let mac_text = mac::last_given([
            raw.mac,
            args.arg("MAC").map(str::to_string),
            raw.runtime_config.and_then(|r| r.mac),
        ]);
        Ok(MacvlanConf {
            master,
            mode: parse_mode(raw.mode.as_deref().unwrap_or_default())?,
            mtu,
            mac: mac_text.as_deref().map(parse_unicast_mac).transpose()?,
            link_in_container: raw.link_in_container,
            bc_queue_len: raw.bc_queue_len.filter(|n| *n != 0),
            has_ipam: has_ipam(conf),
            spoof_check: raw.spoofchk,
        })
    }
}

/// The reference's modes; `source` exists in the kernel but needs a MAC list the reference
/// has no option for, so it is refused like any unknown mode.
pub fn parse_mode(s: &str) -> Result<MacvlanMode, Error> {
    match s {
        "" | "bridge" => Ok(MacvlanMode::Bridge),
        "private" => Ok(MacvlanMode::Private),
        "vepa" => Ok(MacvlanMode::Vepa),
        "passthru" => Ok(MacvlanMode::Passthru),
        other => Err(Error::invalid_config(format!(
            "unknown macvlan mode {other:?}: expected bridge, private, vepa or passthru"
        ))),
    }
}

/// The mode's name in configs and messages.
pub fn mode_name(mode: MacvlanMode) -> &'static str {
    match mode {
        MacvlanMode::Bridge => "bridge",
        MacvlanMode::Private => "private",
        MacvlanMode::Vepa => "vepa",
        MacvlanMode::Passthru => "passthru",
        MacvlanMode::Source => "source",
    }
}

/// A MAC the kernel will accept on a macvlan: well-formed, not multicast, not all zero.
fn parse_unicast_mac(text: &str) -> Result<[u8; 6], Error> {
    let mac = mac::parse(text)?;
    if mac::is_multicast(&mac) || mac == [0; 6] {
        return Err(Error::invalid_config(format!(
            "MAC address {text} is not a unicast address (multicast bit set or all zero)"
        )));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{cmd_args as args, merged, net_conf as conf};
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<MacvlanConf, Error> {
        MacvlanConf::parse(&conf(&v), &args(&[]))
    }

    fn base() -> serde_json::Value {
        json!({"cniVersion": "1.0.0", "name": "mv", "type": "macvlan", "master": "eth0"})
    }

    #[test]
    fn defaults() {
        let c = parse(base()).unwrap();
        assert_eq!(c.master.as_deref(), Some("eth0"));
        assert_eq!(c.mode, MacvlanMode::Bridge);
        assert_eq!((c.mtu, c.mac, c.bc_queue_len), (None, None, None));
        assert!(!c.has_ipam && !c.link_in_container);
        let c = parse(json!({"cniVersion": "1.0.0", "name": "mv", "type": "macvlan", "master": ""})).unwrap();
        assert_eq!(c.master, None);
    }

    #[test]
    fn modes_round_trip() {
        for name in ["bridge", "private", "vepa", "passthru"] {
            assert_eq!(mode_name(parse_mode(name).unwrap()), name);
        }
    }

    #[test]
    fn bad_inputs_are_code_7() {
        let cases = [
            json!({"mode": "source"}),
            json!({"mode": "bridged"}),
            json!({"mtu": -1}),
            json!({"mtu": 1_i64 << 40}),
            json!({"mtu": "big"}),
            json!({"master": "a/b"}),
            json!({"master": "a-name-longer-than-15"}),
            json!({"mac": "zz:00:00:00:00:00"}),
            json!({"mac": "01:00:5e:00:00:01"}),
            json!({"mac": "00:00:00:00:00:00"}),
            json!({"runtimeConfig": {"mac": "02:00"}}),
            json!({"linkInContainer": "yes"}),
            json!({"bcqueuelen": -5}),
        ];
        for extra in cases {
            let v = merged(base(), &extra);
            let err = parse(v.clone()).expect_err(&v.to_string());
            assert_eq!(err.code.code(), 7, "{v}: {err}");
        }
    }

    #[test]
    fn mac_precedence_runtime_config_then_cni_args_then_conf() {
        let mut v = base();
        v["mac"] = json!("02:00:00:00:00:01");
        let c = MacvlanConf::parse(&conf(&v), &args(&[])).unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 1]));
        let c = MacvlanConf::parse(&conf(&v), &args(&[("MAC", "02:00:00:00:00:02")])).unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 2]));
        v["runtimeConfig"] = json!({"mac": "02:00:00:00:00:03"});
        let c = MacvlanConf::parse(&conf(&v), &args(&[("MAC", "02:00:00:00:00:02")])).unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 3]));
    }

    #[test]
    fn ipam_makes_it_layer_3() {
        let mut v = base();
        v["ipam"] = json!({"type": "host-local"});
        assert!(parse(v).unwrap().has_ipam);
    }
}
