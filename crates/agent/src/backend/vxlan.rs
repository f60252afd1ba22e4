//! vxlan, flannel's layout: one device `twill.vxlan` (VNI 1, UDP 4789, no learning) whose
//! address is the network address of the node's pod subnet as a /32 (and /128); peers are
//! reached through static FDB, neighbour and route entries (see [`super::plan::plan_vxlan`]).
//!
//! The device's MAC is derived from the node name, so a device recreated after someone
//! deleted it keeps the MAC the peers already know. The parameters it was created with are
//! remembered in `STATE_DIR/vxlan.json`: an existing device is adopted only when they match
//! (an agent restarted with another node address recreates it).

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use nl::{Handle, Link, VxlanConf};
use serde::{Deserialize, Serialize};

use super::dataplane::Dataplane;
use super::plan::{Plan, plan_vxlan};
use super::{Applied, Backend, BackendConf, BackendError, Local, Peer};
use crate::record::BackendKind;

pub const DEVICE: &str = "twill.vxlan";
pub const VNI: u32 = 1;
/// IANA's vxlan port (the kernel's default, 8472, is Linux's pre-standard one).
pub const PORT: u16 = 4789;

/// A locally administered unicast MAC derived from the node name: FNV-1a, then murmur3's
/// finalizer so names differing in one character differ in every byte.
pub fn vtep_mac_for(node: &str) -> [u8; 6] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    let b = h.to_be_bytes();
    [(b[0] & 0xfc) | 0x02, b[1], b[2], b[3], b[4], b[5]]
}

/// Outer headers vxlan adds: Ethernet 14 + vxlan 8 + UDP 8 + IP (20 for IPv4, 40 for IPv6).
pub fn overhead(underlay_ip: IpAddr) -> u32 {
    if underlay_ip.is_ipv4() { 50 } else { 70 }
}

/// The parameters a device was created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct DeviceState {
    index: u32,
    node_ip: IpAddr,
    underlay_index: u32,
    vni: u32,
    port: u16,
}

/// The vxlan backend.
#[derive(Debug)]
pub struct Vxlan {
    dp: Dataplane,
    node_ip: IpAddr,
    underlay: String,
    underlay_index: u32,
    underlay_mtu: u32,
    mac: [u8; 6],
    /// The device this process created or adopted.
    index: Option<u32>,
    state_path: PathBuf,
}

impl Vxlan {
    pub fn new(conf: &BackendConf) -> Result<Vxlan, BackendError> {
        let mut b = Vxlan {
            dp: Dataplane::new(Handle::new()?),
            node_ip: conf.node_ip,
            underlay: conf.underlay.clone(),
            underlay_index: 0,
            underlay_mtu: 0,
            mac: vtep_mac_for(&conf.node),
            index: None,
            state_path: conf.state_dir.join("vxlan.json"),
        };
        b.refresh_underlay()?;
        Ok(b)
    }

    fn refresh_underlay(&mut self) -> Result<(), BackendError> {
        let link = self
            .dp
            .handle()
            .link_get(&self.underlay)?
            .ok_or_else(|| BackendError::NoUnderlay { name: self.underlay.clone() })?;
        self.underlay_index = link.index;
        self.underlay_mtu = link.mtu;
        Ok(())
    }

    fn mtu(&self) -> u32 {
        self.underlay_mtu.saturating_sub(overhead(self.node_ip))
    }

    fn state(&self, index: u32) -> DeviceState {
        DeviceState {
            index,
            node_ip: self.node_ip,
            underlay_index: self.underlay_index,
            vni: VNI,
            port: PORT,
        }
    }

    fn saved_state(&self) -> Option<DeviceState> {
        std::fs::read(&self.state_path).ok().and_then(|b| serde_json::from_slice(&b).ok())
    }

