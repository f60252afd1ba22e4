//! The etcd datastore, through the `etcd-client` crate (gRPC over tonic, TLS by rustls):
//! several members with failover, a CA and client certificates (docs/adr/0011).
//!
//! The rest of twill is synchronous, so the store owns a small tokio runtime (one worker
//! thread) and every call blocks on it with a deadline. The client connects lazily and
//! balances over the members; a call that fails because its member is unreachable is tried
//! again once, which lands on another member when one is left.

use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare as EtcdCompare, CompareOp, ConnectOptions, GetOptions, Identity, KeyValue,
    PutOptions, TlsOptions, Txn as EtcdTxn, TxnOp, WatchOptions, WatchStream,
};
use tokio::runtime::Runtime;

use super::etcd_watch::EtcdWatch;
use super::{Compare, Datastore, Entry, EtcdTls, LeaseId, Listing, Op, StoreError, Txn, Watch, check_key};

/// How long one request may take before the members count as unreachable.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How a call that ran out of time is reported ([`StoreError::is_timeout`]).
pub const NO_ANSWER: &str = "no answer within";

/// A client of an etcd cluster.
pub struct EtcdStore {
    endpoints: String,
    urls: Vec<String>,
    tls: EtcdTls,
    rt: Runtime,
    client: Client,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore").field("endpoints", &self.endpoints).finish_non_exhaustive()
    }
}

fn read_pem(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|source| StoreError::TlsFile { what, path: path.to_path_buf(), source })
}

fn tls_options(tls: &EtcdTls) -> Result<Option<TlsOptions>, StoreError> {
    let Some(ca) = &tls.cacert else { return Ok(None) };
    let mut opts = TlsOptions::new().ca_certificate(Certificate::from_pem(read_pem("--etcd-cacert", ca)?));
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        let identity = Identity::from_pem(read_pem("--etcd-cert", cert)?, read_pem("--etcd-key", key)?);
        opts = opts.identity(identity);
    }
    Ok(Some(opts))
}

/// Every message of an error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let msg = s.to_string();
        if !text.contains(&msg) {
            text.push_str(": ");
            text.push_str(&msg);
        }
        next = s.source();
    }
    text
}

/// Words rustls and tonic use when the handshake, not the network, failed. A member that
/// dies in the middle of a call closes its TLS stream without a close_notify, which rustls
/// reports in words that name TLS too: that is an outage, not a refused handshake.
fn is_tls_failure(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    let cut_off = ["close_notify", "unexpectedeof", "connection reset"];
    if cut_off.iter().any(|w| t.contains(w)) {
        return false;
    }
    ["certificate", "handshake", "tls", "alert", "unknownissuer", "invalid peer"]
        .iter()
        .any(|w| t.contains(w))
}

