//! The lab's BGP world (`twill lab up --backend bgp`), beyond the nodes' own BIRDs that
//! twilld runs:
//!
//! - with `--racks R`, the router runs BIRD (AS [`ROUTER_AS`]) and stands in for the
//!   top-of-rack/physical network: it accepts a session from every node of each rack
//!   (dynamic BGP, TCP MD5 password per rack), installs the pod subnets it learns, and
//!   passes them on; the nodes find it through one BGPPeer per rack, selected by the node
//!   label `twill.dev/rack`;
//! - with `--outside-bgp`, the outside host runs BIRD (AS [`OUTSIDE_AS`]) and learns the pod
//!   subnets — from the nodes directly on a flat underlay (BGPPeer `outside`), from the
//!   router with racks — so it reaches pods by their own addresses, without NAT.
//!
//! The BGPPeers are written to the datastore like `twill lab apply -f` writes them. Every
//! BIRD here runs inside a lab namespace with its files under the lab's state directory,
//! is recorded by pid, and is stopped by `twill lab down`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent::bgp::status::Session;
use agent::bgppeer::{BgpPeerRecord, BgpPeerSpec, SelectorSpec};
use agent::bird::config::{
    BgpSession, BgpTemplate, BirdConfig, Channel, Export, Family, Filter, Hop, Kernel, Neighbor, Rule,
};
use agent::bird::{BirdFiles, Control, parse_protocols};
use anyhow::{Context, Result, bail};
use cluster::manifest::Manifest;
use netns::NetNs;

use super::process::{self, Proc};
use super::state::{LabOptions, LabState};
use super::topology::{
    OUTSIDE_IP, OUTSIDE_IP6, ROUTER_IP, ROUTER_IP6, rack_gateway, rack_gateway6, rack_nets,
};

/// The cluster's AS (every node's).
pub const CLUSTER_AS: u32 = 64512;
/// The router's AS: the physical network.
pub const ROUTER_AS: u32 = 65000;
/// The outside host's AS.
pub const OUTSIDE_AS: u32 = 65100;
/// Short, so that a node that vanishes is noticed quickly in tests.
pub const HOLD_SECONDS: u32 = 9;
/// The node label naming a node's rack (`rack1`, ...), matched by the rack BGPPeers.
pub const RACK_LABEL: &str = "twill.dev/rack";
/// The metric the router's and outside host's BIRD give their kernel routes.
const KERNEL_METRIC: u32 = 32;
const EXPORT_BGP: &str = "bgp_routes";

pub fn rack_label(rack: u8) -> String {
    format!("rack{rack}")
}

/// The TCP MD5 password of a rack's sessions.
pub fn rack_password(rack: u8) -> String {
    format!("twill-lab-rack{rack}")
}

fn families(ipv6: bool) -> Vec<Family> {
    if ipv6 { vec![Family::V4, Family::V6] } else { vec![Family::V4] }
}

/// A speaker that installs what it learns over BGP and passes it on.
fn base(router_id: std::net::Ipv4Addr, asn: u32, ipv6: bool, name: &str) -> BirdConfig {
    BirdConfig {
        header: vec![format!("BIRD configuration of the lab's {name}, written by `twill lab up`.")],
        router_id,
        graceful_restart_wait: None,
        direct: Vec::new(),
        kernel: Some(Kernel {
            families: families(ipv6),
            metric: KERNEL_METRIC,
            export: Export::Filter(EXPORT_BGP.into()),
            learn: false,
            persist: false,
            graceful_restart: false,
            scan_seconds: 10,
        }),
        statics: Vec::new(),
        filters: vec![Filter { name: EXPORT_BGP.into(), comment: None, rules: vec![Rule::AcceptBgp] }],
        // Helper-only graceful restart: the routes of a node whose BIRD restarts are kept.
        template: Some(BgpTemplate {
            local_as: asn,
            hold_seconds: HOLD_SECONDS,
            // Connect at once and retry every 2 s: a neighbour that is not up yet (a node
            // joining) is reached within 2 s of its BIRD starting, not BIRD's 5 s + 120 s.
            connect_delay_seconds: 0,
            connect_retry_seconds: 2,
            error_wait_seconds: (1, 30),
            graceful_restart_seconds: None,
        }),
        sessions: Vec::new(),
    }
}

