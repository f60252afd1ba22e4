//! No helper processes on the CNI path (issue 15): every verb of the Kubernetes chain
//! (bridge with host-local, masquerading, MAC spoof checking and `spoofchk`; portmap with a TCP
//! and a UDP port; bandwidth; firewall; tuning) and of ptp with masquerading and `spoofchk` is
//! run through the runtime with each plugin under `strace -f -e trace=execve`. The only
//! programs that may start are the CNI plugins themselves (bridge runs host-local as its IPAM
//! plugin, as CNI wants): no `nft`, `conntrack`, `iptables`, `ip` or `tc`. The nftables state
//! the verbs leave is checked too, so the test cannot pass by doing nothing.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use cni_exec::{Error, Exec, InvokeArgs, LoadedList, Runtime, find_in_path, plugin_failure};
use cni_spec::Attachment;
use netns::NetNs;
use serde_json::json;
use support::World;
use testkit::TestNs;

/// Per plugin invocation (verb and path): the programs that started.
type Started = Arc<Mutex<Vec<(String, Vec<String>)>>>;

/// Runs each plugin as `strace -f -qq -e trace=execve -o FILE PLUGIN` in the fake host and
/// keeps every program that started (successful execve), per plugin invocation.
struct TraceExec {
    ns: Arc<NetNs>,
    dir: PathBuf,
    started: Started,
}

impl Exec for TraceExec {
    fn find(&self, plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf, Error> {
        find_in_path(plugin_type, path)
    }

    fn exec(&self, plugin: &Path, stdin: &[u8], args: &InvokeArgs) -> Result<Vec<u8>, Error> {
        let spawn_err = |source| Error::Spawn { plugin: plugin.to_path_buf(), source };
        let n = self.started.lock().unwrap().len();
        let trace = self.dir.join(format!("trace-{n}"));
        let mut cmd = Command::new("strace");
        cmd.args(["-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o"]).arg(&trace).arg(plugin);
        self.ns.spawn_inside(&mut cmd);
        let mut child = cmd
            .env_clear()
            .envs(args.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(spawn_err)?;
        if let Some(mut input) = child.stdin.take()
            && let Err(e) = input.write_all(stdin)
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(spawn_err(e));
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        let programs = std::fs::read_to_string(&trace).unwrap_or_default();
        let started: Vec<String> = programs
            .lines()
            .filter(|l| l.contains("execve(") && l.trim_end().ends_with("= 0"))
            .filter_map(|l| l.split('"').nth(1).map(str::to_string))
            .collect();
        let verb =
            args.env().into_iter().find(|(k, _)| k == "CNI_COMMAND").map(|(_, v)| v).unwrap_or_default();
        self.started.lock().unwrap().push((format!("{verb} {}", plugin.display()), started));
        match out.status.success() {
            true => Ok(out.stdout),
            false => Err(plugin_failure(plugin, &out.status.to_string(), &out.stdout)),
        }
    }
}

fn traced(world: &World) -> (Runtime, Started) {
    let started = Arc::new(Mutex::new(Vec::new()));
    let ns = NetNs::open(world.host.path()).unwrap();
    let exec = TraceExec { ns: Arc::new(ns), dir: world.dir.clone(), started: started.clone() };
    let runtime =
        Runtime::with_exec(vec![world.dir.join("bin")], world.dir.join("cache-traced"), Box::new(exec));
    (runtime, started)
}

/// Every program started is a plugin in the world's bin dir.
fn assert_only_plugins(world: &World, started: &Mutex<Vec<(String, Vec<String>)>>) {
    let bin = world.dir.join("bin");
    let started = started.lock().unwrap();
    assert!(started.len() >= 9, "plugins ran: {started:?}");
    for (invocation, programs) in started.iter() {
        assert!(!programs.is_empty(), "{invocation}: strace saw no exec at all");
        let foreign: Vec<&String> = programs.iter().filter(|p| !Path::new(p).starts_with(&bin)).collect();
        assert!(foreign.is_empty(), "{invocation} started {foreign:?}");
    }
}

fn chain(world: &World) -> LoadedList {
    world.list(json!({
        "cniVersion": "1.1.0",
        "name": "noexec",
        "plugins": [
            {"type": "bridge", "bridge": "nxbr0", "isGateway": true, "ipMasq": true, "macspoofchk": true,
             "spoofchk": true,
             "ipam": {"type": "host-local", "dataDir": "{dir}/ipam", "ranges": [[{"subnet": "10.77.0.0/24"}]]}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "bandwidth", "capabilities": {"bandwidth": true}},
            {"type": "firewall"},
            {"type": "tuning", "dataDir": "{dir}/tuning", "sysctl": {"net.core.somaxconn": "600"}}
        ]
    }))
}

#[test]
fn kubernetes_chain_starts_nothing_but_plugins() {
    assert!(
        Command::new("strace").arg("-V").output().is_ok_and(|o| o.status.success()),
        "strace missing: run scripts/install-deps.sh"
    );
    let world =
        World::new("nxk", &["bridge", "host-local", "portmap", "bandwidth", "firewall", "tuning"], &[]);
    let (runtime, started) = traced(&world);
    let pod = TestNs::new("nxkp");
    let net = chain(&world);
    let mut rt = world.rt("pod", &pod);
    rt.capability_args.insert(
        "portMappings".into(),
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
               {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}]),
    );
    rt.capability_args.insert("bandwidth".into(), json!({"ingressRate": 1_000_000, "ingressBurst": 100_000}));
    runtime.add(&net, &rt).unwrap_or_else(|e| panic!("add: {e}"));
    let masq = world.host.nft_text("inet", "twill_masq");
    assert!(masq.contains("10.77.0.2 comment \"noexec/pod/eth0\""), "{masq}");
    let ports = world.host.nft_text("inet", "twill_portmap");
    assert!(ports.contains("udp . 5353 comment \"noexec/pod/eth0\" : 10.77.0.2 . 53"), "{ports}");
    assert!(world.host.nft_text("bridge", "twill_spoof").contains("noexec/pod/eth0"));
    assert!(world.host.nft_text("bridge", "twill_guard").contains("noexec/pod/eth0"));
    runtime.check(&net, &rt).unwrap_or_else(|e| panic!("check: {e}"));
    assert!(runtime.status(&net).unwrap_or_else(|e| panic!("status: {e}")));
    let keep = [Attachment { container_id: "pod".into(), ifname: "eth0".into() }];
    runtime.gc(&net, &keep).unwrap_or_else(|e| panic!("gc: {e}"));
    runtime.del(&net, &rt).unwrap_or_else(|e| panic!("del: {e}"));
    runtime.del(&net, &rt).unwrap_or_else(|e| panic!("second del: {e}"));
    for (family, table) in [
        ("inet", "twill_masq"),
        ("inet", "twill_portmap"),
        ("bridge", "twill_spoof"),
        ("bridge", "twill_guard"),
        ("inet", "twill_firewall"),
    ] {
        let text = world.host.nft_text(family, table);
        assert!(!text.contains("noexec/pod"), "{table} keeps the pod's elements:\n{text}");
    }
    assert_only_plugins(&world, &started);
}

