//! Whereabouts' `log_file` and `log_level`: lines go to the file when one is set (appended,
//! best-effort: a log that cannot be written never fails a CNI call), else to stderr, which
//! runtimes keep. `debug` lines only at `log_level` `debug` (Whereabouts' levels, most to
//! least verbose: debug, verbose, error, panic).

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Map, Value};

pub struct Log {
    file: Option<PathBuf>,
    debug: bool,
}

impl Log {
    pub fn from_ipam(ipam: &Map<String, Value>) -> Log {
        let text = |k: &str| ipam.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        Log { file: text("log_file").map(PathBuf::from), debug: text("log_level") == Some("debug") }
    }

    pub fn info(&self, msg: &str) {
        self.write(msg);
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write(msg);
        }
    }

    fn write(&self, msg: &str) {
        let line = format!("whereabouts[{}]: {msg}\n", std::process::id());
        let to_file = self.file.as_ref().is_some_and(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .is_ok()
        });
        if !to_file {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}
