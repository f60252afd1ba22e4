//! `twill cluster flows` and `twill lab flows`: the flow records of every node, merged by
//! time, read from each twilld's `GET /flows` (docs/flows.md).
//!
//! Each agent keeps its own records (a ring, and `STATE/flows.jsonl`), so the command asks
//! every node rather than a central store: nothing is written to the datastore per
//! connection. `cluster flows` finds the agents through the node records' `http` address (an
//! agent listening on its loopback only publishes none; `--agent HOST:PORT` names one
//! directly, e.g. on the node itself); `lab flows` asks each lab node's twilld inside the
//! node's namespace. `--follow` polls every second with the last sequence number seen.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use agent::flows::FlowRecord;
use anyhow::{Context, Result, bail};
use clap::Args;

/// The filters and the output shared by both commands.
#[derive(Args, Debug, Clone, Default)]
pub struct FlowsArgs {
    /// Keep printing new records as they come (Ctrl-C stops).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only denied connections (and spoofed packets).
    #[arg(long)]
    pub denied: bool,
    /// Only flows with a pod of this namespace at either end.
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Only flows with this pod (NS/NAME) at either end.
    #[arg(long)]
    pub pod: Option<String>,
    /// `json`: one record per line, as twilld keeps them.
    #[arg(long, short = 'o', value_parser = ["json"])]
    pub output: Option<String>,
}

/// Where the records of each node come from: `GET path` on that node's agent.
pub trait FlowSource {
    fn nodes(&self) -> Result<Vec<String>>;
    fn get(&self, node: &str, path: &str) -> Result<(u16, String)>;
}

/// `/flows?...` for `args`, after sequence number `after`.
pub fn query_path(args: &FlowsArgs, after: Option<u64>) -> String {
    let mut q = Vec::new();
    if let Some(a) = after {
        q.push(format!("after={a}"));
    }
    if args.denied {
        q.push("denied=true".into());
    }
    if let Some(ns) = &args.namespace {
        q.push(format!("namespace={}", encode(ns)));
    }
    if let Some(p) = &args.pod {
        q.push(format!("pod={}", encode(p)));
    }
    match q.is_empty() {
        true => "/flows".into(),
        false => format!("/flows?{}", q.join("&")),
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One poll of every node: the new records, by time; a node that does not answer is
/// reported on stderr (once per poll) and the others are still shown.
pub fn poll(
    src: &dyn FlowSource,
    args: &FlowsArgs,
    after: &mut BTreeMap<String, u64>,
) -> Result<Vec<FlowRecord>> {
    let nodes = src.nodes()?;
    let mut out = Vec::new();
    let mut failed = Vec::new();
    for node in &nodes {
        let fetched =
            src.get(node, &query_path(args, after.get(node).copied())).and_then(|(status, body)| {
                if status != 200 {
                    bail!("GET /flows answered {status}: {}", body.trim());
                }
                parse_lines(&body)
            });
        match fetched {
            Ok(records) => {
                if let Some(last) = records.last() {
                    after.insert(node.clone(), last.seq);
                }
                out.extend(records);
            }
            Err(e) => failed.push(format!("{node}: {e:#}")),
        }
    }
    if !nodes.is_empty() && failed.len() == nodes.len() {
        bail!("no node answered:\n  {}", failed.join("\n  "));
    }
    failed.iter().for_each(|f| eprintln!("warning: {f}"));
    out.sort_by(|a, b| a.time.total_cmp(&b.time));
    Ok(out)
}

pub fn parse_lines(body: &str) -> Result<Vec<FlowRecord>> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("malformed flow record {l:?}")))
        .collect()
}

/// Prints what `args` asks for, once or (`--follow`) until interrupted.
pub fn run(src: &dyn FlowSource, args: &FlowsArgs, out: &mut dyn Write) -> Result<()> {
    let mut after = BTreeMap::new();
    let json = args.output.as_deref() == Some("json");
    if !json {
        writeln!(out, "{}", header())?;
    }
    loop {
        for r in poll(src, args, &mut after)? {
            match json {
                true => writeln!(out, "{}", serde_json::to_string(&r)?)?,
                false => writeln!(out, "{}", render(&r))?,
            }
        }
        out.flush()?;
        if !args.follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn header() -> String {
    format!(
        "{:<12} {:<8} {:<7} {:<7} {:<6} {:<32} {:<32} DECIDED BY",
        "TIME", "NODE", "VERDICT", "DIR", "PROTO", "SOURCE", "DESTINATION"
    )
}

/// One line: time of day (UTC), node, verdict, direction, protocol, both ends, and what
/// decided.
pub fn render(r: &FlowRecord) -> String {
    let end = |pod: &Option<String>, ip: std::net::IpAddr, port: Option<u16>| {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        match pod {
            Some(p) => format!("{p}({ip}){port}"),
            None => format!("{ip}{port}"),
        }
    };
    let secs = r.time.rem_euclid(86_400.0);
    let time =
        format!("{:02}:{:02}:{:06.3}", (secs / 3600.0) as u32, ((secs % 3600.0) / 60.0) as u32, secs % 60.0);
    format!(
        "{time:<12} {:<8} {:<7} {:<7} {:<6} {:<32} {:<32} {}",
        r.node,
        r.verdict,
        r.direction.as_deref().unwrap_or("-"),
        r.proto,
        end(&r.src_pod, r.src, r.sport),
        end(&r.dst_pod, r.dst, r.dport),
        decided_by(r)
    )
}

/// `NetworkPolicy x/web ingress[1]`, `NetworkPolicy default deny (x/web)`, `no policy`,
/// `spoofchk: spoofed ip4`.
pub fn decided_by(r: &FlowRecord) -> String {
    match (&r.policy, r.rule, r.policies.is_empty()) {
        (Some(p), Some(i), _) => format!("{} {p} {}[{i}]", r.tier, r.direction.as_deref().unwrap_or("")),
        (_, _, false) => format!("{} {} ({})", r.tier, r.reason, r.policies.join(", ")),
        _ if r.tier == "none" => r.reason.clone(),
        _ => format!("{}: {}", r.tier, r.reason),
    }
}

/// `GET path` on `addr` over plain HTTP/1.0.
pub fn http_get(addr: &str, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let exchange = || -> std::io::Result<String> {
        let sock = std::net::ToSocketAddrs::to_socket_addrs(addr)?
            .next()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))?;
        let mut c = TcpStream::connect_timeout(&sock, timeout)?;
        c.set_read_timeout(Some(timeout))?;
        write!(c, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
        let mut reply = String::new();
        c.read_to_string(&mut reply)?;
        Ok(reply)
    };
    let reply = exchange().with_context(|| format!("GET http://{addr}{path}"))?;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let status = status.with_context(|| format!("GET http://{addr}{path}: malformed answer"))?;
    Ok((status, body.to_string()))
}

#[cfg(test)]
#[path = "flows_tests.rs"]
mod tests;
