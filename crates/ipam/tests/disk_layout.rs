//! DiskStore against the reference host-local's on-disk layout, byte for byte.

mod support;

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;
use support::{Scratch, names};
use twill_ipam::{DiskStore, ErrorKind, IpamConfig, Owner, Store, Warning, allocate, check, gc, release};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn dual_stack(data_dir: &Path) -> IpamConfig {
    let ipam = json!({
        "ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8::/64"}]],
        "dataDir": data_dir.to_str().unwrap(),
    });
    IpamConfig::from_ipam_json("mynet", &ipam).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn layout_is_byte_exact() {
    let scratch = Scratch::new("layout");
    let conf = dual_stack(scratch.path());
    let mut store = DiskStore::open(&conf.data_dir, &conf.name).unwrap();
    let dir = scratch.path().join("mynet");
    assert_eq!(store.dir(), dir);
    allocate(&mut store, &conf, "ctr1", "eth0", &[]).unwrap();
    allocate(&mut store, &conf, "ctr2", "net1", &[ip("2001:db8::ab:0:0:1")]).unwrap();
    assert_eq!(
        names(&dir),
        [
            "10.1.2.2",
            "10.1.2.3",
            "2001:db8::2",
            "2001:db8::ab:0:0:1",
            "last_reserved_ip.0",
            "last_reserved_ip.1",
            "lock"
        ]
    );
    assert_eq!(fs::read(dir.join("10.1.2.2")).unwrap(), b"ctr1\r\neth0");
    assert_eq!(fs::read(dir.join("2001:db8::2")).unwrap(), b"ctr1\r\neth0");
    assert_eq!(fs::read(dir.join("10.1.2.3")).unwrap(), b"ctr2\r\nnet1");
    assert_eq!(fs::read(dir.join("last_reserved_ip.0")).unwrap(), b"10.1.2.3");
    assert_eq!(fs::read(dir.join("last_reserved_ip.1")).unwrap(), b"2001:db8::ab:0:0:1");
    assert_eq!(fs::read(dir.join("lock")).unwrap(), b"");
    for file in ["10.1.2.2", "2001:db8::2", "last_reserved_ip.0"] {
        assert_eq!(mode(&dir.join(file)) & !0o600, 0, "{file}");
    }
    assert_eq!(mode(&dir.join("lock")) & !0o750, 0);
    assert_eq!(mode(&dir) & !0o755, 0);
    assert!(store.take_warnings().is_empty());
}

#[test]
fn default_data_dir_is_the_reference_one() {
    assert_eq!(twill_ipam::DEFAULT_DATA_DIR, "/var/lib/cni/networks");
    let conf = IpamConfig::from_ipam_json("n", &json!({"subnet": "10.0.0.0/24"})).unwrap();
    assert_eq!(conf.data_dir, Path::new("/var/lib/cni/networks"));
}

/// A directory as the reference binary (current and older versions) leaves it.
fn reference_fixture(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("lock"), b"").unwrap();
    fs::write(dir.join("10.1.2.5"), b"legacy-id").unwrap();
    fs::write(dir.join("10.1.2.6"), b"ctr9\r\neth0").unwrap();
    fs::write(dir.join("10.1.2.7"), b"").unwrap();
    fs::write(dir.join("2001:db8::5"), b"ctr9\r\neth0").unwrap();
    fs::write(dir.join("last_reserved_ip.0"), b"10.1.2.7").unwrap();
}

#[test]
fn reads_what_the_reference_wrote() {
    let scratch = Scratch::new("fixture");
    let dir = scratch.path().join("mynet");
    reference_fixture(&dir);
    let conf = dual_stack(scratch.path());
    let mut store = DiskStore::open(&conf.data_dir, &conf.name).unwrap();
    let owners: Vec<(String, Owner)> =
        store.list().unwrap().into_iter().map(|r| (r.ip.to_string(), r.owner)).collect();
    assert_eq!(owners[0], ("10.1.2.5".into(), Owner::Legacy { id: "legacy-id".into() }));
    assert_eq!(
        owners[1],
        ("10.1.2.6".into(), Owner::Attachment { id: "ctr9".into(), ifname: "eth0".into() })
    );
    assert!(matches!(owners[2].1, Owner::Unreadable { .. }));
    assert_eq!(owners.len(), 4);
    let warnings = store.take_warnings();
    assert!(
        matches!(&warnings[..], [Warning::UnreadableReservation { path, .. }] if path.ends_with("10.1.2.7"))
    );

    // Round robin resumes after last_reserved_ip.0; the empty file keeps 10.1.2.7 taken.
    let got = allocate(&mut store, &conf, "new", "eth0", &[]).unwrap();
    assert_eq!(got[0].address.to_string(), "10.1.2.8/24");
    assert_eq!(got[1].address.to_string(), "2001:db8::2/64");
    check(&store, "ctr9", "eth0", &[ip("10.1.2.6"), ip("2001:db8::5")]).unwrap();
    check(&store, "legacy-id", "eth0", &[]).unwrap();
    let dup = allocate(&mut store, &conf, "ctr9", "eth0", &[]).unwrap_err();
    assert_eq!(dup.kind(), ErrorKind::Conflict);

    assert_eq!(release(&mut store, "legacy-id", "eth7").unwrap(), [ip("10.1.2.5")]);
    let freed = gc(&mut store, &[("ctr9".into(), "eth0".into()), ("new".into(), "eth0".into())]).unwrap();
    assert_eq!(freed, [ip("10.1.2.7")]);
    assert_eq!(
        names(&dir),
        [
            "10.1.2.6",
            "10.1.2.8",
            "2001:db8::2",
            "2001:db8::5",
            "last_reserved_ip.0",
            "last_reserved_ip.1",
            "lock"
        ]
    );
}

