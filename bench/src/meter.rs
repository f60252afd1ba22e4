//! Peak RSS of a plugin process, via wait4(2)'s rusage, without the bench's own footprint.
//!
//! The kernel folds the hiwater RSS of the memory a process had *before* exec into the
//! `ru_maxrss` its parent reads with wait4 — and right after fork that memory is a copy of the
//! parent's anonymous pages, so every child of a big process "peaks" at the parent's size.
//! The bench therefore starts each plugin through a tiny launcher: itself, freshly exec'ed as
//! `twill-bench __meter RSS_FILE PLUGIN`, which forks (a copy of its own few hundred KiB),
//! execs the plugin with the inherited stdin, stdout, environment and network namespace,
//! reaps it with wait4 and writes its `ru_maxrss` to RSS_FILE. The launcher's floor (`true`
//! run the same way) is reported next to the numbers.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cni_exec::{Error as ExecError, Exec, InvokeArgs, find_in_path, plugin_failure};
use netns::NetNs;

/// The launcher's first argument.
const MARKER: &str = "__meter";

/// Recorded runs: plugin file name, CNI command, peak RSS in KiB.
pub type Log = Arc<Mutex<Vec<(String, &'static str, u64)>>>;

/// When this process was started as the launcher: runs it and returns the exit code.
pub fn launch_from_args() -> Option<i32> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_none_or(|a| a != MARKER) {
        return None;
    }
    let (Some(rss_file), Some(plugin)) = (args.get(2), args.get(3)) else {
        eprintln!("twill-bench {MARKER}: usage: {MARKER} RSS_FILE PLUGIN");
        return Some(2);
    };
    Some(launch(Path::new(rss_file), Path::new(plugin)))
}

fn launch(rss_file: &Path, plugin: &Path) -> i32 {
    let mut cmd = Command::new(plugin);
    // SAFETY: an empty closure is async-signal-safe; having one makes std fork (copying only
    // this small process's anonymous pages) instead of a vfork-style spawn, which would fold
    // this process's whole RSS, file pages included, into the child's peak.
    unsafe { cmd.pre_exec(|| Ok(())) };
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("twill-bench {MARKER}: run {}: {e}", plugin.display());
            return 127;
        }
    };
    match wait4(child.id()) {
        Ok((code, kib)) => {
            if let Err(e) = std::fs::write(rss_file, kib.to_string()) {
                eprintln!("twill-bench {MARKER}: write {}: {e}", rss_file.display());
                return 126;
            }
            code
        }
        Err(e) => {
            eprintln!("twill-bench {MARKER}: wait for {}: {e}", plugin.display());
            126
        }
    }
}

/// Reaps `pid`: its exit code (128 + signal when killed) and `ru_maxrss` in KiB.
fn wait4(pid: u32) -> std::io::Result<(i32, u64)> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; both pointers are valid for the call.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if r >= 0 {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) };
    Ok((code, u64::try_from(usage.ru_maxrss).unwrap_or(0)))
}

/// An executor like RawExec that runs each plugin through the launcher and records its peak.
pub struct MeteredExec {
    host: NetNs,
    log: Log,
    launcher: PathBuf,
    scratch: PathBuf,
    runs: AtomicUsize,
}

impl MeteredExec {
    /// Plugins run inside `host`; the launcher writes its reports under `scratch`.
    pub fn new(host: NetNs, log: Log, scratch: PathBuf) -> std::io::Result<MeteredExec> {
        std::fs::create_dir_all(&scratch)?;
        Ok(MeteredExec { host, log, launcher: std::env::current_exe()?, scratch, runs: AtomicUsize::new(0) })
    }
}

impl Exec for MeteredExec {
    fn find(&self, plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf, ExecError> {
        find_in_path(plugin_type, path)
    }

    fn exec(&self, plugin: &Path, stdin: &[u8], args: &InvokeArgs) -> Result<Vec<u8>, ExecError> {
        let io = |source| ExecError::Spawn { plugin: plugin.to_path_buf(), source };
        let rss_file = self.scratch.join(format!("rss-{}", self.runs.fetch_add(1, Ordering::Relaxed)));
        let mut cmd = Command::new(&self.launcher);
        cmd.arg(MARKER).arg(&rss_file).arg(plugin);
        self.host.spawn_inside(&mut cmd);
        cmd.envs(args.env()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(io)?;
        if let Some(mut input) = child.stdin.take()
            && let Err(e) = input.write_all(stdin)
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(io(e));
        }
        let mut out = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            stdout.read_to_end(&mut out).map_err(io)?;
        }
        let status = child.wait().map_err(io)?;
        let kib = std::fs::read_to_string(&rss_file).ok().and_then(|s| s.trim().parse().ok());
        let _ = std::fs::remove_file(&rss_file);
        if let Some(kib) = kib {
            let name = plugin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            self.log.lock().unwrap_or_else(|p| p.into_inner()).push((name, args.command, kib));
        }
        if status.success() {
            return Ok(out);
        }
        Err(plugin_failure(plugin, &status.to_string(), &out))
    }
}
