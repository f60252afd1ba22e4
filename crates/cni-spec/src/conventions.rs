//! CONVENTIONS.md: `CNI_ARGS`, capability arguments carried in
//! `runtimeConfig`, and the GC attachment list.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::conf::NetConf;
use crate::error::Error;

/// The GC key listing attachments that are still valid (SPEC.md "GC").
pub const VALID_ATTACHMENTS: &str = "cni.dev/valid-attachments";
/// The key some pre-1.1.0 runtimes used for the same list.
pub const LEGACY_ATTACHMENTS: &str = "cni.dev/attachments";

/// Splits `CNI_ARGS` (`"K=V;K2=V2"`) into pairs, in order. An empty string
/// is no pairs; a pair without exactly one `=` or with an empty key is a
/// code 4 error naming the pair, as in the reference's `LoadArgs`.
pub fn parse_cni_args(s: &str) -> Result<Vec<(String, String)>, Error> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(';')
        .map(|pair| {
            let mut parts = pair.split('=');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(k), Some(v), None) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
                _ => Err(Error::invalid_env(format!("CNI_ARGS: invalid pair {pair:?}"))
                    .with_details("CNI_ARGS must be KEY=VALUE pairs separated by ';'")),
            }
        })
        .collect()
}

/// One entry of the `portMappings` capability.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// Port on the host; kept wide so plugins can reject bad values themselves.
    pub host_port: i64,
    /// Port in the container.
    pub container_port: i64,
    /// `tcp`, `udp` or `sctp`; empty means the plugin's default.
    #[serde(default)]
    pub protocol: String,
    /// Host address to bind, if restricted to one.
    #[serde(rename = "hostIP", default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

/// The `bandwidth` capability: rates in bits per second, bursts in bits.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bandwidth {
    /// Ingress rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_rate: Option<i64>,
    /// Ingress burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_burst: Option<i64>,
    /// Egress rate limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_rate: Option<i64>,
    /// Egress burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_burst: Option<i64>,
}

/// One still-valid attachment in a GC request.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Attachment {
    /// `CNI_CONTAINERID` of the ADD.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// `CNI_IFNAME` of the ADD.
    pub ifname: String,
}

/// A capability argument from `runtimeConfig`, deserialized; `None` when
/// absent or null, code 7 naming the key when it has the wrong shape.
pub fn runtime_config<T: DeserializeOwned>(conf: &NetConf, key: &str) -> Result<Option<T>, Error> {
    match conf.runtime_config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| Error::invalid_config(format!("invalid runtimeConfig.{key}: {e}"))),
    }
}

/// The GC list of valid attachments: `cni.dev/valid-attachments` at the top
/// level (where the spec puts it) or in `runtimeConfig`, else the legacy
/// `cni.dev/attachments`. `None` when none is present.
pub fn valid_attachments(conf: &NetConf) -> Result<Option<Vec<Attachment>>, Error> {
    for key in [VALID_ATTACHMENTS, LEGACY_ATTACHMENTS] {
        let found = conf.raw.get(key).or_else(|| conf.runtime_config.get(key)).filter(|v| !v.is_null());
        if let Some(v) = found {
            return serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| Error::invalid_config(format!("invalid {key}: {e}")));
        }
    }
    Ok(None)
}
