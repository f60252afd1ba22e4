//! MAC addresses as text, in iproute2's notation (`aa:bb:cc:dd:ee:ff`, lower case).

use crate::{Error, Result};

/// Parses `aa:bb:cc:dd:ee:ff` (also accepts `-` separators and upper case).
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = |reason| Error::invalid("mac address", s, reason);
    let mut mac = [0u8; 6];
    let mut parts = s.split([':', '-']);
    for byte in mac.iter_mut() {
        let part = parts.next().ok_or_else(|| bad("expected six octets"))?;
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("each octet must be two hex digits"));
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad("each octet must be two hex digits"))?;
    }
    if parts.next().is_some() {
        return Err(bad("expected six octets"));
    }
    Ok(mac)
}

/// Formats as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// A 6-byte hardware address from an attribute value, if it is one.
pub(crate) fn mac_from_slice(v: &[u8]) -> Option<[u8; 6]> {
    v.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mac = parse_mac("0A:1b:2c:3d:4e:5F").unwrap();
        assert_eq!(mac, [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f]);
        assert_eq!(format_mac(&mac), "0a:1b:2c:3d:4e:5f");
        assert_eq!(parse_mac("0a-1b-2c-3d-4e-5f").unwrap(), mac);
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "0a:1b:2c:3d:4e",
            "0a:1b:2c:3d:4e:5f:00",
            "0a:1b:2c:3d:4e:5",
            "zz:1b:2c:3d:4e:5f",
            "0a:1b:2c:3d:4e:+f",
            "0a1b2c3d4e5f",
        ] {
            let e = parse_mac(bad).unwrap_err();
            assert!(e.to_string().starts_with("invalid mac address"), "{bad}: {e}");
        }
    }

    #[test]
    fn slice_must_be_six_bytes() {
        assert_eq!(mac_from_slice(&[1, 2, 3, 4, 5, 6]), Some([1, 2, 3, 4, 5, 6]));
        assert_eq!(mac_from_slice(&[1, 2, 3]), None);
    }
}
