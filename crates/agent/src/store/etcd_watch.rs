//! etcd watches through the JSON gateway: one POST to `/v3/watch` with a create request,
//! answered by a chunked stream of `{"result": WatchResponse}` lines for as long as the
//! connection lives. A server that goes away ends the stream (EOF), which ends the watch.

use std::time::Duration;

use super::etcd_wire::{WatchMessage, b64, prefix_end};
use super::http::{self, Stream};
use super::{Event, StoreError, Watch};

/// How long one [`Watch::next`] waits for a message.
const POLL: Duration = Duration::from_secs(1);

/// An open watch stream.
pub(crate) struct EtcdWatch {
    stream: Stream,
    prefix: String,
}

impl EtcdWatch {
    pub fn start(addr: &str, prefix: &str, after: u64, timeout: Duration) -> Result<EtcdWatch, StoreError> {
        let req = serde_json::json!({ "create_request": {
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&prefix_end(prefix)),
            "start_revision": (after + 1).to_string(),
        }});
        let ended = |reason: String| StoreError::WatchEnded { prefix: prefix.to_string(), reason };
        let body = serde_json::to_vec(&req).map_err(|e| ended(e.to_string()))?;
        let stream = http::post_stream(addr, "/v3/watch", &body, timeout).map_err(|e| StoreError::Http {
            addr: addr.to_string(),
            path: "/v3/watch",
            reason: e.to_string(),
        })?;
        stream.set_poll(POLL).map_err(|e| ended(e.to_string()))?;
        Ok(EtcdWatch { stream, prefix: prefix.to_string() })
    }

    fn ended(&self, reason: impl Into<String>) -> StoreError {
        StoreError::WatchEnded { prefix: self.prefix.clone(), reason: reason.into() }
    }

    /// The events of one message; an error when the server ended the watch.
    fn decode(&self, line: &[u8]) -> Result<Vec<Event>, StoreError> {
        let msg: WatchMessage =
            serde_json::from_slice(line).map_err(|e| self.ended(format!("undecodable message: {e}")))?;
        if let Some(err) = msg.error {
            return Err(self.ended(format!("server error: {err}")));
        }
        let Some(result) = msg.result else { return Ok(Vec::new()) };
        if result.canceled {
            let why = if result.compact_revision > 0 {
                format!("history compacted at revision {}", result.compact_revision)
            } else {
                format!("canceled: {}", result.cancel_reason)
            };
            return Err(self.ended(why));
        }
        result.events.into_iter().map(|e| e.into_event().map_err(|r| self.ended(r))).collect()
    }
}

impl Watch for EtcdWatch {
    fn next(&mut self) -> Result<Vec<Event>, StoreError> {
        loop {
            match self.stream.next_line() {
                Ok(Some(line)) => {
                    let events = self.decode(&line)?;
                    if !events.is_empty() {
                        return Ok(events);
                    }
                }
                Ok(None) => return Ok(Vec::new()),
                Err(e) => return Err(self.ended(e.to_string())),
            }
        }
    }
}
