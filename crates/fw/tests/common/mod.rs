//! Rulesets that use every feature of the IR, shared by the kernel tests.

#![allow(dead_code)]

use std::net::IpAddr;

use twill_fw::nft::*;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn addr(s: &str) -> KeyPart {
    KeyPart::addr(ip(s))
}

pub fn net(s: &str) -> KeyPart {
    KeyPart::net(s.parse().unwrap())
}

pub fn range(lo: &str, hi: &str) -> KeyPart {
    KeyPart::Range(Value::Addr(ip(lo)), Value::Addr(ip(hi)))
}

fn elem(key: Vec<KeyPart>, comment: &str) -> Elem {
    Elem::new(key).with_comment(comment)
}

fn sets() -> Vec<Set> {
    use DataType as T;
    let values = |vs: Vec<Value>| ElemData::Values(vs);
    vec![
        Set::new("masq4", &[T::Ipv4Addr]).with_elems(vec![elem(vec![addr("10.1.0.5")], "n/c1/eth0")]),
        Set::new("local4", &[T::Ipv4Addr, T::Ipv4Addr])
            .intervals()
            .with_elems(vec![elem(vec![addr("10.1.0.5"), net("10.1.0.0/24")], "n/c1/eth0")]),
        Set::new("iv4", &[T::Ipv4Addr]).intervals().with_elems(vec![
            Elem::new(vec![net("10.0.0.0/8")]),
            elem(vec![addr("11.0.0.1")], "one"),
            Elem::new(vec![range("12.0.0.1", "12.0.0.9")]),
            elem(vec![range("200.0.0.0", "255.255.255.255")], "to the top"),
        ]),
        Set::new("iv6", &[T::Ipv6Addr])
            .intervals()
            .with_elems(vec![Elem::new(vec![net("fd00::/64")]), Elem::new(vec![addr("fe80::1")])]),
        Set::new("all6", &[T::Ipv6Addr]).intervals().with_elems(vec![Elem::new(vec![net("::/0")])]),
        Set::map("port4", &[T::InetProto, T::InetService], &[T::Ipv4Addr, T::InetService]).with_elems(vec![
            elem(vec![KeyPart::Exact(Value::Proto(6)), KeyPart::Exact(Value::Port(8080))], "n/c1/eth0")
                .mapped_to(values(vec![Value::Addr(ip("10.88.0.2")), Value::Port(80)])),
        ]),
        Set::map("hostip6", &[T::Ipv6Addr, T::InetProto, T::InetService], &[T::Ipv6Addr, T::InetService])
            .with_elems(vec![
                elem(
                    vec![
                        addr("2001:db8::1"),
                        KeyPart::Exact(Value::Proto(132)),
                        KeyPart::Exact(Value::Port(9)),
                    ],
                    "x",
                )
                .mapped_to(values(vec![Value::Addr(ip("fd00::2")), Value::Port(9999)])),
            ]),
        Set::map("vm4", &[T::Ipv4Addr], &[T::Verdict]).with_elems(vec![
            elem(vec![addr("10.0.0.1")], "x/a").mapped_to(ElemData::Verdict(Verdict::Jump("group".into()))),
            Elem::new(vec![addr("10.0.0.2")]).mapped_to(ElemData::Verdict(Verdict::Drop)),
        ]),
        Set::new("ports4", &[T::Ipv4Addr, T::InetProto, T::InetService]).intervals().with_elems(vec![
            Elem::new(vec![
                net("10.244.1.20/31"),
                KeyPart::Exact(Value::Proto(6)),
                KeyPart::Exact(Value::Port(80)),
            ]),
            Elem::new(vec![
                addr("10.244.2.22"),
                KeyPart::Exact(Value::Proto(17)),
                KeyPart::Range(Value::Port(80), Value::Port(90)),
            ]),
        ]),
        Set::new("ports6", &[T::Ipv6Addr, T::InetProto, T::InetService]).intervals(),
        Set::new("names", &[T::Ifname])
            .with_elems(vec![elem(vec![KeyPart::Exact(Value::Ifname("cni0".into()))], "bridge cni0")]),
        Set::new("pairs", &[T::Ifname, T::Ifname]).with_elems(vec![Elem::new(vec![
            KeyPart::Exact(Value::Ifname("cni0".into())),
            KeyPart::Exact(Value::Ifname("cni0".into())),
        ])]),
    ]
}

fn is(field: Field, negate: bool, operand: Operand) -> Match {
    Match::Is { field, negate, operand }
}

fn prefix(s: &str) -> Operand {
    Operand::Prefix(s.parse().unwrap())
}

