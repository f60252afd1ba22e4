//! ptp's packet filter state for one pod: masquerading (`ipMasq`) and the spoof check
//! (`spoofchk`, keyed by the pod's host veth). With nftables both go in ONE batch on ADD and
//! ONE on DEL, which finds them by prevResult's host veth and addresses.

use cni_spec::{Attachment, CniResult, Error, IpConfig};
use fw::Backend;
use ipnet::IpNet;

use super::conf::PtpConf;
use crate::guard::{self, Placement};
use crate::kernel::fw_error;
use crate::masq;
use crate::podnft::{PodState, apply_deletions, with_conn};
use crate::undo::Undo;

/// What the pod's state is keyed by, from prevResult: its host veth (the interface without a
/// sandbox) and its addresses; `None` where prevResult does not say.
pub fn keys(prev: Option<&CniResult>) -> (Option<String>, Option<Vec<IpNet>>) {
    let Some(prev) = prev else { return (None, None) };
    let port = prev
        .interfaces
        .iter()
        .find(|i| i.sandbox.as_deref().is_none_or(str::is_empty))
        .map(|i| i.name.clone());
    (port, Some(prev.ips.iter().map(|ip| ip.address).collect()))
}

/// Adds the pod's state (one batch; iptables masquerading apart) and registers its removal.
pub fn setup(
    pc: &PtpConf,
    owner: &str,
    port: &str,
    ips: &[IpConfig],
    undo: &mut Undo<'_>,
) -> Result<(), Error> {
    let nets: Vec<IpNet> = ips.iter().map(|ip| ip.address).collect();
    let mut state = PodState::new();
    if pc.spoof_check {
        let pod =
            guard::Pod { port: port.to_string(), mac: [0; 6], ips: nets.iter().map(IpNet::addr).collect() };
        state.add(guard::table(Placement::Routed), guard::add_batch(Placement::Routed, owner, &pod));
    }
    match pc.ip_masq {
        Some(Backend::Nftables) => state.add(masq::table(), masq::add_batch(owner, &nets)),
        Some(Backend::Iptables) => {
            masq::ipt_setup(owner, &nets)?;
            let owner = owner.to_string();
            undo.push("remove iptables masquerading", move || masq::ipt_teardown(&owner));
        }
        None => {}
    }
    if state.is_empty() {
        return Ok(());
    }
    with_conn(|conn| state.apply(conn))?;
    let (pc, owner, port) = (pc.clone(), owner.to_string(), port.to_string());
    undo.push("remove the pod's nftables elements", move || teardown(&pc, &owner, (Some(port), Some(nets))));
    Ok(())
}

/// Removes the pod's state: nftables elements in one batch, then iptables rules.
pub fn teardown(
    pc: &PtpConf,
    owner: &str,
    (port, ips): (Option<String>, Option<Vec<IpNet>>),
) -> Result<(), Error> {
    let nft_masq = pc.ip_masq == Some(Backend::Nftables);
    if pc.spoof_check || nft_masq {
        with_conn(|conn| {
            let mut batches = Vec::new();
            if pc.spoof_check {
                let pod = port.clone().zip(ips.clone()).map(|(port, ips)| guard::Pod {
                    port,
                    mac: [0; 6],
                    ips: ips.iter().map(IpNet::addr).collect(),
                });
                batches.push(
                    guard::teardown_batch(conn, Placement::Routed, owner, pod.as_ref()).map_err(fw_error)?,
                );
            }
            if nft_masq {
                batches.push(masq::teardown_batch(conn, owner, ips.as_deref()).map_err(fw_error)?);
            }
            apply_deletions(conn, batches)
        })?;
    }
    if pc.ip_masq == Some(Backend::Iptables) {
        masq::ipt_teardown(owner)?;
    }
    Ok(())
}

/// GC: the state of every attachment of the network not in `valid`.
pub fn gc(pc: &PtpConf, valid: &[Attachment]) -> Result<(), Error> {
    let nft_masq = pc.ip_masq == Some(Backend::Nftables);
    if pc.spoof_check || nft_masq {
        with_conn(|conn| {
            let mut batches = Vec::new();
            if pc.spoof_check {
                batches.push(guard::gc_batch(conn, Placement::Routed, &pc.network, valid).map_err(fw_error)?);
            }
            if nft_masq {
                batches.push(masq::gc_batch(conn, &pc.network, valid).map_err(fw_error)?);
            }
            apply_deletions(conn, batches)
        })?;
    }
    if pc.ip_masq == Some(Backend::Iptables) {
        masq::ipt_gc(&pc.network, valid)?;
    }
    Ok(())
}
