//! Validation of the names a runtime passes to plugins, with the
//! reference's rules and error codes.

use crate::error::{Error, ErrorCode};

/// Longest Linux interface name (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

fn valid_name_chars(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A container id: alphanumeric first, then alphanumerics, `_`, `.`, `-`.
/// Empty is code 3 (unknown container), bad characters code 4.
pub fn validate_container_id(id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::new(ErrorCode::UnknownContainer, "missing containerID"));
    }
    if !valid_name_chars(id) {
        return Err(Error::invalid_env("invalid characters in containerID").with_details(id));
    }
    Ok(())
}

/// A network name, same character rules as container ids; code 7.
pub fn validate_network_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::invalid_config("missing network name"));
    }
    if !valid_name_chars(name) {
        return Err(Error::invalid_config("invalid characters found in network name").with_details(name));
    }
    Ok(())
}

/// An interface name the kernel accepts: 1–15 bytes, not `.`/`..`, no
/// `/`, `:` or whitespace; code 4.
pub fn validate_ifname(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::invalid_env("interface name is empty"));
    }
    if name.len() > MAX_IFNAME_LEN {
        return Err(Error::invalid_env(format!("interface name {name:?} is too long"))
            .with_details(format!("interface names have at most {MAX_IFNAME_LEN} bytes")));
    }
    if name == "." || name == ".." {
        return Err(Error::invalid_env("interface name is . or .."));
    }
    if name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace()) {
        return Err(Error::invalid_env(format!("interface name {name:?} contains / or : or whitespace")));
    }
    Ok(())
}
