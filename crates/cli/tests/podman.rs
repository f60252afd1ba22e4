//! podman (Debian 4.3) as a real runtime driving twill's plugins through its CNI backend,
//! exactly as a podman user would: `podman network create`, `podman run`, `-p`, `--ip`,
//! `podman rm`, `podman network rm`. podman runs in the real root namespace, so every test
//! uses its own 10.X.N.0/24 network (X picked so that no host network is touched) and checks that the bridge, veths, namespaces,
//! reservations, cached results and firewall entries it made are gone afterwards; the
//! fixture removes anything left (also on failure) and touches nothing else. Without podman,
//! runc or busybox-static the tests fail and say to run scripts/install-deps.sh.

#[path = "support/host_trace.rs"]
mod host_trace;
#[path = "support/podman.rs"]
mod podman_host;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use host_trace::{TestNet, reservations};
use podman_host::{PODMAN_PLUGINS, Podman, Source, ip4, net4, net6};

/// A server in a container answering every TCP connection on `port` with `reply`.
fn server_cmd<'a>(port: &'a str, reply: &'a str) -> [&'a str; 7] {
    ["nc", "-ll", "-p", port, "-e", "echo", reply]
}

fn out_text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Owner tags (`NET/CONTAINERID/eth0`) in the host's ruleset: twill's bridge, portmap and
/// firewall tag every element they add with the attachment.
fn owner_tags(net: &TestNet) -> HashSet<String> {
    let ruleset = std::process::Command::new("nft").args(["list", "ruleset"]).output().unwrap();
    let text = String::from_utf8_lossy(&ruleset.stdout).into_owned();
    let needle = format!("comment \"{}/", net.name);
    text.match_indices(&needle)
        .filter_map(|(at, _)| text[at + 9..].split('"').next().map(str::to_string))
        .collect()
}

/// Connects to `addr` until it answers (the server may still be starting) and returns what
/// it sent.
fn fetch(addr: SocketAddr) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(mut conn) => {
                conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut got = String::new();
                let _ = conn.read_to_string(&mut got);
                if !got.is_empty() {
                    return got;
                }
                last = "connected, empty answer".into();
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no answer from {addr}: {last}");
}

/// A TCP port nothing on the host listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0").unwrap().local_addr().unwrap().port()
}

fn gateway(net: &TestNet, v6: bool) -> IpAddr {
    let subnet = net.subnets.iter().find(|s| s.addr().is_ipv6() == v6).expect("subnet of that family");
    subnet.hosts().next().unwrap()
}

#[test]
fn plugins_come_from_twill_where_it_has_them() {
    let pm = Podman::new("src");
    let names: Vec<&str> = pm.sources.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, PODMAN_PLUGINS);
    for (name, source) in &pm.sources {
        let twill_has = plugins::NAMES.contains(name);
        assert_eq!(*source == Source::Twill, twill_has, "{name}: {source:?}, twill provides it: {twill_has}");
    }
    let fallback: Vec<&str> =
        pm.sources.iter().filter(|(_, s)| *s != Source::Twill).map(|(n, _)| *n).collect();
    eprintln!("podman plugins from the reference: {fallback:?} (goal: none)");
    let version = pm.ok(&["version", "--format", "{{.Client.Version}}"]);
    assert!(version.starts_with("4."), "podman 4.x expected, got {version}");
}

#[test]
fn network_create_plain_and_dual_stack() {
    let pm = Podman::new("create");
    let plain = pm.network_create("twill-plain", &[&net4(101)], false);
    let conf = pm.conflist(&plain);
    let types: Vec<&str> =
        conf["plugins"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["bridge", "portmap", "firewall", "tuning"], "podman's generated chain: {conf}");
    assert_eq!(conf["plugins"][0]["bridge"], plain.bridge.as_str());
    assert_eq!(conf["plugins"][0]["ipam"]["type"], "host-local");

    let dual = pm.network_create("twill-dual", &[&net4(102), &net6(102)], true);
    let inspect: serde_json::Value =
        serde_json::from_str(&pm.ok(&["network", "inspect", &dual.name])).unwrap();
    assert_eq!(inspect[0]["ipv6_enabled"], true);
    let (gw4, gw6) = (gateway(&dual, false), gateway(&dual, true));
    let script = format!("ip -o addr show dev eth0; ping -c1 -W2 {gw4} && ping -c1 -W2 {gw6}");
    let out = pm.run(&dual, &[], &["sh", "-c", &script]);
    let text = out_text(&out);
    assert!(out.status.success(), "dual-stack container reaches both gateways: {text}");
    let addrs: Vec<IpAddr> =
        text.split_whitespace().filter_map(|w| w.split('/').next()?.parse().ok()).collect();
    assert!(dual.subnets.iter().all(|net| addrs.iter().any(|a| net.contains(a))), "{text}");
    pm.assert_clean(&dual, false, "after podman run --rm");

    pm.network_rm(&plain);
    pm.network_rm(&dual);
    assert!(!pm.ok(&["network", "ls"]).contains("twill-"));
    pm.assert_clean(&plain, true, "after podman network rm");
    pm.assert_clean(&dual, true, "after podman network rm");
}

