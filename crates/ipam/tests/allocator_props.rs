//! Property tests of the allocator over MemoryStore against a small reference model.
//!
//! The model: addresses are offsets from the network address; offset 1 is the gateway; the
//! window is 1..=last (last = broadcast-1 for IPv4, the final address for IPv6). A dynamic
//! allocation takes the first free non-gateway offset in cyclic order after the cursor (the
//! last reserved offset), or from the window start when there is no cursor.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use proptest::prelude::*;
use serde_json::json;
use twill_ipam::{ErrorKind, IpamConfig, MemoryStore, Store, allocate, gc, release};

#[derive(Debug, Clone)]
enum Op {
    Alloc(u8),
    Request(u8, u16),
    Release(u8),
    Gc(Vec<u8>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..40).prop_map(Op::Alloc),
        1 => (0u8..40, any::<u16>()).prop_map(|(id, off)| Op::Request(id, off)),
        2 => (0u8..40).prop_map(Op::Release),
        1 => prop::collection::vec(0u8..40, 0..20).prop_map(Op::Gc),
    ]
}

/// A subnet small enough to exhaust: IPv4 /24../30 or IPv6 /120../126.
fn subnet() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (24u8..=30).prop_map(|p| format!("10.20.30.0/{p}").parse().unwrap()),
        (120u8..=126).prop_map(|p| format!("fd00:1::/{p}").parse().unwrap()),
    ]
}

struct Model {
    net: IpNet,
    last: u128,
    held: BTreeMap<u128, String>,
    cursor: Option<u128>,
}

impl Model {
    fn new(net: IpNet) -> Model {
        let size = 1u128 << (net.max_prefix_len() - net.prefix_len());
        let last = if net.addr().is_ipv4() { size - 2 } else { size - 1 };
        Model { net, last, held: BTreeMap::new(), cursor: None }
    }

    fn ip(&self, off: u128) -> IpAddr {
        match self.net.network() {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) + off as u32).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) + off).into()),
        }
    }

    fn offset(&self, ip: IpAddr) -> u128 {
        let (ip, net) = match (ip, self.net.network()) {
            (IpAddr::V4(i), IpAddr::V4(n)) => (u128::from(u32::from(i)), u128::from(u32::from(n))),
            (IpAddr::V6(i), IpAddr::V6(n)) => (u128::from(i), u128::from(n)),
            _ => panic!("family mismatch"),
        };
        ip - net
    }

    fn next_free(&self) -> Option<u128> {
        let start = self.cursor.map_or(1, |c| if c >= self.last { 1 } else { c + 1 });
        let order = (start..=self.last).chain(1..start);
        order.filter(|o| *o != 1).find(|o| !self.held.contains_key(o))
    }

    fn holds(&self, id: &str) -> bool {
        self.held.values().any(|h| h == id)
    }
}

fn check_store(store: &MemoryStore, model: &Model) {
    let got: BTreeMap<u128, String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|r| match r.owner {
            twill_ipam::Owner::Attachment { id, .. } => (model.offset(r.ip), id),
            other => panic!("unexpected owner {other:?}"),
        })
        .collect();
    assert_eq!(got, model.held);
}

