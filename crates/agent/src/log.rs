//! How twilld's events are written: through `tracing`, one line per event, as `key=value`
//! text or as JSON. The writer is injected (twilld passes stderr), so tests read what was
//! logged by installing the same subscriber around the code they run
//! (`tracing::dispatcher::with_default`) without touching the process's streams.

use tracing::Dispatch;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Info and above (twilld logs nothing below), in `format`, to `writer`. Text lines are
/// `TIMESTAMP LEVEL message key=value...`; JSON lines are objects with `timestamp`, `level`,
/// `message`, the event's fields at the top level, and `target` (the module).
pub fn dispatch<W>(format: LogFormat, writer: W) -> Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // No colours: the lines go to journald or a file, not a terminal.
    let builder =
        tracing_subscriber::fmt().with_writer(writer).with_ansi(false).with_max_level(LevelFilter::INFO);
    match format {
        LogFormat::Text => Dispatch::new(builder.with_target(false).finish()),
        LogFormat::Json => Dispatch::new(
            builder.json().flatten_event(true).with_current_span(false).with_span_list(false).finish(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

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

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn logged(format: LogFormat, f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let sink = buf.clone();
        tracing::dispatcher::with_default(&dispatch(format, move || sink.clone()), f);
        buf.text()
    }

    #[test]
    fn text_lines() {
        let out = logged(LogFormat::Text, || {
            let error = "connection refused (os error 111)";
            tracing::warn!(subnet = %"10.244.1.0/24", %error, "lease renewal failed");
            tracing::debug!("not written");
        });
        assert_eq!(out.lines().count(), 1, "{out}");
        let (ts, rest) = out.trim_end().split_once(' ').unwrap();
        assert!(ts.ends_with('Z') && ts.contains('T'), "{out}");
        assert_eq!(
            rest.trim_start(),
            "WARN lease renewal failed subnet=10.244.1.0/24 error=connection refused (os error 111)"
        );
    }

    #[test]
    fn json_lines() {
        let out = logged(LogFormat::Json, || tracing::error!(n = 1, subnet = %"10.244.1.0/24", "boom"));
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["message"], "boom");
        assert_eq!(v["n"], 1);
        assert_eq!(v["subnet"], "10.244.1.0/24");
        assert!(v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    }
}
