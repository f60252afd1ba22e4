//! Wakes the reconciler when records under a prefix change: list (for a revision), watch
//! from it, and on any failure wait and start over. Every (re)start wakes the reconciler
//! too, so whatever changed while nobody was watching is caught up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::metrics::{Counter, Metrics};
use crate::store::{Datastore, StoreError};

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the reconciler is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Something under the watched prefix may have changed.
    Changed,
    /// SIGTERM or SIGINT: leave the cluster and exit.
    Shutdown,
}

/// A watch of one prefix that feeds `tx` until `stop` is set or the receiver is gone.
pub struct Watcher {
    pub prefix: &'static str,
    pub store: Arc<dyn Datastore>,
    pub tx: Sender<Input>,
    pub stop: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
}

/// Why one watch ended.
enum End {
    /// Stop was asked for, or nobody listens any more.
    Done,
    Failed {
        established: bool,
        error: StoreError,
    },
}

impl Watcher {
    pub fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new().name("twilld-watch".into()).spawn(move || self.run())
    }

    fn run(self) {
        let mut backoff = MIN_BACKOFF;
        let mut recovering = false;
        while !self.stop.load(Ordering::Relaxed) {
            match self.watch_once(&mut recovering) {
                End::Done => return,
                End::Failed { established, error } => {
                    if established {
                        backoff = MIN_BACKOFF;
                    }
                    self.metrics.add(Counter::DatastoreError, 1);
                    let retry = format!("{}ms", backoff.as_millis());
                    tracing::warn!(prefix = self.prefix, %error, retry_in = %retry, "datastore watch failed");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn watch_once(&self, recovering: &mut bool) -> End {
        let failed = |established, error| End::Failed { established, error };
        let listing = match self.store.list(self.prefix) {
            Ok(l) => l,
            Err(e) => return failed(false, e),
        };
        let mut watch = match self.store.watch(self.prefix, listing.revision) {
            Ok(w) => w,
            Err(e) => return failed(false, e),
        };
        if std::mem::take(recovering) {
            tracing::info!(prefix = self.prefix, revision = listing.revision, "datastore watch resumed");
        }
        if self.tx.send(Input::Changed).is_err() {
            return End::Done;
        }
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return End::Done;
            }
            match watch.next() {
                Ok(events) if events.is_empty() => {}
                Ok(_) => {
                    if self.tx.send(Input::Changed).is_err() {
                        return End::Done;
                    }
                }
                Err(e) => return failed(true, e),
            }
        }
    }
}
