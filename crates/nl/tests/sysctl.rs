//! Kernel tier: per-namespace sysctls.

use testkit::{TestNs, require_privileges};
use twill_nl::{sysctl_get, sysctl_set};

#[test]
fn set_and_get_inside_the_namespace_only() {
    require_privileges();
    let a = TestNs::new("sysa");
    let b = TestNs::new("sysb");
    assert_eq!(sysctl_get(a.ns(), "net/ipv4/ip_forward").unwrap(), "0");
    let old = sysctl_set(a.ns(), "net/ipv4/ip_forward", "1").unwrap();
    assert_eq!(old, "0");
    assert_eq!(sysctl_get(a.ns(), "net/ipv4/ip_forward").unwrap(), "1");
    assert_eq!(sysctl_get(b.ns(), "net/ipv4/ip_forward").unwrap(), "0");
    assert_eq!(a.exec_ok(&["sysctl", "-n", "net.ipv4.ip_forward"]).trim(), "1");

    let h = a.handle();
    h.veth_add("tw.1", "twb", None, None, None, None).unwrap();
    sysctl_set(a.ns(), "net/ipv4/conf/tw.1/proxy_arp", "1").unwrap();
    assert_eq!(sysctl_get(a.ns(), "net/ipv4/conf/tw.1/proxy_arp").unwrap(), "1");

    let e = sysctl_get(a.ns(), "net/ipv4/conf/nope/forwarding").unwrap_err();
    assert!(
        e.to_string().starts_with("read sysctl net/ipv4/conf/nope/forwarding in netns /run/netns/twt-sysa-"),
        "{e}"
    );
    assert_eq!(e.errno(), Some(libc::ENOENT));
    assert!(sysctl_set(a.ns(), "net/../kernel/hostname", "x").is_err());
    assert!(sysctl_set(a.ns(), "kernel/hostname", "x").is_err());
}
