//! Queueing disciplines (`tc qdisc add|del|show`): a token bucket (`tbf`) for rate limits and
//! the `ingress` hook. Filters live in `tc_filter.rs`.
//!
//! netlink-packet-route has no typed `tbf`, so its options are built raw here, the way
//! `tc qdisc add dev DEV root handle 1: tbf rate R burst B limit L` sends them:
//! `TCA_TBF_PARMS` (struct tc_tbf_qopt), `TCA_TBF_BURST`, `TCA_TBF_RTAB` and, for rates of
//! 2^32 bytes/s and more, `TCA_TBF_RATE64`.

use std::time::Duration;

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL, Nla, NlasIterator};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption};

use crate::{Error, Handle, Result};

/// `TC_H_ROOT`: the egress root of a link.
pub const ROOT: u32 = 0xffff_ffff;
/// `TC_H_INGRESS`: the ingress hook of a link.
pub const INGRESS: u32 = 0xffff_fff1;
/// Handle `ffff:` of the ingress qdisc.
pub const INGRESS_HANDLE: u32 = 0xffff_0000;
/// Handle `1:` of the root tbf, as the reference bandwidth plugin uses.
pub const TBF_HANDLE: u32 = 0x0001_0000;

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RTAB: u16 = 2;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TCA_OPTIONS: u16 = 2;
/// `TC_LINKLAYER_ETHERNET`, what tc puts in a rate spec.
const LINKLAYER_ETHERNET: u8 = 1;
/// tc's default MTU for rate tables (2047) gives cell_log 3.
const RTAB_CELL_LOG: u8 = 3;
/// Kernel packet-scheduler ticks are 64 ns (`PSCHED_SHIFT` 6): 15.625 ticks per microsecond.
const TICKS_PER_USEC: f64 = 15.625;

/// A token bucket filter, in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tbf {
    /// Bytes per second (`tc`'s `rate 1mbit` is 125000).
    pub rate: u64,
    /// Bucket size in bytes.
    pub burst: u32,
    /// Bytes that may queue waiting for tokens.
    pub limit: u32,
}

impl Tbf {
    /// A bucket whose queue holds `latency` worth of traffic at `rate`, like tc's `latency`
    /// option (the reference bandwidth plugin uses 25 ms).
    pub fn with_latency(rate: u64, burst: u32, latency: Duration) -> Tbf {
        let queued = (rate as f64 * latency.as_secs_f64()) as u64;
        let limit = u32::try_from(queued.saturating_add(u64::from(burst))).unwrap_or(u32::MAX);
        Tbf { rate, burst, limit }
    }
}

/// One queueing discipline (`tc qdisc show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qdisc {
    pub index: u32,
    pub kind: String,
    /// `major << 16 | minor`, e.g. `0x10000` for `1:`.
    pub handle: u32,
    pub parent: u32,
    /// The bucket of a `tbf` qdisc. The kernel keeps the burst as a time in 64 ns ticks, so
    /// at high rates the burst read back can differ by up to `rate * 64 ns` bytes.
    pub tbf: Option<Tbf>,
}

/// tc's `tc_calc_xmittime`: ticks to send `size` bytes at `rate` bytes/s (microseconds are
/// truncated first, as tc does, so the numbers match `tc` byte for byte).
fn xmit_ticks(rate: u64, size: u64) -> u32 {
    let usec = (1e6 * size as f64 / rate as f64) as u32;
    (f64::from(usec) * TICKS_PER_USEC) as u32
}

/// A `struct tc_ratespec` for `rate` as tc fills it after computing the rate table.
fn ratespec(rate32: u32) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[0] = RTAB_CELL_LOG;
    b[1] = LINKLAYER_ETHERNET;
    b[4..6].copy_from_slice(&(-1i16).to_ne_bytes()); // cell_align
    b[8..12].copy_from_slice(&rate32.to_ne_bytes());
    b
}

/// `tc_calc_rtable`: transmit time of packets of each 8-byte size class.
pub(crate) fn rate_table(rate32: u32) -> Vec<u8> {
    (0..256u64).flat_map(|i| xmit_ticks(u64::from(rate32), (i + 1) << RTAB_CELL_LOG).to_ne_bytes()).collect()
}

/// The `TCA_OPTIONS` of a tbf qdisc.
pub(crate) fn build_tbf_options(t: &Tbf) -> Vec<TcOption> {
    let rate32 = u32::try_from(t.rate).unwrap_or(u32::MAX);
    let mut parms = Vec::with_capacity(36);
    parms.extend_from_slice(&ratespec(rate32));
    parms.extend_from_slice(&[0; 12]); // no peak rate
    parms.extend_from_slice(&t.limit.to_ne_bytes());
    parms.extend_from_slice(&xmit_ticks(t.rate, u64::from(t.burst)).to_ne_bytes());
    parms.extend_from_slice(&0u32.to_ne_bytes()); // mtu: only with a peak rate
    let mut opts = vec![
        DefaultNla::new(TCA_TBF_PARMS, parms),
        DefaultNla::new(TCA_TBF_BURST, t.burst.to_ne_bytes().to_vec()),
    ];
    if t.rate > u64::from(u32::MAX) {
        opts.push(DefaultNla::new(TCA_TBF_RATE64, t.rate.to_ne_bytes().to_vec()));
    }
    opts.push(DefaultNla::new(TCA_TBF_RTAB, rate_table(rate32)));
    opts.into_iter().map(TcOption::Other).collect()
}

