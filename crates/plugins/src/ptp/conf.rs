//! The ptp plugin's configuration: the reference plugin's options (`ipMasq`, `ipMasqBackend`,
//! `mtu`, `dns`, `ipam`) and twill's `spoofchk`, validated before anything is touched.

use cni_spec::{Error, NetConf};
use serde::Deserialize;

use crate::delegate::has_ipam;
use crate::masq::{self, Backend};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Raw {
    ip_masq: bool,
    ip_masq_backend: Option<String>,
    mtu: Option<u32>,
    spoofchk: bool,
}

/// A validated ptp config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PtpConf {
    pub network: String,
    pub ip_masq: Option<Backend>,
    pub mtu: Option<u32>,
    /// `spoofchk`: the pod may send only from its own addresses (crate::guard).
    pub spoof_check: bool,
}

impl PtpConf {
    /// Reads and validates. ptp has no layer-2 mode: without an `ipam` section there is
    /// nothing to route, so that is a config error (the reference fails the same way, later).
    pub fn parse(conf: &NetConf) -> Result<PtpConf, Error> {
        let raw: Raw = conf.plugin_conf()?;
        if !has_ipam(conf) {
            return Err(Error::invalid_config("ptp needs an \"ipam\" section with a \"type\""));
        }
        Ok(PtpConf {
            network: conf.name.clone(),
            ip_masq: masq::configured(raw.ip_masq, raw.ip_masq_backend.as_deref())?,
            mtu: raw.mtu.filter(|m| *m != 0),
            spoof_check: raw.spoofchk,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{merged, net_conf};
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<PtpConf, Error> {
        PtpConf::parse(&net_conf(&v))
    }

    fn base() -> serde_json::Value {
        json!({"cniVersion": "1.0.0", "name": "p2p", "type": "ptp", "ipam": {"type": "host-local"}})
    }

    #[test]
    fn defaults() {
        let c = parse(base()).unwrap();
        assert_eq!(c, PtpConf { network: "p2p".into(), ip_masq: None, mtu: None, spoof_check: false });
    }

    #[test]
    fn masq_backend_and_mtu() {
        let mut v = base();
        v["ipMasq"] = json!(true);
        v["ipMasqBackend"] = json!("iptables");
        v["mtu"] = json!(1400);
        let c = parse(v).unwrap();
        assert_eq!((c.ip_masq, c.mtu), (Some(Backend::Iptables), Some(1400)));
    }

    #[test]
    fn bad_inputs_are_code_7() {
        let cases = [
            json!({"ipam": null}),
            json!({"ipam": {"type": ""}}),
            json!({"ipMasq": true, "ipMasqBackend": "pf"}),
            json!({"mtu": -1}),
            json!({"mtu": "big"}),
            json!({"ipMasq": "yes"}),
        ];
        for extra in cases {
            let v = merged(base(), &extra);
            let err = parse(v.clone()).expect_err(&v.to_string());
            assert_eq!(err.code.code(), 7, "{v}: {err}");
        }
    }
}
