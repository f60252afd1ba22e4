//! Property tests: results survive conversion between versions.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use cni_spec::{CniResult, Dns, Interface, IpConfig, Route, Version};
use ipnet::IpNet;
use proptest::prelude::*;

fn addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
    ]
}

fn net() -> impl Strategy<Value = IpNet> {
    (addr(), 0u8..=128).prop_map(|(a, p)| {
        let max = if a.is_ipv4() { 32 } else { 128 };
        IpNet::new(a, p % (max + 1)).expect("prefix in range")
    })
}

fn text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-z0-9:/.]{1,12}")
}

fn positive() -> impl Strategy<Value = Option<u32>> {
    proptest::option::of(1u32..)
}

fn interface() -> impl Strategy<Value = Interface> {
    ("[a-z0-9]{1,15}", text(), positive(), text(), text(), text()).prop_map(
        |(name, mac, mtu, sandbox, socket_path, pci_id)| Interface {
            name,
            mac,
            mtu,
            sandbox,
            socket_path,
            pci_id,
        },
    )
}

fn ip_config() -> impl Strategy<Value = IpConfig> {
    (net(), proptest::option::of(addr()), proptest::option::of(0usize..4))
        .prop_map(|(address, gateway, interface)| IpConfig { address, gateway, interface })
}

fn route() -> impl Strategy<Value = Route> {
    let attrs = (
        positive(),
        positive(),
        positive(),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u8>()),
    );
    (net(), proptest::option::of(addr()), attrs).prop_map(
        |(dst, gw, (mtu, advmss, priority, table, scope))| Route {
            dst,
            gw,
            mtu,
            advmss,
            priority,
            table,
            scope,
        },
    )
}

fn dns() -> impl Strategy<Value = Dns> {
    let list = || proptest::collection::vec("[a-z0-9.:]{1,10}", 0..3);
    (list(), proptest::option::of("[a-z.]{1,10}"), list(), list())
        .prop_map(|(nameservers, domain, search, options)| Dns { nameservers, domain, search, options })
}

fn result() -> impl Strategy<Value = CniResult> {
    (
        proptest::collection::vec(interface(), 0..3),
        proptest::collection::vec(ip_config(), 0..4),
        proptest::collection::vec(route(), 0..4),
        dns(),
    )
        .prop_map(|(interfaces, ips, routes, dns)| CniResult {
            cni_version: Version::V1_1_0,
            interfaces,
            ips,
            routes,
            dns,
        })
}

fn version() -> impl Strategy<Value = Version> {
    proptest::sample::select(Version::ALL.to_vec())
}

proptest! {
    #[test]
    fn latest_version_round_trips_exactly(r in result()) {
        let json = r.to_json(Version::V1_1_0).unwrap();
        prop_assert_eq!(CniResult::from_json(&json).unwrap(), r);
    }

    #[test]
    fn conversion_is_a_fixpoint(r in result(), v in version(), w in version()) {
        // Converting to v drops only what v cannot express; doing it again
        // changes nothing, and a further conversion to w works or fails alike.
        if let Ok(once) = r.convert(v) {
            prop_assert_eq!(once.convert(v).unwrap(), once.clone());
            prop_assert_eq!(once.ips.len(), r.ips.len());
            prop_assert_eq!(once.routes.len(), r.routes.len());
            let through = once.to_json(w);
            if !w.is_legacy_result() {
                prop_assert!(through.is_ok());
            }
        } else {
            prop_assert!(v.is_legacy_result());
        }
    }

    #[test]
    fn addresses_and_routes_survive_every_version(r in result(), v in version()) {
        if let Ok(c) = r.convert(v) {
            let mut before: Vec<_> = r.ips.iter().map(|i| (i.address, i.gateway)).collect();
            let mut after: Vec<_> = c.ips.iter().map(|i| (i.address, i.gateway)).collect();
            before.sort();
            after.sort();
            prop_assert_eq!(before, after);
            let mut before: Vec<_> = r.routes.iter().map(|x| (x.dst, x.gw)).collect();
            let mut after: Vec<_> = c.routes.iter().map(|x| (x.dst, x.gw)).collect();
            before.sort();
            after.sort();
            prop_assert_eq!(before, after);
            prop_assert_eq!(c.dns, r.dns.clone());
        }
    }

    #[test]
    fn legacy_conversion_fails_only_when_it_must(r in result(), v in version()) {
        if v.is_legacy_result() {
            let v4 = r.ips.iter().filter(|i| i.address.addr().is_ipv4()).count();
            let v6 = r.ips.len() - v4;
            let orphan = r.routes.iter().any(|x| if x.dst.addr().is_ipv4() { v4 == 0 } else { v6 == 0 });
            let must_fail = v4 > 1 || v6 > 1 || r.ips.is_empty() || orphan;
            prop_assert_eq!(r.to_json(v).is_err(), must_fail);
        }
    }
}
