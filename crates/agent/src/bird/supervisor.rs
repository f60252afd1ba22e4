//! BIRD as a child process of the agent. One thread owns the child: it starts BIRD, waits for
//! it, and starts it again (with `-R`, graceful restart recovery) when it dies, backing off
//! while it keeps dying. Every BIRD has a directory of its own holding its configuration,
//! control socket, pid file and log, so several run side by side (one per lab node) and none
//! touches the host's `/run/bird`.
//!
//! The child is stopped by its pid only, and only while it is known to be this thread's
//! unreaped child: the thread waits with `WNOWAIT`, clears the pid under the lock, and only
//! then reaps, so a stop never signals a recycled pid. BIRD is started with a parent-death
//! signal (SIGKILL): if the agent is killed, BIRD dies without withdrawing its routes, its
//! peers keep them as stale (BGP graceful restart), and the next agent starts BIRD with `-R`
//! to take them over.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use netns::NetNs;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A BIRD that ran this long before dying is restarted without delay.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
/// `sun_path` holds 108 bytes, the terminating NUL included.
const MAX_SOCKET_PATH: usize = 107;

/// The files of one BIRD, all in `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdFiles {
    pub dir: PathBuf,
}

impl BirdFiles {
    pub fn new(dir: impl Into<PathBuf>) -> BirdFiles {
        BirdFiles { dir: dir.into() }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("bird.conf")
    }

    /// Where a new configuration is written and checked before it replaces `bird.conf`.
    pub fn staged(&self) -> PathBuf {
        self.dir.join("bird.conf.new")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("bird.ctl")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.dir.join("bird.pid")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("bird.log")
    }

    /// BIRD's command line: foreground, this directory's files, `-R` to recover.
    pub fn args(&self, recover: bool) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["-f".into(), "-c".into(), self.config().into(), "-s".into()];
        a.extend([self.socket().into(), "-P".into(), self.pid_file().into()]);
        if recover {
            a.push("-R".into());
        }
        a
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("create BIRD's directory {}: {source}", .path.display())]
    Dir { path: PathBuf, source: std::io::Error },
    #[error("BIRD's control socket path {} is longer than {MAX_SOCKET_PATH} bytes; use a shorter state directory", .path.display())]
    SocketPath { path: PathBuf },
    #[error("start the BIRD supervisor thread: {0}")]
    Thread(std::io::Error),
    #[error("BIRD (pid {pid}) did not stop within {}s of SIGTERM and was killed", .grace.as_secs())]
    Killed { pid: i32, grace: Duration },
}

/// What the supervisor knows about its child.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunState {
    /// The running child's pid.
    pub pid: Option<i32>,
    /// How many times BIRD was started; a change means a fresh BIRD that has read the
    /// configuration file itself.
    pub starts: u64,
    /// Starts after the first (BIRD died or could not be started).
    pub restarts: u64,
    /// How the last child ended, or why it could not be started.
    pub last_exit: Option<String>,
    stopping: bool,
}

struct Shared {
    state: Mutex<RunState>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A supervised BIRD.
pub struct Supervisor {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    files: BirdFiles,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").field("files", &self.files).field("state", &*self.shared.lock()).finish()
    }
}

/// What the supervisor thread needs.
struct Launch {
    binary: PathBuf,
    /// The namespace BIRD runs in, whichever thread starts it.
    netns: NetNs,
    files: BirdFiles,
    recover: bool,
}

impl Supervisor {
    /// Starts BIRD (`-R` when `recover`) inside `netns` on `files` and keeps it running. A
    /// BIRD left by an earlier agent on the same files is killed first.
    pub fn start(
        binary: &Path,
        files: BirdFiles,
        netns: NetNs,
        recover: bool,
    ) -> Result<Supervisor, SupervisorError> {
        std::fs::create_dir_all(&files.dir)
            .map_err(|source| SupervisorError::Dir { path: files.dir.clone(), source })?;
        let socket = files.socket();
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(SupervisorError::SocketPath { path: socket });
        }
        if let Some(pid) = kill_leftover(&files) {
            tracing::warn!(pid, "killed a BIRD left by an earlier agent");
        }
        let shared = Arc::new(Shared { state: Mutex::new(RunState::default()), wake: Condvar::new() });
        let launch = Launch { binary: binary.to_path_buf(), netns, files: files.clone(), recover };
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("twilld-bird".into())
            .spawn(move || supervise(&for_thread, launch))
            .map_err(SupervisorError::Thread)?;
        Ok(Supervisor { shared, thread: Some(thread), files })
    }

    pub fn files(&self) -> &BirdFiles {
        &self.files
    }

    pub fn state(&self) -> RunState {
        self.shared.lock().clone()
    }

    /// SIGTERM (BIRD closes its sessions with a Cease notification, so its peers withdraw its
    /// routes at once, and leaves its kernel routes: `persist`), then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> Result<(), SupervisorError> {
        let pid = {
            let mut s = self.shared.lock();
            s.stopping = true;
            self.shared.wake.notify_all();
            s.pid
        };
        if let Some(pid) = pid {
            signal_child(&self.shared, Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while self.shared.lock().pid.is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.shared.lock().pid.is_some() {
                signal_child(&self.shared, Signal::SIGKILL);
                self.join();
                return Err(SupervisorError::Killed { pid, grace });
            }
        }
        self.join();
        Ok(())
    }

    fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            // The thread only ends by returning; a panic there has been reported already.
            let _ = t.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.stop(Duration::from_secs(5));
        }
    }
}

