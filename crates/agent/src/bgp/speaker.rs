//! The node's BIRD: started (supervised) on the first configuration, then kept in step with
//! the cluster by `configure`, never by a restart — BIRD applies the differences and only
//! the sessions whose configuration changed are touched. A new configuration is written
//! next to the live one, checked by BIRD (`configure check`), and only then renamed over it,
//! so a configuration BIRD refuses never becomes the one a restarted BIRD would read.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use netns::NetNs;

use crate::bird::{
    BirdFiles, Control, ControlError, ProtocolStatus, Supervisor, SupervisorError, parse_protocols,
};

#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("write BIRD's configuration {}: {source}", .path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Supervisor(#[from] SupervisorError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("BIRD is not running yet")]
    NotStarted,
}

/// One BIRD and what was last applied to it.
pub struct Speaker {
    binary: PathBuf,
    files: BirdFiles,
    /// Consumed when BIRD is first started.
    netns: Option<NetNs>,
    bird: Option<Supervisor>,
    /// The configuration BIRD runs and the start it was given to: a BIRD started again has
    /// read the file itself, so the pair is compared, not the text alone.
    applied: Option<(String, u64)>,
    pub reconfigurations: u64,
    pub reconfiguration_errors: u64,
}

impl std::fmt::Debug for Speaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Speaker").field("files", &self.files).field("bird", &self.bird).finish()
    }
}

impl Speaker {
    pub fn new(binary: PathBuf, files: BirdFiles, netns: NetNs) -> Speaker {
        Speaker {
            binary,
            files,
            netns: Some(netns),
            bird: None,
            applied: None,
            reconfigurations: 0,
            reconfiguration_errors: 0,
        }
    }

    pub fn files(&self) -> &BirdFiles {
        &self.files
    }

    pub fn supervisor(&self) -> Option<&Supervisor> {
        self.bird.as_ref()
    }

    /// Makes BIRD run `text`: writes it and starts BIRD the first time (`-R` when `recover()`
    /// says an earlier BIRD left routes in the kernel), else `configure` when it changed or
    /// BIRD restarted since. True when something was applied.
    pub fn ensure(&mut self, text: &str, recover: impl FnOnce() -> bool) -> Result<bool, SpeakerError> {
        let Some(bird) = &self.bird else {
            write_private(&self.files.config(), text)?;
            let netns = self.netns.take().ok_or(SpeakerError::NotStarted)?;
            let recover = recover();
            let sup = Supervisor::start(&self.binary, self.files.clone(), netns, recover)?;
            tracing::info!(dir = %self.files.dir.display(), graceful_restart_recovery = recover, "BIRD started");
            self.bird = Some(sup);
            // The first start reads the file itself.
            self.applied = Some((text.to_string(), 1));
            return Ok(true);
        };
        let state = bird.state();
        // A running BIRD has read what it ran at its start or what `configure` gave it; a
        // BIRD being restarted will read the file at its next start.
        let current = if state.pid.is_some() { state.starts } else { state.starts + 1 };
        if self.applied.as_ref().is_some_and(|(t, starts)| t == text && *starts == current) {
            return Ok(false);
        }
        write_private(&self.files.staged(), text)?;
        if state.pid.is_none() {
            // Restarting: the next BIRD reads the file.
            self.install_staged()?;
            self.applied = Some((text.to_string(), state.starts + 1));
            return Ok(true);
        }
        match self.configure() {
            Ok(()) => {
                self.reconfigurations += 1;
                self.applied = Some((text.to_string(), state.starts));
                Ok(true)
            }
            Err(e) => {
                self.reconfiguration_errors += 1;
                Err(e)
            }
        }
    }

    /// `configure check` of the staged file, then it replaces the live one, then `configure`.
    fn configure(&self) -> Result<(), SpeakerError> {
        let mut c = Control::connect(&self.files.socket())?;
        c.configure_check(&self.files.staged())?;
        self.install_staged()?;
        c.configure(&self.files.config())?;
        Ok(())
    }

    fn install_staged(&self) -> Result<(), SpeakerError> {
        let (from, to) = (self.files.staged(), self.files.config());
        std::fs::rename(&from, &to).map_err(|source| SpeakerError::Write { path: to, source })
    }

    /// `show protocols all`.
    pub fn protocols(&self) -> Result<Vec<ProtocolStatus>, SpeakerError> {
        if self.bird.is_none() {
            return Err(SpeakerError::NotStarted);
        }
        let mut c = Control::connect(&self.files.socket())?;
        Ok(parse_protocols(&c.ok("show protocols all")?))
    }

    /// Stops BIRD (SIGTERM: its sessions close with a Cease, the peers withdraw its routes).
    pub fn stop(&mut self) -> Result<(), SpeakerError> {
        match self.bird.take() {
            // Well within the grace a supervisor gives the agent to leave (the lab's is 10 s).
            Some(mut b) => Ok(b.stop(Duration::from_secs(5))?),
            None => Ok(()),
        }
    }
}

/// Writes `text` to `path` readable by its owner only (BGP passwords), via a temporary file
/// renamed over it.
fn write_private(path: &Path, text: &str) -> Result<(), SpeakerError> {
    let err = |source| SpeakerError::Write { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::options()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
