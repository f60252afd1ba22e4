//! host-gw: the peers' pod subnets are routed via the peers' node addresses on the underlay.
//! Needs every node on one L2 segment (the kernel refuses a gateway it cannot reach).

use nl::Handle;

use super::dataplane::Dataplane;
use super::plan::{Plan, plan_host_gw};
use super::{Applied, Backend, BackendConf, BackendError, Local, Peer};
use crate::record::BackendKind;

/// The host-gw backend.
#[derive(Debug)]
pub struct HostGw {
    dp: Dataplane,
    underlay: String,
    underlay_index: u32,
    underlay_mtu: u32,
}

impl HostGw {
    pub fn new(conf: &BackendConf) -> Result<HostGw, BackendError> {
        let mut b = HostGw {
            dp: Dataplane::new(Handle::new()?),
            underlay: conf.underlay.clone(),
            underlay_index: 0,
            underlay_mtu: 0,
        };
        b.refresh_underlay()?;
        Ok(b)
    }

    /// The underlay's index and MTU now (it may have been recreated).
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

    fn plan(&self, peers: &[Peer]) -> Plan {
        plan_host_gw(peers, self.underlay_index)
    }
}

impl Backend for HostGw {
    fn kind(&self) -> BackendKind {
        BackendKind::HostGw
    }

    fn pod_mtu(&self) -> u32 {
        self.underlay_mtu
    }

    fn vtep_mac(&self) -> Option<[u8; 6]> {
        None
    }

    fn ensure_local(&mut self, _local: &Local) -> Result<Applied, BackendError> {
        self.refresh_underlay()?;
        Ok(Applied::default())
    }

    fn ensure_peer(&mut self, peer: &Peer) -> Result<Applied, BackendError> {
        self.dp.ensure(&self.plan(std::slice::from_ref(peer)), None)
    }

    fn remove_peer(&mut self, peer: &Peer) -> Result<Applied, BackendError> {
        self.dp.remove(&self.plan(std::slice::from_ref(peer)), None)
    }

    fn sync(&mut self, peers: &[Peer]) -> Result<Applied, BackendError> {
        self.dp.sync(&self.plan(peers), None)
    }
}
