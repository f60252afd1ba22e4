//! The bridge plugin's configuration: the reference plugin's options, validated up front so
//! a bad config fails before anything is touched.

use cni_skel::CmdArgs;
use cni_spec::{Error, NetConf};
use serde::Deserialize;

use crate::delegate::has_ipam;
use crate::mac::{self, MacField};
use crate::masq::{self, Backend};

/// The bridge used when the config names none.
pub const DEFAULT_BRIDGE: &str = "cni0";

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Raw {
    bridge: Option<String>,
    is_gateway: bool,
    is_default_gateway: bool,
    force_address: bool,
    ip_masq: bool,
    ip_masq_backend: Option<String>,
    mtu: Option<u32>,
    hairpin_mode: bool,
    promisc_mode: bool,
    vlan: i64,
    vlan_trunk: Option<Vec<VlanTrunk>>,
    preserve_default_vlan: bool,
    #[serde(rename = "macspoofchk")]
    mac_spoof_chk: bool,
    spoofchk: bool,
    #[serde(rename = "enabledad")]
    enable_dad: bool,
    disable_container_interface: bool,
    port_isolation: bool,
    args: Option<ArgsField>,
    runtime_config: Option<MacField>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct ArgsField {
    cni: Option<MacField>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct VlanTrunk {
    #[serde(rename = "minID")]
    pub min_id: Option<i64>,
    #[serde(rename = "maxID")]
    pub max_id: Option<i64>,
    pub id: Option<i64>,
}

/// A validated bridge config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeConf {
    pub network: String,
    pub bridge: String,
    pub is_gateway: bool,
    pub is_default_gateway: bool,
    pub force_address: bool,
    pub ip_masq: Option<Backend>,
    pub mtu: Option<u32>,
    pub hairpin: bool,
    pub promisc: bool,
    pub vlan: u16,
    pub vlan_trunk: Vec<u16>,
    pub preserve_default_vlan: bool,
    pub mac_spoof_check: bool,
    /// `spoofchk` (twill): MAC, IP, ARP and NDP spoof protection (crate::guard).
    pub spoof_check: bool,
    pub dad: bool,
    pub disable_container_interface: bool,
    pub port_isolation: bool,
    pub mac: Option<[u8; 6]>,
    pub has_ipam: bool,
}

impl BridgeConf {
    /// A plain config (bridge `cni0`, IPAM, nothing else) for unit tests to adjust.
    #[cfg(test)]
    pub fn for_tests() -> BridgeConf {
        BridgeConf {
            network: "n".into(),
            bridge: DEFAULT_BRIDGE.into(),
            is_gateway: false,
            is_default_gateway: false,
            force_address: false,
            ip_masq: None,
            mtu: None,
            hairpin: false,
            promisc: false,
            vlan: 0,
            vlan_trunk: vec![],
            preserve_default_vlan: false,
            mac_spoof_check: false,
            spoof_check: false,
            dad: false,
            disable_container_interface: false,
            port_isolation: false,
            mac: None,
            has_ipam: true,
        }
    }

    /// Reads and validates; the MAC comes from CNI_ARGS `MAC=`, then `args.cni.mac`, then
    /// runtimeConfig `mac` (later wins, as in the reference).
    pub fn parse(conf: &NetConf, args: &CmdArgs) -> Result<BridgeConf, Error> {
        let raw: Raw = conf.plugin_conf()?;
        let has_ipam = has_ipam(conf);
        if raw.spoofchk && !has_ipam {
            return Err(Error::invalid_config(
                "spoofchk needs an \"ipam\" section: it allows the pod's addresses only",
            ));
        }
        if has_ipam && raw.disable_container_interface {
            return Err(Error::invalid_config("cannot use IPAM when disableContainerInterface is set"));
        }
        if raw.hairpin_mode && raw.promisc_mode {
            return Err(Error::invalid_config("cannot set hairpinMode and promiscMode at the same time"));
        }
        if !(0..=4094).contains(&raw.vlan) {
            return Err(Error::invalid_config(format!(
                "invalid VLAN ID {} (must be between 0 and 4094)",
                raw.vlan
            )));
        }
        let bridge = raw.bridge.filter(|b| !b.is_empty()).unwrap_or_else(|| DEFAULT_BRIDGE.to_string());
        cni_spec::validate_ifname(&bridge)
            .map_err(|e| Error::invalid_config(format!("bridge: {}", e.msg)))?;
        let mac_text = mac::last_given([
            args.arg("MAC").map(str::to_string),
            raw.args.and_then(|a| a.cni).and_then(|c| c.mac),
            raw.runtime_config.and_then(|r| r.mac),
        ]);
        let mac = mac_text.as_deref().map(mac::parse).transpose()?;
        Ok(BridgeConf {
            network: conf.name.clone(),
            bridge,
            is_gateway: raw.is_gateway || raw.is_default_gateway,
            is_default_gateway: raw.is_default_gateway,
            force_address: raw.force_address,
            ip_masq: masq::configured(raw.ip_masq, raw.ip_masq_backend.as_deref())?,
            mtu: raw.mtu.filter(|m| *m != 0),
            hairpin: raw.hairpin_mode,
            promisc: raw.promisc_mode,
            vlan: raw.vlan as u16,
            vlan_trunk: collect_trunk(raw.vlan_trunk.as_deref().unwrap_or_default())?,
            preserve_default_vlan: raw.preserve_default_vlan,
            mac_spoof_check: raw.mac_spoof_chk,
            spoof_check: raw.spoofchk,
            dad: raw.enable_dad,
            disable_container_interface: raw.disable_container_interface,
            port_isolation: raw.port_isolation,
            mac,
            has_ipam,
        })
    }

    /// Whether VLAN filtering on the bridge is needed.
    pub fn uses_vlans(&self) -> bool {
        self.vlan != 0 || !self.vlan_trunk.is_empty()
    }
}

/// The VLAN ids of `vlanTrunk` (`id`, or `minID`..=`maxID`), each 1–4094, sorted, unique.
pub fn collect_trunk(trunk: &[VlanTrunk]) -> Result<Vec<u16>, Error> {
    let check = |id: i64| {
        if (1..=4094).contains(&id) {
            Ok(id as u16)
        } else {
            Err(Error::invalid_config(format!(
                "invalid VLAN ID {id} in vlanTrunk (must be between 1 and 4094)"
            )))
        }
    };
    let mut ids = Vec::new();
    for entry in trunk {
        match (entry.id, entry.min_id, entry.max_id) {
            (Some(id), _, _) => ids.push(check(id)?),
            (None, Some(min), Some(max)) if min <= max => {
                for id in min..=max {
                    ids.push(check(id)?);
                }
            }
            (None, Some(min), Some(max)) => {
                return Err(Error::invalid_config(format!(
                    "vlanTrunk minID {min} is greater than maxID {max}"
                )));
            }
            _ => {
                return Err(Error::invalid_config(
                    "vlanTrunk entries need \"id\" or both \"minID\" and \"maxID\"",
                ));
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{cmd_args as args, merged, net_conf};
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<BridgeConf, Error> {
        BridgeConf::parse(&net_conf(&v), &args(&[]))
    }

    fn base() -> serde_json::Value {
        json!({"cniVersion": "1.0.0", "name": "n", "type": "bridge", "ipam": {"type": "host-local"}})
    }

    #[test]
    fn defaults() {
        let c = parse(base()).unwrap();
        assert_eq!(c.bridge, "cni0");
        assert!(!c.is_gateway && c.ip_masq.is_none() && c.has_ipam);
        assert_eq!(c.mtu, None);
    }

    #[test]
    fn default_gateway_implies_gateway_and_masq_backend_defaults_to_nftables() {
        let mut v = base();
        v["isDefaultGateway"] = json!(true);
        v["ipMasq"] = json!(true);
        let c = parse(v).unwrap();
        assert!(c.is_gateway && c.is_default_gateway);
        assert_eq!(c.ip_masq, Some(Backend::Nftables));
    }

    #[test]
    fn bad_inputs_are_code_7() {
        let cases = [
            json!({"hairpinMode": true, "promiscMode": true}),
            json!({"vlan": 5000}),
            json!({"vlan": -1}),
            json!({"ipMasq": true, "ipMasqBackend": "ebtables"}),
            json!({"disableContainerInterface": true}),
            json!({"bridge": "a/b"}),
            json!({"mtu": "big"}),
            json!({"runtimeConfig": {"mac": "zz:00"}}),
            json!({"vlanTrunk": [{"minID": 10, "maxID": 5}]}),
            json!({"vlanTrunk": [{"id": 0}]}),
        ];
        for extra in cases {
            let v = merged(base(), &extra);
            let err = parse(v.clone()).expect_err(&v.to_string());
            assert_eq!(err.code.code(), 7, "{v}: {err}");
        }
    }

    #[test]
    fn mac_precedence_runtime_config_wins() {
        let mut v = base();
        v["args"] = json!({"cni": {"mac": "02:00:00:00:00:01"}});
        v["runtimeConfig"] = json!({"mac": "02:00:00:00:00:02"});
        let c = BridgeConf::parse(&net_conf(&v), &args(&[("MAC", "02:00:00:00:00:03")])).unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 2]));
        v["runtimeConfig"] = json!({});
        let c = BridgeConf::parse(&net_conf(&v), &args(&[("MAC", "02:00:00:00:00:03")])).unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 1]));
    }

    #[test]
    fn trunk_ranges() {
        let t = [
            VlanTrunk { id: Some(7), ..Default::default() },
            VlanTrunk { min_id: Some(3), max_id: Some(5), id: None },
        ];
        assert_eq!(collect_trunk(&t).unwrap(), vec![3, 4, 5, 7]);
    }
}
