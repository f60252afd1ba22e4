//! The bridge's packet filter state for one pod: MAC spoof protection (`macspoofchk`), full
//! spoof protection (`spoofchk`) and masquerading (`ipMasq`). With nftables all are elements
//! of fixed tables, added in ONE batch by ADD and removed in ONE batch by DEL, which finds them
//! by what prevResult says (the host port, the pod's MAC and addresses) without listing
//! anything.

use cni_spec::{Attachment, CniResult, Error, IpConfig};
use fw::Backend;
use ipnet::IpNet;

use super::conf::BridgeConf;
use crate::guard::{self, Placement};
use crate::kernel::fw_error;
use crate::podnft::{PodState, apply_deletions, with_conn};
use crate::undo::Undo;
use crate::{masq, spoof};

/// What the pod's filter state is keyed by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodKeys {
    /// The host end of the pod's veth and the pod's MAC (for `macspoofchk`).
    pub port: Option<(String, [u8; 6])>,
    /// The pod's addresses with their subnets (for `ipMasq`); `None` when unknown.
    pub ips: Option<Vec<IpNet>>,
}

impl PodKeys {
    /// The pod as the spoof check knows it, when prevResult gave its port, MAC and addresses.
    pub fn guard_pod(&self) -> Option<guard::Pod> {
        let (port, mac) = self.port.clone()?;
        let ips = self.ips.as_ref()?.iter().map(IpNet::addr).collect();
        Some(guard::Pod { port, mac, ips })
    }

    /// The keys from a DEL's prevResult: the container interface `ifname` (in a sandbox)
    /// gives the MAC, the first host-side interface that is not the bridge the port.
    pub fn from_prev(prev: Option<&CniResult>, bridge: &str, ifname: &str) -> PodKeys {
        let Some(prev) = prev else { return PodKeys::default() };
        let mac = prev
            .interfaces
            .iter()
            .find(|i| i.name == ifname && i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
            .and_then(|i| nl::parse_mac(i.mac.as_deref()?).ok());
        let port =
            prev.interfaces.iter().find(|i| i.sandbox.is_none() && i.name != bridge && !i.name.is_empty());
        let ips: Vec<IpNet> = prev.ips.iter().map(|ip| ip.address).collect();
        PodKeys {
            port: port.zip(mac).map(|(p, m)| (p.name.clone(), m)),
            ips: (!prev.interfaces.is_empty() || !ips.is_empty()).then_some(ips),
        }
    }
}

/// Adds the pod's filter state in one batch (iptables masquerading apart), registering its
/// removal with `undo`.
pub fn setup(
    bc: &BridgeConf,
    owner: &str,
    port: &str,
    mac: [u8; 6],
    ips: &[IpConfig],
    undo: &mut Undo<'_>,
) -> Result<(), Error> {
    let nets: Vec<IpNet> = ips.iter().map(|ip| ip.address).collect();
    let mut state = PodState::new();
    if bc.mac_spoof_check {
        state.add(spoof::table(), spoof::add_batch(owner, port, mac));
    }
    if bc.spoof_check {
        let pod = guard::Pod { port: port.to_string(), mac, ips: nets.iter().map(IpNet::addr).collect() };
        state.add(guard::table(Placement::Bridge), guard::add_batch(Placement::Bridge, owner, &pod));
    }
    match bc.ip_masq {
        Some(Backend::Nftables) if !nets.is_empty() => {
            state.add(masq::table(), masq::add_batch(owner, &nets))
        }
        Some(Backend::Iptables) => {
            masq::ipt_setup(owner, &nets)?;
            let owner = owner.to_string();
            undo.push("remove iptables masquerading", move || masq::ipt_teardown(&owner));
        }
        _ => {}
    }
    if state.is_empty() {
        return Ok(());
    }
    with_conn(|conn| state.apply(conn))?;
    let keys = PodKeys { port: Some((port.to_string(), mac)), ips: Some(nets) };
    let (bc, owner) = (bc.clone(), owner.to_string());
    undo.push("remove the pod's nftables elements", move || teardown(&bc, &owner, &keys));
    Ok(())
}

/// Removes the pod's filter state: nftables elements in one batch, then iptables rules.
pub fn teardown(bc: &BridgeConf, owner: &str, keys: &PodKeys) -> Result<(), Error> {
    let nft_masq = bc.ip_masq == Some(Backend::Nftables);
    if bc.mac_spoof_check || bc.spoof_check || nft_masq {
        with_conn(|conn| {
            let mut batches = Vec::new();
            if bc.mac_spoof_check {
                let known = keys.port.as_ref().map(|(p, m)| (p.as_str(), *m));
                batches.push(spoof::teardown_batch(conn, owner, known).map_err(fw_error)?);
            }
            if bc.spoof_check {
                let pod = keys.guard_pod();
                batches.push(
                    guard::teardown_batch(conn, Placement::Bridge, owner, pod.as_ref()).map_err(fw_error)?,
                );
            }
            if nft_masq {
                batches.push(masq::teardown_batch(conn, owner, keys.ips.as_deref()).map_err(fw_error)?);
            }
            apply_deletions(conn, batches)
        })?;
    }
    if bc.ip_masq == Some(Backend::Iptables) {
        masq::ipt_teardown(owner)?;
    }
    Ok(())
}

/// GC: the state of every attachment of the network not in `valid`.
pub fn gc(bc: &BridgeConf, valid: &[Attachment]) -> Result<(), Error> {
    let nft_masq = bc.ip_masq == Some(Backend::Nftables);
    if bc.mac_spoof_check || bc.spoof_check || nft_masq {
        with_conn(|conn| {
            let mut batches = Vec::new();
            if bc.mac_spoof_check {
                batches.push(spoof::gc_batch(conn, &bc.network, valid).map_err(fw_error)?);
            }
            if bc.spoof_check {
                batches.push(guard::gc_batch(conn, Placement::Bridge, &bc.network, valid).map_err(fw_error)?);
            }
            if nft_masq {
                batches.push(masq::gc_batch(conn, &bc.network, valid).map_err(fw_error)?);
            }
            apply_deletions(conn, batches)
        })?;
    }
    if bc.ip_masq == Some(Backend::Iptables) {
        masq::ipt_gc(&bc.network, valid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_spec::Interface;

    #[test]
    fn keys_come_from_prev_result() {
        let prev = CniResult {
            interfaces: vec![
                Interface { name: "cni0".into(), ..Default::default() },
                Interface { name: "veth1234".into(), ..Default::default() },
                Interface {
                    name: "eth0".into(),
                    mac: Some("02:00:00:00:00:05".into()),
                    sandbox: Some("/run/netns/x".into()),
                    ..Default::default()
                },
            ],
            ips: vec![IpConfig {
                address: "10.1.0.5/24".parse().unwrap(),
                gateway: None,
                interface: Some(2),
            }],
            ..Default::default()
        };
        let keys = PodKeys::from_prev(Some(&prev), "cni0", "eth0");
        assert_eq!(keys.port, Some(("veth1234".into(), [2, 0, 0, 0, 0, 5])));
        assert_eq!(keys.ips, Some(vec!["10.1.0.5/24".parse().unwrap()]));
        assert_eq!(PodKeys::from_prev(None, "cni0", "eth0"), PodKeys::default());
        assert_eq!(PodKeys::from_prev(Some(&prev), "cni0", "eth1").port, None);
    }
}
