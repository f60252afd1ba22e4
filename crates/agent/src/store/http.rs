//! A minimal HTTP/1.1 client for etcd's JSON gateway, on a std `TcpStream`: POST with a JSON
//! body; bodies framed by Content-Length, chunked transfer coding or connection close. One
//! connection per request (`Connection: close`); a stream (watch) keeps its connection and
//! yields the gateway's newline-delimited messages as they arrive.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("{0}")]
    Io(std::io::Error),
    #[error("bad HTTP response: {0}")]
    Protocol(String),
    #[error("connection closed")]
    Closed,
    #[error("HTTP status {status}: {body}")]
    Status { status: u16, body: String },
}

/// A complete answer.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

fn connect(addr: &str, timeout: Duration) -> Result<TcpStream, HttpError> {
    let addrs = addr.to_socket_addrs().map_err(HttpError::Connect)?;
    let mut last = std::io::Error::new(ErrorKind::NotFound, "no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout)).map_err(HttpError::Io)?;
                s.set_write_timeout(Some(timeout)).map_err(HttpError::Io)?;
                s.set_nodelay(true).map_err(HttpError::Io)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(HttpError::Connect(last))
}

fn request_bytes(addr: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// POSTs `body` to `http://ADDR/PATH` and reads the whole answer.
pub(crate) fn post(addr: &str, path: &str, body: &[u8], timeout: Duration) -> Result<Response, HttpError> {
    let mut sock = connect(addr, timeout)?;
    sock.write_all(&request_bytes(addr, path, body)).map_err(HttpError::Io)?;
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).map_err(HttpError::Io)?;
    parse_response(&raw)
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Chunked,
    Length(usize),
    Close,
}

/// Status and framing from the head (everything before the blank line).
fn parse_head(head: &[u8]) -> Result<(u16, Framing), HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| HttpError::Protocol("head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| HttpError::Protocol(format!("status line {status_line:?}")))?;
    let mut framing = Framing::Close;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = value.parse().map_err(|_| HttpError::Protocol(format!("content-length {value:?}")))?;
            framing = Framing::Length(n);
        }
    }
    Ok((status, framing))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Splits a raw response into status and decoded body.
pub(crate) fn parse_response(raw: &[u8]) -> Result<Response, HttpError> {
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| HttpError::Protocol("no end of head".into()))?;
    let (status, framing) = parse_head(&raw[..end])?;
    let rest = &raw[end + 4..];
    let body = match framing {
        Framing::Close => rest.to_vec(),
        Framing::Length(n) => rest
            .get(..n)
            .ok_or_else(|| HttpError::Protocol("body shorter than content-length".into()))?
            .to_vec(),
        Framing::Chunked => {
            let mut d = ChunkDecoder::default();
            let body = d.feed(rest)?;
            if !d.is_done() {
                return Err(HttpError::Protocol("truncated chunked body".into()));
            }
            body
        }
    };
    Ok(Response { status, body })
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ChunkState {
    Size(Vec<u8>),
    Data(usize),
    DataEnd(usize),
    Trailer(Vec<u8>),
    Done,
}

/// Incremental decoder of the chunked transfer coding (RFC 9112 §7.1): bytes may arrive in
/// any split; trailers (the gateway sends `Grpc-Trailer-*` ones) are read and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkDecoder {
    state: ChunkState,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        ChunkDecoder { state: ChunkState::Size(Vec::new()) }
    }
}

impl ChunkDecoder {
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes what `input` completes and returns the payload bytes it carried.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<Vec<u8>, HttpError> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let (state, used) = self.step(input, &mut out)?;
            self.state = state;
            input = &input[used..];
        }
        Ok(out)
    }

    /// One transition; returns the next state and how many bytes of `input` it consumed.
    fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(ChunkState, usize), HttpError> {
        Ok(match std::mem::replace(&mut self.state, ChunkState::Done) {
            ChunkState::Size(mut line) => match take_line(&mut line, input) {
                (used, true) => (size_state(&line)?, used),
                (used, false) => (ChunkState::Size(line), used),
            },
            ChunkState::Data(n) => {
                let k = n.min(input.len());
                out.extend_from_slice(&input[..k]);
                (if k == n { ChunkState::DataEnd(2) } else { ChunkState::Data(n - k) }, k)
            }
            ChunkState::DataEnd(n) => {
                let k = n.min(input.len());
                (if k == n { ChunkState::Size(Vec::new()) } else { ChunkState::DataEnd(n - k) }, k)
            }
            ChunkState::Trailer(mut line) => match take_line(&mut line, input) {
                (used, true) if line.is_empty() => (ChunkState::Done, used),
                (used, true) => (ChunkState::Trailer(Vec::new()), used),
                (used, false) => (ChunkState::Trailer(line), used),
            },
            ChunkState::Done => (ChunkState::Done, input.len()),
        })
    }
}

