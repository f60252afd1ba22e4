//! nft object names derived from Kubernetes names, so `nft list` reads like the cluster.
//! Namespaces are DNS labels (no '.'), so `NS.NAME` is unambiguous; nft accepts '.' and '-'
//! in identifiers. Names too long for nft (256 bytes, with room for set suffixes) are cut and
//! made unique with a hash of the full name.

use crate::model::{Direction, NsName};

const MAX: usize = 180;

/// `np_NS.NAME_ingress`: the chain of a policy's rules of one direction.
pub fn policy_chain(policy: &NsName, dir: Direction) -> String {
    ident("np", policy, dir)
}

/// `pod_NS.NAME_ingress`: the chain a pod's traffic of one direction is dispatched to.
pub fn pod_chain(pod: &NsName, dir: Direction) -> String {
    ident("pod", pod, dir)
}

/// `ingress_dispatch4`, ...: the verdict map from a local pod's address to its chain.
pub fn dispatch_map(dir: Direction, v6: bool) -> String {
    format!("{}_dispatch{}", dir.field(), if v6 { 6 } else { 4 })
}

fn ident(kind: &str, key: &NsName, dir: Direction) -> String {
    let full = format!("{kind}_{}.{}", key.namespace, key.name);
    if full.len() + dir.field().len() < MAX {
        return format!("{full}_{}", dir.field());
    }
    // Kubernetes names are ASCII, so any byte index is a char boundary.
    let cut = &full[..MAX - 40];
    format!("{cut}~{:016x}_{}", fnv1a(&full), dir.field())
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_names() {
        assert_eq!(policy_chain(&NsName::new("x", "allow-web.v2"), Direction::Ingress), "np_x.allow-web.v2_ingress");
        assert_eq!(pod_chain(&NsName::new("x", "a"), Direction::Egress), "pod_x.a_egress");
        assert_eq!(dispatch_map(Direction::Ingress, true), "ingress_dispatch6");
    }

    #[test]
    fn long_names_are_cut_and_stay_unique() {
        let a = policy_chain(&NsName::new(&"n".repeat(63), &format!("{}a", "p".repeat(252))), Direction::Ingress);
        let b = policy_chain(&NsName::new(&"n".repeat(63), &format!("{}b", "p".repeat(252))), Direction::Ingress);
        assert_ne!(a, b);
        assert!(a.len() < MAX + 10, "{}", a.len());
        assert!(a.ends_with("_ingress"));
    }
}