impl EtcdStore {
    /// A client of the members at `urls` (`http[s]://HOST:PORT`); nothing is contacted yet.
    pub fn connect(urls: &[String], tls: &EtcdTls) -> Result<EtcdStore, StoreError> {
        let endpoints = urls.join(",");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("twill-etcd")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable {
                endpoints: endpoints.clone(),
                op: "start client",
                reason: e.to_string(),
            })?;
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            // A member that lost its leader answers "no leader" at once instead of holding the
            // request until a new one is elected: such a request was not applied, so it can go
            // to another member.
            .with_require_leader(true);
        if let Some(t) = tls_options(tls)? {
            opts = opts.with_tls(t);
        }
        let client = rt.block_on(Client::connect(urls, Some(opts))).map_err(|e| StoreError::Unavailable {
            endpoints: endpoints.clone(),
            op: "connect",
            reason: chain(&e),
        })?;
        Ok(EtcdStore { endpoints, urls: urls.to_vec(), tls: tls.clone(), rt, client })
    }

    pub fn endpoints(&self) -> &str {
        &self.endpoints
    }

    fn error(&self, op: &'static str, e: etcd_client::Error) -> StoreError {
        let reason = chain(&e);
        let endpoints = self.endpoints.clone();
        match &e {
            etcd_client::Error::GRpcStatus(s) if !is_unreachable(s.code()) => {
                if is_tls_failure(&reason) {
                    StoreError::Tls { endpoints, reason }
                } else {
                    StoreError::Server { endpoints, op, reason }
                }
            }
            _ if is_tls_failure(&reason) => StoreError::Tls { endpoints, reason },
            _ => StoreError::Unavailable { endpoints, op, reason },
        }
    }

    /// Runs one call within [`REQUEST_TIMEOUT`]. When a member could not be used the call is
    /// tried again, landing on another member: always for reads, and for writes only when the
    /// request was never sent (no connection), so a write is never applied twice.
    fn call<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
        let read_only = matches!(op, "get" | "list" | "watch" | "lease keepalive");
        let attempts = 2 * self.urls.len() + 1;
        let mut last = None;
        for attempt in 0..attempts {
            let call = f(self.client.clone());
            let err = match self.rt.block_on(async { tokio::time::timeout_at(deadline, call).await }) {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => self.error(op, e),
                Err(_) => {
                    let reason = format!("{NO_ANSWER} {}s", REQUEST_TIMEOUT.as_secs());
                    return Err(StoreError::Unavailable { endpoints: self.endpoints.clone(), op, reason });
                }
            };
            let retry = match &err {
                StoreError::Unavailable { reason, .. } => read_only || never_sent(reason),
                _ => false,
            };
            if !retry || attempt + 1 == attempts {
                return Err(err);
            }
            last = Some(err);
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(last.unwrap_or(StoreError::Unavailable {
            endpoints: self.endpoints.clone(),
            op,
            reason: String::new(),
        }))
    }

    pub(super) fn runtime(&self) -> &Runtime {
        &self.rt
    }

    /// Opens a watch stream (the first response, the creation, is awaited).
    pub(super) fn call_watch(&self, key: String, opts: WatchOptions) -> Result<WatchStream, StoreError> {
        self.call("watch", |mut c| {
            let (key, opts) = (key.clone(), opts.clone());
            async move { c.watch(key, Some(opts)).await }
        })
    }
}

/// The connection to a member could not even be made: the request did not leave.
fn never_sent(reason: &str) -> bool {
    ["connect error", "Connection refused", "error trying to connect", "no leader"]
        .iter()
        .any(|w| reason.contains(w))
}

/// gRPC codes that mean "this member could not be used", worth trying another.
fn is_unreachable(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(code, Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown)
}

fn entry(kv: &KeyValue) -> Entry {
    Entry {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: kv.value().to_vec(),
        version: u64::try_from(kv.version()).unwrap_or(0),
        mod_revision: u64::try_from(kv.mod_revision()).unwrap_or(0),
        lease: (kv.lease() != 0).then_some(LeaseId(kv.lease())),
    }
}

fn etcd_txn(txn: &Txn) -> EtcdTxn {
    let compares: Vec<EtcdCompare> = txn
        .compare
        .iter()
        .map(|(key, c)| match c {
            Compare::Absent => EtcdCompare::create_revision(key.as_str(), CompareOp::Equal, 0),
            Compare::ModRevision(r) => EtcdCompare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                i64::try_from(*r).unwrap_or(i64::MAX),
            ),
        })
        .collect();
    let ops: Vec<TxnOp> = txn
        .ops
        .iter()
        .map(|op| match op {
            Op::Put { key, value, lease } => TxnOp::put(key.as_str(), value.clone(), put_options(*lease)),
            Op::Delete { key } => TxnOp::delete(key.as_str(), None),
        })
        .collect();
    EtcdTxn::new().when(compares).and_then(ops)
}

fn put_options(lease: Option<LeaseId>) -> Option<PutOptions> {
    lease.map(|l| PutOptions::new().with_lease(l.0))
}

/// An unknown lease is NOT_FOUND ("requested lease not found"); everything else stays.
fn lease_error(e: StoreError, lease: Option<LeaseId>) -> StoreError {
    match (e, lease) {
        (StoreError::Server { reason, .. }, Some(id)) if reason.contains("lease not found") => {
            StoreError::LeaseNotFound(id)
        }
        (e, _) => e,
    }
}

impl Datastore for EtcdStore {
    fn describe(&self) -> String {
        format!("etcd:{}", self.endpoints)
    }

