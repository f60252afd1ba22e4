//! A veth pair between the host and a container: the host end gets a random `vethXXXXXXXX`
//! name, the container end is born inside the container's namespace under CNI_IFNAME.

use cni_spec::Error;
use netns::NetNs;
use nl::{Handle, Link};

use crate::iface;
use crate::kernel::nl_error;

/// Both ends after creation.
pub struct VethPair {
    pub host: Link,
    pub container: Link,
}

/// Creates the pair. An existing CNI_IFNAME in the container is reported as such (code 4);
/// a clash of the random host name is retried.
pub fn create_pair(
    host_nl: &Handle,
    cont_nl: &Handle,
    cont_ns: &NetNs,
    ifname: &str,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
) -> Result<VethPair, Error> {
    iface::ensure_free(cont_nl, cont_ns, ifname)?;
    let mut last = None;
    for _ in 0..5 {
        let host_name = random_name("veth")?;
        match host_nl.veth_add(&host_name, ifname, Some(cont_ns), mtu, None, mac) {
            Ok(()) => {
                let host = lookup(host_nl, &host_name)?;
                let container = lookup(cont_nl, ifname)?;
                return Ok(VethPair { host, container });
            }
            Err(e) if e.is_exists() && cont_nl.link_get(ifname).map_err(nl_error)?.is_none() => {
                last = Some(e)
            }
            Err(e) => return Err(nl_error(e)),
        }
    }
    Err(last.map(nl_error).unwrap_or_else(|| Error::internal("could not pick a free veth name")))
}

fn lookup(nl: &Handle, name: &str) -> Result<Link, Error> {
    nl.link_get(name)
        .map_err(nl_error)?
        .ok_or_else(|| Error::internal(format!("link {name} vanished after creation")))
}

/// `prefix` + 8 random hex digits: 12 characters, inside IFNAMSIZ.
pub fn random_name(prefix: &str) -> Result<String, Error> {
    let mut bytes = [0u8; 4];
    getrandom(&mut bytes)?;
    Ok(format!("{prefix}{:02x}{:02x}{:02x}{:02x}", bytes[0], bytes[1], bytes[2], bytes[3]))
}

fn getrandom(buf: &mut [u8]) -> Result<(), Error> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .map_err(|e| Error::io(format!("read /dev/urandom: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_names_fit_ifnamsiz() {
        let a = super::random_name("veth").unwrap();
        let b = super::random_name("veth").unwrap();
        assert_eq!(a.len(), 12);
        assert!(a.starts_with("veth"));
        assert_ne!(a, b);
    }
}
