//! The tuning plugin's configuration: the static options, overridden as in the reference by
//! CNI_ARGS `MAC`, `runtimeConfig.mac` and `args.cni.*` (later wins; `args.cni.sysctl`
//! merges into `sysctl`). Everything is validated before the container is touched.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use cni_skel::CmdArgs;
use cni_spec::{Error, NetConf};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::mac::{self, MacField};

/// Where backups of changed link attributes live unless `dataDir` says otherwise.
pub const DEFAULT_DATA_DIR: &str = "/run/cni/tuning";

/// A validated configuration for one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TuningConf {
    pub data_dir: PathBuf,
    /// (key as configured, value), in key order.
    pub sysctl: Vec<(String, String)>,
    pub mac: Option<[u8; 6]>,
    /// Only `true` changes anything, as in the reference.
    pub promisc: bool,
    pub mtu: Option<u32>,
    pub txqlen: Option<u32>,
    pub allmulti: Option<bool>,
}

impl TuningConf {
    /// Whether a link attribute is to change (and so needs a backup).
    pub fn changes_link(&self) -> bool {
        self.mac.is_some()
            || self.promisc
            || self.mtu.is_some()
            || self.txqlen.is_some()
            || self.allmulti.is_some()
    }
}

/// A JSON object whose keys must be unique: the reference rejects duplicated sysctl keys,
/// which a parsed configuration no longer shows, so the raw stdin is read once more.
#[derive(Clone, Debug, Default)]
struct UniqueMap;

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of sysctl names to string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueMap, A::Error> {
                let mut seen = std::collections::BTreeSet::new();
                while let Some((k, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                    if !seen.insert(k.clone()) {
                        return Err(serde::de::Error::custom(format!("duplicated sysctl key {k:?}")));
                    }
                }
                Ok(UniqueMap)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SysctlKeys {
    sysctl: Option<UniqueMap>,
    args: Option<Box<SysctlArgs>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct SysctlArgs {
    cni: Option<SysctlKeys>,
}

fn reject_duplicate_keys(stdin: &[u8]) -> Result<(), Error> {
    if stdin.is_empty() {
        return Ok(());
    }
    serde_json::from_slice::<SysctlKeys>(stdin)
        .map(drop)
        .map_err(|e| Error::invalid_config(format!("tuning: {e}")))
}

/// The fields that may appear at the top level and again in `args.cni`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Fields {
    sysctl: Option<BTreeMap<String, String>>,
    mac: Option<String>,
    promisc: Option<bool>,
    mtu: Option<i64>,
    #[serde(rename = "txQLen")]
    tx_q_len: Option<i64>,
    allmulti: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Raw {
    data_dir: Option<String>,
    #[serde(flatten)]
    fields: Fields,
    runtime_config: Option<MacField>,
    args: Option<ArgsField>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct ArgsField {
    cni: Option<Fields>,
}

impl TuningConf {
    pub fn parse(conf: &NetConf, args: &CmdArgs) -> Result<TuningConf, Error> {
        reject_duplicate_keys(&args.stdin)?;
        let raw: Raw = conf.plugin_conf()?;
        let mut f = raw.fields;
        let mut sysctl = f.sysctl.take().unwrap_or_default();
        let mut mac = f.mac.filter(|m| !m.is_empty());
        mac = args.arg("MAC").filter(|m| !m.is_empty()).map(str::to_string).or(mac);
        mac = raw.runtime_config.and_then(|r| r.mac).filter(|m| !m.is_empty()).or(mac);
        if let Some(a) = raw.args.and_then(|a| a.cni) {
            sysctl.extend(a.sysctl.unwrap_or_default());
            mac = a.mac.or(mac);
            f.promisc = a.promisc.or(f.promisc);
            f.mtu = a.mtu.or(f.mtu);
            f.tx_q_len = a.tx_q_len.or(f.tx_q_len);
            f.allmulti = a.allmulti.or(f.allmulti);
        }
        Ok(TuningConf {
            data_dir: PathBuf::from(
                raw.data_dir.filter(|d| !d.is_empty()).as_deref().unwrap_or(DEFAULT_DATA_DIR),
            ),
            sysctl: sysctl.into_iter().collect(),
            mac: mac.filter(|m| !m.is_empty()).map(|m| parse_mac(&m)).transpose()?,
            promisc: f.promisc.unwrap_or(false),
            mtu: f.mtu.filter(|m| *m != 0).map(check_mtu).transpose()?,
            txqlen: f.tx_q_len.map(check_txqlen).transpose()?,
            allmulti: f.allmulti,
        })
    }
}

/// `dataDir` alone, for DEL, which must work even when the rest of the configuration is
/// invalid (a runtime cleans up after an ADD that failed on it).
pub fn data_dir(conf: &NetConf) -> PathBuf {
    let dir = conf.raw.get("dataDir").and_then(|v| v.as_str()).filter(|d| !d.is_empty());
    PathBuf::from(dir.unwrap_or(DEFAULT_DATA_DIR))
}

fn parse_mac(text: &str) -> Result<[u8; 6], Error> {
    let mac = mac::parse(text).map_err(|e| Error::invalid_config(format!("tuning: {}", e.msg)))?;
    if mac::is_multicast(&mac) {
        return Err(Error::invalid_config(format!("tuning: MAC address {text} is a multicast address")));
    }
    Ok(mac)
}

fn check_mtu(mtu: i64) -> Result<u32, Error> {
    match u32::try_from(mtu) {
        Ok(m) if (68..=65535).contains(&m) => Ok(m),
        _ => Err(Error::invalid_config(format!("tuning: mtu {mtu} is outside 68..65535"))),
    }
}

fn check_txqlen(qlen: i64) -> Result<u32, Error> {
    u32::try_from(qlen)
        .map_err(|_| Error::invalid_config(format!("tuning: txQLen {qlen} is outside 0..{}", u32::MAX)))
}

/// The `/proc/sys` path (slash form) of a configured key for interface `ifname`: dots become
/// slashes unless the key is already in slash form, and `IFNAME` names the interface. Only
/// `net.*` keys (per network namespace) are allowed.
pub fn sysctl_path(key: &str, ifname: &str) -> Result<String, Error> {
    let bad = |why: &str| Err(Error::invalid_config(format!("tuning: sysctl {key:?} {why}")));
    if key.contains("..") || key.contains('\0') {
        return bad("must not contain \"..\" or NUL");
    }
    let slashed = if key.contains('/') { key.to_string() } else { key.replace('.', "/") };
    let path = slashed.replacen("IFNAME", ifname, 1);
    if !path.starts_with("net/") {
        return bad("is not a network sysctl (net.*): only those belong to the container's namespace");
    }
    if path.split('/').any(|c| c.is_empty() || c == ".") {
        return bad("has an empty component");
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{cmd_args as args, merged, net_conf};
    use serde_json::{Value, json};

    fn parse_with(v: Value, pairs: &[(&str, &str)]) -> Result<TuningConf, Error> {
        let base = json!({"cniVersion": "1.0.0", "name": "n", "type": "tuning"});
        TuningConf::parse(&net_conf(&merged(base, &v)), &args(pairs))
    }

    #[test]
    fn defaults_change_nothing() {
        let c = parse_with(json!({}), &[]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert!(!c.changes_link() && c.sysctl.is_empty());
    }

    #[test]
    fn later_sources_win_and_args_merge_sysctls() {
        let c = parse_with(
            json!({
                "mac": "02:00:00:00:00:01", "mtu": 1400, "txQLen": 100,
                "sysctl": {"net.ipv4.conf.IFNAME.rp_filter": "1", "net.core.somaxconn": "500"},
                "runtimeConfig": {"mac": "02:00:00:00:00:03"},
                "args": {"cni": {"mtu": 1300, "promisc": true, "allmulti": false,
                                 "sysctl": {"net.core.somaxconn": "600"}}}
            }),
            &[("MAC", "02:00:00:00:00:02"), ("K8S_POD_NAME", "x")],
        )
        .unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 3]), "runtimeConfig beats CNI_ARGS");
        assert_eq!((c.mtu, c.txqlen, c.promisc, c.allmulti), (Some(1300), Some(100), true, Some(false)));
        assert_eq!(
            c.sysctl,
            vec![
                ("net.core.somaxconn".to_string(), "600".to_string()),
                ("net.ipv4.conf.IFNAME.rp_filter".to_string(), "1".to_string())
            ]
        );
        let c = parse_with(json!({"mac": "02:00:00:00:00:01"}), &[("MAC", "02:00:00:00:00:02")]).unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 2]), "CNI_ARGS beats the static option");
        let c = parse_with(json!({"args": {"cni": {"mac": "02:00:00:00:00:09"}}, "runtimeConfig": {"mac": "02:00:00:00:00:03"}}), &[]).unwrap();
        assert_eq!(c.mac, Some([2, 0, 0, 0, 0, 9]), "args.cni beats everything");
    }

    #[test]
    fn bad_inputs_are_code_7() {
        let cases = [
            r#"{"mac": "zz"}"#,
            r#"{"mac": "01:00:5e:00:00:01"}"#,
            r#"{"mtu": -1}"#,
            r#"{"mtu": 10}"#,
            r#"{"txQLen": -5}"#,
            r#"{"sysctl": {"net.core.somaxconn": 5}}"#,
            r#"{"sysctl": {"net.core.somaxconn": "5", "net.core.somaxconn": "6"}}"#,
            r#"{"args": {"cni": {"mtu": "big"}}}"#,
            r#"{"args": {"cni": {"sysctl": {"net.a": "1", "net.a": "2"}}}}"#,
        ];
        for extra in cases {
            let text = r#"{"cniVersion":"1.0.0","name":"n","type":"tuning","#.to_string() + &extra[1..];
            let conf = NetConf::parse(text.as_bytes()).unwrap();
            let mut a = args(&[]);
            a.stdin = text.into_bytes();
            let err = TuningConf::parse(&conf, &a).expect_err(extra);
            assert_eq!(err.code.code(), 7, "{extra}: {err}");
        }
    }

    #[test]
    fn sysctl_keys_map_to_net_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.conf.IFNAME.arp_notify", "eth0").unwrap(),
            "net/ipv4/conf/eth0/arp_notify"
        );
        assert_eq!(
            sysctl_path("net.ipv4.conf.IFNAME.arp_notify", "eth0.5").unwrap(),
            "net/ipv4/conf/eth0.5/arp_notify"
        );
        assert_eq!(sysctl_path("net/ipv6/conf/eth0.5/mtu", "x").unwrap(), "net/ipv6/conf/eth0.5/mtu");
        for bad in
            ["kernel.hostname", "net..ipv4", "net/../kernel/x", "vm.swappiness", "net.", "/net/x", "netx.y"]
        {
            let err = sysctl_path(bad, "eth0").expect_err(bad);
            assert_eq!(err.code.code(), 7);
            assert!(err.msg.contains(bad), "{err}");
        }
    }
}
