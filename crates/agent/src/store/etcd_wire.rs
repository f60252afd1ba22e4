//! etcd v3 messages as its JSON gateway spells them: proto3 JSON, so bytes are base64,
//! 64-bit integers are strings (numbers are accepted too) and fields at their default value
//! are left out.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize};

use super::{Compare, Entry, Event, LeaseId, Op, Txn};

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// `prefix` with its last byte incremented: the exclusive end of a prefix range.
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: etcd's "\0" means "to the end of the key space".
    vec![0]
}

/// An int64/uint64 field: a string or a number; absent means 0.
fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        N(i64),
    }
    match Raw::deserialize(d)? {
        Raw::N(n) => Ok(n),
        Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Header {
    #[serde(default, deserialize_with = "int")]
    pub revision: i64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct KeyValue {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub value: String,
    #[serde(default, deserialize_with = "int")]
    pub mod_revision: i64,
    #[serde(default, deserialize_with = "int")]
    pub version: i64,
    #[serde(default, deserialize_with = "int")]
    pub lease: i64,
}

impl KeyValue {
    pub fn into_entry(self) -> Result<Entry, String> {
        let key = STANDARD.decode(&self.key).map_err(|e| format!("key: {e}"))?;
        let value = STANDARD.decode(&self.value).map_err(|e| format!("value: {e}"))?;
        Ok(Entry {
            key: String::from_utf8(key).map_err(|e| format!("key: {e}"))?,
            value,
            version: to_u64(self.version),
            mod_revision: to_u64(self.mod_revision),
            lease: (self.lease != 0).then_some(LeaseId(self.lease)),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RangeResponse {
    #[serde(default)]
    pub header: Header,
    #[serde(default)]
    pub kvs: Vec<KeyValue>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeleteRangeResponse {
    #[serde(default, deserialize_with = "int")]
    pub deleted: i64,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TxnResponse {
    #[serde(default)]
    pub succeeded: bool,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LeaseGrantResponse {
    #[serde(rename = "ID", default, deserialize_with = "int")]
    pub id: i64,
    #[serde(default)]
    pub error: String,
}

/// One message of the keepalive stream: `{"result": {"ID": .., "TTL": ..}}`; TTL 0 (absent)
/// means the lease is gone.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct KeepAliveMessage {
    #[serde(default)]
    pub result: KeepAliveResult,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct KeepAliveResult {
    #[serde(rename = "TTL", default, deserialize_with = "int")]
    pub ttl: i64,
}

/// One message of the watch stream.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WatchMessage {
    #[serde(default)]
    pub result: Option<WatchResult>,
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WatchResult {
    #[serde(default)]
    pub canceled: bool,
    #[serde(default)]
    pub cancel_reason: String,
    #[serde(default, deserialize_with = "int")]
    pub compact_revision: i64,
    #[serde(default)]
    pub events: Vec<WatchEvent>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WatchEvent {
    /// "PUT" is the default and therefore left out.
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub kv: KeyValue,
}

impl WatchEvent {
    pub fn into_event(self) -> Result<Event, String> {
        let delete = self.kind == "DELETE";
        let entry = self.kv.into_entry()?;
        Ok(if delete {
            Event::Delete { key: entry.key, revision: entry.mod_revision }
        } else {
            Event::Put(entry)
        })
    }
}

/// An error answer: `{"error": "...", "message": "...", "code": 5}`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: i64,
}

#[derive(Debug, Serialize)]
pub(crate) struct PutRequest {
    pub key: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
}

impl PutRequest {
    pub fn new(key: &str, value: &[u8], lease: Option<LeaseId>) -> PutRequest {
        PutRequest { key: b64(key.as_bytes()), value: b64(value), lease: lease.map(|l| l.0.to_string()) }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct KeyRequest {
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range_end: Option<String>,
}

impl KeyRequest {
    pub fn key(key: &str) -> KeyRequest {
        KeyRequest { key: b64(key.as_bytes()), range_end: None }
    }

    pub fn prefix(prefix: &str) -> KeyRequest {
        KeyRequest { key: b64(prefix.as_bytes()), range_end: Some(b64(&prefix_end(prefix))) }
    }
}

/// The JSON of a `TxnRequest`.
pub(crate) fn txn_request(txn: &Txn) -> serde_json::Value {
    let compare: Vec<serde_json::Value> = txn
        .compare
        .iter()
        .map(|(key, cmp)| match cmp {
            Compare::Absent => serde_json::json!({
                "key": b64(key.as_bytes()), "target": "CREATE", "result": "EQUAL", "create_revision": "0"
            }),
            Compare::ModRevision(rev) => serde_json::json!({
                "key": b64(key.as_bytes()), "target": "MOD", "result": "EQUAL", "mod_revision": rev.to_string()
            }),
        })
        .collect();
    let success: Vec<serde_json::Value> = txn
        .ops
        .iter()
        .map(|op| match op {
            Op::Put { key, value, lease } => {
                serde_json::json!({ "request_put": PutRequest::new(key, value, *lease) })
            }
            Op::Delete { key } => serde_json::json!({ "request_delete_range": KeyRequest::key(key) }),
        })
        .collect();
    serde_json::json!({ "compare": compare, "success": success })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end("/twill/"), b"/twill0".to_vec());
        assert_eq!(prefix_end("a"), b"b".to_vec());
    }

    #[test]
    fn int64_fields_accept_strings_and_numbers() {
        let kv: KeyValue = serde_json::from_str(
            r#"{"key":"L2E=","value":"eA==","mod_revision":"7","version":2,"lease":"9"}"#,
        )
        .unwrap();
        let e = kv.into_entry().unwrap();
        assert_eq!(
            (e.key.as_str(), e.value.as_slice(), e.mod_revision, e.version),
            ("/a", b"x".as_slice(), 7, 2)
        );
        assert_eq!(e.lease, Some(LeaseId(9)));
    }

    #[test]
    fn watch_delete_event_parses() {
        let m: WatchMessage = serde_json::from_str(
            r#"{"result":{"header":{"revision":"4"},"events":[{"type":"DELETE","kv":{"key":"L2E=","mod_revision":"4"}}]}}"#,
        )
        .unwrap();
        let ev = m.result.unwrap().events.into_iter().next().unwrap().into_event().unwrap();
        assert_eq!(ev, Event::Delete { key: "/a".into(), revision: 4 });
    }

    #[test]
    fn txn_compares_create_revision_for_absent() {
        let t = Txn::create("/a", b"v", Some(LeaseId(5)));
        let j = txn_request(&t);
        assert_eq!(j["compare"][0]["target"], "CREATE");
        assert_eq!(j["compare"][0]["create_revision"], "0");
        assert_eq!(j["success"][0]["request_put"]["lease"], "5");
        assert_eq!(j["success"][0]["request_put"]["value"], "dg==");
    }
}
