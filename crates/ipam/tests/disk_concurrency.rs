//! Many writers on one network directory, each with its own DiskStore (its own flock):
//! threads in this process, and separate processes (this test binary re-executed).

mod support;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::thread;

use serde_json::json;
use support::{Scratch, names};
use twill_ipam::{DiskStore, IpamConfig, allocate, release};

const WRITERS: usize = 50;
const CHILD_ENV: &str = "TWILL_IPAM_TEST_CHILD";

fn conf(data_dir: &Path) -> IpamConfig {
    let ipam = json!({"subnet": "10.9.0.0/24", "dataDir": data_dir.to_str().unwrap()});
    IpamConfig::from_ipam_json("busy", &ipam).unwrap()
}

fn allocate_one(data_dir: &Path, id: &str) -> IpAddr {
    let conf = conf(data_dir);
    let mut store = DiskStore::open(&conf.data_dir, &conf.name).unwrap();
    let got = allocate(&mut store, &conf, id, "eth0", &[]).unwrap();
    got[0].address.addr()
}

fn release_one(data_dir: &Path, id: &str) -> Vec<IpAddr> {
    let conf = conf(data_dir);
    let mut store = DiskStore::open(&conf.data_dir, &conf.name).unwrap();
    release(&mut store, id, "eth0").unwrap()
}

fn assert_unique(ips: &[IpAddr]) {
    let unique: HashSet<&IpAddr> = ips.iter().collect();
    assert_eq!(unique.len(), WRITERS, "duplicate addresses handed out: {ips:?}");
}

fn assert_only_bookkeeping_left(data_dir: &Path) {
    assert_eq!(names(&data_dir.join("busy")), ["last_reserved_ip.0", "lock"]);
}

#[test]
fn threads_allocate_and_release_without_duplicates() {
    let scratch = Scratch::new("threads");
    let dir = scratch.path();
    let ips: Vec<IpAddr> = thread::scope(|s| {
        let handles: Vec<_> =
            (0..WRITERS).map(|i| s.spawn(move || allocate_one(dir, &format!("ctr-{i}")))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_unique(&ips);
    assert_eq!(names(&dir.join("busy")).len(), WRITERS + 2);
    let freed: Vec<Vec<IpAddr>> = thread::scope(|s| {
        let handles: Vec<_> =
            (0..WRITERS).map(|i| s.spawn(move || release_one(dir, &format!("ctr-{i}")))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, freed) in freed.iter().enumerate() {
        assert_eq!(freed, &[ips[i]], "ctr-{i}");
    }
    assert_only_bookkeeping_left(dir);
}

#[test]
fn processes_allocate_and_release_without_duplicates() {
    let scratch = Scratch::new("procs");
    let dir = scratch.path();
    let alloc = run_children(dir, "allocate");
    let ips: Vec<IpAddr> = alloc.iter().map(|out| out.parse().unwrap()).collect();
    assert_unique(&ips);
    let freed = run_children(dir, "release");
    for (i, out) in freed.iter().enumerate() {
        assert_eq!(out, &ips[i].to_string(), "ctr-{i}");
    }
    assert_only_bookkeeping_left(dir);
}

/// Start WRITERS copies of this binary at once, each running `child_process` for one id;
/// returns what each printed after `RESULT=`.
fn run_children(dir: &Path, verb: &str) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WRITERS)
        .map(|i| {
            Command::new(&exe)
                .args(["--exact", "child_process", "--nocapture", "--test-threads", "1"])
                .env(CHILD_ENV, format!("{verb}|ctr-{i}|{}", dir.display()))
                .output_async()
        })
        .collect();
    children.into_iter().map(|c| c.finish()).collect()
}

/// Run by `run_children` in a child process; does nothing in a normal test run.
#[test]
fn child_process() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, '|');
    let (verb, id, dir) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
    let out = match verb {
        "allocate" => allocate_one(Path::new(dir), id).to_string(),
        _ => {
            let freed = release_one(Path::new(dir), id);
            freed.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
        }
    };
    println!("RESULT={out}");
}

/// A spawned child whose output is collected later, so all children run at once.
struct Running(std::process::Child);

trait SpawnAsync {
    fn output_async(&mut self) -> Running;
}

impl SpawnAsync for Command {
    fn output_async(&mut self) -> Running {
        self.stdout(std::process::Stdio::piped());
        self.stderr(std::process::Stdio::piped());
        Running(self.spawn().unwrap())
    }
}

impl Running {
    fn finish(self) -> String {
        let out = self.0.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        // The harness prints "test child_process ... " on the same line first.
        let line = stdout.lines().find_map(|l| l.split_once("RESULT=").map(|(_, r)| r));
        line.unwrap_or_else(|| panic!("child printed no result: {stdout}")).to_string()
    }
}