/// Appends `input` up to the end of a CRLF line to `line` (without the CRLF); returns bytes
/// consumed and whether the line is complete.
fn take_line(line: &mut Vec<u8>, input: &[u8]) -> (usize, bool) {
    match input.iter().position(|b| *b == b'\n') {
        Some(i) => {
            line.extend_from_slice(&input[..i]);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            (i + 1, true)
        }
        None => {
            line.extend_from_slice(input);
            (input.len(), false)
        }
    }
}

fn size_state(line: &[u8]) -> Result<ChunkState, HttpError> {
    let text = String::from_utf8_lossy(line);
    let hex = text.split(';').next().unwrap_or_default().trim();
    let size =
        usize::from_str_radix(hex, 16).map_err(|_| HttpError::Protocol(format!("chunk size {hex:?}")))?;
    Ok(if size == 0 { ChunkState::Trailer(Vec::new()) } else { ChunkState::Data(size) })
}

/// A streaming response: newline-delimited messages over a chunked body.
pub(crate) struct Stream {
    sock: TcpStream,
    decoder: ChunkDecoder,
    payload: Vec<u8>,
}

/// POSTs `body` and returns the open stream once a 200 head has arrived. Reads wait at most
/// `poll` each, so [`Stream::next_line`] returns regularly.
pub(crate) fn post_stream(
    addr: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Stream, HttpError> {
    let mut sock = connect(addr, timeout)?;
    sock.write_all(&request_bytes(addr, path, body)).map_err(HttpError::Io)?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(end) = find(&raw, b"\r\n\r\n") {
            break end;
        }
        match sock.read(&mut buf).map_err(HttpError::Io)? {
            0 => return Err(HttpError::Closed),
            n => raw.extend_from_slice(&buf[..n]),
        }
    };
    let (status, framing) = parse_head(&raw[..end])?;
    if status != 200 || framing != Framing::Chunked {
        let _ = sock.read_to_end(&mut raw);
        let resp = parse_response(&raw)?;
        return Err(HttpError::Status { status, body: String::from_utf8_lossy(&resp.body).into_owned() });
    }
    let mut decoder = ChunkDecoder::default();
    let payload = decoder.feed(&raw[end + 4..])?;
    Ok(Stream { sock, decoder, payload })
}

impl Stream {
    /// Sets how long one read waits.
    pub fn set_poll(&self, poll: Duration) -> Result<(), HttpError> {
        self.sock.set_read_timeout(Some(poll)).map_err(HttpError::Io)
    }

    /// The next non-empty line of the body; `None` when none completed within one read.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        let mut buf = [0u8; 8192];
        loop {
            while let Some(i) = self.payload.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.payload.drain(..=i).take(i).collect();
                if !line.iter().all(u8::is_ascii_whitespace) {
                    return Ok(Some(line));
                }
            }
            if self.decoder.is_done() {
                return Err(HttpError::Closed);
            }
            match self.sock.read(&mut buf) {
                Ok(0) => return Err(HttpError::Closed),
                Ok(n) => {
                    let more = self.decoder.feed(&buf[..n])?;
                    self.payload.extend_from_slice(&more);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(HttpError::Io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNKED: &[u8] = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
        Trailer: Grpc-Trailer-Content-Type\r\nTransfer-Encoding: chunked\r\n\r\n\
        7\r\n{\"a\":1}\r\n3;ext=1\r\n\n{}\r\n0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n\r\n";

    #[test]
    fn chunked_body_with_trailer() {
        let r = parse_response(CHUNKED).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"{\"a\":1}\n{}");
    }

    #[test]
    fn chunked_body_in_any_split() {
        let body_start = find(CHUNKED, b"\r\n\r\n").unwrap() + 4;
        let body = &CHUNKED[body_start..];
        for split in 0..body.len() {
            let mut d = ChunkDecoder::default();
            let mut out = d.feed(&body[..split]).unwrap();
            out.extend(d.feed(&body[split..]).unwrap());
            assert_eq!(out, b"{\"a\":1}\n{}", "split at {split}");
            assert!(d.is_done());
        }
    }

    #[test]
    fn length_and_close_framing() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}garbage").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, b"{}".as_slice()));
        let r = parse_response(b"HTTP/1.1 200 OK\r\n\r\n{\"x\":1}").unwrap();
        assert_eq!(r.body, b"{\"x\":1}");
    }

    #[test]
    fn bad_responses_are_rejected() {
        for raw in [
            b"SMTP ready\r\n\r\n".as_slice(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK",
        ] {
            assert!(parse_response(raw).is_err(), "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn request_has_length_and_close() {
        let req = String::from_utf8(request_bytes("127.0.0.1:1", "/v3/kv/range", b"{}")).unwrap();
        assert!(req.starts_with("POST /v3/kv/range HTTP/1.1\r\nHost: 127.0.0.1:1\r\n"));
        assert!(req.contains("Content-Length: 2\r\nConnection: close\r\n\r\n{}"));
    }
}