#[test]
fn ptp_starts_nothing_but_plugins() {
    let world = World::new("nxp", &["ptp", "host-local"], &[]);
    let (runtime, started) = traced(&world);
    let pod = TestNs::new("nxpp");
    let net = world.list(json!({
        "cniVersion": "1.0.0", "name": "noexecptp",
        "plugins": [{"type": "ptp", "ipMasq": true, "spoofchk": true,
                     "ipam": {"type": "host-local", "dataDir": "{dir}/ipam", "ranges": [[{"subnet": "10.76.0.0/24"}]]}}]
    }));
    let rt = world.rt("pod", &pod);
    for _ in 0..3 {
        runtime.add(&net, &rt).unwrap_or_else(|e| panic!("add: {e}"));
        assert!(world.host.nft_text("inet", "twill_masq").contains("noexecptp/pod/eth0"));
        assert!(world.host.nft_text("inet", "twill_guard").contains("noexecptp/pod/eth0"));
        runtime.check(&net, &rt).unwrap_or_else(|e| panic!("check: {e}"));
        runtime.del(&net, &rt).unwrap_or_else(|e| panic!("del: {e}"));
        assert!(!world.host.nft_text("inet", "twill_masq").contains("noexecptp/pod/eth0"));
        assert!(!world.host.nft_text("inet", "twill_guard").contains("noexecptp/pod/eth0"));
    }
    assert_only_plugins(&world, &started);
}