#[test]
fn containers_reach_gateway_and_each_other() {
    let pm = Podman::new("reach");
    let net = pm.network_create("twill-reach", &[&net4(103)], false);
    pm.run_detached(&net, "srv", &[], &server_cmd("8080", "twill-hello"));
    let srv = pm.addresses("srv")[0];
    assert!(net.subnets[0].contains(&srv), "{srv} in {}", net.subnets[0]);
    let tags = owner_tags(&net);
    assert!(!tags.is_empty(), "twill's plugins tagged the attachment in nftables: {tags:?}");

    let script = format!("ping -c1 -W2 {} && ping -c1 -W2 {srv} && nc -w 3 {srv} 8080", gateway(&net, false));
    let out = pm.run(&net, &[], &["sh", "-c", &script]);
    let text = out_text(&out);
    assert!(out.status.success(), "peer pings gateway and srv, talks to srv: {text}");
    assert!(text.contains("twill-hello"), "{text}");
    assert_eq!(fetch(SocketAddr::new(srv, 8080)).trim(), "twill-hello", "host reaches the container");

    pm.rm(&["srv"]);
    pm.assert_clean(&net, false, "after podman rm");
    pm.network_rm(&net);
    pm.assert_clean(&net, true, "after podman network rm");
}

#[test]
fn published_ports_from_host_and_from_another_container() {
    let pm = Podman::new("ports");
    let net = pm.network_create("twill-ports", &[&net4(104)], false);
    let port = free_port();
    let publish = format!("{port}:8080");
    pm.run_detached(&net, "web", &["-p", &publish], &server_cmd("8080", "twill-published"));
    let gw = gateway(&net, false);
    for host_ip in [IpAddr::from([127, 0, 0, 1]), gw] {
        assert_eq!(fetch(SocketAddr::new(host_ip, port)).trim(), "twill-published", "via {host_ip}:{port}");
    }
    let script = format!("nc -w 3 {gw} {port}");
    let out = pm.run(&net, &[], &["sh", "-c", &script]);
    assert!(out_text(&out).contains("twill-published"), "from another container: {}", out_text(&out));

    pm.rm(&["web"]);
    pm.assert_clean(&net, false, "after podman rm");
    assert!(
        TcpStream::connect_timeout(&SocketAddr::new([127, 0, 0, 1].into(), port), Duration::from_millis(300))
            .is_err()
    );
    pm.network_rm(&net);
    pm.assert_clean(&net, true, "after podman network rm");
}

#[test]
fn static_ip_and_a_duplicate_that_fails_cleanly() {
    let pm = Podman::new("static");
    let net = pm.network_create("twill-static", &[&net4(105)], false);
    let fixed = ip4(105, 50);
    let fixed_ip: IpAddr = fixed.parse().unwrap();
    pm.run_detached(&net, "first", &["--ip", &fixed], &["sleep", "300"]);
    assert_eq!(pm.addresses("first"), [fixed_ip]);
    assert_eq!(reservations(&net.name), [fixed.as_str()]);
    let tags_before = owner_tags(&net);

    let args = ["run", "-d", "--name", "second", "--network", &net.name, "--ip", &fixed, "--rootfs"];
    let rootfs = pm.dir.join("rootfs").display().to_string();
    let err = pm.fails(&[&args[..], &[&rootfs, "sleep", "300"]].concat());
    assert!(err.contains(&fixed) && err.contains("not available"), "clean error: {err}");
    assert_eq!(reservations(&net.name), [fixed.as_str()], "nothing reserved for the failed container");
    assert_eq!(owner_tags(&net), tags_before, "no firewall entry for the failed container");
    let veths_on_bridge = std::fs::read_dir(format!("/sys/class/net/{}/brif", net.bridge)).unwrap().count();
    assert_eq!(veths_on_bridge, 1, "only the first container's veth on {}", net.bridge);

    pm.rm(&["first", "second"]);
    pm.assert_clean(&net, false, "after podman rm");
    pm.run_detached(&net, "again", &["--ip", &fixed], &["sleep", "300"]);
    assert_eq!(pm.addresses("again"), [fixed_ip], "the address is free again");
    pm.rm(&["again"]);
    pm.assert_clean(&net, false, "after podman rm");

    // The leak check sees a reservation nobody released.
    let planted =
        std::path::Path::new(host_trace::CNI_STATE).join("networks").join(&net.name).join(ip4(105, 99));
    std::fs::write(&planted, "lost\r\neth0").unwrap();
    let seen = pm.host.leftovers(&net, false);
    std::fs::remove_file(&planted).unwrap();
    assert_eq!(seen, [format!("reservation {}", ip4(105, 99))]);
    pm.network_rm(&net);
    pm.assert_clean(&net, true, "after podman network rm");
}

#[test]
fn thirty_containers_of_churn_leave_nothing() {
    const CONTAINERS: usize = 30;
    let pm = Podman::new("churn");
    let net = pm.network_create("twill-churn", &[&net4(106)], false);
    let names: Vec<String> = (0..CONTAINERS).map(|i| format!("churn{i}")).collect();
    let mut live = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        pm.run_detached(&net, name, &[], &["sleep", "300"]);
        let ip = pm.addresses(name)[0];
        assert!(!live.values().any(|other| *other == ip), "{ip} handed out twice");
        live.insert(name.clone(), ip);
        // Every third container goes again at once, while the others live on.
        if i % 3 == 2 {
            pm.rm(&[name]);
            live.remove(name);
        }
    }
    let alive: Vec<&str> =
        names.iter().enumerate().filter(|(i, _)| i % 3 != 2).map(|(_, n)| n.as_str()).collect();
    assert_eq!(reservations(&net.name).len(), alive.len());
    assert_eq!(owner_tags(&net).len(), alive.len(), "one owner tag per live attachment");
    pm.rm(&alive);
    pm.assert_clean(&net, false, "after removing 30 containers");
    pm.network_rm(&net);
    pm.assert_clean(&net, true, "after podman network rm");
}
