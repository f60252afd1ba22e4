//! The policy bench's node: a namespace with a bridge and two pods (server 10.77.0.2,
//! client 10.77.0.3) on veths, br_netfilter on, so pod-to-pod packets cross the node's
//! `forward` hook like bridged pods on a twill node. The server pod runs iperf3 and a
//! listener that accepts and closes; both are stopped on drop. Everything lives in the
//! bench's own namespaces.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use netns::NetNs;
use nix::sys::socket::sockopt;
use serde_json::Value;

use crate::lab::Lab;
use crate::policy_rules::{CLIENT_IP, PORTS, SERVER_IP};

/// `SO_LINGER` on with a zero timeout: close sends a reset.
const RESET: libc::linger = libc::linger { l_onoff: 1, l_linger: 0 };

pub struct Bed<'l> {
    lab: &'l Lab,
    /// The namespaces made here, removed on drop so a later part can make its own bed.
    names: Vec<String>,
    pub node: NetNs,
    server: NetNs,
    client: NetNs,
    iperf: Child,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Drop for Bed<'_> {
    fn drop(&mut self) {
        let _ = self.iperf.kill();
        let _ = self.iperf.wait();
        self.stop.store(true, Ordering::Relaxed);
        // One more connection wakes the acceptor blocked in accept(2).
        let _ = self.server.run(|| TcpStream::connect((SERVER_IP, PORTS[1])));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for name in &self.names {
            self.lab.remove_ns(name);
        }
    }
}

impl<'l> Bed<'l> {
    pub fn new(lab: &'l Lab) -> Result<Bed<'l>> {
        let (node_name, node) = lab.create_ns("pol-node")?;
        let (server_name, server) = lab.create_ns("pol-srv")?;
        let (client_name, client) = lab.create_ns("pol-cli")?;
        let names = vec![node_name, server_name, client_name];
        let h = nl::Handle::in_netns(&node)?;
        h.bridge_add("br0", None, None)?;
        let br = h.link_get("br0")?.context("bridge br0")?.index;
        h.link_set_up(br, true)?;
        for (pod, name, ip) in [(&server, "vsrv", SERVER_IP), (&client, "vcli", CLIENT_IP)] {
            h.veth_add(name, "eth0", Some(pod), None, None, None)?;
            let host = h.link_get(name)?.context("host end of the veth")?;
            h.link_set_master(host.index, Some(br))?;
            h.link_set_up(host.index, true)?;
            let p = nl::Handle::in_netns(pod)?;
            let eth0 = p.link_get("eth0")?.context("pod end of the veth")?;
            p.addr_add(eth0.index, format!("{ip}/24").parse()?, true)?;
            p.link_set_up(eth0.index, true)?;
        }
        // Bridged traffic through the inet/iptables hooks, as the twill agent sets it.
        for key in ["net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables"] {
            nl::sysctl_set(&node, key, "1").with_context(|| format!("{key} (br_netfilter)"))?;
        }
        let iperf = start_iperf(&server)?;
        let listener = server.run(|| TcpListener::bind((SERVER_IP, PORTS[1])))??;
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = Some(spawn_acceptor(listener, stop.clone())?);
        Ok(Bed { lab, names, node, server, client, iperf, stop, acceptor })
    }

    /// Runs a command reading stdin (`iptables-restore`) inside the node namespace, timed.
    pub fn feed(&self, program: &str, args: &[&str], input: &str) -> Result<Duration> {
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
        self.node.spawn_inside(&mut cmd);
        let started = Instant::now();
        let mut child = cmd.spawn().with_context(|| format!("run {program}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).with_context(|| format!("write to {program}"))?;
        }
        let out = child.wait_with_output()?;
        let took = started.elapsed();
        if !out.status.success() {
            bail!("{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(took)
    }

    /// iperf3 client → server, one stream, Gbit/s received.
    pub fn throughput(&self, secs: u32) -> Result<f64> {
        let ip = SERVER_IP.to_string();
        // A bounded connect: a client the policies wrongly dropped must fail, not hang.
        for _ in 0..20 {
            let mut cmd = Command::new("iperf3");
            cmd.args(["-c", &ip, "-J", "-t", &secs.to_string(), "--connect-timeout", "1000"]);
            self.client.spawn_inside(&mut cmd);
            let out = cmd.output().context("run iperf3 -c")?;
            let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if let Some(bps) = report.pointer("/end/sum_received/bits_per_second").and_then(Value::as_f64) {
                return Ok(bps / 1e9);
            }
            let error = report.get("error").and_then(Value::as_str).unwrap_or("no JSON report").to_string();
            if !error.contains("connect") && !error.contains("busy") {
                bail!("iperf3 -c {ip}: {error}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("iperf3 server at {ip} never answered")
    }

    /// The median time to open a TCP connection from the client to the listener, over
    /// connections made one at a time for `span`: the handshake's SYN is what walks the
    /// rules. The median, because a rare SYN lost to a reused port's old state costs a 1 s
    /// retransmission that would swamp a rate.
    pub fn connect_time(&self, span: Duration) -> Result<Duration> {
        let times = self.connections(span)?;
        crate::stats::median_duration(&times).context("no connection was made")
    }

    /// The time of each connection made one at a time for `span` (see [`Bed::connect_time`]).
    pub fn connections(&self, span: Duration) -> Result<Vec<Duration>> {
        let to = SocketAddr::new(IpAddr::V4(SERVER_IP), PORTS[1]);
        let times = self.client.run(|| -> Result<Vec<Duration>> {
            let started = Instant::now();
            let mut times = Vec::new();
            while started.elapsed() < span {
                let n = times.len();
                let one = Instant::now();
                // 3 s: a connection whose first SYN is lost still counts, at its real cost.
                let conn = TcpStream::connect_timeout(&to, Duration::from_secs(3))
                    .with_context(|| format!("connect {to} after {n} connections"))?;
                // Closed with a reset: no TIME_WAIT, so thousands of connections a second
                // never wait for a free port or meet an old one's state.
                times.push(one.elapsed());
                let _ = nix::sys::socket::setsockopt(&conn, sockopt::Linger, &RESET);
            }
            Ok(times)
        })??;
        Ok(times)
    }
}

fn start_iperf(ns: &NetNs) -> Result<Child> {
    let mut cmd = Command::new("iperf3");
    cmd.args(["-s", "-B", &SERVER_IP.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    ns.spawn_inside(&mut cmd);
    cmd.spawn().context("start iperf3 -s (package iperf3)")
}

/// Accepts and closes connections until `stop`; the socket was bound in the server pod.
/// Blocking, so the accept queue never fills while the client connects as fast as it can.
fn spawn_acceptor(listener: TcpListener, stop: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
    let run = move || {
        while !stop.load(Ordering::Relaxed) {
            if let Ok((conn, _)) = listener.accept() {
                drop(conn);
            }
        }
    };
    std::thread::Builder::new().name("policy-acceptor".into()).spawn(run).context("start acceptor thread")
}
