use super::*;

fn pod() -> Pod {
    Pod {
        port: "veth1a2b".into(),
        mac: [2, 0, 0, 0, 0, 5],
        ips: vec!["10.1.0.5".parse().unwrap(), "fd00::5".parse().unwrap()],
    }
}

#[test]
fn bridge_table_checks_mac_ip_arp_and_ndp() {
    let text = table(Placement::Bridge).text();
    for rule in [
        "iifname @ports iifname . ether saddr != @macs log prefix \"twill denied spoof mac\" group 6120 drop",
        "iifname @ports iifname . arp saddr ether != @macs log prefix \"twill denied spoof arp\" group 6120 drop",
        "iifname @ports arp saddr ip != 0.0.0.0 iifname . arp saddr ip != @ips4 log prefix \"twill denied spoof arp\" group 6120 drop",
        "iifname @ports iifname . ip saddr != @ips4 log prefix \"twill denied spoof ip4\" group 6120 drop",
        "iifname @ports ip6 saddr != fe80::/10 ip6 saddr != :: iifname . ip6 saddr != @ips6 log prefix \"twill denied spoof ip6\" group 6120 drop",
        "iifname @ports icmpv6 type { nd-router-advert, nd-redirect } log prefix \"twill denied spoof router\" group 6120 drop",
        "iifname @ports icmpv6 type nd-neighbor-advert @th,64,128 != fe80::/10 iifname . @th,64,128 != @ips6 log prefix \"twill denied spoof nd\" group 6120 drop",
        "iifname @ports icmpv6 type nd-neighbor-solicit ip6 saddr :: @th,64,128 != fe80::/10 iifname . @th,64,128 != @ips6 log prefix \"twill denied spoof nd\" group 6120 drop",
    ] {
        assert!(text.contains(rule), "missing {rule:?} in\n{text}");
    }
    assert!(text.starts_with("table bridge twill_guard {"), "{text}");
    let routed = table(Placement::Routed).text();
    assert!(
        routed.starts_with("table inet twill_guard {") && !routed.contains("arp") && !routed.contains("macs"),
        "{routed}"
    );
}

#[test]
fn a_pod_is_its_port_mac_and_addresses() {
    let b = add_batch(Placement::Bridge, "n/c/eth0", &pod()).text();
    assert_eq!(
        b,
        "add element bridge twill_guard ports { \"veth1a2b\" comment \"n/c/eth0\" }\n\
         add element bridge twill_guard macs { \"veth1a2b\" . 02:00:00:00:00:05 comment \"n/c/eth0\" }\n\
         add element bridge twill_guard ips4 { \"veth1a2b\" . 10.1.0.5 comment \"n/c/eth0\" }\n\
         add element bridge twill_guard ips6 { \"veth1a2b\" . fd00::5 comment \"n/c/eth0\" }\n"
    );
    let routed = add_batch(Placement::Routed, "n/c/eth0", &pod()).text();
    assert!(routed.starts_with("add element inet twill_guard ports") && !routed.contains("macs"), "{routed}");
}

#[test]
fn macvlan_pods_guard_themselves() {
    let p = pod();
    let text = pod_table("eth0", p.mac, &p.ips).text();
    assert!(text.starts_with("table netdev twill_guard {"), "{text}");
    for rule in [
        "type filter hook egress device \"eth0\" priority filter; policy accept;",
        "ether saddr != 02:00:00:00:00:05 drop",
        "arp saddr ether != 02:00:00:00:00:05 drop",
        "arp saddr ip != 0.0.0.0 arp saddr ip != { 10.1.0.5 } drop",
        "ip saddr != { 10.1.0.5 } drop",
        "ip6 saddr != fe80::/10 ip6 saddr != :: ip6 saddr != { fd00::5 } drop",
        "icmpv6 type nd-neighbor-advert @th,64,128 != fe80::/10 @th,64,128 != { fd00::5 } drop",
    ] {
        assert!(text.contains(rule), "missing {rule:?} in\n{text}");
    }
    // Without an IPv4 address, no IPv4 at all.
    let v6_only = pod_table("eth0", p.mac, &["fd00::5".parse().unwrap()]).text();
    assert!(v6_only.contains("meta protocol ip drop"), "{v6_only}");
}