#[test]
fn odd_files_are_skipped_with_warnings() {
    let scratch = Scratch::new("odd");
    let dir = scratch.path().join("n");
    fs::create_dir_all(dir.join("10.1.2.9")).unwrap();
    fs::write(dir.join("2001:0db8::5"), b"x\r\neth0").unwrap();
    fs::write(dir.join("notes.txt"), b"x\r\neth0").unwrap();
    fs::write(dir.join("last_reserved_ip.0"), b"garbage").unwrap();
    let store = DiskStore::open(scratch.path(), "n").unwrap();
    assert!(store.list().unwrap().is_empty());
    assert_eq!(store.last_reserved(0).unwrap(), None);
    fs::write(dir.join("last_reserved_ip.1"), b"10.1.2.3\n").unwrap();
    assert_eq!(store.last_reserved(1).unwrap(), Some(ip("10.1.2.3")));
    let mut store = store;
    let warnings: Vec<String> = store.take_warnings().iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].ends_with("2001:0db8::5: not the canonical form of its address"));
    assert!(warnings[1].contains("\"garbage\" is not an IP address"));
}

#[test]
fn writes_leave_no_temp_files_and_gc_sweeps_stale_ones() {
    let scratch = Scratch::new("atomic");
    let conf = dual_stack(scratch.path());
    let dir = scratch.path().join("mynet");
    let mut store = DiskStore::open(&conf.data_dir, &conf.name).unwrap();
    for i in 0..20 {
        allocate(&mut store, &conf, &format!("c{i}"), "eth0", &[]).unwrap();
    }
    for i in 0..20 {
        release(&mut store, &format!("c{i}"), "eth0").unwrap();
    }
    assert_eq!(names(&dir), ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
    // What a twill process killed between create and rename leaves behind.
    fs::write(dir.join(".twill-tmp.10.1.2.99.4242.0"), b"c\r\neth0").unwrap();
    assert!(store.list().unwrap().is_empty());
    assert!(gc(&mut store, &[]).unwrap().is_empty());
    assert_eq!(names(&dir), ["last_reserved_ip.0", "last_reserved_ip.1", "lock"]);
}

#[test]
fn open_creates_dirs_and_refuses_bad_names() {
    let scratch = Scratch::new("open");
    let data_dir = scratch.path().join("a/b");
    let store = DiskStore::open(&data_dir, "net").unwrap();
    assert!(store.dir().join("lock").is_file());
    for bad in ["", "..", "x/y"] {
        let err = DiskStore::open(&data_dir, bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad:?}");
    }
    let file = scratch.path().join("file");
    fs::write(&file, b"").unwrap();
    let err = DiskStore::open(&file, "net").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains(file.to_str().unwrap()), "{err}");
}

#[test]
fn store_holds_the_lock_until_dropped() {
    let scratch = Scratch::new("lock");
    let store = DiskStore::open(scratch.path(), "net").unwrap();
    let other = fs::File::open(scratch.path().join("net/lock")).unwrap();
    assert!(other.try_lock().is_err(), "lock must be held while the store is open");
    drop(store);
    other.try_lock().unwrap();
    other.unlock().unwrap();
}

#[test]
fn a_shorter_last_reserved_ip_replaces_a_longer_one_exactly() {
    let scratch = Scratch::new("hint");
    let conf = dual_stack(scratch.path());
    let mut store = DiskStore::open(&conf.data_dir, &conf.name).unwrap();
    let dir = scratch.path().join("mynet");
    allocate(&mut store, &conf, "ctr1", "eth0", &[ip("10.1.2.100"), ip("2001:db8::ab:0:0:1")]).unwrap();
    allocate(&mut store, &conf, "ctr2", "eth0", &[ip("10.1.2.4"), ip("2001:db8::5")]).unwrap();
    // Rewritten in place and cut to length: nothing of the longer address is left.
    assert_eq!(fs::read(dir.join("last_reserved_ip.0")).unwrap(), b"10.1.2.4");
    assert_eq!(fs::read(dir.join("last_reserved_ip.1")).unwrap(), b"2001:db8::5");
    assert!(names(&dir).iter().all(|n| !n.starts_with('.')), "no temp file: {:?}", names(&dir));
}
