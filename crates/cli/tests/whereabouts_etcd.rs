//! `whereabouts` on etcd with TLS and client certificates, restarted in the middle of a
//! churn: workers keep attaching and detaching pods (bridge + whereabouts, the real binary
//! through the runtime) while the only etcd member is killed and, seconds later, started
//! again with its data. While it is down, ADDs fail with code 11 naming the datastore and
//! saying it is unreachable; after it is back they succeed; no address is ever held by two
//! live pods; and once every worker has detached, nothing is left reserved.

mod support;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster::ippool;
use cluster::pki;
use cluster::store::{DatastoreConf, EtcdTls};
use cni_exec::LoadedList;
use serde_json::json;
use support::World;
use testkit::{EtcdCluster, EtcdOpts, ServerTls, TestNs};

const WORKERS: usize = 4;
const PORT: u16 = 23790;

/// What the workers saw.
#[derive(Default)]
struct Log {
    /// Address → the worker holding it now.
    live: BTreeMap<IpAddr, usize>,
    duplicates: Vec<String>,
    adds_ok: Vec<Instant>,
    /// (when, code, message) of failed ADDs.
    add_errors: Vec<(Instant, u32, String)>,
    del_errors: usize,
}

fn plugin_error(e: &cni_exec::Error) -> (u32, String) {
    let c = e.to_cni();
    (c.code.code(), c.msg)
}

/// ADD, record, DEL until it succeeds; again until `stop`.
fn worker(i: usize, world: &World, net: &LoadedList, log: &Mutex<Log>, stop: &AtomicBool) {
    let pod = TestNs::new(&format!("wbet{i}"));
    let rt = world.rt(&format!("churn-{i}"), &pod);
    while !stop.load(Ordering::Relaxed) {
        match world.runtime.add(net, &rt) {
            Ok(r) => {
                let ip = r.ips[0].address.addr();
                let mut l = log.lock().unwrap();
                if let Some(other) = l.live.insert(ip, i) {
                    l.duplicates.push(format!("{ip} held by workers {other} and {i}"));
                }
                l.adds_ok.push(Instant::now());
            }
            Err(e) => {
                let (code, msg) = plugin_error(&e);
                log.lock().unwrap().add_errors.push((Instant::now(), code, msg));
            }
        }
        // Not held from the moment its DEL starts (a DEL that frees it lets another take it
        // before this thread could note the release).
        log.lock().unwrap().live.retain(|_, w| *w != i);
        // A runtime deletes what a failed ADD may have left; DEL is retried until it works.
        loop {
            match world.runtime.del(net, &rt) {
                Ok(()) => break,
                Err(_) => {
                    log.lock().unwrap().del_errors += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
}

#[test]
fn etcd_restarted_in_the_middle_of_a_churn() {
    let world = World::new("wbet", &["bridge", "whereabouts"], &[]);
    std::fs::write(world.dir.join("whereabouts.conf"), "{}").unwrap();
    let pki = pki::generate(&world.dir.join("pki"), &["127.0.0.1".into()]).unwrap();
    let tls = ServerTls {
        ca: pki.ca.clone(),
        cert: pki.server_cert.clone(),
        key: pki.server_key.clone(),
        client_auth: true,
    };
    let opts = EtcdOpts { members: 1, hosts: Some(vec![("127.0.0.1".into(), PORT)]), tls: Some(tls) };
    let mut etcd = EtcdCluster::start_with(opts, Some(world.host.ns()));
    let net = world.list(json!({
        "cniVersion": "1.1.0",
        "name": "churnnet",
        "plugins": [{"type": "bridge", "bridge": "twwbe0", "isGateway": true, "ipam": {
            "type": "whereabouts", "range": "10.79.0.0/24", "gateway": "10.79.0.1",
            "datastore": "etcd", "etcd_host": format!("127.0.0.1:{PORT}"),
            "etcd_ca_cert_file": pki.ca, "etcd_cert_file": pki.client_cert, "etcd_key_file": pki.client_key,
            "node_name": "node-e", "configuration_path": "{dir}/whereabouts.conf"}}]
    }));
    let log = Arc::new(Mutex::new(Log::default()));
    // etcd goes down once an ADD has succeeded (at least `warm` in), stays down `down_for`,
    // and the churn goes on until an ADD has succeeded after it is back (or `LIMIT`).
    let (warm, down_for) = (Duration::from_secs(3), Duration::from_secs(4));
    const LIMIT: Duration = Duration::from_secs(30);
    let stop = AtomicBool::new(false);
    let succeeded_after = |t: Instant| log.lock().unwrap().adds_ok.iter().any(|a| *a > t);
    let wait_success_after = |t: Instant| {
        let deadline = Instant::now() + LIMIT;
        while !succeeded_after(t) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // One ADD made while etcd is surely down: the workers may all be retrying a DEL then.
    let probe_pod = TestNs::new("wbetp");
    let probe = world.rt("probe", &probe_pod);
    let (down_at, up_at, probed) = std::thread::scope(|s| {
        let started = Instant::now();
        for i in 0..WORKERS {
            let (world, net, log, stop) = (&world, &net, &log, &stop);
            s.spawn(move || worker(i, world, net, log, stop));
        }
        std::thread::sleep(warm);
        wait_success_after(started);
        let down_at = Instant::now();
        etcd.kill(0);
        let probed = world.runtime.add(&net, &probe);
        std::thread::sleep(down_for.saturating_sub(down_at.elapsed()));
        etcd.restart(0);
        let up_at = Instant::now();
        wait_success_after(up_at);
        stop.store(true, Ordering::Relaxed);
        (down_at, up_at, probed)
    });
    let (code, msg) = plugin_error(&probed.expect_err("an ADD while etcd is down fails"));
    log.lock().unwrap().add_errors.push((down_at, code, msg));
    // What a runtime does after a failed ADD, now that etcd is back.
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(e) = world.runtime.del(&net, &probe) {
        assert!(Instant::now() < deadline, "DEL of the probe after etcd came back: {e}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let l = log.lock().unwrap();
    assert!(l.duplicates.is_empty(), "duplicates: {:?}", l.duplicates);
    assert!(l.adds_ok.iter().any(|t| *t < down_at), "ADDs succeeded before the outage");
    assert!(l.adds_ok.iter().any(|t| *t > up_at), "ADDs succeed again after etcd is back");
    let during = l.add_errors.iter().filter(|(t, ..)| *t >= down_at && *t < up_at).count();
    assert!(during > 0, "ADDs failed while etcd was down");
    let endpoint = format!("datastore etcd:https://127.0.0.1:{PORT} is unreachable");
    for (_, code, msg) in &l.add_errors {
        assert_eq!(*code, 11, "{msg}");
        assert!(msg.contains(&endpoint), "{msg}");
    }
    // Nothing outlives the churn: every reservation was freed by its worker's DEL.
    let conf = DatastoreConf::parse(
        &format!("etcd:https://127.0.0.1:{PORT}"),
        EtcdTls {
            cacert: Some(pki.ca.clone()),
            cert: Some(pki.client_cert.clone()),
            key: Some(pki.client_key.clone()),
        },
    )
    .unwrap();
    let left = world
        .host
        .ns()
        .run(move || {
            let store = conf.open().unwrap();
            ippool::pools(store.as_ref()).unwrap().into_iter().flat_map(|p| p.reservations).count()
        })
        .unwrap();
    assert_eq!(left, 0);
    eprintln!(
        "churn: {} ADDs ok, {} failed during the outage, {} DEL retries",
        l.adds_ok.len(),
        l.add_errors.len(),
        l.del_errors
    );
}