fn nla_value(nla: &DefaultNla) -> Vec<u8> {
    let mut v = vec![0; nla.value_len()];
    nla.emit_value(&mut v);
    v
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads a tbf back from a dump, where the crate hands its nested options over raw.
pub(crate) fn parse_tbf(opts: &[TcOption]) -> Option<Tbf> {
    let mut raw: Vec<(u16, Vec<u8>)> = Vec::new();
    for o in opts {
        let TcOption::Other(nla) = o else { continue };
        if nla.kind() == TCA_OPTIONS {
            let value = nla_value(nla);
            for inner in NlasIterator::new(value.as_slice()).flatten() {
                raw.push((inner.kind(), inner.value().to_vec()));
            }
        } else {
            raw.push((nla.kind(), nla_value(nla)));
        }
    }
    let parms = &raw.iter().find(|(k, _)| *k == TCA_TBF_PARMS)?.1;
    let rate64 = raw
        .iter()
        .find(|(k, _)| *k == TCA_TBF_RATE64)
        .and_then(|(_, v)| Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?)));
    let rate = rate64.unwrap_or(u64::from(u32_at(parms, 8)?));
    let limit = u32_at(parms, 24)?;
    let buffer_ticks = u32_at(parms, 28)?;
    // buffer is the burst expressed as sending time: bytes = ticks * 64 ns * rate.
    let burst = (f64::from(buffer_ticks) * 64e-9 * rate as f64).round() as u32;
    Some(Tbf { rate, burst, limit })
}

fn tc_msg(index: u32, handle: u32, parent: u32, attributes: Vec<TcAttribute>) -> Result<TcMessage> {
    let mut m = TcMessage::with_index(
        i32::try_from(index)
            .map_err(|_| Error::invalid("link index", index, "too large for a tc message"))?,
    );
    m.header.handle = TcHandle::from(handle);
    m.header.parent = TcHandle::from(parent);
    m.attributes = attributes;
    Ok(m)
}

fn qdisc_from_msg(m: &TcMessage) -> Option<Qdisc> {
    let mut kind = None;
    let mut opts: &[TcOption] = &[];
    for a in &m.attributes {
        match a {
            TcAttribute::Kind(k) => kind = Some(k.clone()),
            TcAttribute::Options(o) => opts = o,
            _ => {}
        }
    }
    let kind = kind?;
    let tbf = if kind == "tbf" { parse_tbf(opts) } else { None };
    Some(Qdisc {
        index: u32::try_from(m.header.index).ok()?,
        kind,
        handle: m.header.handle.into(),
        parent: m.header.parent.into(),
        tbf,
    })
}

impl Handle {
    fn qdisc_change(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: impl FnOnce() -> String,
    ) -> Result<()> {
        self.request(msg, flags).map(drop).map_err(|f| self.fail(what(), f))
    }

    /// `tc qdisc add dev DEV root handle 1: tbf rate RATE burst BURST limit LIMIT`.
    pub fn qdisc_add_tbf(&self, index: u32, tbf: &Tbf) -> Result<()> {
        if tbf.rate == 0 || tbf.burst == 0 {
            return Err(Error::invalid("tbf", format!("{tbf:?}"), "rate and burst must be positive"));
        }
        let attrs = vec![TcAttribute::Kind("tbf".into()), TcAttribute::Options(build_tbf_options(tbf))];
        let msg = RouteNetlinkMessage::NewQueueDiscipline(tc_msg(index, TBF_HANDLE, ROOT, attrs)?);
        self.qdisc_change(msg, NLM_F_CREATE | NLM_F_EXCL, || {
            format!("add tbf qdisc rate {}B/s burst {}B on {}", tbf.rate, tbf.burst, self.label(index))
        })
    }

    /// `tc qdisc add dev DEV ingress` (handle `ffff:`).
    pub fn qdisc_add_ingress(&self, index: u32) -> Result<()> {
        let attrs = vec![TcAttribute::Kind("ingress".into())];
        let msg = RouteNetlinkMessage::NewQueueDiscipline(tc_msg(index, INGRESS_HANDLE, INGRESS, attrs)?);
        self.qdisc_change(msg, NLM_F_CREATE | NLM_F_EXCL, || {
            format!("add ingress qdisc on {}", self.label(index))
        })
    }

    /// `tc qdisc del dev DEV root|ingress`: `parent` is [`ROOT`] or [`INGRESS`].
    pub fn qdisc_del(&self, index: u32, parent: u32) -> Result<()> {
        let msg = RouteNetlinkMessage::DelQueueDiscipline(tc_msg(index, 0, parent, Vec::new())?);
        let at = match parent {
            ROOT => "root".to_string(),
            INGRESS => "ingress".to_string(),
            p => format!("parent {p:#x}"),
        };
        self.qdisc_change(msg, 0, || format!("delete {at} qdisc of {}", self.label(index)))
    }

    /// `tc qdisc show [dev DEV]`.
    pub fn qdisc_list(&self, index: Option<u32>) -> Result<Vec<Qdisc>> {
        let replies = self
            .dump(RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default()))
            .map_err(|f| self.fail("list qdiscs", f))?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewQueueDiscipline(m) => qdisc_from_msg(m),
                _ => None,
            })
            .filter(|q| index.is_none_or(|i| q.index == i))
            .collect())
    }
}

#[cfg(test)]
#[path = "tc_tests.rs"]
mod tests;
