//! CNI specification versions and version negotiation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, ErrorCode};

/// A CNI specification version this crate knows the wire shapes of.
///
/// Ordered oldest first, so `<`/`max` follow the spec's own ordering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// 0.1.0: `ip4`/`ip6` result shape.
    V0_1_0,
    /// 0.2.0: same result shape as 0.1.0.
    V0_2_0,
    /// 0.3.0: `interfaces`/`ips`/`routes` result shape, `ips[].version`.
    V0_3_0,
    /// 0.3.1: same shapes as 0.3.0.
    V0_3_1,
    /// 0.4.0: adds the CHECK verb.
    V0_4_0,
    /// 1.0.0: drops `ips[].version`.
    V1_0_0,
    /// 1.1.0: adds GC and STATUS, route and interface attributes.
    V1_1_0,
}

impl Version {
    /// Every known version, oldest first.
    pub const ALL: [Version; 7] = [
        Version::V0_1_0,
        Version::V0_2_0,
        Version::V0_3_0,
        Version::V0_3_1,
        Version::V0_4_0,
        Version::V1_0_0,
        Version::V1_1_0,
    ];

    /// The newest version this crate implements.
    pub const LATEST: Version = Version::V1_1_0;

    /// The version as written in `cniVersion`, e.g. `"0.3.1"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_1_0 => "0.1.0",
            Version::V0_2_0 => "0.2.0",
            Version::V0_3_0 => "0.3.0",
            Version::V0_3_1 => "0.3.1",
            Version::V0_4_0 => "0.4.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    /// Parses a `cniVersion` string; an unknown version is an
    /// incompatible-version error (code 1) naming it.
    pub fn parse(s: &str) -> Result<Version, Error> {
        Version::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
            Error::new(ErrorCode::IncompatibleVersion, format!("unknown CNI version {s:?}"))
                .with_details(format!("known versions: {}", join(&Version::ALL)))
        })
    }

    /// Whether the CHECK verb exists in this version (0.4.0 and later).
    pub fn supports_check(self) -> bool {
        self >= Version::V0_4_0
    }

    /// Whether the GC and STATUS verbs exist in this version (1.1.0 and later).
    pub fn supports_gc(self) -> bool {
        self >= Version::V1_1_0
    }

    /// Whether results of this version use the legacy `ip4`/`ip6` shape.
    pub fn is_legacy_result(self) -> bool {
        self <= Version::V0_2_0
    }
}

/// Joins versions as `"0.1.0, 0.2.0"` for messages.
pub fn join(versions: &[Version]) -> String {
    versions.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Version {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Version::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Highest version present in `wanted` (the `cniVersion` and `cniVersions`
/// strings of a configuration) that is also in `supported`.
///
/// Unknown strings in `wanted` are skipped, as a newer configuration may list
/// versions this crate does not know; no common version is a code 1 error
/// listing both sides.
pub fn negotiate(wanted: &[String], supported: &[Version]) -> Result<Version, Error> {
    wanted.iter().filter_map(|s| Version::parse(s).ok()).filter(|v| supported.contains(v)).max().ok_or_else(
        || {
            Error::new(ErrorCode::IncompatibleVersion, "no common CNI version").with_details(format!(
                "config wants [{}], supported are [{}]",
                wanted.join(", "),
                join(supported)
            ))
        },
    )
}

/// The VERSION answer: `{"cniVersion": answer_in, "supportedVersions": [...]}`.
pub fn version_info(answer_in: &str, supported: &[Version]) -> serde_json::Value {
    let versions: Vec<&str> = supported.iter().map(|v| v.as_str()).collect();
    serde_json::json!({ "cniVersion": answer_in, "supportedVersions": versions })
}

/// A plugin's answer to VERSION, as read by a runtime.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The `cniVersion` the answer is written in.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// The versions the plugin supports, as strings (may include unknown ones).
    #[serde(rename = "supportedVersions", default)]
    pub supported_versions: Vec<String>,
}

impl VersionInfo {
    /// Reads a VERSION answer. Like the reference, an answer of `"0.2.0"`
    /// without `supportedVersions` means 0.1.0 and 0.2.0; any other answer
    /// must list its versions. Failures are decode errors (code 6).
    pub fn from_json(v: &serde_json::Value) -> Result<VersionInfo, Error> {
        let mut info: VersionInfo = serde_json::from_value(v.clone())
            .map_err(|e| Error::decode(format!("decoding version info: {e}")))?;
        if info.cni_version.is_empty() {
            return Err(Error::decode("decoding version info: missing field cniVersion"));
        }
        if info.supported_versions.is_empty() {
            if info.cni_version != "0.2.0" {
                return Err(Error::decode("decoding version info: missing field supportedVersions"));
            }
            info.supported_versions = vec!["0.1.0".into(), "0.2.0".into()];
        }
        Ok(info)
    }

    /// The known versions among `supported_versions`, unknown ones skipped.
    pub fn versions(&self) -> Vec<Version> {
        let mut out: Vec<Version> =
            self.supported_versions.iter().filter_map(|s| Version::parse(s).ok()).collect();
        out.sort();
        out.dedup();
        out
    }
}
