//! Traffic for the portmap tests: tiny TCP/UDP servers living in a pod's namespace, clients
//! in any test namespace, an "outside" host wired to the fake node, and a direct plugin call.
//! Sockets are opened inside a namespace on a short-lived thread ([`netns::NetNs::run`]) and
//! keep belonging to it afterwards, so no process has to be started in the namespaces.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use cni_exec::{Exec, InvokeArgs, RawExec};
use netns::NetNs;
use serde_json::Value;
use testkit::TestNs;

use crate::support::World;

const TIMEOUT: Duration = Duration::from_secs(2);

/// A server answering every TCP connection (or UDP datagram) with `reply`, stopped on drop.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn tcp(ns: &TestNs, port: u16, reply: &str) -> Server {
        let listener = ns.ns().run(|| TcpListener::bind(("::", port))).unwrap().expect("bind tcp");
        listener.set_nonblocking(true).unwrap();
        let reply = reply.to_string();
        Server::spawn(move |stop| {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.write_all(reply.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    }

    pub fn udp(ns: &TestNs, port: u16, reply: &str) -> Server {
        let sock = ns.ns().run(|| UdpSocket::bind(("::", port))).unwrap().expect("bind udp");
        sock.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let reply = reply.to_string();
        Server::spawn(move |stop| {
            let mut buf = [0u8; 64];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(reply.as_bytes(), from);
                }
            }
        })
    }

    fn spawn(serve: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> Server {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        Server { stop, thread: Some(std::thread::spawn(move || serve(flag))) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from inside `ns` and reads what the server says; `None` when nothing answers.
pub fn tcp_get(ns: &TestNs, to: SocketAddr) -> Option<String> {
    let mut conn = ns.ns().run(|| TcpStream::connect_timeout(&to, TIMEOUT)).unwrap().ok()?;
    conn.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    Some(text)
}

/// Sends one datagram from inside `ns` and waits for the answer.
pub fn udp_ask(ns: &TestNs, to: SocketAddr) -> Option<String> {
    let any: SocketAddr = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().unwrap();
    let sock = ns.ns().run(|| UdpSocket::bind(any)).unwrap().ok()?;
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    sock.send_to(b"ping", to).ok()?;
    let mut buf = [0u8; 64];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Another host on a link with the fake node: the node gets `node` (and `node6`) on its end,
/// the outside host the next address. Returns the outside host's namespace.
pub fn outside_host(world: &World, tag: &str, node: &str, node6: Option<&str>) -> TestNs {
    let outside = TestNs::new(tag);
    let host = &world.host;
    host.exec_ok(&[
        "ip",
        "link",
        "add",
        "pmout0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        outside.name(),
    ]);
    let peer = |a: &str| {
        let (head, last) = a.rsplit_once(['.', ':']).unwrap();
        let sep = if a.contains(':') { ":" } else { "." };
        format!(
            "{head}{sep}{}",
            u16::from_str_radix(last, if a.contains(':') { 16 } else { 10 }).unwrap() + 1
        )
    };
    host.exec_ok(&["ip", "addr", "add", &format!("{node}/24"), "dev", "pmout0"]);
    outside.exec_ok(&["ip", "addr", "add", &format!("{}/24", peer(node)), "dev", "eth0"]);
    if let Some(n6) = node6 {
        host.exec_ok(&["ip", "addr", "add", &format!("{n6}/64"), "dev", "pmout0", "nodad"]);
        outside.exec_ok(&["ip", "addr", "add", &format!("{}/64", peer(n6)), "dev", "eth0", "nodad"]);
    }
    host.exec_ok(&["ip", "link", "set", "pmout0", "up"]);
    outside.exec_ok(&["ip", "link", "set", "eth0", "up"]);
    outside
}

/// Runs the plugin `name` from the world's bin dir once, in the fake node, with `conf` on
/// stdin; returns its stdout or its error.
pub fn plugin(
    world: &World,
    name: &str,
    verb: &'static str,
    id: &str,
    conf: &Value,
) -> Result<Vec<u8>, cni_exec::Error> {
    let exec = RawExec::in_netns(NetNs::open(world.host.path()).unwrap());
    let args = InvokeArgs {
        command: verb,
        container_id: id.into(),
        netns: world.host.path().display().to_string(),
        ifname: "eth0".into(),
        path: vec![world.dir.join("bin")],
        ..Default::default()
    };
    let bin = world.dir.join("bin").join(name);
    exec.exec(&bin, conf.to_string().as_bytes(), &args)
}
