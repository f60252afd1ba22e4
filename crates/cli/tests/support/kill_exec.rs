//! Fault injection for the runtime side: an [`Exec`] that starts each plugin exactly as
//! `RawExec` does (inside the fake host namespace, CNI_* environment, config on stdin) and
//! SIGKILLs it by pid when its [`Trigger`] fires — at a moment shared by every plugin of one
//! ADD (a crash at a random point of the chain), or once a condition holds (the power goes
//! the moment an address is reserved). A plugin that has not started when the moment has
//! passed is started and killed at once, as a node dying during exec would leave it.
//! [`Rng`] picks the moments, reproducibly from a printed seed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cni_exec::{Error, Exec, InvokeArgs, find_in_path, plugin_failure};
use netns::NetNs;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How often a running plugin is looked at.
const POLL: Duration = Duration::from_micros(200);

/// When the plugin dies.
pub enum Trigger {
    At(Instant),
    When(Box<dyn Fn() -> bool + Send + Sync>),
}

impl Trigger {
    fn fired(&self) -> bool {
        match self {
            Trigger::At(at) => Instant::now() >= *at,
            Trigger::When(cond) => cond(),
        }
    }
}

pub struct KillExec {
    ns: Arc<NetNs>,
    trigger: Trigger,
    /// The plugin that was killed, if one was.
    pub killed: Arc<Mutex<Option<PathBuf>>>,
}

impl KillExec {
    /// Plugins run inside the namespace at `host`.
    pub fn new(host: &Path, trigger: Trigger) -> KillExec {
        let ns = NetNs::open(host).unwrap_or_else(|e| panic!("open fake host {}: {e}", host.display()));
        KillExec { ns: Arc::new(ns), trigger, killed: Arc::new(Mutex::new(None)) }
    }
}

impl Exec for KillExec {
    fn find(&self, plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf, Error> {
        find_in_path(plugin_type, path)
    }

    fn exec(&self, plugin: &Path, stdin: &[u8], args: &InvokeArgs) -> Result<Vec<u8>, Error> {
        let spawn_err = |source| Error::Spawn { plugin: plugin.to_path_buf(), source };
        let mut cmd = Command::new(plugin);
        self.ns.spawn_inside(&mut cmd);
        let mut child = cmd
            .envs(args.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(spawn_err)?;
        let pid = Pid::from_raw(child.id() as i32);
        let input = child.stdin.take();
        let stdin = stdin.to_vec();
        // Fed and drained on threads, so neither pipe can block the watch below.
        let feeder = std::thread::spawn(move || {
            if let Some(mut input) = input {
                let _ = input.write_all(&stdin);
            }
        });
        let mut output = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = output.read_to_end(&mut buf);
            buf
        });
        let mut sent = false;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(spawn_err)? {
                break status;
            }
            if !sent && self.trigger.fired() {
                kill(pid, Signal::SIGKILL).unwrap_or_else(|e| panic!("kill -9 {pid}: {e}"));
                sent = true;
                *self.killed.lock().unwrap() = Some(plugin.to_path_buf());
            }
            std::thread::sleep(POLL);
        };
        let _ = feeder.join();
        let out = reader.join().expect("stdout reader");
        if status.success() {
            return Ok(out);
        }
        Err(plugin_failure(plugin, &status.to_string(), &out))
    }
}

/// xorshift64*: enough randomness for kill points, reproducible from the printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn seeded(test: &str) -> Rng {
        let seed = std::env::var("TWILL_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
            now.as_nanos() as u64 ^ u64::from(std::process::id())
        });
        eprintln!("{test}: TWILL_CRASH_SEED={seed}");
        Rng(seed.max(1))
    }

    pub fn below(&mut self, bound: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        Duration::from_micros(r % (bound.as_micros() as u64).max(1))
    }
}