    /// A read; when it fails with TLS configured, each member is asked why, directly, so that a
    /// refused certificate reads as such and not as an outage.
    fn check(&self) -> Result<(), StoreError> {
        let err = match self.get("/twill/") {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let hint = match self.tls.cert {
            None => " (the members may demand a client certificate: give --etcd-cert and --etcd-key)",
            Some(_) => "",
        };
        let endpoints = self.endpoints.clone();
        match err {
            StoreError::Tls { reason, .. } => {
                Err(StoreError::Tls { endpoints, reason: format!("{reason}{hint}") })
            }
            StoreError::Unavailable { .. } if self.tls.cacert.is_some() => {
                let why = self
                    .urls
                    .iter()
                    .find_map(|u| super::etcd_tls::diagnose(u, &self.tls).map(|w| format!("{u}: {w}")));
                match why {
                    Some(reason) => Err(StoreError::Tls { endpoints, reason: format!("{reason}{hint}") }),
                    None => Err(err),
                }
            }
            other => Err(other),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        check_key(key)?;
        let resp = self.call("get", |mut c| async move { c.get(key, None).await })?;
        Ok(resp.kvs().first().map(entry))
    }

    fn list(&self, prefix: &str) -> Result<Listing, StoreError> {
        check_key(prefix)?;
        let resp =
            self.call(
                "list",
                |mut c| async move { c.get(prefix, Some(GetOptions::new().with_prefix())).await },
            )?;
        let revision = resp.header().map(|h| u64::try_from(h.revision()).unwrap_or(0)).unwrap_or(0);
        Ok(Listing { entries: resp.kvs().iter().map(entry).collect(), revision })
    }

    fn put(&self, key: &str, value: &[u8], lease: Option<LeaseId>) -> Result<(), StoreError> {
        check_key(key)?;
        self.call("put", |mut c| async move { c.put(key, value, put_options(lease)).await })
            .map(drop)
            .map_err(|e| lease_error(e, lease))
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        let resp = self.call("delete", |mut c| async move { c.delete(key, None).await })?;
        Ok(resp.deleted() > 0)
    }

    fn txn(&self, txn: &Txn) -> Result<bool, StoreError> {
        for (key, _) in &txn.compare {
            check_key(key)?;
        }
        let lease = txn.ops.iter().find_map(|op| match op {
            Op::Put { lease, .. } => *lease,
            Op::Delete { .. } => None,
        });
        let resp = self
            .call("txn", |mut c| async move { c.txn(etcd_txn(txn)).await })
            .map_err(|e| lease_error(e, lease))?;
        Ok(resp.succeeded())
    }

    fn lease_grant(&self, ttl: Duration) -> Result<LeaseId, StoreError> {
        let secs = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let resp = self.call("lease grant", |mut c| async move { c.lease_grant(secs, None).await })?;
        Ok(LeaseId(resp.id()))
    }

    fn lease_keepalive(&self, lease: LeaseId) -> Result<bool, StoreError> {
        let outcome = self.call("lease keepalive", |mut c| async move {
            match c.lease_keep_alive(lease.0).await {
                Ok(_) => Ok(true),
                // etcd answers an unknown or expired lease with TTL 0 on the stream.
                Err(etcd_client::Error::LeaseKeepAliveError(m)) if m.contains("not found") => Ok(false),
                Err(e) => Err(e),
            }
        });
        outcome.map_err(|e| lease_error(e, Some(lease)))
    }

    fn lease_revoke(&self, lease: LeaseId) -> Result<(), StoreError> {
        self.call("lease revoke", |mut c| async move { c.lease_revoke(lease.0).await })
            .map(drop)
            .map_err(|e| lease_error(e, Some(lease)))
    }

    fn watch(&self, prefix: &str, after_revision: u64) -> Result<Box<dyn Watch>, StoreError> {
        check_key(prefix)?;
        Ok(Box::new(EtcdWatch::start(self, prefix, after_revision)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_are_told_apart_from_outages() {
        assert!(is_tls_failure("transport error: invalid peer certificate: UnknownIssuer"));
        assert!(is_tls_failure("received fatal alert: CertificateRequired"));
        assert!(!is_tls_failure("tcp connect error: Connection refused (os error 111)"));
        // What a member killed in the middle of a call leaves (seen in CI).
        let cut = "grpc request error: code: 'Unknown error', message: \"transport error\", source: \
                   tonic::transport::Error(Transport, hyper::Error(Io, Custom { kind: UnexpectedEof, \
                   error: \"peer closed connection without sending TLS close_notify\" }))";
        assert!(!is_tls_failure(cut));
    }
}
