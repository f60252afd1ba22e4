//! Kernel tier: opening, entering, creating and deleting network namespaces.

use std::process::Command;

use twill_netns as netns;

use netns::{Error, NetNs};
use testkit::{TestNs, require_privileges};

#[test]
fn open_rejects_paths_that_are_not_network_namespaces() {
    require_privileges();
    let e = NetNs::open("/etc/hostname").unwrap_err();
    assert!(matches!(e, Error::NotNetns { .. }), "{e}");
    assert!(e.to_string().contains("/etc/hostname"), "{e}");

    let e = NetNs::open("/proc/self/ns/mnt").unwrap_err();
    assert!(e.to_string().contains("not CLONE_NEWNET"), "{e}");

    let e = NetNs::open("/run/netns/twt-does-not-exist").unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(e.to_string(), "open netns /run/netns/twt-does-not-exist: no such file or directory");
}

#[test]
fn current_is_same_as_itself_and_differs_from_a_new_namespace() {
    require_privileges();
    let a = NetNs::current().unwrap();
    let b = NetNs::current().unwrap();
    assert!(a.same_as(&b).unwrap());
    let t = TestNs::new("cur");
    assert!(!a.same_as(t.ns()).unwrap());
    // Opening by path gives the same namespace as the handle kept by TestNs.
    assert!(NetNs::open(t.path()).unwrap().same_as(t.ns()).unwrap());
}

#[test]
fn run_happens_on_another_thread_inside_the_namespace() {
    require_privileges();
    let t = TestNs::new("run");
    let before = NetNs::current().unwrap();
    let caller = std::thread::current().id();
    let (thread, inside) = t
        .ns()
        .run(|| {
            let here = NetNs::current().unwrap();
            (std::thread::current().id(), here.same_as(t.ns()).unwrap())
        })
        .unwrap();
    assert_ne!(thread, caller);
    assert!(inside);
    // The calling thread never moved.
    assert!(NetNs::current().unwrap().same_as(&before).unwrap());
}

#[test]
fn run_in_the_callers_own_namespace_stays_on_the_calling_thread() {
    require_privileges();
    let t = TestNs::new("own");
    // A thread of this test moved into the namespace (through `run`) and calling `run` for
    // that same namespace: no further thread is started.
    let (outer, inner) = t
        .ns()
        .run(|| {
            let here = NetNs::current().unwrap();
            let inner = here.run(|| std::thread::current().id()).unwrap();
            (std::thread::current().id(), inner)
        })
        .unwrap();
    assert_eq!(outer, inner);
    assert_ne!(outer, std::thread::current().id());
}

#[test]
fn spawn_starts_the_child_inside_the_namespace() {
    require_privileges();
    let t = TestNs::new("spawn");
    let mut cmd = Command::new("readlink");
    cmd.arg("/proc/self/ns/net").stdout(std::process::Stdio::piped());
    let out = t.ns().spawn(&mut cmd).unwrap().wait_with_output().unwrap();
    assert!(out.status.success());
    let want = format!("net:[{}]", nix_stat_ino(t.ns()));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want);
    // The calling thread never moved.
    assert_ne!(nix_stat_ino(&NetNs::current().unwrap()), nix_stat_ino(t.ns()));
}

#[test]
fn run_sees_the_links_of_the_other_namespace() {
    require_privileges();
    let t = TestNs::new("links");
    t.handle().bridge_add("twbr0", None, None).unwrap();
    let names: Vec<String> = t
        .ns()
        .run(|| {
            let h = nl::Handle::new().unwrap();
            h.link_list().unwrap().into_iter().map(|l| l.name).collect()
        })
        .unwrap();
    assert!(names.contains(&"twbr0".to_string()), "{names:?}");
    assert!(names.contains(&"lo".to_string()), "{names:?}");
}

#[test]
fn run_propagates_panics() {
    require_privileges();
    let t = TestNs::new("panic");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.ns().run(|| panic!("boom")).unwrap();
    }));
    assert!(r.is_err());
}

#[test]
fn create_and_delete_named_interoperate_with_ip_netns() {
    require_privileges();
    let name = format!("twt-named-{}", std::process::id());
    let ns = netns::create_named(&name).unwrap();
    let list = ip(&["netns", "list"]);
    assert!(list.contains(&name), "{list}");
    assert!(netns::create_named(&name).unwrap_err().errno() == Some(libc::EEXIST));
    // `ip netns exec` enters the same namespace.
    let out = ip(&["netns", "exec", &name, "readlink", "/proc/self/ns/net"]);
    let st = nix_stat_ino(&ns);
    assert!(out.contains(&st.to_string()), "{out} vs {st}");
    drop(ns);
    netns::delete_named(&name).unwrap();
    assert!(!ip(&["netns", "list"]).contains(&name));
    assert!(!netns::named_path(&name).exists());
    // Deleting again is fine.
    netns::delete_named(&name).unwrap();
}

#[test]
fn namespaces_made_by_ip_netns_add_can_be_opened_and_deleted() {
    require_privileges();
    let name = format!("twt-ipadd-{}", std::process::id());
    ip(&["netns", "add", &name]);
    let guard = DeleteOnDrop(name.clone());
    let ns = NetNs::open(netns::named_path(&name)).unwrap();
    assert!(!ns.same_as(&NetNs::current().unwrap()).unwrap());
    drop(ns);
    drop(guard);
    assert!(!ip(&["netns", "list"]).contains(&name));
}

#[test]
fn invalid_names_are_rejected() {
    for bad in ["", "..", "a/b"] {
        let e = netns::create_named(bad).unwrap_err();
        assert!(matches!(e, Error::InvalidName { .. }), "{e}");
    }
}

struct DeleteOnDrop(String);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        netns::delete_named(&self.0).unwrap();
    }
}

fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn nix_stat_ino(ns: &NetNs) -> u64 {
    ns.identity().unwrap().1
}
