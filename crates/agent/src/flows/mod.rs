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
    let mut file = FlowFile::new(&state_dir);
    std::thread::Builder::new().name("twilld-flows".into()).spawn(move || {
        let mut file_failing = false;
        while !stop.load(Ordering::Relaxed) {
            let packets = match listener.recv() {
                Ok(Received::Packets(p)) => p,
                Ok(Received::Idle) => continue,
                Ok(Received::Overrun) => {
                    store.problem("lost");
                    continue;
                }
                Err(e) => {
                    tracing::error!(error = %e, "flow log socket failed; flow logs stop");
                    return;
                }
            };
            let view = view.latest();
            for packet in packets {
                let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
                let record = packet.map_err(|e| e.to_string()).and_then(|p| {
                    build_record(&view, &p, store.next_seq(), now.as_secs_f64()).map_err(|e| e.to_string())
                });
                match record {
                    Ok(r) => {
                        let written = file.append(&r);
                        if written.is_err() != file_failing {
                            file_failing = written.is_err();
                            match written {
                                Err(e) => tracing::warn!(error = %e, "cannot append to flows.jsonl"),
                                Ok(()) => tracing::info!("appending to flows.jsonl again"),
                            }
                        }
                        store.push(r);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "flow log message skipped");
                        store.problem("unknown");
                    }
                }
            }
        }
    })?;
    Ok(())
}
