//! The bandwidth plugin's configuration: rates in bits per second and bursts in bits, as
//! static options or the `bandwidth` capability, validated into token buckets before anything
//! is touched.

use cni_spec::{Error, NetConf};
use nl::Tbf;
use serde_json::{Map, Value};

/// How long a packet may wait for tokens, as the reference plugin sets it.
const LATENCY_USEC: f64 = 25_000.0;
/// Kernel packet-scheduler ticks per microsecond (64 ns ticks).
const TICKS_PER_USEC: f64 = 15.625;

/// One direction's limit, in the units of the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Bits per second.
    pub rate: u64,
    /// Bits.
    pub burst: u64,
}

impl Limit {
    /// The token bucket the reference creates: bytes, a queue of 25 ms at the rate plus the
    /// burst.
    pub fn tbf(&self) -> Tbf {
        let (rate, burst) = (self.rate / 8, self.burst / 8);
        let queued = (rate as f64 * LATENCY_USEC / 1e6) as u64;
        // validate() keeps both within u32.
        let burst = u32::try_from(burst).unwrap_or(u32::MAX);
        let limit = u32::try_from(queued + u64::from(burst)).unwrap_or(u32::MAX);
        Tbf { rate, burst, limit }
    }
}

/// A validated configuration. `ingress` shapes traffic into the pod, `egress` traffic out of
/// it (named from the pod's point of view, as in the reference).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BandwidthConf {
    pub ingress: Option<Limit>,
    pub egress: Option<Limit>,
}

const KEYS: [&str; 4] = ["ingressRate", "ingressBurst", "egressRate", "egressBurst"];

impl BandwidthConf {
    /// The static options when any of them is given, else `runtimeConfig.bandwidth` (the
    /// reference's precedence); every value checked.
    pub fn parse(conf: &NetConf) -> Result<BandwidthConf, Error> {
        let has_static = KEYS.iter().any(|k| conf.raw.get(*k).is_some_and(|v| !v.is_null()));
        let (source, prefix) = if has_static {
            (Some(&conf.raw), "")
        } else {
            match conf.runtime_config.get("bandwidth") {
                None | Some(Value::Null) => (None, ""),
                Some(Value::Object(m)) => (Some(m), "runtimeConfig.bandwidth."),
                Some(_) => return Err(Error::invalid_config("runtimeConfig.bandwidth must be an object")),
            }
        };
        let Some(source) = source else { return Ok(BandwidthConf { ingress: None, egress: None }) };
        let get = |key: &str| number(source, prefix, key);
        Ok(BandwidthConf {
            ingress: limit(prefix, "ingress", get("ingressRate")?, get("ingressBurst")?)?,
            egress: limit(prefix, "egress", get("egressRate")?, get("egressBurst")?)?,
        })
    }

    /// Nothing to shape: the plugin passes the result through.
    pub fn is_empty(&self) -> bool {
        self.ingress.is_none() && self.egress.is_none()
    }
}

/// A non-negative whole number; absent or null is 0 (no limit).
fn number(source: &Map<String, Value>, prefix: &str, key: &str) -> Result<u64, Error> {
    let bad = |why: String| Err(Error::invalid_config(format!("bandwidth: {prefix}{key} {why}")));
    match source.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(v), _, _) => Ok(v),
            (None, Some(v), _) => bad(format!("must not be negative, got {v}")),
            (None, None, Some(f)) if f < 0.0 => bad(format!("must not be negative, got {n}")),
            (None, None, Some(f)) if f.fract() == 0.0 => bad(format!("is too large: {n}")),
            _ => bad(format!("must be a whole number, got {n}")),
        },
        Some(other) => bad(format!("must be a number, got {other}")),
    }
}