fn step(store: &mut MemoryStore, conf: &IpamConfig, model: &mut Model, op: Op) {
    match op {
        Op::Alloc(n) => {
            let id = format!("c{n}");
            let got = allocate(store, conf, &id, "eth0", &[]);
            if model.holds(&id) {
                assert_eq!(got.unwrap_err().kind(), ErrorKind::Conflict);
            } else if let Some(off) = model.next_free() {
                let a = &got.unwrap()[0];
                assert_eq!(a.address, IpNet::new(model.ip(off), model.net.prefix_len()).unwrap());
                assert_eq!(a.gateway, model.ip(1));
                model.held.insert(off, id);
                model.cursor = Some(off);
            } else {
                assert_eq!(got.unwrap_err().kind(), ErrorKind::Exhausted);
            }
        }
        Op::Request(n, raw) => {
            let id = format!("c{n}");
            let off = 1 + u128::from(raw) % model.last;
            let got = allocate(store, conf, &id, "eth0", &[model.ip(off)]);
            if off == 1 || model.held.contains_key(&off) {
                assert_eq!(got.unwrap_err().kind(), ErrorKind::Conflict);
            } else {
                assert_eq!(got.unwrap()[0].address.addr(), model.ip(off));
                model.held.insert(off, id);
                model.cursor = Some(off);
            }
        }
        Op::Release(n) => {
            let id = format!("c{n}");
            let freed = release(store, &id, "eth0").unwrap();
            let want: Vec<IpAddr> =
                model.held.iter().filter(|(_, h)| **h == id).map(|(o, _)| model.ip(*o)).collect();
            assert_eq!(freed, want);
            model.held.retain(|_, h| *h != id);
        }
        Op::Gc(valid) => {
            let valid: Vec<(String, String)> =
                valid.iter().map(|n| (format!("c{n}"), "eth0".to_string())).collect();
            let freed = gc(store, &valid).unwrap();
            let keep = |h: &String| valid.iter().any(|(id, _)| id == h);
            let want: Vec<IpAddr> =
                model.held.iter().filter(|(_, h)| !keep(h)).map(|(o, _)| model.ip(*o)).collect();
            assert_eq!(freed, want);
            model.held.retain(|_, h| keep(h));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn allocator_matches_the_model(net in subnet(), ops in prop::collection::vec(op(), 1..120)) {
        let conf = IpamConfig::from_ipam_json("p", &json!({"subnet": net.to_string()})).unwrap();
        let mut store = MemoryStore::new();
        let mut model = Model::new(net);
        for op in ops {
            step(&mut store, &conf, &mut model, op);
            check_store(&store, &model);
        }
    }

    #[test]
    fn dual_stack_gives_one_unique_address_per_family(v4 in 24u8..=26, v6 in 64u8..=120, n in 1usize..30) {
        let ipam = json!({"ranges": [[{"subnet": format!("10.7.0.0/{v4}")}], [{"subnet": format!("fd00:7::/{v6}")}]]});
        let conf = IpamConfig::from_ipam_json("p", &ipam).unwrap();
        let mut store = MemoryStore::new();
        let mut seen = std::collections::HashSet::new();
        for i in 0..n {
            let got = allocate(&mut store, &conf, &format!("c{i}"), "eth0", &[]).unwrap();
            prop_assert_eq!(got.len(), 2);
            prop_assert!(got[0].address.addr().is_ipv4() && got[0].range_set == 0);
            prop_assert!(got[1].address.addr().is_ipv6() && got[1].range_set == 1);
            prop_assert_eq!(got[1].address.prefix_len(), v6);
            for a in &got {
                prop_assert!(seen.insert(a.address.addr()));
                prop_assert_ne!(Some(a.address.addr()), conf.range_sets[a.range_set].ranges()[0].gateway().into());
            }
        }
        prop_assert_eq!(store.len(), 2 * n);
    }
}

#[test]
fn tiny_ranges() {
    for (subnet, first, second) in
        [("10.0.0.0/30", Some("10.0.0.2/30"), None), ("fd00::/126", Some("fd00::2/126"), Some("fd00::3/126"))]
    {
        let conf = IpamConfig::from_ipam_json("p", &json!({ "subnet": subnet })).unwrap();
        let mut store = MemoryStore::new();
        let a = allocate(&mut store, &conf, "a", "eth0", &[]).map(|v| v[0].address.to_string());
        assert_eq!(a.ok().as_deref(), first);
        let b = allocate(&mut store, &conf, "b", "eth0", &[]).map(|v| v[0].address.to_string());
        assert_eq!(b.ok().as_deref(), second);
    }
    for subnet in ["10.0.0.0/31", "10.0.0.0/32", "fd00::/127", "fd00::1/128"] {
        let err = IpamConfig::from_ipam_json("p", &json!({ "subnet": subnet })).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{subnet}");
    }
}
