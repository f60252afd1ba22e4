//! Asking a lab process whether it is healthy: a plain HTTP/1.0 GET sent from a thread inside
//! the process's namespace (twilld listens on the node's own loopback, which no other
//! namespace can reach), and waiting for the answer to become 200.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use netns::NetNs;

use super::process::Proc;

/// `GET path` on `addr` from inside `ns`: the status code and the body.
pub fn http_get(ns: &NetNs, addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let exchange = || -> std::io::Result<String> {
        let mut conn = TcpStream::connect_timeout(&addr, timeout)?;
        conn.set_read_timeout(Some(timeout))?;
        conn.set_write_timeout(Some(timeout))?;
        write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
        let mut reply = String::new();
        conn.read_to_string(&mut reply)?;
        Ok(reply)
    };
    let reply =
        ns.run(exchange)?.with_context(|| format!("GET http://{addr}{path} in {}", ns.path().display()))?;
    parse_response(&reply).with_context(|| format!("GET http://{addr}{path}: malformed answer {reply:?}"))
}

fn parse_response(reply: &str) -> Option<(u16, String)> {
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((reply, ""));
    let status = head.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// True when `GET path` answers 200 right now.
pub fn is_ok(ns: &NetNs, addr: SocketAddr, path: &str) -> bool {
    matches!(http_get(ns, addr, path, Duration::from_millis(500)), Ok((200, _)))
}

/// Polls `GET path` until it answers 200; fails early when `proc` exits, quoting its log.
pub fn wait_ok(
    ns: &NetNs,
    addr: SocketAddr,
    path: &str,
    proc: &Proc,
    what: &str,
    limit: Duration,
) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let last = http_get(ns, addr, path, Duration::from_millis(500));
        if matches!(last, Ok((200, _))) {
            return Ok(());
        }
        if !proc.is_running() {
            bail!("{what} (pid {}) exited before it was ready; {}", proc.pid, proc.log_excerpt());
        }
        if Instant::now() >= deadline {
            let last = match last {
                Ok((code, body)) => format!("answered {code} {}", body.trim()),
                Err(e) => format!("{e:#}"),
            };
            bail!(
                "{what} (pid {}) not ready after {}s (GET {path} {last}); {}",
                proc.pid,
                limit.as_secs(),
                proc.log_excerpt()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse() {
        assert_eq!(parse_response("HTTP/1.1 200 OK\r\nA: b\r\n\r\nready\n"), Some((200, "ready\n".into())));
        assert_eq!(parse_response("HTTP/1.0 503 Service Unavailable\r\n\r\n"), Some((503, String::new())));
        assert_eq!(parse_response(""), None);
        assert_eq!(parse_response("nonsense"), None);
    }
}
