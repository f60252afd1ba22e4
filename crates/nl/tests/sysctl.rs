//! Kernel tier: per-namespace sysctls. Test namespaces start from the kernel's defaults
//! (testkit resets what they inherit from the host), so these hold on any host.

use testkit::{TestNs, require_privileges};
use twill_nl::{reset_inherited, sysctl_get, sysctl_set, sysctl_set_all};

#[test]
fn set_all_writes_in_order_and_returns_the_old_values() {
    require_privileges();
    let a = TestNs::new("sysall");
    let keys = ["net/ipv4/ip_forward", "net/ipv4/conf/lo/arp_notify", "net/ipv4/ip_forward"];
    let old = sysctl_set_all(a.ns(), &[(keys[0], "1"), (keys[1], "1"), (keys[2], "1")]).unwrap();
    // The third write found the first one's value.
    assert_eq!(old, ["0", "0", "1"]);
    assert_eq!(sysctl_get(a.ns(), keys[1]).unwrap(), "1");
    // A bad key is refused before anything is written.
    let e = sysctl_set_all(a.ns(), &[(keys[1], "0"), ("kernel/hostname", "x")]).unwrap_err();
    assert!(e.to_string().contains("kernel/hostname"), "{e}");
    assert_eq!(sysctl_get(a.ns(), keys[1]).unwrap(), "1");
}

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

/// A namespace made on a host that forwards (or filters by reverse path) inherits that; the
/// reset puts back what a freshly booted kernel has.
#[test]
fn reset_inherited_restores_the_kernel_defaults() {
    require_privileges();
    let a = TestNs::new("sysr");
    for (key, value) in [
        ("net/ipv4/ip_forward", "1"),
        ("net/ipv4/conf/all/rp_filter", "2"),
        ("net/ipv4/conf/default/rp_filter", "1"),
        ("net/ipv4/conf/default/accept_source_route", "0"),
        ("net/ipv4/conf/lo/route_localnet", "1"),
        ("net/ipv6/conf/all/forwarding", "1"),
    ] {
        sysctl_set(a.ns(), key, value).unwrap();
    }
    reset_inherited(a.ns()).unwrap();
    for (key, value) in [
        ("net/ipv4/ip_forward", "0"),
        ("net/ipv4/conf/all/forwarding", "0"),
        ("net/ipv4/conf/all/rp_filter", "0"),
        ("net/ipv4/conf/default/rp_filter", "0"),
        ("net/ipv4/conf/default/accept_source_route", "1"),
        ("net/ipv4/conf/lo/route_localnet", "0"),
        ("net/ipv6/conf/all/forwarding", "0"),
    ] {
        assert_eq!(sysctl_get(a.ns(), key).unwrap(), value, "{key}");
    }
}
