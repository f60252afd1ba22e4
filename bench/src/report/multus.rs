//! The multi-network section: multus against the sum of its delegates run alone.

use std::fmt::Write as _;

use super::{errors, table};
use crate::multus::{MultusResult, MultusSeries};
use crate::provision::Impl;
use crate::stats::{median_duration, ms, summarize};

/// The bound: multus may cost at most this much of its delegates' sum.
pub const TARGET: f64 = 1.1;

/// multus / alone at the median.
pub fn overhead(s: &MultusSeries) -> Option<f64> {
    let (m, a) = (median_duration(&s.multus)?, median_duration(&s.alone)?);
    (a.as_secs_f64() > 0.0).then(|| m.as_secs_f64() / a.as_secs_f64())
}

pub fn delegates_label(d: Impl) -> &'static str {
    match d {
        Impl::Twill => "twill's delegates (run inside multus)",
        Impl::Reference => "reference delegates (executed by multus)",
    }
}

pub fn render(r: &MultusResult, out: &mut String) {
    let _ = writeln!(out, "## Multi-network pods: multus against its delegates alone\n");
    let _ = writeln!(
        out,
        "{} measured iterations. A pod gets the cluster network (bridge + host-local, the minimal \
         chain) and two secondaries selected by its annotation from NetworkAttachmentDefinitions \
         in a file datastore (a macvlan on a `data0` master and a second bridge, both with \
         host-local). *multus*: ADD and DEL of the pod through `cni_exec::Runtime` executing \
         twill's `multus`, which reads the pod's annotation and both definitions from the \
         datastore, writes its delegate cache and drives the three networks. *alone*: the same \
         three networks ADDed (eth0, net1, net2) and DELed by the runtime itself. Both in the \
         same fake host, interleaved. Pod namespaces are created outside the timing. Ratio = \
         multus / alone at the median (Multus users report about 1.5x, multus-cni#452).\n",
        r.iterations
    );
    let rows = [Impl::Twill, Impl::Reference]
        .into_iter()
        .filter_map(|d| r.series.get(&d).map(|s| (d, s)))
        .map(|(d, s)| {
            let cell = |v: &[std::time::Duration]| {
                summarize(v).map(|x| (ms(x.median), ms(x.p90))).unwrap_or(("—".into(), "—".into()))
            };
            let (m50, m90) = cell(&s.multus);
            let (a50, a90) = cell(&s.alone);
            let ratio = overhead(s).map(|x| format!("{x:.2}x")).unwrap_or_else(|| "—".into());
            vec![delegates_label(d).to_string(), m50, m90, a50, a90, format!("**{ratio}**")]
        })
        .collect();
    table(out, &["delegates", "multus ADD+DEL p50", "p90", "alone ADD+DEL p50", "p90", "ratio (p50)"], rows);
    for (d, s) in &r.series {
        errors(out, &format!("{} failures", delegates_label(*d)), &s.failures);
    }
}
