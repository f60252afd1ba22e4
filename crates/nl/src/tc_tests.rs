use super::*;

#[test]
fn xmit_time_matches_tc() {
    // 2000 bytes at 125000 B/s = 16 ms = 250000 ticks of 64 ns.
    assert_eq!(xmit_ticks(125_000, 2000), 250_000);
    // tc truncates to whole microseconds before scaling.
    assert_eq!(xmit_ticks(3, 1), (333_333.0 * 15.625) as u32);
}

#[test]
fn tbf_options_carry_parms_burst_and_rate_table() {
    let t = Tbf { rate: 125_000, burst: 2000, limit: 5125 };
    let opts = build_tbf_options(&t);
    let raw: Vec<(u16, Vec<u8>)> = opts
        .iter()
        .map(|o| match o {
            TcOption::Other(n) => (n.kind(), nla_value(n)),
            other => panic!("{other:?}"),
        })
        .collect();
    let kinds: Vec<u16> = raw.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [TCA_TBF_PARMS, TCA_TBF_BURST, TCA_TBF_RTAB]);
    let parms = &raw[0].1;
    assert_eq!(parms.len(), 36);
    assert_eq!(parms[0], 3, "cell_log");
    assert_eq!(parms[1], 1, "ethernet link layer");
    assert_eq!(u32_at(parms, 8), Some(125_000));
    assert_eq!(u32_at(parms, 24), Some(5125));
    assert_eq!(u32_at(parms, 28), Some(250_000));
    assert_eq!(raw[1].1, 2000u32.to_ne_bytes());
    assert_eq!(raw[2].1.len(), 1024);
    // First cell: 8 bytes at 125000 B/s = 64 us.
    assert_eq!(u32_at(&raw[2].1, 0), Some(1000));
    assert_eq!(parse_tbf(&opts), Some(t));
}

#[test]
fn fast_rates_use_rate64() {
    let t = Tbf { rate: 10_000_000_000, burst: 1_000_000, limit: 2_000_000 };
    let opts = build_tbf_options(&t);
    assert!(opts.iter().any(|o| matches!(o, TcOption::Other(n) if n.kind() == TCA_TBF_RATE64)));
    let back = parse_tbf(&opts).unwrap();
    assert_eq!(back.rate, t.rate);
}

#[test]
fn latency_sets_the_limit_like_tc() {
    let t = Tbf::with_latency(125_000, 2000, Duration::from_millis(25));
    assert_eq!(t.limit, 3125 + 2000);
}

#[test]
fn options_nested_in_one_raw_attribute_are_read() {
    let t = Tbf { rate: 125_000, burst: 2000, limit: 5125 };
    let inner = build_tbf_options(&t);
    let mut nested = Vec::new();
    for o in &inner {
        let TcOption::Other(n) = o else { unreachable!() };
        let v = nla_value(n);
        let len = 4 + v.len();
        nested.extend_from_slice(&(len as u16).to_ne_bytes());
        nested.extend_from_slice(&n.kind().to_ne_bytes());
        nested.extend_from_slice(&v);
        nested.resize((nested.len() + 3) & !3, 0);
    }
    let wrapped = vec![TcOption::Other(DefaultNla::new(TCA_OPTIONS, nested))];
    assert_eq!(parse_tbf(&wrapped), Some(t));
}
