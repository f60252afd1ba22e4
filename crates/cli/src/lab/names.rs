//! What the lab calls things: namespace names, the state directory, pod references. All of it
//! derives from one prefix (`twl` unless `TWILL_LAB_PREFIX` says otherwise), so a test suite
//! can run its own labs next to a developer's without touching it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Result, bail};

/// The environment variable that selects another lab (tests use their own).
pub const PREFIX_ENV: &str = "TWILL_LAB_PREFIX";
/// The prefix of the developer's lab.
pub const DEFAULT_PREFIX: &str = "twl";
/// Longest namespace name the lab makes; longer pod names are shortened with a hash.
const MAX_NETNS_NAME: usize = 64;

/// One lab's naming scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// The lab chosen by `TWILL_LAB_PREFIX`, or the default one.
    pub fn from_env() -> Result<Names> {
        match std::env::var(PREFIX_ENV) {
            Ok(p) => Names::new(&p),
            Err(std::env::VarError::NotPresent) => Names::new(DEFAULT_PREFIX),
            Err(e) => bail!("{PREFIX_ENV}: {e}"),
        }
    }

    pub fn new(prefix: &str) -> Result<Names> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 24
            && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !prefix.starts_with('-')
            && !prefix.ends_with('-');
        if !ok {
            bail!("lab prefix {prefix:?} must be 1-24 characters of a-z, 0-9 and inner dashes");
        }
        Ok(Names { prefix: prefix.to_string() })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `/run/twill-lab` for the default lab, `/run/twill-lab-PREFIX` for the others.
    pub fn state_dir(&self) -> PathBuf {
        if self.prefix == DEFAULT_PREFIX {
            PathBuf::from("/run/twill-lab")
        } else {
            PathBuf::from(format!("/run/twill-lab-{}", self.prefix))
        }
    }

    /// True for every namespace name this lab may have made.
    pub fn owns_netns(&self, name: &str) -> bool {
        name.strip_prefix(&self.prefix).is_some_and(|rest| rest.starts_with('-'))
    }

    pub fn underlay(&self) -> String {
        format!("{}-underlay", self.prefix)
    }

    pub fn outside(&self) -> String {
        format!("{}-outside", self.prefix)
    }

    /// The namespace of etcd member `i` (1-based): `PREFIX-etcd`, `PREFIX-etcd2`, ...
    pub fn etcd_member(&self, i: u8) -> String {
        match i {
            1 => format!("{}-etcd", self.prefix),
            _ => format!("{}-etcd{i}", self.prefix),
        }
    }

    pub fn router(&self) -> String {
        format!("{}-router", self.prefix)
    }

    pub fn node(&self, index: u8) -> String {
        format!("{}-node-{index}", self.prefix)
    }

    /// `PREFIX-pod-NS-NAME`, or, when that is too long or `taken`, a shortened name ending in
    /// a hash of the pod reference, which is unambiguous where `NS-NAME` is not (`a-b/c` and
    /// `a/b-c`).
    pub fn pod(&self, pod: &PodRef, taken: impl Fn(&str) -> bool) -> String {
        let plain = format!("{}-pod-{}-{}", self.prefix, pod.ns, pod.name);
        if plain.len() <= MAX_NETNS_NAME && !taken(&plain) {
            return plain;
        }
        let hash = format!("{:08x}", fnv1a(pod.to_string().as_bytes()) as u32);
        let keep = MAX_NETNS_NAME - hash.len() - 1;
        let head: String = plain.chars().take(keep).collect();
        format!("{}-{hash}", head.trim_end_matches('-'))
    }
}

/// FNV-1a: stable across builds and Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// A Kubernetes-style name: a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, ≤ 63).
pub fn check_dns_label(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if !ok {
        bail!("{what} {s:?} is not a DNS-1123 label (a-z, 0-9 and inner dashes, at most 63)");
    }
    Ok(())
}

/// `NS/NAME`: a pod of the lab.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodRef {
    pub ns: String,
    pub name: String,
}

impl FromStr for PodRef {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<PodRef> {
        let Some((ns, name)) = s.split_once('/') else {
            bail!("pod {s:?} must be written NAMESPACE/NAME");
        };
        check_dns_label("namespace", ns)?;
        check_dns_label("pod name", name)?;
        Ok(PodRef { ns: ns.to_string(), name: name.to_string() })
    }
}

impl fmt::Display for PodRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ns, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(s: &str) -> PodRef {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_are_checked_and_owned_names_recognised() {
        for bad in ["", "-a", "a-", "A", "a/b", "a_b", "abcdefghijklmnopqrstuvwxy"] {
            assert!(Names::new(bad).is_err(), "{bad:?}");
        }
        let n = Names::new("twl").unwrap();
        assert_eq!(n.state_dir(), PathBuf::from("/run/twill-lab"));
        assert_eq!(Names::new("t1").unwrap().state_dir(), PathBuf::from("/run/twill-lab-t1"));
        assert!(n.owns_netns("twl-node-1") && n.owns_netns(&n.underlay()));
        assert!(!n.owns_netns("twlx-node-1") && !n.owns_netns("twl") && !n.owns_netns("twt-a"));
    }

    #[test]
    fn pod_refs_parse_as_dns_labels() {
        assert_eq!(pod("a/p-1"), PodRef { ns: "a".into(), name: "p-1".into() });
        for bad in ["a", "/p", "a/", "A/p", "a/p_1", "a/b/c", "a/-p"] {
            assert!(bad.parse::<PodRef>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pod_netns_names_are_plain_unless_long_or_taken() {
        let n = Names::new("twl").unwrap();
        assert_eq!(n.pod(&pod("a/p1"), |_| false), "twl-pod-a-p1");
        let clash = n.pod(&pod("a/b-c"), |name| name == "twl-pod-a-b-c");
        assert!(clash.starts_with("twl-pod-a-b-c-") && clash.len() == "twl-pod-a-b-c-".len() + 8, "{clash}");
        assert_ne!(clash, n.pod(&pod("a-b/c"), |name| name == "twl-pod-a-b-c"));
        let long = n.pod(&pod(&format!("{}/{}", "n".repeat(63), "p".repeat(63))), |_| false);
        assert_eq!(long.len(), MAX_NETNS_NAME);
        assert_eq!(long, n.pod(&pod(&format!("{}/{}", "n".repeat(63), "p".repeat(63))), |_| false));
    }
}