fn forward_rules() -> Vec<Rule> {
    let v = |verdict| Stmt::Verdict(verdict);
    vec![
        Rule::verdict(vec![Match::AnyOf { field: Field::CtState, bits: 6 }], Verdict::Accept),
        Rule::verdict(
            vec![Match::OneOf {
                field: Field::Icmpv6Type,
                negate: false,
                values: (133..=136).map(|t| KeyPart::Exact(Value::Icmpv6Type(t))).collect(),
            }],
            Verdict::Accept,
        ),
        Rule::verdict(vec![Match::AnyOf { field: Field::CtState, bits: 1 }], Verdict::Drop),
        Rule::new(vec![], vec![Stmt::Vmap { key: vec![Field::IpDaddr], map: "vm4".into() }]),
        Rule::verdict(
            vec![
                Match::in_set(&[Field::Iifname], "names"),
                Match::in_set(&[Field::Oifname], "names"),
                Match::not_in_set(&[Field::Iifname, Field::Oifname], "pairs"),
            ],
            Verdict::Drop,
        ),
        Rule::verdict(
            vec![Match::in_set(&[Field::IpSaddr, Field::L4Proto, Field::ThDport], "ports4")],
            Verdict::Accept,
        ),
        Rule::verdict(
            vec![Match::in_set(&[Field::Ip6Saddr, Field::L4Proto, Field::ThDport], "ports6")],
            Verdict::Accept,
        ),
        Rule::verdict(
            vec![is(
                Field::IpSaddr,
                false,
                Operand::Range(Value::Addr(ip("10.0.0.1")), Value::Addr(ip("10.0.0.9"))),
            )],
            Verdict::Drop,
        ),
        Rule::verdict(
            vec![Match::eq(Field::NfProto, Value::NfProto(10)), Match::in_set(&[Field::Ip6Saddr], "iv6")],
            Verdict::Accept,
        ),
        Rule::verdict(vec![Match::eq(Field::Iifname, Value::Ifname("eth0".into()))], Verdict::Accept),
        Rule::verdict(vec![Match::eq(Field::Mark, Value::Mark(0x2000))], Verdict::Accept),
        Rule::verdict(vec![is(Field::Ip6Daddr, true, prefix("fd00::/63"))], Verdict::Drop),
        Rule::verdict(
            vec![is(Field::IpDaddr, false, prefix("10.0.0.0/8")), Match::ne(Field::ThDport, Value::Port(22))],
            Verdict::Return,
        ),
        Rule::new(
            vec![Match::in_set(&[Field::IpSaddr], "iv4")],
            vec![Stmt::Counter, v(Verdict::Jump("group".into()))],
        ),
        Rule::new(
            vec![Match::AnyOf { field: Field::CtState, bits: 8 }],
            vec![Stmt::Log { group: 7, prefix: "tw a 3f".into() }, v(Verdict::Accept)],
        ),
        Rule::new(vec![], vec![Stmt::Counter, v(Verdict::Goto("group".into()))]).with_comment("last"),
    ]
}

fn nat_chains() -> Vec<Chain> {
    let dnat = |v6, key: &[Field], map: &str| Stmt::DnatMap { v6, key: key.to_vec(), map: map.into() };
    let pre = vec![Rule::verdict(
        vec![Match::eq(Field::FibDaddrType, Value::FibAddrType(2))],
        Verdict::Jump("hostports".into()),
    )];
    let hostports = vec![
        Rule::new(
            vec![Match::eq(Field::NfProto, Value::NfProto(2))],
            vec![dnat(false, &[Field::L4Proto, Field::ThDport], "port4")],
        ),
        Rule::new(vec![], vec![dnat(true, &[Field::Ip6Daddr, Field::L4Proto, Field::ThDport], "hostip6")]),
    ];
    let post = vec![
        Rule::new(
            vec![
                Match::AnyOf { field: Field::CtStatus, bits: 32 },
                Match::in_set(&[Field::IpSaddr, Field::IpDaddr], "local4"),
            ],
            vec![Stmt::Masquerade],
        ),
        Rule::verdict(vec![is(Field::IpDaddr, false, prefix("224.0.0.0/4"))], Verdict::Return),
        Rule::verdict(vec![is(Field::Ip6Daddr, false, prefix("ff00::/8"))], Verdict::Return),
        Rule::new(vec![Match::in_set(&[Field::IpSaddr], "masq4")], vec![Stmt::Masquerade]),
        Rule::new(
            vec![
                is(Field::IpSaddr, false, prefix("10.244.0.0/16")),
                is(Field::IpDaddr, true, prefix("10.244.0.0/16")),
            ],
            vec![Stmt::Masquerade],
        ),
        Rule::new(
            vec![
                is(Field::Ip6Saddr, false, prefix("fd00:10:244::/56")),
                Match::OneOf {
                    field: Field::Ip6Daddr,
                    negate: true,
                    values: vec![net("fd00:10:244::/56"), net("ff00::/8")],
                },
            ],
            vec![Stmt::Masquerade],
        ),
    ];
    vec![
        Chain::hooked("prerouting", ChainType::Nat, Hook::Prerouting, -100, pre.clone()),
        Chain::hooked("output", ChainType::Nat, Hook::Output, -100, pre),
        Chain::new("hostports", hostports),
        Chain::hooked("postrouting", ChainType::Nat, Hook::Postrouting, 100, post),
    ]
}

