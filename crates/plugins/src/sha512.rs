//! SHA-512 (the `sha2` crate), for the names the reference plugins derive from hashes
//! (`utils.MustFormatHashWithPrefix`): the bandwidth plugin's `bwp…` IFB devices. Matching
//! those names byte for byte lets twill clean up after pods the reference plugin set up.

use sha2::{Digest, Sha512};

/// The SHA-512 digest of `data`.
pub fn digest(data: &[u8]) -> [u8; 64] {
    Sha512::digest(data).into()
}

/// `prefix` followed by the hex digest of `input`, cut to `len` characters: the reference's
/// `MustFormatHashWithPrefix(len, prefix, input)`.
pub fn hashed_name(len: usize, prefix: &str, input: &str) -> String {
    let hex: String = digest(input.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let mut name = format!("{prefix}{hex}");
    name.truncate(len);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(data: &[u8]) -> String {
        digest(data).iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn known_vectors() {
        assert_eq!(
            hex(b"abc"),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        assert_eq!(
            hex(b""),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
             47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
        // Two blocks after padding.
        let long = b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
        assert_eq!(
            hex(long),
            "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018\
             501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"
        );
    }

    #[test]
    fn names_are_cut_to_length() {
        // `printf net1abc | sha512sum` starts 30f8de359c7f.
        let name = hashed_name(15, "bwp", "net1abc");
        assert_eq!(name, "bwp30f8de359c7f");
        assert_ne!(name, hashed_name(15, "bwp", "net1abd"));
    }
}
