//! The configured sysctls inside the container's namespace: reading the values they replace,
//! writing them, putting the old ones back and checking them.

use std::collections::BTreeMap;

use cni_spec::Error;
use netns::NetNs;

use crate::kernel::nl_error;

/// One sysctl to set: the key as configured, its `/proc/sys` path and the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub path: String,
    pub value: String,
}

/// A failure about a key the configuration names: a key the kernel does not have, or a value
/// it refuses, is the configuration's fault (code 7).
fn sysctl_error(key: &str, e: nl::Error) -> Error {
    match e.errno() {
        Some(libc::ENOENT) => {
            Error::invalid_config(format!("tuning: sysctl {key} does not exist in the container's namespace"))
        }
        Some(libc::EINVAL) => Error::invalid_config(format!("tuning: the kernel refuses the value of {key}"))
            .with_details(e.to_string()),
        _ => nl_error(e),
    }
}

/// The current values of the paths about to be written.
pub fn read(ns: &NetNs, settings: &[Setting]) -> Result<BTreeMap<String, String>, Error> {
    let mut old = BTreeMap::new();
    for s in settings {
        let value = nl::sysctl_get(ns, &s.path).map_err(|e| sysctl_error(&s.key, e))?;
        old.insert(s.path.clone(), value);
    }
    Ok(old)
}

pub fn apply(ns: &NetNs, settings: &[Setting]) -> Result<(), Error> {
    for s in settings {
        nl::sysctl_set(ns, &s.path, &s.value).map_err(|e| sysctl_error(&s.key, e))?;
    }
    Ok(())
}

/// Writes the old values back; a key that has gone with its interface is fine.
pub fn restore(ns: &NetNs, old: &BTreeMap<String, String>) -> Vec<Error> {
    old.iter()
        .filter_map(|(path, value)| match nl::sysctl_set(ns, path, value) {
            Err(e) if e.errno() != Some(libc::ENOENT) => Some(nl_error(e)),
            _ => None,
        })
        .collect()
}

/// The kernel separates multi-value sysctls with tabs where a configuration may use spaces.
fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

pub fn check(ns: &NetNs, settings: &[Setting]) -> Result<(), Error> {
    for s in settings {
        let have = nl::sysctl_get(ns, &s.path).map_err(|e| sysctl_error(&s.key, e))?;
        if !same_value(&have, &s.value) {
            return Err(Error::internal(format!(
                "tuning: sysctl {} is {have:?}, configured {:?}",
                s.key, s.value
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_compare_by_words() {
        assert!(super::same_value("4096\t87380\t6291456", "4096 87380 6291456"));
        assert!(!super::same_value("1", "0"));
    }
}
