//! Places in a lab a command can run in or connect to: a pod (`NS/NAME`), a node (`node-N`),
//! the outside host (`outside`), the underlay switch (`underlay`), an etcd member (`etcd`,
//! `etcd2`, ...) or the router between racks (`router`).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use anyhow::{Context, Result, bail};

use super::etcd;
use super::names::{Names, PodRef};
use super::state::LabState;
use super::topology::{OUTSIDE_IP, OUTSIDE_IP6, ROUTER_IP, ROUTER_IP6};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pod(PodRef),
    Node(u8),
    Outside,
    Underlay,
    /// etcd member `i` (1-based).
    Etcd(u8),
    Router,
}

impl FromStr for Target {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Target> {
        if s.contains('/') {
            return Ok(Target::Pod(s.parse()?));
        }
        Ok(match s {
            "outside" => Target::Outside,
            "underlay" => Target::Underlay,
            "router" => Target::Router,
            _ => match (s.strip_prefix("node-").and_then(|n| n.parse().ok()), etcd::member_of(s)) {
                (Some(i), _) => Target::Node(i),
                (None, Some(i)) => Target::Etcd(i),
                (None, None) => {
                    bail!(
                        "{s:?} is not a lab place: NS/NAME (a pod), node-N, outside, underlay, etcd[N] or router"
                    )
                }
            },
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Pod(p) => write!(f, "{p}"),
            Target::Node(i) => write!(f, "node-{i}"),
            Target::Outside => f.write_str("outside"),
            Target::Underlay => f.write_str("underlay"),
            Target::Etcd(1) => f.write_str("etcd"),
            Target::Etcd(i) => write!(f, "etcd{i}"),
            Target::Router => f.write_str("router"),
        }
    }
}

impl Target {
    /// The namespace this place is.
    pub fn netns(&self, state: &LabState, names: &Names) -> Result<String> {
        Ok(match self {
            Target::Pod(p) => state.pod(p)?.netns.clone(),
            Target::Node(i) => state.node(*i)?.netns.clone(),
            Target::Outside => names.outside(),
            Target::Underlay => names.underlay(),
            Target::Etcd(i) => etcd::member_netns(state, *i)?,
            Target::Router if state.options.racks > 0 => names.router(),
            Target::Router => bail!("this lab has no router (start it with --racks N)"),
        })
    }

    /// The address others reach this place at.
    pub fn address(&self, state: &LabState, v6: bool) -> Result<IpAddr> {
        let missing = || {
            format!("{self} has no IPv{} address (was the lab started with --ipv6?)", if v6 { 6 } else { 4 })
        };
        match self {
            Target::Pod(p) => state.pod(p)?.ip(v6).with_context(missing),
            Target::Node(i) => {
                let node = state.node(*i)?;
                if v6 { node.ip6.map(IpAddr::V6).with_context(missing) } else { Ok(node.ip.into()) }
            }
            Target::Outside if v6 && state.options.ipv6 => Ok(OUTSIDE_IP6.into()),
            Target::Outside if !v6 => Ok(OUTSIDE_IP.into()),
            Target::Etcd(i) if !v6 && state.etcd.is_some() => Ok(etcd::member_ip(*i).into()),
            Target::Router if state.options.racks > 0 && !v6 => Ok(ROUTER_IP.into()),
            Target::Router if state.options.racks > 0 && state.options.ipv6 => Ok(ROUTER_IP6.into()),
            _ => bail!(missing()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_parse_and_print() {
        for s in ["a/p1", "node-3", "outside", "underlay", "etcd", "router"] {
            assert_eq!(s.parse::<Target>().unwrap().to_string(), s);
        }
        for bad in ["node-", "node-x", "node-300", "pod", "A/b"] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }
}
