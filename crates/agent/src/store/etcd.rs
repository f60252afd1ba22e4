//! The etcd datastore, spoken through etcd's v3 JSON gateway (`/v3/kv/range`, `/v3/kv/put`,
//! `/v3/kv/txn`, `/v3/kv/deleterange`, `/v3/lease/*`, `/v3/watch`) over HTTP/1.1 on a std
//! `TcpStream`: no gRPC stack, no protoc, no async runtime (docs/adr/0002-etcd-json-gateway.md).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::etcd_watch::EtcdWatch;
use super::etcd_wire::{
    DeleteRangeResponse, ErrorBody, KeepAliveMessage, KeyRequest, LeaseGrantResponse, PutRequest,
    RangeResponse, TxnResponse, txn_request,
};
use super::http::{self, HttpError};
use super::{Datastore, Entry, LeaseId, Listing, StoreError, Txn, Watch, check_key};

/// How long one request may take before the server counts as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// gRPC's NOT_FOUND, which etcd answers for an unknown lease.
const CODE_NOT_FOUND: i64 = 5;

/// A client of one etcd server (`HOST:PORT`).
#[derive(Debug, Clone)]
pub struct EtcdStore {
    addr: String,
    timeout: Duration,
}

impl EtcdStore {
    pub fn new(addr: &str) -> EtcdStore {
        EtcdStore { addr: addr.to_string(), timeout: REQUEST_TIMEOUT }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    fn http_err(&self, path: &'static str, e: HttpError) -> StoreError {
        StoreError::Http { addr: self.addr.clone(), path, reason: e.to_string() }
    }

    fn server_err(&self, path: &'static str, status: u16, body: &[u8]) -> StoreError {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(e) if !e.message.is_empty() => {
                StoreError::Server { addr: self.addr.clone(), path, code: e.code, message: e.message }
            }
            _ => StoreError::Http {
                addr: self.addr.clone(),
                path,
                reason: format!("HTTP status {status}: {}", String::from_utf8_lossy(body)),
            },
        }
    }

    /// One unary call: POST the request, decode the answer.
    fn call<T: DeserializeOwned>(&self, path: &'static str, req: &impl Serialize) -> Result<T, StoreError> {
        let body =
            serde_json::to_vec(req).map_err(|e| self.http_err(path, HttpError::Protocol(e.to_string())))?;
        let resp = http::post(&self.addr, path, &body, self.timeout).map_err(|e| self.http_err(path, e))?;
        if resp.status != 200 {
            return Err(self.server_err(path, resp.status, &resp.body));
        }
        serde_json::from_slice(&resp.body)
            .map_err(|e| self.http_err(path, HttpError::Protocol(format!("decode answer: {e}"))))
    }

    fn range(&self, req: &KeyRequest) -> Result<Listing, StoreError> {
        let path = "/v3/kv/range";
        let resp: RangeResponse = self.call(path, req)?;
        let entries = resp
            .kvs
            .into_iter()
            .map(|kv| kv.into_entry().map_err(|e| self.http_err(path, HttpError::Protocol(e))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Listing { entries, revision: u64::try_from(resp.header.revision).unwrap_or(0) })
    }
}

/// An unknown lease is NOT_FOUND; everything else stays as it is.
fn lease_error(e: StoreError, lease: Option<LeaseId>) -> StoreError {
    match (e, lease) {
        (StoreError::Server { code: CODE_NOT_FOUND, message, .. }, Some(id)) if message.contains("lease") => {
            StoreError::LeaseNotFound(id)
        }
        (e, _) => e,
    }
}

impl Datastore for EtcdStore {
    fn describe(&self) -> String {
        format!("etcd:http://{}", self.addr)
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        check_key(key)?;
        Ok(self.range(&KeyRequest::key(key))?.entries.into_iter().next())
    }

    fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        check_key(prefix)?;
        self.range(&KeyRequest::prefix(prefix))
    }

    fn put(&self, key: &str, value: &[u8], lease: Option<LeaseId>) -> Result<(), StoreError> {
        check_key(key)?;
        let req = PutRequest::new(key, value, lease);
        self.call::<serde_json::Value>("/v3/kv/put", &req).map(drop).map_err(|e| lease_error(e, lease))
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        let resp: DeleteRangeResponse = self.call("/v3/kv/deleterange", &KeyRequest::key(key))?;
        Ok(resp.deleted > 0)
    }

    fn txn(&self, txn: &Txn) -> Result<bool, StoreError> {
        for (key, _) in &txn.compare {
            check_key(key)?;
        }
        let lease = txn.ops.iter().find_map(|op| match op {
            super::Op::Put { lease, .. } => *lease,
            super::Op::Delete { .. } => None,
        });
        let resp: TxnResponse =
            self.call("/v3/kv/txn", &txn_request(txn)).map_err(|e| lease_error(e, lease))?;
        Ok(resp.succeeded)
    }

    fn lease_grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let path = "/v3/lease/grant";
        let secs = ttl.as_secs().max(1);
        let resp: LeaseGrantResponse = self.call(path, &serde_json::json!({ "TTL": secs.to_string() }))?;
        if !resp.error.is_empty() || resp.id == 0 {
            let message = if resp.error.is_empty() { "no lease id in answer".into() } else { resp.error };
            return Err(StoreError::Server { addr: self.addr.clone(), path, code: 0, message });
        }
        Ok(LeaseId(resp.id))
    }

    fn lease_keepalive(&self, lease: LeaseId) -> Result<bool, StoreError> {
        // A bidirectional stream in gRPC; through the gateway one request gets one message
        // back and the stream ends with the request body.
        let path = "/v3/lease/keepalive";
        let body = serde_json::to_vec(&serde_json::json!({ "ID": lease.0.to_string() }))
            .map_err(|e| self.http_err(path, HttpError::Protocol(e.to_string())))?;
        let resp = http::post(&self.addr, path, &body, self.timeout).map_err(|e| self.http_err(path, e))?;
        if resp.status != 200 {
            return Err(self.server_err(path, resp.status, &resp.body));
        }
        let first = resp.body.split(|b| *b == b'\n').find(|l| !l.is_empty()).unwrap_or_default();
        let msg: KeepAliveMessage = serde_json::from_slice(first)
            .map_err(|e| self.http_err(path, HttpError::Protocol(format!("decode answer: {e}"))))?;
        Ok(msg.result.ttl > 0)
    }

    fn lease_revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        let req = serde_json::json!({ "ID": lease.0.to_string() });
        self.call::<serde_json::Value>("/v3/lease/revoke", &req)
            .map(drop)
            .map_err(|e| lease_error(e, Some(lease)))
    }

    fn watch(&self, prefix: &str, after_revision: u64) -> Result<Box<dyn Watch>, StoreError> {
        check_key(prefix)?;
        Ok(Box::new(EtcdWatch::start(&self.addr, prefix, after_revision, self.timeout)?))
    }
}
