//! Flow logs (docs/flows.md): a thread reads the packets the node's filters log to twill's
//! nflog group — new connections the policy table decides (`--flow-logs denied|all`), and
//! the spoofed packets the plugins' checks drop — and turns each into a [`FlowRecord`]: the
//! verdict, the tier, policy and rule that decided, the 5-tuple and the pods. Records go to
//! a bounded ring (`GET /flows`), to `STATE/flows.jsonl` (rotated) and to per-policy counters
//! in `/metrics`.
//!
//! The policy controller publishes the [`FlowView`] (the world it compiled, the catalogue of
//! the table it applied) after every compile; the thread reads the latest one per message.

pub mod file;
pub mod record;
pub mod store;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fw::nflog::{Listener, Received, TWILL_GROUP};

use file::FlowFile;
pub use record::{FlowRecord, FlowView, build_record};
pub use store::{FlowQuery, FlowStore};

/// The latest view, shared by the policy controller (writer) and the reader thread.
#[derive(Debug, Clone, Default)]
pub struct SharedView(Arc<Mutex<Arc<FlowView>>>);

impl SharedView {
    pub fn publish(&self, view: FlowView) {
        if let Ok(mut v) = self.0.lock() {
            *v = Arc::new(view);
        }
    }

    pub fn latest(&self) -> Arc<FlowView> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// Starts the reader in the calling thread's network namespace (the node's); it stops when
/// `stop` is set. Binding the group happens before this returns, so a group another
/// process holds is reported at once.
pub fn spawn(
    view: SharedView,
    store: Arc<FlowStore>,
    state_dir: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut listener = Listener::bind(TWILL_GROUP, Duration::from_millis(500))?;
    let mut reader = Reader { view, store, file: FlowFile::new(&state_dir), file_failing: false };
    std::thread::Builder::new().name("twilld-flows".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.recv() {
                Ok(Received::Packets(p)) => reader.record(p),
                Ok(Received::Idle) => {}
                Ok(Received::Overrun) => reader.store.problem("lost"),
                Err(e) => {
                    tracing::error!(error = %e, "flow log socket failed; flow logs stop");
                    return;
                }
            }
        }
    })?;
    Ok(())
}

/// The reader thread's state.
struct Reader {
    view: SharedView,
    store: Arc<FlowStore>,
    file: FlowFile,
    /// The file could not be written last time (to log the change only).
    file_failing: bool,
}

impl Reader {
    /// Records the packets of one datagram, then writes the file out once.
    fn record(&mut self, packets: Vec<Result<fw::nflog::Packet, fw::nflog::ParseError>>) {
        let view = self.view.latest();
        let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        let mut written = Ok(());
        for packet in packets {
            let record = packet
                .map_err(|e| e.to_string())
                .and_then(|p| build_record(&view, &p, self.store.next_seq(), now).map_err(|e| e.to_string()));
            match record {
                Ok(r) => {
                    written = written.and_then(|()| self.file.append(&r));
                    self.store.push(r);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "flow log message skipped");
                    self.store.problem("unknown");
                }
            }
        }
        let written = written.and_then(|()| self.file.flush());
        if written.is_err() != self.file_failing {
            self.file_failing = written.is_err();
            match written {
                Err(e) => tracing::warn!(error = %e, "cannot append to flows.jsonl"),
                Ok(()) => tracing::info!("appending to flows.jsonl again"),
            }
        }
    }
}
