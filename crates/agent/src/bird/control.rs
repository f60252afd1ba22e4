//! BIRD's control socket, spoken the way `birdc` speaks it: a Unix stream socket, a greeting
//! `0001 BIRD 2.0.12 ready.`, then one command per line, each answered by lines
//! `CODE-text` (more follows), ` text` (more of the previous code) and a last `CODE text`.
//! Codes 0xxx say how a command ended (`0003 Reconfigured`), 1xxx/2xxx carry table output,
//! 8xxx are run-time errors and 9xxx parse errors.
//!
//! twill talks to the socket itself rather than running `birdc` for every status read: one
//! connection, no process per reconcile pass, and the codes tell success from failure
//! without guessing from text.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One answered command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The code of the last line.
    pub code: u16,
    /// Every line's code (continuations repeat the previous one) and text.
    pub lines: Vec<(u16, String)>,
}

impl Reply {
    /// The text of the lines, one per line.
    pub fn text(&self) -> String {
        self.lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("connect to BIRD's control socket {}: {source}", .path.display())]
    Connect { path: PathBuf, source: std::io::Error },
    #[error("BIRD's control socket {}: {source}", .path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("BIRD's control socket {}: unexpected line {line:?}", .path.display())]
    Garbled { path: PathBuf, line: String },
    #[error("BIRD refused `{command}`: {code} {message}")]
    Refused { command: String, code: u16, message: String },
}

/// A connection to one BIRD.
pub struct Control {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// The greeting's version (`BIRD 2.0.12`).
    pub version: String,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("path", &self.path).field("version", &self.version).finish()
    }
}

/// How long one command may take; `configure` of a large file is the slowest.
const TIMEOUT: Duration = Duration::from_secs(10);

impl Control {
    /// Connects and reads the greeting.
    pub fn connect(path: &Path) -> Result<Control, ControlError> {
        let connect = |source| ControlError::Connect { path: path.to_path_buf(), source };
        let stream = UnixStream::connect(path).map_err(connect)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(connect)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(connect)?;
        let writer = stream.try_clone().map_err(connect)?;
        let mut c = Control {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
            version: String::new(),
        };
        let hello = c.read_reply()?;
        if hello.code != 1 {
            return Err(c.garbled(hello.text()));
        }
        c.version =
            hello.lines.first().map(|(_, t)| t.trim_end_matches(" ready.").to_string()).unwrap_or_default();
        Ok(c)
    }

    fn garbled(&self, line: String) -> ControlError {
        ControlError::Garbled { path: self.path.clone(), line }
    }

    /// Sends `command` and reads its reply, whatever its code.
    pub fn command(&mut self, command: &str) -> Result<Reply, ControlError> {
        let io = |source| ControlError::Io { path: self.path.clone(), source };
        self.writer.write_all(format!("{command}\n").as_bytes()).map_err(io)?;
        self.read_reply()
    }

    /// Sends `command`; a run-time or parse error (8xxx, 9xxx) is an error.
    pub fn ok(&mut self, command: &str) -> Result<Reply, ControlError> {
        let reply = self.command(command)?;
        if reply.code >= 8000 {
            let message = reply.lines.last().map(|(_, t)| t.clone()).unwrap_or_default();
            return Err(ControlError::Refused { command: command.to_string(), code: reply.code, message });
        }
        Ok(reply)
    }

    /// `configure "FILE"`: BIRD reads the file and applies the differences, restarting only
    /// the protocols whose configuration changed.
    pub fn configure(&mut self, file: &Path) -> Result<Reply, ControlError> {
        self.ok(&format!("configure \"{}\"", file.display()))
    }

    /// `configure check "FILE"`: parses the file without applying it.
    pub fn configure_check(&mut self, file: &Path) -> Result<Reply, ControlError> {
        self.ok(&format!("configure check \"{}\"", file.display()))
    }

    fn read_reply(&mut self) -> Result<Reply, ControlError> {
        let mut lines = Vec::new();
        let mut code = 0;
        loop {
            let mut line = String::new();
            let n = self
                .reader
                .read_line(&mut line)
                .map_err(|source| ControlError::Io { path: self.path.clone(), source })?;
            if n == 0 {
                let source =
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "BIRD closed the connection");
                return Err(ControlError::Io { path: self.path.clone(), source });
            }
            let line = line.trim_end_matches('\n');
            match parse_line(line) {
                Some(Line::Continues(c, text)) => {
                    code = c;
                    lines.push((c, text.to_string()));
                }
                Some(Line::More(text)) => lines.push((code, text.to_string())),
                Some(Line::Last(c, text)) => {
                    lines.push((c, text.to_string()));
                    return Ok(Reply { code: c, lines });
                }
                None => return Err(self.garbled(line.to_string())),
            }
        }
    }
}

