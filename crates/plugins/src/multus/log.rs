//! Multus's logging: `logLevel` (debug, verbose, error, panic — most to least verbose;
//! panic by default, which logs nothing a plugin survives), to `logFile` (appended, one line
//! per message) and to stderr unless `logToStderr` is false. A plugin is one short process:
//! each line is written when it happens, so a crash loses nothing.

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

/// Verbosity, least verbose last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Verbose,
    Error,
    Panic,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "verbose" => Some(Level::Verbose),
            "error" => Some(Level::Error),
            "panic" => Some(Level::Panic),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Verbose => "verbose",
            Level::Error => "error",
            Level::Panic => "panic",
        }
    }
}

/// Where messages of at least `level` go.
#[derive(Debug, Clone)]
pub struct Log {
    level: Level,
    file: Option<PathBuf>,
    stderr: bool,
}

impl Log {
    pub fn new(level: Level, file: Option<PathBuf>, stderr: bool) -> Log {
        Log { level, file, stderr }
    }

    pub fn debug(&self, msg: &str) {
        self.write(Level::Debug, msg);
    }

    pub fn verbose(&self, msg: &str) {
        self.write(Level::Verbose, msg);
    }

    pub fn error(&self, msg: &str) {
        self.write(Level::Error, msg);
    }

    fn write(&self, level: Level, msg: &str) {
        if level < self.level {
            return;
        }
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let line = format!("{secs:.3} [{}] multus: {msg}\n", level.as_str());
        if self.stderr {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        if let Some(path) = &self.file {
            // Logging must never fail an attachment: a log file that cannot be written is
            // simply not written.
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
            if let Ok(mut f) = file {
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_messages_at_the_level_or_above_are_written() {
        let path = std::env::temp_dir().join(format!("twill-multus-log-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = Log::new(Level::Verbose, Some(path.clone()), false);
        log.debug("hidden");
        log.verbose("shown");
        log.error("also shown");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hidden"));
        assert!(
            text.contains("[verbose] multus: shown") && text.contains("[error] multus: also shown"),
            "{text}"
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(Level::parse("DEBUG"), Some(Level::Debug));
        assert_eq!(Level::parse("info"), None);
    }
}
