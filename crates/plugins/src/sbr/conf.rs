//! The sbr plugin's configuration, validated up front.

use std::net::IpAddr;

use cni_spec::{Error, NetConf};
use serde::Deserialize;

/// The first table the reference tries when `table` is not given.
pub const FIRST_TABLE: u32 = 100;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Raw {
    table: Option<i64>,
    gateways: Option<Vec<String>>,
    add_source_hints: bool,
}

/// A validated configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SbrConf {
    /// A fixed table: only the rules are added, its routes are the administrator's.
    pub table: Option<u32>,
    /// Static gateways, at most one per family, used instead of prevResult's.
    pub gateways: Vec<IpAddr>,
    /// Keep the subnet routes in the main table with the pod address as source hint.
    pub add_source_hints: bool,
}

impl SbrConf {
    pub fn parse(conf: &NetConf) -> Result<SbrConf, Error> {
        let raw: Raw = conf.plugin_conf()?;
        let table = raw.table.map(check_table).transpose()?;
        let texts = raw.gateways.unwrap_or_default();
        if texts.len() > 2 {
            return Err(Error::invalid_config("sbr: gateways holds at most one IPv4 and one IPv6 address"));
        }
        let mut gateways: Vec<IpAddr> = Vec::new();
        for text in &texts {
            let ip: IpAddr = text
                .parse()
                .map_err(|_| Error::invalid_config(format!("sbr: invalid gateway address {text:?}")))?;
            if let Some(other) = gateways.iter().find(|g| g.is_ipv4() == ip.is_ipv4()) {
                return Err(Error::invalid_config(format!(
                    "sbr: gateways holds two addresses of one family: {other} and {ip}"
                )));
            }
            gateways.push(ip);
        }
        Ok(SbrConf { table, gateways, add_source_hints: raw.add_source_hints })
    }

    /// The static gateway of `ip`'s family, if any.
    pub fn gateway_for(&self, ip: IpAddr) -> Option<IpAddr> {
        self.gateways.iter().copied().find(|g| g.is_ipv4() == ip.is_ipv4())
    }
}

/// Table ids the kernel reserves (unspec, default, main, local) are refused.
fn check_table(t: i64) -> Result<u32, Error> {
    match u32::try_from(t) {
        Ok(t) if !matches!(t, 0 | 253..=255) => Ok(t),
        _ => Err(Error::invalid_config(format!(
            "sbr: table {t} is not usable (1..2^32-1 without the reserved 253, 254 and 255)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{merged, net_conf};
    use serde_json::{Value, json};

    fn parse(v: Value) -> Result<SbrConf, Error> {
        let base = json!({"cniVersion": "1.0.0", "name": "n", "type": "sbr"});
        SbrConf::parse(&net_conf(&merged(base, &v)))
    }

    #[test]
    fn options() {
        assert_eq!(parse(json!({})).unwrap(), SbrConf::default());
        let c = parse(json!({"table": 500, "gateways": ["10.0.0.1", "fd00::1"], "addSourceHints": true}))
            .unwrap();
        assert_eq!(c.table, Some(500));
        assert!(c.add_source_hints);
        assert_eq!(c.gateway_for("10.9.9.9".parse().unwrap()), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(c.gateway_for("fd00::9".parse().unwrap()), Some("fd00::1".parse().unwrap()));
    }

    #[test]
    fn bad_options_are_code_7() {
        for bad in [
            json!({"table": -1}),
            json!({"table": 254}),
            json!({"table": 0}),
            json!({"table": 5_000_000_000u64}),
            json!({"table": "100"}),
            json!({"gateways": ["10.0.0.1", "10.0.0.2"]}),
            json!({"gateways": ["nope"]}),
            json!({"gateways": ["10.0.0.1", "fd00::1", "10.0.0.3"]}),
        ] {
            assert_eq!(parse(bad.clone()).unwrap_err().code.code(), 7, "{bad}");
        }
    }
}