/// Signals the child while the lock proves it has not been reaped (its pid is still ours).
fn signal_child(shared: &Shared, signal: Signal) {
    let s = shared.lock();
    if let Some(pid) = s.pid {
        // ESRCH cannot happen for an unreaped child; anything else is reported by the wait.
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

fn supervise(shared: &Shared, mut launch: Launch) {
    let mut backoff = MIN_BACKOFF;
    loop {
        if shared.lock().stopping {
            return;
        }
        match spawn(&launch) {
            Ok(child) => {
                let started = Instant::now();
                let exit = wait_child(shared, child);
                if shared.lock().stopping {
                    return;
                }
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = MIN_BACKOFF;
                }
                let log = launch.files.log().display().to_string();
                tracing::warn!(%exit, %log, "BIRD exited; restarting it");
                launch.recover = true;
            }
            Err(e) => {
                let binary = launch.binary.display().to_string();
                tracing::error!(%binary, error = %e, "cannot start BIRD");
                shared.lock().last_exit = Some(format!("start {binary}: {e}"));
            }
        }
        let s = shared.lock();
        let (mut s, _) =
            shared.wake.wait_timeout_while(s, backoff, |s| !s.stopping).unwrap_or_else(|p| p.into_inner());
        if s.stopping {
            return;
        }
        s.restarts += 1;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn spawn(launch: &Launch) -> std::io::Result<(Child, i32)> {
    let log = File::options().create(true).append(true).open(launch.files.log())?;
    let mut cmd = Command::new(&launch.binary);
    cmd.args(launch.files.args(launch.recover)).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
    // Its own process group: a Ctrl-C meant for the agent must not shut BIRD down (that
    // would withdraw the node's routes); the agent decides.
    cmd.process_group(0);
    launch.netns.spawn_inside(&mut cmd);
    // SAFETY: between fork and exec only async-signal-safe calls are allowed; prctl(2) and
    // sigprocmask(2) are plain system calls and allocate nothing.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The agent blocks SIGTERM and SIGINT in every thread (one thread takes them with
            // sigwait); a blocked mask survives exec, and BIRD would never see its SIGTERM.
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    let pid = i32::try_from(child.id()).map_err(std::io::Error::other)?;
    Ok((child, pid))
}

/// Records the child, waits for it without reaping, forgets it under the lock, then reaps.
fn wait_child(shared: &Shared, (mut child, pid): (Child, i32)) -> String {
    {
        let mut s = shared.lock();
        s.pid = Some(pid);
        s.starts += 1;
    }
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    // EINTR: wait again. Any other error means there is no child to wait for.
    while let Err(nix::errno::Errno::EINTR) = waitid(Id::Pid(Pid::from_raw(pid)), flags) {}
    let mut s = shared.lock();
    s.pid = None;
    let exit = match child.wait() {
        Ok(status) => describe(status),
        Err(e) => format!("wait: {e}"),
    };
    s.last_exit = Some(exit.clone());
    exit
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig).map(|s| s.as_str()).unwrap_or("unknown signal");
            format!("killed by {name}")
        }
        _ => status.to_string(),
    }
}

/// Kills (SIGKILL, so peers keep its routes through graceful restart) a BIRD that an
/// earlier agent left running on these files: its pid file names it and its command line
/// names this control socket. Returns its pid.
fn kill_leftover(files: &BirdFiles) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(files.pid_file()).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let socket = files.socket().into_os_string().into_encoded_bytes();
    let ours = cmdline.split(|b| *b == 0).any(|arg| arg == socket.as_slice());
    if !ours {
        return None;
    }
    kill(Pid::from_raw(pid), Signal::SIGKILL).ok()?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_names_the_directorys_files() {
        let f = BirdFiles::new("/run/x/bird");
        let a: Vec<String> = f.args(false).into_iter().map(|s| s.into_string().unwrap()).collect();
        assert_eq!(
            a.join(" "),
            "-f -c /run/x/bird/bird.conf -s /run/x/bird/bird.ctl -P /run/x/bird/bird.pid"
        );
        assert_eq!(f.args(true).last().unwrap(), "-R");
    }

    #[test]
    fn exit_descriptions() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe(ExitStatus::from_raw(1 << 8)), "exit code 1");
        assert_eq!(describe(ExitStatus::from_raw(9)), "killed by SIGKILL");
    }
}
