//! Short names derived from long keys (owner tags, condition lists): stable across runs and
//! versions, so a later DEL or GC finds the object ADD made, and short enough for iptables'
//! 28-character chain names.

/// `prefix` followed by the 64-bit FNV-1a hash of `key` in 16 hex digits.
pub fn stable_name(prefix: &str, key: &str) -> String {
    let hash = key.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
    format!("{prefix}{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_in_hex_after_the_prefix() {
        // FNV-1a 64 of "a" is af63dc4c8601ec8c; of "" the offset basis.
        assert_eq!(stable_name("P-", "a"), "P-af63dc4c8601ec8c");
        assert_eq!(stable_name("", ""), "cbf29ce484222325");
        assert_ne!(stable_name("", "net/c1/eth0"), stable_name("", "net/c2/eth0"));
    }
}
