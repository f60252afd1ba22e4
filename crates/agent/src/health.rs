//! The health and metrics server (axum over hyper): `GET /readyz` (200 once the node is
//! ready, 503 before and while leaving), `GET /healthz` and `/livez` (200 while the process
//! serves), `GET /metrics` (OpenMetrics text) and, with the bgp backend, `GET /bgp` (BIRD's
//! sessions as JSON), `GET /flows` (recent flow records as JSON lines, docs/flows.md). HEAD
//! is answered like GET without a body.
//!
//! The rest of twilld is std threads, so the server gets a thread and a one-thread tokio
//! runtime of its own. The socket is bound before that thread starts, on the caller's
//! thread: a bad address fails the start at once, and the socket belongs to the network
//! namespace twilld was started in (the runtime never enters another one).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::flows::FlowQuery;
use crate::metrics::{CONTENT_TYPE, Metrics};

/// The server's routes over `metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/readyz", get(readyz))
        .route("/healthz", get(alive))
        .route("/livez", get(alive))
        .route("/metrics", get(exposition))
        .route("/bgp", get(bgp))
        .route("/flows", get(flows))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(metrics)
}

async fn readyz(State(m): State<Arc<Metrics>>) -> (StatusCode, &'static str) {
    match m.is_ready() {
        true => (StatusCode::OK, "ok\n"),
        false => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
    }
}

async fn alive() -> &'static str {
    "ok\n"
}

async fn exposition(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], m.render())
}

async fn bgp(State(m): State<Arc<Metrics>>) -> axum::response::Response {
    match m.bgp() {
        Some(status) => {
            let body = serde_json::to_string(&status).unwrap_or_default() + "\n";
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "this node does not run the bgp backend\n").into_response(),
    }
}

/// The recent flow records `?after=&denied=&namespace=&pod=&limit=` asks for, as JSON lines.
async fn flows(State(m): State<Arc<Metrics>>, uri: Uri) -> axum::response::Response {
    match FlowQuery::parse(uri.query().unwrap_or_default()) {
        Ok(q) => {
            let mut body = String::new();
            for r in m.flows.query(&q) {
                body.push_str(&serde_json::to_string(&r).unwrap_or_default());
                body.push('\n');
            }
            ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

/// Binds `addr` and serves on a background thread for the life of the process; returns the
/// bound address (`addr` may ask for port 0).
pub fn spawn(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    std::thread::Builder::new().name("twilld-http".into()).spawn(move || {
        let served = rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, router(metrics)).await
        });
        // axum::serve only returns on a listener error; readiness probes will notice too.
        if let Err(e) = served {
            tracing::error!(addr = %bound, error = %e, "health server stopped");
        }
    })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    /// One request on its own connection: status line and body.
    fn request(addr: SocketAddr, method: &str, path: &str) -> (String, String, String) {
        let mut c = TcpStream::connect(addr).unwrap();
        write!(c, "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
        let mut resp = String::new();
        c.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        let status = head.lines().next().unwrap().to_string();
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    #[test]
    fn serves_readiness_liveness_and_metrics_over_tcp() {
        let m = Arc::new(Metrics::default());
        let addr = spawn("127.0.0.1:0".parse().unwrap(), m.clone()).unwrap();
        let (status, _, body) = request(addr, "GET", "/readyz");
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 503 Service Unavailable", "not ready\n"));
        m.set_ready(true);
        let (status, _, body) = request(addr, "GET", "/readyz");
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "ok\n"));
        assert_eq!(request(addr, "GET", "/healthz").0, "HTTP/1.1 200 OK");
        assert_eq!(request(addr, "GET", "/livez").0, "HTTP/1.1 200 OK");
        assert_eq!(request(addr, "GET", "/nope").0, "HTTP/1.1 404 Not Found");
        assert_eq!(request(addr, "POST", "/readyz").0, "HTTP/1.1 405 Method Not Allowed");
        let (status, head, body) = request(addr, "HEAD", "/readyz");
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", ""));
        assert!(head.contains("content-length: 3"), "{head}");
        let (status, head, body) = request(addr, "GET", "/metrics?x=1");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(head.contains("content-type: application/openmetrics-text; version=1.0.0"), "{head}");
        assert!(body.contains("\ntwill_ready 1\n") && body.ends_with("# EOF\n"), "{body}");
        assert_eq!(request(addr, "GET", "/bgp").0, "HTTP/1.1 404 Not Found");
        m.set_bgp(Some(crate::bgp::status::BgpStatus { local_as: 64512, ..Default::default() }));
        let (status, head, body) = request(addr, "GET", "/bgp");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["local_as"], 64512);
    }

    #[test]
    fn flows_are_served_filtered_as_json_lines() {
        let m = Arc::new(Metrics::default());
        let mut r = crate::flows::store::tests::record(0, "denied", Some("x/a"));
        m.flows.push(r.clone());
        (r.seq, r.verdict, r.src_pod) = (1, "allowed".into(), Some("y/b".into()));
        m.flows.push(r);
        let addr = spawn("127.0.0.1:0".parse().unwrap(), m).unwrap();
        let (status, head, body) = request(addr, "GET", "/flows");
        assert_eq!((status.as_str(), body.lines().count()), ("HTTP/1.1 200 OK", 2), "{body}");
        assert!(head.contains("content-type: application/x-ndjson"), "{head}");
        let (_, _, body) = request(addr, "GET", "/flows?denied=true&pod=x%2Fa");
        let only: crate::flows::FlowRecord = serde_json::from_str(body.trim()).unwrap();
        assert_eq!((only.seq, only.src_pod.as_deref()), (0, Some("x/a")));
        assert_eq!(request(addr, "GET", "/flows?after=1").2, "");
        let (status, _, body) = request(addr, "GET", "/flows?colour=red");
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{body}");
    }

    #[test]
    fn a_taken_address_fails_at_once() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = spawn(taken.local_addr().unwrap(), Arc::new(Metrics::default())).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    }
}
