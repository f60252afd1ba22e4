//! An etcd watch as a [`Watch`]: a task on the store's runtime reads the gRPC stream and hands
//! each response's events over a channel; `next` waits on that channel for up to a second.
//! Dropping the watch closes the channel, which ends the task and cancels the stream.

use std::time::Duration;

use etcd_client::{EventType, WatchOptions, WatchResponse};
use tokio::sync::mpsc;

use super::etcd::EtcdStore;
use super::{Event, StoreError, Watch};

/// How long [`Watch::next`] waits for changes.
const WAIT: Duration = Duration::from_secs(1);

type Batch = Result<Vec<Event>, String>;

pub struct EtcdWatch {
    prefix: String,
    rx: mpsc::UnboundedReceiver<Batch>,
    rt: tokio::runtime::Handle,
}

fn events(resp: &WatchResponse) -> Vec<Event> {
    let revision = resp.header().map(|h| u64::try_from(h.revision()).unwrap_or(0)).unwrap_or(0);
    resp.events()
        .iter()
        .filter_map(|ev| {
            let kv = ev.kv()?;
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            Some(match ev.event_type() {
                EventType::Put => Event::Put(super::Entry {
                    key,
                    value: kv.value().to_vec(),
                    version: u64::try_from(kv.version()).unwrap_or(0),
                    mod_revision: u64::try_from(kv.mod_revision()).unwrap_or(0),
                    lease: (kv.lease() != 0).then_some(super::LeaseId(kv.lease())),
                }),
                EventType::Delete => {
                    let rev = u64::try_from(kv.mod_revision()).unwrap_or(0);
                    Event::Delete { key, revision: if rev == 0 { revision } else { rev } }
                }
            })
        })
        .collect()
}

impl EtcdWatch {
    /// Watches `prefix` from the revision after `after_revision`.
    pub fn start(store: &EtcdStore, prefix: &str, after_revision: u64) -> Result<EtcdWatch, StoreError> {
        let start = i64::try_from(after_revision.saturating_add(1)).unwrap_or(i64::MAX);
        let opts = WatchOptions::new().with_prefix().with_start_revision(start);
        let key = prefix.to_string();
        let mut stream = store.call_watch(key.clone(), opts)?;
        let (tx, rx) = mpsc::unbounded_channel::<Batch>();
        store.runtime().spawn(async move {
            loop {
                let next = tokio::select! {
                    m = stream.message() => m,
                    _ = tx.closed() => return,
                };
                let batch = match next {
                    Ok(Some(resp)) if resp.canceled() => Err(format!(
                        "canceled by the server (compacted at revision {}): {}",
                        resp.compact_revision(),
                        resp.cancel_reason()
                    )),
                    Ok(Some(resp)) => Ok(events(&resp)),
                    Ok(None) => Err("the server closed the stream".to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let last = batch.is_err();
                if tx.send(batch).is_err() || last {
                    return;
                }
            }
        });
        Ok(EtcdWatch { prefix: key, rx, rt: store.runtime().handle().clone() })
    }

    fn ended(&self, reason: String) -> StoreError {
        StoreError::WatchEnded { prefix: self.prefix.clone(), reason }
    }
}

impl Watch for EtcdWatch {
    fn next(&mut self) -> Result<Vec<Event>, StoreError> {
        let first = self.rt.block_on(async { tokio::time::timeout(WAIT, self.rx.recv()).await });
        let mut out = match first {
            Err(_) => return Ok(Vec::new()),
            Ok(None) => return Err(self.ended("the watch task ended".into())),
            Ok(Some(Err(reason))) => return Err(self.ended(reason)),
            Ok(Some(Ok(events))) => events,
        };
        while let Ok(batch) = self.rx.try_recv() {
            match batch {
                Ok(events) => out.extend(events),
                Err(reason) => return Err(self.ended(reason)),
            }
        }
        Ok(out)
    }
}
