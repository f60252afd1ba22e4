//! MAC address options. The interface plugins read the pod's MAC from several places (`mac`,
//! CNI_ARGS `MAC=`, `args.cni.mac`, `runtimeConfig.mac`, in an order each plugin takes from
//! its reference); the last one given wins, and a malformed one is a config error naming it.

use cni_spec::Error;
use serde::Deserialize;

/// An object whose `mac` is one of the sources (`runtimeConfig`, `args.cni`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct MacField {
    pub mac: Option<String>,
}

/// The last non-empty of `sources`, which are in increasing precedence.
pub fn last_given(sources: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    sources.into_iter().flatten().filter(|m| !m.is_empty()).last()
}

/// A well-formed MAC (`02:00:00:00:00:01`); code 7 naming `text` otherwise.
pub fn parse(text: &str) -> Result<[u8; 6], Error> {
    nl::parse_mac(text).map_err(|_| Error::invalid_config(format!("invalid MAC address {text:?}")))
}

/// Whether the group bit is set: such an address cannot be an interface's own.
pub fn is_multicast(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_non_empty_wins() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(last_given([s("a"), None, s("b"), s("")]), s("b"));
        assert_eq!(last_given([None, s("")]), None);
    }

    #[test]
    fn parse_names_the_text() {
        assert_eq!(parse("02:00:00:00:00:0A").unwrap(), [2, 0, 0, 0, 0, 10]);
        let e = parse("zz:00").unwrap_err();
        assert_eq!(e.code.code(), 7);
        assert_eq!(e.msg, "invalid MAC address \"zz:00\"");
        assert!(is_multicast(&[1, 0, 0x5e, 0, 0, 1]) && !is_multicast(&[2, 0, 0, 0, 0, 1]));
    }
}