/// An inet table with every kind of set, map, match and statement twill uses.
pub fn inet_table(name: &str) -> Table {
    let mut t = Table::new(Family::Inet, name);
    t.sets = sets();
    let mut group = Chain::new(
        "group",
        vec![
            Rule::new(vec![], vec![Stmt::Counter, Stmt::Verdict(Verdict::Drop)])
                .with_comment("no rule allows it"),
        ],
    );
    group.comment = Some("ingress of pods selected by x/p".into());
    t.chains.push(group);
    t.chains.push(Chain::hooked("forward", ChainType::Filter, Hook::Forward, 1, forward_rules()));
    let mut input = Chain::hooked("input", ChainType::Filter, Hook::Input, 0, vec![]);
    if let Some(b) = input.base.as_mut() {
        b.drop = true;
    }
    t.chains.push(input);
    t.chains.extend(nat_chains());
    t
}

/// A bridge table: link-layer, ARP and IP matches with their implied dependencies.
pub fn bridge_table(name: &str) -> Table {
    use DataType as T;
    let mut t = Table::new(Family::Bridge, name);
    t.sets = vec![
        Set::new("guarded", &[T::Ifname])
            .with_elems(vec![elem(vec![KeyPart::Exact(Value::Ifname("veth1".into()))], "n/c/eth0")]),
        Set::new("macs", &[T::Ifname, T::EtherAddr]).with_elems(vec![elem(
            vec![
                KeyPart::Exact(Value::Ifname("veth1".into())),
                KeyPart::Exact(Value::Ether([2, 0, 0, 0, 0, 1])),
            ],
            "n/c/eth0",
        )]),
        Set::new("ips4", &[T::Ifname, T::Ipv4Addr]).with_elems(vec![Elem::new(vec![
            KeyPart::Exact(Value::Ifname("veth1".into())),
            addr("10.1.0.5"),
        ])]),
        Set::new("ips6", &[T::Ifname, T::Ipv6Addr]),
    ];
    let drop = |m: Vec<Match>| Rule::verdict(m, Verdict::Drop);
    let guarded = || Match::in_set(&[Field::Iifname], "guarded");
    let rules = vec![
        drop(vec![guarded(), Match::not_in_set(&[Field::Iifname, Field::EtherSaddr], "macs")]),
        drop(vec![guarded(), Match::not_in_set(&[Field::Iifname, Field::ArpSha], "macs")]),
        drop(vec![guarded(), Match::not_in_set(&[Field::Iifname, Field::ArpSpa], "ips4")]),
        Rule::new(
            vec![guarded(), Match::not_in_set(&[Field::Iifname, Field::IpSaddr], "ips4")],
            vec![Stmt::Log { group: 7, prefix: "tw s ip".into() }, Stmt::Verdict(Verdict::Drop)],
        ),
        drop(vec![guarded(), Match::not_in_set(&[Field::Iifname, Field::Ip6Saddr], "ips6")]),
        drop(vec![
            Match::eq(Field::Icmpv6Type, Value::Icmpv6Type(136)),
            Match::eq(Field::EtherDaddr, Value::Ether([0xff; 6])),
        ]),
        drop(vec![Match::eq(Field::EtherType, Value::EtherType(0x0806))]),
    ];
    t.chains.push(Chain::hooked("prerouting", ChainType::Filter, Hook::Prerouting, -300, rules));
    t
}

/// A netdev table on `device`'s egress hook: link-layer and IP matches with their
/// dependencies, and an anonymous set.
pub fn netdev_table(name: &str, device: &str) -> Table {
    let mut chain = Chain::hooked(
        "egress",
        ChainType::Filter,
        Hook::Egress,
        0,
        vec![
            Rule::verdict(vec![Match::ne(Field::ArpSha, Value::Ether([2, 0, 0, 0, 0, 5]))], Verdict::Drop),
            Rule::verdict(
                vec![Match::OneOf { field: Field::IpSaddr, negate: true, values: vec![addr("10.1.0.5")] }],
                Verdict::Drop,
            ),
            Rule::verdict(vec![Match::eq(Field::Protocol, Value::EtherType(0x0800))], Verdict::Accept),
        ],
    );
    if let Some(base) = chain.base.as_mut() {
        base.device = Some(device.to_string());
    }
    let mut t = Table::new(Family::Netdev, name);
    t.chains.push(chain);
    t
}

/// An arp-family table on the output hook.
pub fn arp_table(name: &str) -> Table {
    let rule = Rule::verdict(
        vec![
            Match::eq(Field::Oifname, Value::Ifname("eth0".into())),
            Match::ne(Field::ArpSpa, Value::Addr(ip("0.0.0.0"))),
            Match::OneOf { field: Field::ArpSpa, negate: true, values: vec![addr("10.1.0.5")] },
        ],
        Verdict::Drop,
    );
    let mut t = Table::new(Family::Arp, name);
    t.chains.push(Chain::hooked("output", ChainType::Filter, Hook::Output, 0, vec![rule]));
    t
}
