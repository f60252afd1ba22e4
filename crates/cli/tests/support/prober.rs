//! A background prober for the lab's failure suites: for each pair of pods, a thread sends a
//! UDP datagram every [`INTERVAL`] from inside the client pod's namespace to the server pod's
//! `twill lab serve`, and records, per datagram, whether the answer came back within
//! [`TIMEOUT`]. Scenarios then count the outcomes of the datagrams sent inside their window.
//!
//! Each datagram of a round goes out on a socket of its own (a pool of [`SOCKETS`] sockets,
//! opened inside the pod's namespace and used round-robin), so an answer is matched to the
//! datagram that asked without the server echoing anything: the server answers to the source
//! port it saw. A socket is reused only after its previous datagram was settled (answered or
//! timed out), and late answers are drained before it is.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Time between two datagrams of one pair.
pub const INTERVAL: Duration = Duration::from_millis(50);
/// How long an answer may take. Generous: the machine these suites run on is shared and
/// loaded, and a route flap is a loss of every datagram for its whole length anyway.
pub const TIMEOUT: Duration = Duration::from_millis(1500);
/// Sockets per pair: one datagram each, reused after `SOCKETS × INTERVAL` > `TIMEOUT`.
const SOCKETS: usize = 40;
const POLL: Duration = Duration::from_millis(5);

/// What a pair should see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Every datagram answered (allowed by policy, both pods running).
    Reach,
    /// No datagram answered (a NetworkPolicy drops them).
    Blocked,
}

/// One client → server pair.
#[derive(Debug, Clone)]
pub struct Pair {
    /// `x/a -> x/b`.
    pub name: String,
    /// The client pod's namespace (`/run/netns/...`).
    pub netns: String,
    pub to: SocketAddr,
    /// `NS/NAME` the server must say it is.
    pub server: String,
    pub expect: Expect,
}

/// The outcome of one datagram.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub sent: Instant,
    pub answered: bool,
}

/// Datagrams sent in a window, per pair.
#[derive(Debug, Clone)]
pub struct Tally {
    pub pair: String,
    pub expect: Expect,
    pub sent: usize,
    pub answered: usize,
    /// From the first to the last unanswered datagram (zero when none or one).
    pub loss_span: Duration,
    /// When the first unanswered datagram was sent, counted from the window's start.
    pub first_loss: Option<Duration>,
}

impl Tally {
    pub fn lost(&self) -> usize {
        self.sent - self.answered
    }

    /// Datagrams whose outcome was not the expected one.
    pub fn wrong(&self) -> usize {
        match self.expect {
            Expect::Reach => self.lost(),
            Expect::Blocked => self.answered,
        }
    }
}

/// The running prober; stops its threads on drop.
pub struct Prober {
    pairs: Vec<Pair>,
    samples: Vec<Arc<Mutex<Vec<Sample>>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Prober {
    /// Opens every pair's sockets inside its client namespace and starts probing.
    pub fn start(pairs: Vec<Pair>) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let mut samples = Vec::new();
        let mut threads = Vec::new();
        for pair in &pairs {
            let sockets = open_sockets(pair);
            let log = Arc::new(Mutex::new(Vec::new()));
            samples.push(log.clone());
            let (stop, server) = (stop.clone(), pair.server.clone());
            let thread = std::thread::Builder::new()
                .name("lab-prober".into())
                .spawn(move || probe_loop(&sockets, &server, &log, &stop))
                .unwrap();
            threads.push(thread);
        }
        Prober { pairs, samples, stop, threads }
    }

    /// The outcomes of the datagrams sent in `[from, to)`, per pair; waits until every one of
    /// them is settled.
    pub fn tally(&self, from: Instant, to: Instant) -> Vec<Tally> {
        let settled = to + TIMEOUT + Duration::from_millis(200);
        if let Some(wait) = settled.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        self.pairs
            .iter()
            .zip(&self.samples)
            .map(|(pair, log)| {
                let log = log.lock().unwrap();
                let inside: Vec<&Sample> = log.iter().filter(|s| s.sent >= from && s.sent < to).collect();
                let lost: Vec<Instant> = inside.iter().filter(|s| !s.answered).map(|s| s.sent).collect();
                let loss_span = match (lost.first(), lost.last()) {
                    (Some(a), Some(b)) => *b - *a,
                    _ => Duration::ZERO,
                };
                Tally {
                    pair: pair.name.clone(),
                    expect: pair.expect,
                    sent: inside.len(),
                    answered: inside.iter().filter(|s| s.answered).count(),
                    loss_span,
                    first_loss: lost.first().map(|t| *t - from),
                }
            })
            .collect()
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// `SOCKETS` non-blocking UDP sockets, created inside the client's namespace (a socket stays
/// in the namespace it was created in, whichever thread uses it later) and connected to the
/// server, so only its answers — or the ICMP errors about it — arrive on them.
fn open_sockets(pair: &Pair) -> Vec<UdpSocket> {
    let ns = netns::NetNs::open(&pair.netns).unwrap_or_else(|e| panic!("open {}: {e}", pair.netns));
    let to = pair.to;
    let made = ns.run(move || -> std::io::Result<Vec<UdpSocket>> {
        (0..SOCKETS)
            .map(|_| {
                let s = UdpSocket::bind(("0.0.0.0", 0))?;
                s.connect(to)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
            .collect()
    });
    made.unwrap().unwrap_or_else(|e| panic!("sockets for {}: {e}", pair.name))
}

/// A datagram in flight on one socket.
#[derive(Clone, Copy)]
struct InFlight {
    sent: Instant,
}

fn probe_loop(sockets: &[UdpSocket], server: &str, log: &Mutex<Vec<Sample>>, stop: &AtomicBool) {
    let mut flying: Vec<Option<InFlight>> = vec![None; sockets.len()];
    let mut next_send = Instant::now();
    let mut slot = 0;
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_send && flying[slot].is_none() {
            drain(&sockets[slot], &mut buf);
            // A send that fails (no route yet, an ICMP error queued) is a lost datagram too.
            let sent_ok = sockets[slot].send(b"probe\n").is_ok();
            flying[slot] = Some(InFlight { sent: now });
            if !sent_ok {
                settle(log, &mut flying[slot], false);
            }
            slot = (slot + 1) % sockets.len();
            next_send += INTERVAL;
            // After a stall (a loaded machine) the schedule restarts instead of bursting.
            if next_send < now {
                next_send = now + INTERVAL;
            }
        }
        for (sock, f) in sockets.iter().zip(flying.iter_mut()) {
            let Some(flight) = *f else { continue };
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    settle(log, f, text.contains(&format!("who={server}")));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if now.duration_since(flight.sent) > TIMEOUT {
                        settle(log, f, false);
                    }
                }
                // ICMP errors (no route, unreachable) about this datagram.
                Err(_) => settle(log, f, false),
            }
        }
        std::thread::sleep(POLL);
    }
}

fn settle(log: &Mutex<Vec<Sample>>, flight: &mut Option<InFlight>, answered: bool) {
    if let Some(f) = flight.take() {
        log.lock().unwrap().push(Sample { sent: f.sent, answered });
    }
}

/// Late answers to an earlier datagram of this socket are not this one's.
fn drain(sock: &UdpSocket, buf: &mut [u8]) {
    while sock.recv(buf).is_ok() {}
}
