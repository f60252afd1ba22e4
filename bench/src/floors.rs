//! The kernel's own cost of what the plugins ask of it, measured in the same run as the
//! plugins (so the same machine load weighs on both): creating a veth pair with its peer in a
//! pod namespace, an address and the link up; deleting such a pair (an RCU grace period
//! inside the kernel, the floor of every DEL); deleting an IFB (what `bandwidth` DEL adds);
//! deleting one nf_tables set element and closing the socket that did it (what `portmap` DEL
//! adds: when a netfilter socket goes, nf_tables first finishes freeing what earlier batches
//! deleted, which waits for an RCU grace period).
//! The density part also creates a veth pair in a node that holds N pods: how much of the
//! ADD's growth is the kernel's own.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use netns::NetNs;

use crate::lab::Lab;

/// Samples of each floor.
#[derive(Clone, Debug, Default)]
pub struct Floors {
    pub veth_add: Vec<Duration>,
    pub veth_del: Vec<Duration>,
    pub ifb_del: Vec<Duration>,
    pub nft_del: Vec<Duration>,
}

/// One sample of each, in a fake host and a pod namespace made for it.
pub fn sample(lab: &Lab, floors: &mut Floors, i: usize) -> Result<()> {
    let (host_name, host) = lab.create_ns(&format!("floor-host-{i}"))?;
    let (pod_name, pod) = lab.create_ns(&format!("floor-pod-{i}"))?;
    let measured = (|| -> Result<()> {
        let h = nl::Handle::in_netns(&host)?;
        let (took, veth) = veth_up(&h, "twbfloor0", &pod)?;
        floors.veth_add.push(took);
        let started = Instant::now();
        h.link_del(veth)?;
        floors.veth_del.push(started.elapsed());
        h.ifb_add("twbfloor1", None)?;
        let ifb = h.link_get("twbfloor1")?.context("ifb")?;
        let started = Instant::now();
        h.link_del(ifb.index)?;
        floors.ifb_del.push(started.elapsed());
        floors.nft_del.push(nft_elem_del(&host)?);
        Ok(())
    })();
    lab.remove_ns(&pod_name);
    lab.remove_ns(&host_name);
    measured
}

/// One element added to a set of a table of its own in `host` (untimed), then deleted in a
/// batch on a fresh netlink socket, which is closed: the time from sending the batch to the
/// close returning.
fn nft_elem_del(host: &NetNs) -> Result<Duration> {
    use fw::nft::{Batch, Conn, DataType, Elem, Family, KeyPart, Set, Table};
    let elem = Elem::new(vec![KeyPart::addr("10.250.0.2".parse()?)]);
    let set = Set::new("pods", &[DataType::Ipv4Addr]);
    let mut table = Table::new(Family::Inet, "twbfloor");
    table.sets.push(set.clone().with_elems(vec![elem.clone()]));
    Conn::in_netns(host)?.apply(Batch::new().add_table(&table))?;
    let mut conn = Conn::in_netns(host)?;
    let started = Instant::now();
    conn.apply(Batch::new().del_elems(&table.id(), &set, vec![elem]))?;
    drop(conn);
    Ok(started.elapsed())
}

/// Creating a veth pair with its peer in `pod`, an address and the link up, in `host` as it is
/// (the density part's node, with its pods alive); the pair is deleted afterwards, untimed.
/// `pod` is one namespace kept for all samples: removing a namespace leaves the kernel
/// cleaning it up in the background, which would land in the ADDs timed next.
pub fn veth_add_in(host: &NetNs, pod: &NetNs) -> Result<Duration> {
    let h = nl::Handle::in_netns(host)?;
    let (took, veth) = veth_up(&h, "twbdfloor0", pod)?;
    h.link_del(veth)?;
    Ok(took)
}

/// The timed part of both veth floors: veth `name` in `h`'s namespace with its peer (`eth0`)
/// in `pod`, an address and the link up. Returns how long that took and the host end's index.
fn veth_up(h: &nl::Handle, name: &str, pod: &NetNs) -> Result<(Duration, u32)> {
    let started = Instant::now();
    h.veth_add(name, "eth0", Some(pod), None, None, None)?;
    let link = h.link_get(name)?.context("veth host end")?;
    h.addr_add(link.index, "10.250.0.1/24".parse()?, true)?;
    h.link_set_up(link.index, true)?;
    Ok((started.elapsed(), link.index))
}
