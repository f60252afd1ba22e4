//! Small serde helpers shared by the result shapes, mirroring how Go's
//! `encoding/json` treats zero values and `net.IP`.

/// `None` for an empty string: Go's omitempty never writes one.
pub(crate) fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// `None` for zero: Go's omitempty never writes a zero int.
pub(crate) fn non_zero(v: Option<u32>) -> Option<u32> {
    v.filter(|v| *v != 0)
}

/// An optional IP address written as a string; `null` and `""` read as
/// absent, as Go's `net.IP` unmarshals them.
pub(crate) mod opt_ip {
    use std::net::IpAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
        match ip {
            Some(ip) => s.collect_str(ip),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => text
                .parse()
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("invalid IP address {text:?}"))),
        }
    }
}