/// One direction: both values or neither, and a bucket the kernel can represent.
fn limit(prefix: &str, dir: &str, rate: u64, burst: u64) -> Result<Option<Limit>, Error> {
    let (r, b) = (format!("{prefix}{dir}Rate"), format!("{prefix}{dir}Burst"));
    let bad = |why: String| Err(Error::invalid_config(format!("bandwidth: {why}")));
    match (rate, burst) {
        (0, 0) => return Ok(None),
        (_, 0) => return bad(format!("{r} is set but {b} is not: a rate needs a burst")),
        (0, _) => return bad(format!("{b} is set but {r} is not: a burst needs a rate")),
        _ => {}
    }
    if rate < 8 {
        return bad(format!("{r} {rate} is below 8 bits/s, the smallest rate the kernel can shape"));
    }
    if burst / 8 >= u64::from(u32::MAX) {
        return bad(format!("{b} {burst} is more than 4GB"));
    }
    let (rate_b, burst_b) = (rate / 8, burst / 8);
    // The kernel keeps the burst as the time it takes to send, in 64 ns ticks of a u32.
    let ticks = (burst_b as f64 * 1e6 / rate_b as f64).floor() * TICKS_PER_USEC;
    if ticks > f64::from(u32::MAX) {
        return bad(format!(
            "{b} {burst} takes longer than {:.0} s to send at {r} {rate}: too long for the kernel",
            f64::from(u32::MAX) / TICKS_PER_USEC / 1e6
        ));
    }
    let queue = rate_b as f64 * LATENCY_USEC / 1e6 + burst_b as f64;
    if queue >= f64::from(u32::MAX) {
        return bad(format!("{r} {rate} with {b} {burst} needs a queue of more than 4GB"));
    }
    Ok(Some(Limit { rate, burst }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{merged, net_conf};
    use serde_json::json;

    fn parse(v: Value) -> Result<BandwidthConf, Error> {
        let base = json!({"cniVersion": "1.0.0", "name": "n", "type": "bandwidth"});
        BandwidthConf::parse(&net_conf(&merged(base, &v)))
    }

    #[test]
    fn static_options_win_over_the_capability() {
        let c = parse(json!({
            "ingressRate": 8000, "ingressBurst": 800,
            "runtimeConfig": {"bandwidth": {"egressRate": 16000, "egressBurst": 1600}}
        }))
        .unwrap();
        assert_eq!(c.ingress, Some(Limit { rate: 8000, burst: 800 }));
        assert_eq!(c.egress, None);
        let c = parse(json!({"runtimeConfig": {"bandwidth": {"egressRate": 16000, "egressBurst": 1600}}}))
            .unwrap();
        assert_eq!((c.ingress, c.egress), (None, Some(Limit { rate: 16000, burst: 1600 })));
        assert!(parse(json!({})).unwrap().is_empty());
        assert!(parse(json!({"runtimeConfig": {"bandwidth": {}}})).unwrap().is_empty());
    }

    #[test]
    fn buckets_follow_the_reference_arithmetic() {
        // 1 Mbit/s, 80 kbit burst: 125000 B/s, 10000 B, limit 125000 * 0.025 + 10000.
        let t = Limit { rate: 1_000_000, burst: 80_000 }.tbf();
        assert_eq!(t, Tbf { rate: 125_000, burst: 10_000, limit: 13_125 });
    }

    #[test]
    fn bad_values_are_code_7_with_the_key() {
        let cases = [
            (json!({"ingressRate": -1, "ingressBurst": 100}), "ingressRate must not be negative"),
            (json!({"egressRate": 1000}), "egressRate is set but egressBurst is not"),
            (json!({"egressBurst": 1000}), "egressBurst is set but egressRate is not"),
            (json!({"ingressRate": 1.5, "ingressBurst": 100}), "whole number"),
            (json!({"ingressRate": "fast", "ingressBurst": 100}), "must be a number"),
            (json!({"ingressRate": 1e30, "ingressBurst": 100}), "too large"),
            (json!({"ingressRate": 4, "ingressBurst": 100}), "below 8 bits/s"),
            (json!({"ingressRate": 1000, "ingressBurst": 34_359_738_360u64}), "more than 4GB"),
            (json!({"ingressRate": 8, "ingressBurst": 80_000_000}), "too long for the kernel"),
            (json!({"ingressRate": u64::MAX, "ingressBurst": 8000}), "queue of more than 4GB"),
            (
                json!({"runtimeConfig": {"bandwidth": {"ingressRate": -5, "ingressBurst": 1}}}),
                "runtimeConfig.bandwidth.ingressRate must not be negative",
            ),
            (json!({"runtimeConfig": {"bandwidth": 5}}), "must be an object"),
        ];
        for (v, want) in cases {
            let err = parse(v.clone()).expect_err(&v.to_string());
            assert_eq!(err.code.code(), 7, "{v}");
            assert!(err.msg.contains(want), "{v}: {err}");
        }
    }
}
