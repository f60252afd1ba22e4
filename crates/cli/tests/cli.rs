//! The `twill` binary as a user runs it: `twill cni ...` with cnitool's environment, inside a
//! fake host namespace, and `twill install`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use netns::NetNs;
use testkit::{TestNs, require_privileges};

struct Cli {
    host: TestNs,
    dir: PathBuf,
}

impl Cli {
    fn new(tag: &str) -> Cli {
        require_privileges();
        let host = TestNs::new(tag);
        let dir = std::env::temp_dir().join(format!("twill-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("conf")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_twill"))
            .args(["install", "--cni-bin-dir"])
            .arg(dir.join("bin"))
            .output()
            .unwrap();
        assert!(out.status.success(), "install: {}", String::from_utf8_lossy(&out.stderr));
        let conf = r#"{"cniVersion": "1.1.0", "name": "lonet", "plugins": [{"type": "loopback"}]}"#;
        std::fs::write(dir.join("conf/10-lonet.conflist"), conf).unwrap();
        Cli { host, dir }
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_twill"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CNI_PATH", self.dir.join("bin"))
            .env("NETCONFPATH", self.dir.join("conf"))
            .env("CNI_CACHE_DIR", self.dir.join("cache"))
            .envs(env.iter().copied());
        let ns = NetNs::open(self.host.path()).unwrap();
        ns.spawn_inside(&mut cmd);
        cmd.output().unwrap()
    }

    fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn fails(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn add_check_del_gc_status_version() {
    let cli = Cli::new("cli");
    let pod = TestNs::new("clipod");
    let netns = pod.path().display().to_string();
    let id = [("CNI_CONTAINERID", "pod-1")];
    let out = cli.ok(&["cni", "add", "lonet", &netns], &id);
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["cniVersion"], "1.1.0");
    assert_eq!(result["interfaces"][0]["name"], "lo");
    assert!(cli.dir.join("cache/results/lonet-pod-1-eth0").is_file());
    cli.ok(&["cni", "check", "lonet", &netns], &id);
    assert!(cli.ok(&["cni", "status", "lonet"], &[]).contains("ready"));
    assert!(cli.ok(&["cni", "version", "loopback"], &[]).contains("1.1.0"));
    // A second attachment that the runtime no longer knows goes away with gc.
    cli.ok(&["cni", "add", "lonet", &netns], &[("CNI_CONTAINERID", "stale-1"), ("CNI_IFNAME", "eth1")]);
    let gc = cli.ok(&["cni", "gc", "lonet", "--valid", "pod-1/eth0"], &[]);
    assert!(gc.contains("deleted stale attachment stale-1 eth1"), "{gc}");
    assert!(!cli.dir.join("cache/results/lonet-stale-1-eth1").exists());
    cli.ok(&["cni", "del", "lonet", &netns], &id);
    assert!(!cli.dir.join("cache/results/lonet-pod-1-eth0").exists());
    cli.ok(&["cni", "del", "lonet", &netns], &id);
}

#[test]
fn named_netns_and_derived_container_id() {
    let cli = Cli::new("clinamed");
    let pod = TestNs::new("clinamedpod");
    cli.ok(&["cni", "add", "lonet", pod.name()], &[]);
    let cached: Vec<_> = std::fs::read_dir(cli.dir.join("cache/results")).unwrap().flatten().collect();
    assert_eq!(cached.len(), 1);
    assert!(cached[0].file_name().to_string_lossy().starts_with("lonet-twill-"));
    cli.ok(&["cni", "del", "lonet", pod.name()], &[]);
}

#[test]
fn bad_inputs_are_reported() {
    let cli = Cli::new("clibad");
    let pod = TestNs::new("clibadpod");
    let netns = pod.path().display().to_string();
    assert!(
        cli.fails(&["cni", "add", "nosuchnet", &netns], &[])
            .contains("no net configuration with name \"nosuchnet\"")
    );
    assert!(cli.fails(&["cni", "add", "lonet", &netns], &[("CAP_ARGS", "[1,2]")]).contains("CAP_ARGS"));
    assert!(cli.fails(&["cni", "add", "lonet", &netns], &[("CNI_ARGS", "novalue")]).contains("CNI_ARGS"));
    let err = cli.fails(&["cni", "add", "lonet", &netns], &[("CNI_PATH", "/nonexistent")]);
    assert!(err.contains("failed to find plugin \"loopback\""), "{err}");
    let err = cli.fails(&["cni", "add", "lonet", "/run/netns/twt-no-such-ns"], &[]);
    assert!(err.contains("open netns"), "{err}");
    assert!(cli.fails(&["cni", "gc", "lonet", "--valid", "nofield"], &[]).contains("CONTAINERID/IFNAME"));
    assert!(
        cli.fails(&["cni", "add", "lonet", &netns], &[("CNI_IFNAME", "bad/name")]).contains("interface name")
    );
    assert!(
        !cli.dir.join("cache/results").exists()
            || std::fs::read_dir(cli.dir.join("cache/results")).unwrap().count() == 0
    );
}

#[test]
fn install_links_every_plugin_name() {
    let dir = std::env::temp_dir().join(format!("twill-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let twill = Path::new(env!("CARGO_BIN_EXE_twill"));
    let out = Command::new(twill).args(["install", "--cni-bin-dir"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let every = plugins::NAMES.iter().map(|n| (n, "twill-cni"));
    for (name, file) in every.chain(plugins::CLUSTER_NAMES.iter().map(|n| (n, "twill-cni-cluster"))) {
        let link = dir.join(name);
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(file), "{name}");
        let out = Command::new(&link).env("CNI_COMMAND", "VERSION").output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("supportedVersions"), "{name} answers VERSION");
    }
    let again = Command::new(twill).args(["install", "--cni-bin-dir"]).arg(&dir).output().unwrap();
    assert!(again.status.success(), "install is repeatable");
    let bad = Command::new(twill)
        .args(["install", "--only", "nosuch", "--cni-bin-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no plugin named \"nosuch\""));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn demo_attaches_and_leaves_nothing_behind() {
    require_privileges();
    let out = Command::new(env!("CARGO_BIN_EXE_twill")).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("ping from the pod to its gateway 10.244.0.1: ok"), "{stdout}");
    assert!(stdout.contains("check demo twill-demo-pod: ok"), "{stdout}");
    assert!(stdout.contains("nothing is left behind"), "{stdout}");
    for name in ["twill-demo-host", "twill-demo-pod"] {
        assert!(!netns::named_path(name).exists(), "{name} left behind");
    }
}
