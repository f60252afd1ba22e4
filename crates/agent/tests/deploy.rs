//! deploy/: the example configuration is a working one for every key twilld has, and the
//! systemd unit agrees with it (config path, state and CNI directories, readiness type).

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use twill_agent::Args;

fn deploy(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy").join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy(name)).unwrap_or_else(|e| panic!("read deploy/{name}: {e}"))
}

/// The settings as twilld reads them: nothing from the environment.
fn load(path: &Path) -> twill_agent::AgentConf {
    let argv = ["twilld".as_ref(), "--config".as_ref(), path.as_os_str()];
    let args = Args::load_from(argv, |_| None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    args.validate().unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn scratch(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("twilld-deploy-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_example_config_is_valid_as_shipped_and_with_every_option() {
    let conf = load(&deploy("twilld.toml"));
    assert_eq!(conf.node, "node-1");
    assert!(conf.datastore.endpoint.is_https(), "the example shows etcd with TLS");
    assert!(conf.datastore.tls.cert.is_some() && conf.datastore.tls.key.is_some());
    // The optional lines, uncommented, must be valid too.
    let all: String = read("twilld.toml")
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if is_setting(rest) => rest,
            _ => l,
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let path = scratch(&all);
    let conf = load(&path);
    std::fs::remove_file(&path).unwrap();
    assert!(conf.pool6.is_some(), "cluster-cidr6 is among the optional lines");
}

/// `key = value` with `key` a word of lower-case letters, digits and `-`.
fn is_setting(line: &str) -> bool {
    line.split_once(" = ").is_some_and(|(k, _)| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    })
}

#[test]
fn the_example_config_shows_every_flag() {
    let text = read("twilld.toml");
    let cmd = Args::command();
    for long in cmd.get_arguments().filter_map(|a| a.get_long()).filter(|l| *l != "config") {
        let shown = text.lines().any(|l| {
            let l = l.strip_prefix("# ").unwrap_or(l);
            l.starts_with(&format!("{long} = "))
        });
        assert!(shown, "deploy/twilld.toml has no `{long} = ...` line (commented or not)");
    }
}

#[test]
fn the_unit_runs_the_example_config_where_it_may_write() {
    let unit = read("twilld.service");
    let value = |key: &str| -> Vec<&str> {
        unit.lines().filter_map(|l| l.strip_prefix(key)?.strip_prefix('=')).collect()
    };
    assert_eq!(value("Type"), ["notify"], "twilld implements sd_notify readiness");
    assert_eq!(value("Restart"), ["on-failure"]);
    let exec = value("ExecStart");
    assert!(exec.len() == 1 && exec[0].ends_with("twilld --config /etc/twill/twilld.toml"), "{exec:?}");
    let caps = value("CapabilityBoundingSet").join(" ");
    for cap in ["CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_NET_RAW"] {
        assert!(caps.contains(cap), "{cap} missing from {caps}");
    }
    let conf = load(&deploy("twilld.toml"));
    let state = Path::new("/var/lib").join(value("StateDirectory").join(""));
    assert_eq!(conf.state_dir, state, "the unit's StateDirectory= is the example's state-dir");
    let writable: Vec<&str> = value("ReadWritePaths").iter().flat_map(|v| v.split(' ')).collect();
    assert!(writable.contains(&conf.cni_conf_dir.to_str().unwrap()), "{writable:?}");
}