fn session(
    name: String,
    description: String,
    neighbor: Neighbor,
    family: Family,
    export: Export,
) -> BgpSession {
    let passive = matches!(neighbor, Neighbor::Range { .. });
    BgpSession {
        name,
        description,
        local_ip: None,
        neighbor,
        hop: Hop::Direct,
        rr_client: false,
        passive,
        password: None,
        channels: vec![Channel { family, import: Export::All, export }],
    }
}

/// The router: one dynamic session per rack and family, the outside host as a peer with
/// `--outside-bgp`.
pub fn plan_router(o: &LabOptions) -> BirdConfig {
    let mut c = base(ROUTER_IP, ROUTER_AS, o.ipv6, "router");
    for r in 1..=o.racks {
        let (net4, net6) = rack_nets(r);
        for (f, net) in
            [(Family::V4, net4), (Family::V6, net6)].into_iter().filter(|(f, _)| families(o.ipv6).contains(f))
        {
            let suffix = if f == Family::V6 { "v6" } else { "" };
            let neighbor =
                Neighbor::Range { net, asn: CLUSTER_AS, dynamic_name: format!("rack{r}{suffix}_") };
            let mut s = session(
                format!("rack{r}{suffix}"),
                format!("nodes of rack{r}"),
                neighbor,
                f,
                Export::Filter(EXPORT_BGP.into()),
            );
            s.password = Some(rack_password(r));
            c.sessions.push(s);
        }
    }
    if o.outside_bgp {
        for (f, ip) in [(Family::V4, IpAddr::V4(OUTSIDE_IP)), (Family::V6, IpAddr::V6(OUTSIDE_IP6))] {
            if families(o.ipv6).contains(&f) {
                let neighbor = Neighbor::Addr { ip, asn: OUTSIDE_AS };
                c.sessions.push(session(
                    format!("outside{}", f.digit()),
                    "outside host".into(),
                    neighbor,
                    f,
                    Export::Filter(EXPORT_BGP.into()),
                ));
            }
        }
    }
    c
}

/// The outside host: learns the pod subnets from every node (flat) or from the router
/// (racks); announces nothing.
pub fn plan_outside(o: &LabOptions) -> BirdConfig {
    let mut c = base(OUTSIDE_IP, OUTSIDE_AS, o.ipv6, "outside host");
    let (net4, net6) = rack_nets(0);
    for (f, net, router) in
        [(Family::V4, net4, IpAddr::V4(ROUTER_IP)), (Family::V6, net6, IpAddr::V6(ROUTER_IP6))]
    {
        if !families(o.ipv6).contains(&f) {
            continue;
        }
        let s = if o.racks > 0 {
            session(
                format!("router{}", f.digit()),
                "router".into(),
                Neighbor::Addr { ip: router, asn: ROUTER_AS },
                f,
                Export::None,
            )
        } else {
            let neighbor =
                Neighbor::Range { net, asn: CLUSTER_AS, dynamic_name: format!("node{}_", f.digit()) };
            session(format!("nodes{}", f.digit()), "the cluster's nodes".into(), neighbor, f, Export::None)
        };
        c.sessions.push(s);
    }
    c
}

/// The BGPPeers the lab's nodes need: their rack's router, or the outside host on a flat
/// underlay with `--outside-bgp`.
pub fn plan_bgp_peers(o: &LabOptions) -> Vec<BgpPeerRecord> {
    let mut out = Vec::new();
    let record = |name: String, ip: IpAddr, asn: u32, rack: Option<u8>| BgpPeerRecord {
        name,
        spec: BgpPeerSpec {
            peer_ip: ip,
            as_number: asn,
            node_selector: rack.map(|r| SelectorSpec {
                match_labels: [(RACK_LABEL.to_string(), rack_label(r))].into(),
                match_expressions: Vec::new(),
            }),
            password: rack.map(rack_password),
        },
    };
    for r in 1..=o.racks {
        out.push(record(format!("rack{r}-router"), rack_gateway(r).into(), ROUTER_AS, Some(r)));
        if o.ipv6 {
            out.push(record(format!("rack{r}-router6"), rack_gateway6(r).into(), ROUTER_AS, Some(r)));
        }
    }
    if o.racks == 0 && o.outside_bgp {
        out.push(record("outside".into(), OUTSIDE_IP.into(), OUTSIDE_AS, None));
        if o.ipv6 {
            out.push(record("outside6".into(), OUTSIDE_IP6.into(), OUTSIDE_AS, None));
        }
    }
    out
}