/// One line of a reply.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    /// `CODE-text`.
    Continues(u16, &'a str),
    /// ` text`.
    More(&'a str),
    /// `CODE text`: the end of the reply.
    Last(u16, &'a str),
}

fn parse_line(line: &str) -> Option<Line<'_>> {
    if let Some(text) = line.strip_prefix(' ') {
        return Some(Line::More(text));
    }
    let code: u16 = line.get(..4).filter(|c| c.bytes().all(|b| b.is_ascii_digit()))?.parse().ok()?;
    match line.as_bytes().get(4) {
        Some(b'-') => Some(Line::Continues(code, &line[5..])),
        Some(b' ') => Some(Line::Last(code, &line[5..])),
        None => Some(Line::Last(code, "")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;

    #[test]
    fn reply_lines() {
        assert_eq!(parse_line("0001 BIRD 2.0.12 ready."), Some(Line::Last(1, "BIRD 2.0.12 ready.")));
        assert_eq!(parse_line("1002-node_2     BGP"), Some(Line::Continues(1002, "node_2     BGP")));
        assert_eq!(parse_line("     Neighbor AS: 64512"), Some(Line::More("    Neighbor AS: 64512")));
        assert_eq!(parse_line("0000"), Some(Line::Last(0, "")));
        assert_eq!(parse_line("garbage"), None);
        assert_eq!(parse_line("12"), None);
    }

    /// A fake BIRD on a socket in a temporary directory: greets, then answers each command
    /// line with the canned reply for it.
    fn fake_bird(answers: &'static [(&'static str, &'static str)]) -> (PathBuf, std::thread::JoinHandle<()>) {
        let dir = std::env::temp_dir().join(format!(
            "twill-bird-ctl-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bird.ctl");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut w = conn.try_clone().unwrap();
            w.write_all(b"0001 BIRD 2.0.12 ready.\n").unwrap();
            for line in BufReader::new(conn).lines() {
                let line = line.unwrap();
                let reply = answers
                    .iter()
                    .find(|(c, _)| *c == line)
                    .map(|(_, r)| *r)
                    .unwrap_or("9001 syntax error\n");
                w.write_all(reply.as_bytes()).unwrap();
            }
        });
        (path, handle)
    }

    #[test]
    fn commands_and_errors_over_a_socket() {
        let (path, handle) = fake_bird(&[
            (
                "show status",
                "1000-BIRD 2.0.12\n1011-Router ID is 10.0.0.1\n Hostname is x\n0013 Daemon is up and running\n",
            ),
            (
                "configure \"/x/bird.conf\"",
                "0002-Reading configuration from /x/bird.conf\n0003 Reconfigured\n",
            ),
            (
                "configure check \"/x/bad.conf\"",
                "0002-Reading configuration from /x/bad.conf\n8002 /x/bad.conf:3:1 syntax error\n",
            ),
        ]);
        let mut c = Control::connect(&path).unwrap();
        assert_eq!(c.version, "BIRD 2.0.12");
        let r = c.ok("show status").unwrap();
        assert_eq!(r.code, 13);
        assert_eq!(r.lines[2], (1011, "Hostname is x".to_string()));
        assert_eq!(c.configure(Path::new("/x/bird.conf")).unwrap().code, 3);
        let e = c.configure_check(Path::new("/x/bad.conf")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "BIRD refused `configure check \"/x/bad.conf\"`: 8002 /x/bad.conf:3:1 syntax error"
        );
        let e = c.ok("bogus").unwrap_err();
        assert!(matches!(e, ControlError::Refused { code: 9001, .. }), "{e}");
        drop(c);
        handle.join().unwrap();
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_missing_socket_is_a_clear_error() {
        let e = Control::connect(Path::new("/nonexistent/twill/bird.ctl")).unwrap_err();
        assert!(
            e.to_string().starts_with("connect to BIRD's control socket /nonexistent/twill/bird.ctl: "),
            "{e}"
        );
    }
}
