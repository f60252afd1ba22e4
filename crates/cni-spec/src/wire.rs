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

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Holder {
        #[serde(default, with = "opt_ip", skip_serializing_if = "Option::is_none")]
        gw: Option<IpAddr>,
    }

    #[test]
    fn zero_and_empty_become_none() {
        assert_eq!(non_empty(Some(String::new())), None);
        assert_eq!(non_empty(Some("x".into())).as_deref(), Some("x"));
        assert_eq!(non_zero(Some(0)), None);
        assert_eq!(non_zero(Some(7)), Some(7));
    }

    #[test]
    fn optional_ip_reads_like_go() {
        let read = |s: &str| serde_json::from_str::<Holder>(s).map(|h| h.gw);
        assert_eq!(read(r#"{}"#).unwrap(), None);
        assert_eq!(read(r#"{"gw": null}"#).unwrap(), None);
        assert_eq!(read(r#"{"gw": ""}"#).unwrap(), None);
        assert_eq!(read(r#"{"gw": "fd00::1"}"#).unwrap(), "fd00::1".parse().ok());
        assert!(read(r#"{"gw": "10.0.0.256"}"#).is_err());
        assert!(read(r#"{"gw": 1}"#).is_err());
        let h = Holder { gw: "10.0.0.1".parse().ok() };
        assert_eq!(serde_json::to_string(&h).unwrap(), r#"{"gw":"10.0.0.1"}"#);
    }
}