/// Writes the BGPPeers to the lab's datastore, as `twill cluster apply` would.
pub fn put_bgp_peers(dir: &Path, state: &LabState) -> Result<usize> {
    let peers: Vec<Manifest> = plan_bgp_peers(&state.options).into_iter().map(Manifest::BgpPeer).collect();
    super::registry::apply(dir, state, &peers)?;
    Ok(peers.len())
}

/// `STATE/bird/PLACE/`.
pub fn bird_dir(dir: &Path, place: &str) -> PathBuf {
    dir.join("bird").join(place)
}

/// Writes `config` and starts BIRD in `ns` on `files`; waits until its control socket answers.
pub fn start_bird(ns: &NetNs, files: &BirdFiles, config: &BirdConfig) -> Result<Proc> {
    let bird = process::find_program("bird", "bird2")?;
    std::fs::create_dir_all(&files.dir).with_context(|| format!("create {}", files.dir.display()))?;
    write_private(&files.config(), &config.render())?;
    let proc = process::spawn_in(ns, &bird, files.args(false), &files.log())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if Control::connect(&files.socket()).is_ok() {
            return Ok(proc);
        }
        if !proc.is_running() {
            bail!(
                "BIRD in {} (pid {}) exited at start; {}",
                ns.path().display(),
                proc.pid,
                proc.log_excerpt()
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "BIRD in {} (pid {}) never opened {}; {}",
                ns.path().display(),
                proc.pid,
                files.socket().display(),
                proc.log_excerpt()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::File::options()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("write {}", path.display()))
}

/// The BGP sessions of a BIRD the lab runs (the dynamic templates left out).
pub fn sessions(dir: &Path) -> Result<Vec<Session>> {
    let files = BirdFiles::new(dir);
    let mut c = Control::connect(&files.socket())?;
    let ps = parse_protocols(&c.ok("show protocols all")?);
    Ok(ps.iter().filter(|p| p.is_bgp() && !p.is_dynamic_template()).map(Session::from_protocol).collect())
}

/// How long `twill lab up` waits for the BGP sessions.
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);

/// Waits until every node's BGP sessions are established and its BIRD routed the other
/// nodes' pod subnets, and every session of the router and outside host is up; returns how
/// long that took.
pub fn wait_converged(state: &LabState) -> Result<Duration> {
    let started = Instant::now();
    loop {
        let lagging = lagging(state);
        if lagging.is_empty() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= CONVERGE_LIMIT {
            bail!("BGP did not converge within {}s: {}", CONVERGE_LIMIT.as_secs(), lagging.join("; "));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What is not up yet.
fn lagging(state: &LabState) -> Vec<String> {
    let o = &state.options;
    let families = if o.ipv6 { 2 } else { 1 };
    // Cross-subnet: the other rack's subnets go through vxlan, not BIRD.
    let want_routes = if o.cross_subnet { 0 } else { usize::from(o.nodes.saturating_sub(1)) * families };
    let mut out = Vec::new();
    for n in &state.nodes {
        let status = super::agent::bgp_status(n);
        let sessions = status["sessions"].as_array().cloned().unwrap_or_default();
        let up = sessions.iter().filter(|s| s["established"] == true).count();
        let routes = status["kernel_routes"].as_u64().unwrap_or(0);
        if sessions.is_empty() || up < sessions.len() || routes < want_routes as u64 {
            out.push(format!(
                "{}: {up}/{} sessions up, {routes}/{want_routes} routes",
                n.name,
                sessions.len()
            ));
        }
    }
    for b in &state.birds {
        match sessions(&b.dir) {
            Ok(s) if s.iter().all(|s| s.established) => {}
            Ok(s) => out.push(format!(
                "{}: {}/{} sessions up",
                b.place,
                s.iter().filter(|s| s.established).count(),
                s.len()
            )),
            Err(e) => out.push(format!("{}: {e:#}", b.place)),
        }
    }
    out
}

#[cfg(test)]
#[path = "bgp_tests.rs"]
mod tests;