    fn save_state(&self, index: u32) -> Result<(), BackendError> {
        let err = |op, source| BackendError::State { op, path: self.state_path.clone(), source };
        let bytes = serde_json::to_vec(&self.state(index)).map_err(|e| err("encode", e.into()))?;
        if let Some(dir) = self.state_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err("create directory for", e))?;
        }
        std::fs::write(&self.state_path, bytes).map_err(|e| err("write", e))
    }

    /// `ip link add twill.vxlan type vxlan id 1 local NODE_IP dev UNDERLAY dstport 4789
    /// nolearning`, then its MAC, then up.
    fn create(&mut self) -> Result<u32, BackendError> {
        let h = self.dp.handle();
        h.vxlan_add(&VxlanConf {
            name: DEVICE.into(),
            vni: VNI,
            local: Some(self.node_ip),
            parent: Some(self.underlay_index),
            port: PORT,
            learning: false,
            mtu: Some(self.mtu()),
        })?;
        let link = h.link_get(DEVICE)?.ok_or_else(|| BackendError::NoUnderlay { name: DEVICE.into() })?;
        h.link_set_mac(link.index, self.mac)?;
        h.link_set_up(link.index, true)?;
        self.save_state(link.index)?;
        self.index = Some(link.index);
        Ok(link.index)
    }

    /// The device, created, recreated or repaired as needed; returns its index.
    fn ensure_device(&mut self) -> Result<(u32, Applied), BackendError> {
        let created = Applied { added: 1, removed: 0 };
        let Some(link) = self.dp.handle().link_get(DEVICE)? else {
            return Ok((self.create()?, created));
        };
        if link.kind.as_deref() != Some("vxlan") {
            let kind = link.kind.unwrap_or_else(|| "kind-less".into());
            return Err(BackendError::ForeignDevice { name: DEVICE.into(), kind });
        }
        if self.index != Some(link.index) {
            if self.saved_state() != Some(self.state(link.index)) {
                self.dp.handle().link_del(link.index)?;
                return Ok((self.create()?, Applied { added: 1, removed: 1 }));
            }
            self.index = Some(link.index);
        }
        Ok((link.index, self.fix_attributes(&link)?))
    }

    /// MTU, MAC and up-state of an existing device.
    fn fix_attributes(&self, link: &Link) -> Result<Applied, BackendError> {
        let h = self.dp.handle();
        let mut fixed = 0;
        if link.mtu != self.mtu() {
            h.link_set_mtu(link.index, self.mtu())?;
            fixed += 1;
        }
        if link.mac != Some(self.mac) {
            h.link_set_up(link.index, false)?;
            h.link_set_mac(link.index, self.mac)?;
            fixed += 1;
        }
        if !link.up || link.mac != Some(self.mac) {
            h.link_set_up(link.index, true)?;
            fixed += 1;
        }
        Ok(Applied { added: fixed, removed: 0 })
    }

    /// Exactly the VTEP addresses: the subnets' network addresses as host routes' worth.
    fn ensure_addresses(&self, index: u32, local: &Local) -> Result<Applied, BackendError> {
        let h = self.dp.handle();
        let want: Vec<IpNet> = [Some(local.subnet), local.subnet6]
            .into_iter()
            .flatten()
            .map(|s| IpNet::from(s.network()))
            .collect();
        let have: Vec<IpNet> =
            h.addr_list(Some(index))?.into_iter().filter(|a| a.scope == 0).map(|a| a.net).collect();
        let mut done = Applied::default();
        for stale in have.iter().filter(|a| !want.contains(a)) {
            h.addr_del(index, *stale)?;
            done.removed += 1;
        }
        for missing in want.iter().filter(|a| !have.contains(a)) {
            h.addr_add(index, *missing, missing.addr().is_ipv6())?;
            done.added += 1;
        }
        Ok(done)
    }

    /// The device's index and the plan for `peers` on it.
    fn plan(&self, peers: &[Peer]) -> Result<(Plan, Option<u32>), BackendError> {
        let index = self.index.ok_or(BackendError::NotSetUp { what: DEVICE })?;
        Ok((plan_vxlan(peers, index), Some(index)))
    }
}

impl Backend for Vxlan {
    fn kind(&self) -> BackendKind {
        BackendKind::Vxlan
    }

    fn pod_mtu(&self) -> u32 {
        self.mtu()
    }

    fn vtep_mac(&self) -> Option<[u8; 6]> {
        Some(self.mac)
    }

    fn ensure_local(&mut self, local: &Local) -> Result<Applied, BackendError> {
        self.refresh_underlay()?;
        let (index, mut done) = self.ensure_device()?;
        done += self.ensure_addresses(index, local)?;
        Ok(done)
    }

    fn ensure_peer(&mut self, peer: &Peer) -> Result<Applied, BackendError> {
        let (plan, index) = self.plan(std::slice::from_ref(peer))?;
        self.dp.ensure(&plan, index)
    }

    fn remove_peer(&mut self, peer: &Peer) -> Result<Applied, BackendError> {
        let (plan, index) = self.plan(std::slice::from_ref(peer))?;
        self.dp.remove(&plan, index)
    }

    fn sync(&mut self, peers: &[Peer]) -> Result<Applied, BackendError> {
        let (plan, index) = self.plan(peers)?;
        self.dp.sync(&plan, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vtep_macs_are_local_unicast_and_stable() {
        let a = vtep_mac_for("node-1");
        assert_eq!(a, vtep_mac_for("node-1"));
        assert_ne!(a, vtep_mac_for("node-2"));
        assert_eq!(a[0] & 0x03, 0x02, "locally administered, unicast: {a:02x?}");
        let b = vtep_mac_for("node-2");
        assert!(a[1..].iter().zip(&b[1..]).filter(|(x, y)| x != y).count() >= 4, "{a:02x?} {b:02x?}");
    }

    #[test]
    fn overhead_depends_on_underlay_family() {
        assert_eq!(overhead("10.0.0.1".parse().unwrap()), 50);
        assert_eq!(overhead("fd00::1".parse().unwrap()), 70);
    }
}
