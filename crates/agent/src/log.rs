//! Structured logs, one line per event, as JSON or as `key=value` text. The sink is injected
//! (twilld passes stderr), so tests read what was logged without touching the process's
//! streams.

use std::fmt::Display;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// A cheap-to-clone handle on one log sink.
#[derive(Clone)]
pub struct Logger {
    format: LogFormat,
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger").field("format", &self.format).finish()
    }
}

/// One `key=value` of a log line.
pub type Field<'a> = (&'a str, &'a dyn Display);

impl Logger {
    pub fn new(format: LogFormat, sink: Box<dyn Write + Send>) -> Logger {
        Logger { format, sink: Arc::new(Mutex::new(sink)) }
    }

    pub fn stderr(format: LogFormat) -> Logger {
        Logger::new(format, Box::new(std::io::stderr()))
    }

    pub fn info(&self, msg: &str, fields: &[Field<'_>]) {
        self.log(Level::Info, msg, fields);
    }

    pub fn warn(&self, msg: &str, fields: &[Field<'_>]) {
        self.log(Level::Warn, msg, fields);
    }

    pub fn error(&self, msg: &str, fields: &[Field<'_>]) {
        self.log(Level::Error, msg, fields);
    }

    pub fn log(&self, level: Level, msg: &str, fields: &[Field<'_>]) {
        let line = render_line(self.format, SystemTime::now(), level, msg, fields);
        let mut sink = self.sink.lock().unwrap_or_else(|p| p.into_inner());
        // A log line that cannot be written has nowhere else to go.
        let _ = sink.write_all(line.as_bytes()).and_then(|()| sink.flush());
    }
}

/// One log line, newline included.
pub fn render_line(
    format: LogFormat,
    at: SystemTime,
    level: Level,
    msg: &str,
    fields: &[Field<'_>],
) -> String {
    let ts = rfc3339(at);
    match format {
        LogFormat::Json => {
            let mut obj = serde_json::Map::new();
            obj.insert("ts".into(), ts.into());
            obj.insert("level".into(), level.as_str().into());
            obj.insert("msg".into(), msg.into());
            for (k, v) in fields {
                obj.insert((*k).into(), v.to_string().into());
            }
            format!("{}\n", serde_json::Value::Object(obj))
        }
        LogFormat::Text => {
            let mut line = format!("{ts} {:<5} {msg}", level.as_str().to_uppercase());
            for (k, v) in fields {
                line.push_str(&format!(" {k}={}", quote(&v.to_string())));
            }
            line.push('\n');
            line
        }
    }
}

/// Quotes values that would not read back as one token.
fn quote(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

/// `2026-11-25T03:00:00.123Z`.
pub fn rfc3339(at: SystemTime) -> String {
    let d = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_795_575_600, 123)), "2026-11-25T03:00:00.123Z");
    }

    #[test]
    fn text_and_json_lines() {
        let subnet = "10.244.1.0/24";
        let err = "connection refused (os error 111)";
        let fields: [Field<'_>; 2] = [("subnet", &subnet), ("error", &err)];
        let text = render_line(LogFormat::Text, at(0, 0), Level::Warn, "lease renewal failed", &fields);
        assert_eq!(
            text,
            "1970-01-01T00:00:00.000Z WARN  lease renewal failed subnet=10.244.1.0/24 \
             error=\"connection refused (os error 111)\"\n"
        );
        let json = render_line(LogFormat::Json, at(0, 0), Level::Info, "joined", &fields[..1]);
        assert_eq!(
            json,
            "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"level\":\"info\",\"msg\":\"joined\",\"subnet\":\"10.244.1.0/24\"}\n"
        );
    }

    #[test]
    fn logger_writes_to_its_sink() {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let log = Logger::new(LogFormat::Json, Box::new(buf.clone()));
        log.error("boom", &[("n", &1)]);
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(
            (v["level"].as_str(), v["msg"].as_str(), v["n"].as_str()),
            (Some("error"), Some("boom"), Some("1"))
        );
    }
}
