//! `twill lab demo`: what a newcomer runs first. Builds a 3-node lab, adds two namespaces and
//! pods spread over the nodes, shows the status, the reachability matrix, a pod-to-pod answer
//! (the server sees the client pod's own address: no NAT) and a pod-to-outside answer (the
//! outside host sees the node's address: masquerade), then takes the lab down — also when a
//! step fails.

use anyhow::Result;

use super::names::{Names, PodRef};
use super::state::{Backend, DatastoreKind, LabOptions};
use super::target::Target;
use super::wire::Protocol;
use super::{matrix, pods, probe_cmd, status, teardown, up};

const PODS: [(&str, u8, &str); 5] = [
    ("frontend/web-1", 1, "app=web"),
    ("frontend/web-2", 2, "app=web"),
    ("backend/db-1", 3, "app=db"),
    ("backend/db-2", 1, "app=db"),
    ("backend/cache-1", 2, "app=cache"),
];

pub fn run(names: &Names) -> Result<()> {
    let options = LabOptions {
        nodes: 3,
        backend: Backend::HostGw,
        datastore: DatastoreKind::File,
        ipv6: false,
        etcd_members: 1,
        lease_ttl: 30,
    };
    println!("== twill lab up --nodes 3 --backend host-gw --datastore file");
    println!("   (if this is interrupted, `twill lab down` removes the lab)");
    up::up(names, options)?;
    let outcome = scenario(names);
    println!("\n== twill lab down");
    let down = teardown::run(names);
    outcome.and(down)
}

fn scenario(names: &Names) -> Result<()> {
    println!("\n== twill lab ns add frontend --labels team=web; twill lab ns add backend --labels team=data");
    pods::ns_add(names, "frontend", pods::parse_labels("team=web")?)?;
    pods::ns_add(names, "backend", pods::parse_labels("team=data")?)?;
    for (pod, node, labels) in PODS {
        println!("\n== twill lab pod add {pod} --node {node} --labels {labels}");
        pods::pod_add(names, &pod.parse()?, Some(node), pods::parse_labels(labels)?)?;
    }
    println!("\n== twill lab status");
    status::run(names, false)?;
    println!("\n== twill lab matrix --port 80 --protocol tcp");
    let state = super::state::load_running(names)?;
    let m = matrix::measure(&state, 80, Protocol::Tcp, false)?;
    print!("{}", matrix::render(&m));
    let (from, to): (PodRef, PodRef) = (PODS[0].0.parse()?, PODS[2].0.parse()?);
    println!("\n== twill lab probe {from} {to} --port 81 --protocol udp   (pod to pod: no NAT)");
    let direct =
        probe_cmd::show(names, &Target::Pod(from.clone()), &to.to_string(), 81, Protocol::Udp, false)?;
    println!(
        "\n== twill lab probe {from} outside --port 80   (pod to the internet: masqueraded to the node)"
    );
    let outside = probe_cmd::show(names, &Target::Pod(from), "outside", 80, Protocol::Tcp, false)?;
    if !(direct && outside) {
        anyhow::bail!("a probe failed");
    }
    if m.connected() != m.total() {
        anyhow::bail!("only {}/{} pod pairs are connected", m.connected(), m.total());
    }
    Ok(())
}
