//! The traffic control the bandwidth plugin sets up on the host, as the reference does:
//! - into the pod: a token bucket as the root qdisc of the host-side veth (whose egress is
//!   the pod's ingress);
//! - out of the pod: an ingress qdisc on the host-side veth whose catch-all filter redirects
//!   everything into an IFB device, and a token bucket on the IFB's egress.

use cni_spec::Error;
use nl::tc::{INGRESS, INGRESS_HANDLE, ROOT, TBF_HANDLE};
use nl::{Handle, Link, Qdisc, Tbf};

use super::conf::BandwidthConf;
use crate::kernel::{nl_error, no_link_local};
use crate::undo::Undo;

/// The IFB of one attachment: its name, and the alias that names its owner for GC.
pub struct IfbId<'n> {
    pub name: &'n str,
    pub alias: &'n str,
}

/// Shapes `veth` as `bw` says; returns the IFB when egress is limited. Every step registers
/// its undo.
pub fn setup<'a>(
    host: &'a Handle,
    veth: &Link,
    bw: &BandwidthConf,
    ifb: &IfbId<'_>,
    undo: &mut Undo<'a>,
) -> Result<Option<Link>, Error> {
    let index = veth.index;
    if let Some(ingress) = bw.ingress {
        host.qdisc_add_tbf(index, &ingress.tbf()).map_err(nl_error)?;
        undo.push(format!("delete tbf of {}", veth.name), move || {
            host.qdisc_del(index, ROOT).map_err(nl_error)
        });
    }
    let Some(egress) = bw.egress else { return Ok(None) };
    let (ifb_name, alias) = (ifb.name, ifb.alias);
    host.ifb_add(ifb_name, Some(veth.mtu)).map_err(nl_error)?;
    let ifb = host
        .link_get(ifb_name)
        .map_err(nl_error)?
        .ok_or_else(|| Error::internal(format!("ifb {ifb_name} vanished right after it was created")))?;
    let ifb_index = ifb.index;
    undo.push(format!("delete ifb {ifb_name}"), move || host.link_del(ifb_index).map_err(nl_error));
    // The alias names the attachment, so GC can find IFBs whose DEL never came.
    host.link_set_alias(ifb_index, alias).map_err(nl_error)?;
    no_link_local(host, ifb_index)?;
    host.link_set_up(ifb_index, true).map_err(nl_error)?;
    host.qdisc_add_ingress(index).map_err(nl_error)?;
    undo.push(format!("delete ingress qdisc of {}", veth.name), move || {
        host.qdisc_del(index, INGRESS).map_err(nl_error)
    });
    host.filter_add_ingress_redirect(index, ifb_index).map_err(nl_error)?;
    host.qdisc_add_tbf(ifb_index, &egress.tbf()).map_err(nl_error)?;
    Ok(Some(ifb))
}

/// Removes what [`setup`] made: the redirect (with the ingress qdisc) only when it points at
/// this attachment's IFB, the root token bucket, then the IFB. Absent parts are fine;
/// failures are collected.
pub fn teardown(host: &Handle, veth: Option<&Link>, ifb_name: &str) -> Vec<Error> {
    let mut errors = Vec::new();
    let ifb = match host.link_get(ifb_name) {
        Ok(ifb) => ifb.filter(|l| l.kind.as_deref() == Some("ifb")),
        Err(e) => {
            errors.push(nl_error(e));
            None
        }
    };
    if let Some(veth) = veth {
        if let Some(ifb) = &ifb
            && redirects_to(host, veth.index, ifb.index)
        {
            errors.extend(ignore_absent(host.qdisc_del(veth.index, INGRESS)).err());
        }
        if has_root_tbf(host, veth.index) {
            errors.extend(ignore_absent(host.qdisc_del(veth.index, ROOT)).err());
        }
    }
    if let Some(ifb) = ifb {
        errors.extend(ignore_absent(host.link_del(ifb.index)).err());
    }
    errors
}

fn ignore_absent(r: nl::Result<()>) -> Result<(), Error> {
    match r {
        Err(e) if !e.is_not_found() && e.errno() != Some(libc::EINVAL) => Err(nl_error(e)),
        _ => Ok(()),
    }
}

fn redirects_to(host: &Handle, index: u32, target: u32) -> bool {
    host.filter_list(index, INGRESS_HANDLE)
        .map(|filters| filters.iter().any(|f| f.redirect == Some(target)))
        .unwrap_or(false)
}

/// Whether the link has the twill/reference root token bucket (handle `1:`).
fn has_root_tbf(host: &Handle, index: u32) -> bool {
    host.qdisc_list(Some(index)).is_ok_and(|qdiscs| qdiscs.iter().any(is_root_tbf))
}

fn is_root_tbf(q: &Qdisc) -> bool {
    q.kind == "tbf" && q.parent == ROOT && q.handle == TBF_HANDLE
}

/// CHECK: the bucket on `link` is the one `want` describes. Rate and queue limit read back
/// exactly; the burst comes back from a time in 64 ns ticks truncated to whole microseconds,
/// so it may differ by that much.
pub fn check_tbf(host: &Handle, link: &Link, want: &Tbf) -> Result<(), Error> {
    let qdiscs = host.qdisc_list(Some(link.index)).map_err(nl_error)?;
    let have = qdiscs
        .iter()
        .find(|q| is_root_tbf(q))
        .and_then(|q| q.tbf)
        .ok_or_else(|| Error::internal(format!("{} has no tbf root qdisc", link.name)))?;
    let slack = want.rate / 1_000_000 + want.rate / 15_625_000 + 2;
    if have.rate != want.rate || have.limit != want.limit || have.burst.abs_diff(want.burst) as u64 > slack {
        return Err(Error::internal(format!(
            "tbf on {} is rate {} B/s burst {} B limit {} B, expected rate {} B/s burst {} B limit {} B",
            link.name, have.rate, have.burst, have.limit, want.rate, want.burst, want.limit
        )));
    }
    Ok(())
}

/// CHECK: traffic arriving on `veth` is redirected into `ifb`.
pub fn check_redirect(host: &Handle, veth: &Link, ifb: &Link) -> Result<(), Error> {
    if redirects_to(host, veth.index, ifb.index) {
        Ok(())
    } else {
        Err(Error::internal(format!("ingress of {} is not redirected to {}", veth.name, ifb.name)))
    }
}
