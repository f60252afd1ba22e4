//! A tiny HTTP/1.1 server on a std `TcpListener`: `GET /readyz` (200 once the node is
//! ready, 503 before), `GET /healthz` (200 while the process serves), `GET /metrics` and,
//! with the BGP backend, `GET /bgp` (BIRD's sessions as JSON).
//! One request per connection, answered and closed; requests are served one at a time,
//! which is plenty for a kubelet probe and a scraper.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;

/// Largest request head read.
const MAX_HEAD: usize = 8192;

/// An answer: status, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

fn text(status: u16, body: &str) -> Answer {
    Answer { status, content_type: "text/plain; charset=utf-8", body: body.to_string() }
}

/// The answer to `METHOD PATH`.
pub fn answer(method: &str, path: &str, metrics: &Metrics) -> Answer {
    if method != "GET" && method != "HEAD" {
        return text(405, "method not allowed\n");
    }
    match path.split('?').next().unwrap_or_default() {
        "/readyz" if metrics.is_ready() => text(200, "ok\n"),
        "/readyz" => text(503, "not ready\n"),
        "/healthz" | "/livez" => text(200, "ok\n"),
        "/bgp" => match metrics.bgp() {
            Some(status) => Answer {
                status: 200,
                content_type: "application/json",
                body: serde_json::to_string(&status).unwrap_or_default() + "\n",
            },
            None => text(404, "this node does not run the bgp backend\n"),
        },
        "/metrics" => Answer {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: metrics.render(),
        },
        _ => text(404, "not found\n"),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The bytes of `a` as an HTTP/1.1 response (no body for HEAD).
pub fn render(a: &Answer, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        a.status,
        reason(a.status),
        a.content_type,
        a.body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(a.body.as_bytes());
    }
    out
}

/// The method and path of a request head, `None` if it is not HTTP.
pub fn parse_request_line(head: &[u8]) -> Option<(String, String)> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    version.starts_with("HTTP/1.").then(|| (method.to_string(), path.to_string()))
}

fn serve_one(mut conn: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        match conn.read(&mut buf)? {
            0 => break,
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    let bytes = match parse_request_line(&head) {
        Some((method, path)) => render(&answer(&method, &path, metrics), method == "HEAD"),
        None => render(&text(400, "bad request\n"), false),
    };
    conn.write_all(&bytes)
}

/// Binds `addr` and serves on a background thread for the life of the process.
pub fn spawn(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new().name("twilld-health".into()).spawn(move || {
        for conn in listener.incoming().flatten() {
            // A client that hangs up or stalls affects only its own request.
            let _ = serve_one(conn, &metrics);
        }
    })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_the_flag() {
        let m = Metrics::default();
        assert_eq!(answer("GET", "/readyz", &m).status, 503);
        m.set_ready(true);
        let a = answer("GET", "/readyz", &m);
        assert_eq!((a.status, a.body.as_str()), (200, "ok\n"));
        assert_eq!(answer("GET", "/healthz", &m).status, 200);
        assert_eq!(answer("GET", "/nope", &m).status, 404);
        assert_eq!(answer("POST", "/readyz", &m).status, 405);
        assert!(answer("GET", "/metrics?x=1", &m).body.contains("twill_ready 1"));
    }

    #[test]
    fn request_lines_and_responses() {
        assert_eq!(
            parse_request_line(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET".into(), "/readyz".into()))
        );
        assert_eq!(parse_request_line(b"hello\r\n"), None);
        let r = String::from_utf8(render(&text(503, "not ready\n"), false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
        assert!(r.ends_with("Content-Length: 10\r\nConnection: close\r\n\r\nnot ready\n"), "{r}");
        assert!(String::from_utf8(render(&text(200, "ok\n"), true)).unwrap().ends_with("\r\n\r\n"));
    }

    #[test]
    fn serves_over_tcp() {
        let m = Arc::new(Metrics::default());
        m.set_ready(true);
        let addr = spawn("127.0.0.1:0".parse().unwrap(), m).unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut resp = String::new();
        c.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n") && resp.ends_with("ok\n"), "{resp}");
    }
}
