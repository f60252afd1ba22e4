//! The portmap plugin's configuration: the reference plugin's options and the
//! `portMappings` capability, validated up front so bad input fails before anything is
//! touched (code 7, naming the offending value).

use std::net::IpAddr;

use cni_spec::{Error, NetConf, PortMapping};
use fw::Backend;
use serde::Deserialize;

/// The mark bit the reference uses when `markMasqBit` is absent (Kubernetes uses 14 and 15).
pub const DEFAULT_MARK_BIT: u32 = 13;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Raw {
    backend: Option<String>,
    snat: Option<bool>,
    masq_all: bool,
    mark_masq_bit: Option<i64>,
    external_set_mark_chain: Option<String>,
    #[serde(rename = "conditionsV4")]
    conditions_v4: Option<Vec<String>>,
    #[serde(rename = "conditionsV6")]
    conditions_v6: Option<Vec<String>>,
}

/// A transport protocol a port can be mapped for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The name nft and iptables use.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    fn parse(s: &str) -> Option<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            // Runtimes that leave it out mean TCP (Docker's and Kubernetes' default).
            "" | "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

/// One validated port mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mapping {
    pub protocol: Protocol,
    pub host_port: u16,
    pub container_port: u16,
    /// `hostIP`: restricts the mapping to its family, and, unless unspecified (`0.0.0.0`,
    /// `::`), to that destination address (the reference's semantics).
    pub host_ip: Option<IpAddr>,
}

impl Mapping {
    /// Whether the mapping applies to the pod address family `v6`.
    pub fn applies_to(&self, v6: bool) -> bool {
        self.host_ip.is_none_or(|ip| ip.is_ipv6() == v6)
    }

    /// The destination address to match, if the mapping is bound to one.
    pub fn dst(&self) -> Option<IpAddr> {
        self.host_ip.filter(|ip| !ip.is_unspecified())
    }
}

/// A validated portmap config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortmapConf {
    pub network: String,
    pub backend: Backend,
    pub snat: bool,
    pub masq_all: bool,
    pub mark_bit: u32,
    pub external_set_mark_chain: Option<String>,
    pub conditions_v4: Vec<String>,
    pub conditions_v6: Vec<String>,
    /// The nftables backend's conditions as matches (empty for iptables).
    pub matches_v4: Vec<fw::nft::Match>,
    pub matches_v6: Vec<fw::nft::Match>,
    pub mappings: Vec<Mapping>,
}

impl PortmapConf {
    pub fn parse(conf: &NetConf) -> Result<PortmapConf, Error> {
        let raw: Raw = conf.plugin_conf()?;
        if raw.mark_masq_bit.is_some() && raw.external_set_mark_chain.is_some() {
            return Err(Error::invalid_config("cannot specify both externalSetMarkChain and markMasqBit"));
        }
        let mark_bit = raw.mark_masq_bit.unwrap_or(i64::from(DEFAULT_MARK_BIT));
        if !(0..=31).contains(&mark_bit) {
            return Err(Error::invalid_config(format!("markMasqBit {mark_bit} must be between 0 and 31")));
        }
        if let Some(chain) = &raw.external_set_mark_chain {
            check_chain_name(chain)?;
        }
        let conditions_v4 = conditions("conditionsV4", raw.conditions_v4)?;
        let conditions_v6 = conditions("conditionsV6", raw.conditions_v6)?;
        let backend = choose_backend(
            raw.backend.as_deref(),
            raw.external_set_mark_chain.is_some(),
            &conditions_v4,
            &conditions_v6,
        )?;
        let (matches_v4, matches_v6) = match backend {
            Backend::Nftables => (
                super::conditions::parse("conditionsV4", &conditions_v4)?,
                super::conditions::parse("conditionsV6", &conditions_v6)?,
            ),
            Backend::Iptables => (Vec::new(), Vec::new()),
        };
        let requested = cni_spec::runtime_config::<Vec<PortMapping>>(conf, "portMappings")?;
        Ok(PortmapConf {
            network: conf.name.clone(),
            backend,
            snat: raw.snat.unwrap_or(true),
            masq_all: raw.masq_all,
            mark_bit: mark_bit as u32,
            external_set_mark_chain: raw.external_set_mark_chain,
            conditions_v4,
            conditions_v6,
            matches_v4,
            matches_v6,
            mappings: mappings(&requested.unwrap_or_default())?,
        })
    }

    /// The extra match expressions for one family.
    pub fn conditions(&self, v6: bool) -> &[String] {
        if v6 { &self.conditions_v6 } else { &self.conditions_v4 }
    }
}

/// The reference tells iptables conditions (`-d ...`, `! -s ...`) from nftables ones by the
/// first character of the first condition.
fn is_iptables_style(conditions: &[String]) -> bool {
    conditions.first().is_some_and(|c| c.starts_with('-') || c.starts_with('!'))
}

/// `backend`: explicit, or nftables unless the config carries iptables-only options (then
/// iptables, so conflists written for the reference keep their meaning). Options of the other
/// backend are refused, as in the reference.
fn choose_backend(
    explicit: Option<&str>,
    ext_chain: bool,
    v4: &[String],
    v6: &[String],
) -> Result<Backend, Error> {
    let mut ipt_opts = Vec::new();
    let mut nft_opts = Vec::new();
    if ext_chain {
        ipt_opts.push("externalSetMarkChain");
    }
    for (name, conds) in [("conditionsV4", v4), ("conditionsV6", v6)] {
        match (conds.is_empty(), is_iptables_style(conds)) {
            (true, _) => {}
            (false, true) => ipt_opts.push(name),
            (false, false) => nft_opts.push(name),
        }
    }
    let backend = match explicit {
        Some("nftables") => Backend::Nftables,
        Some("iptables") => Backend::Iptables,
        None if !ipt_opts.is_empty() => Backend::Iptables,
        None => Backend::Nftables,
        Some(other) => {
            return Err(Error::invalid_config(format!(
                "unknown backend {other:?}: expected \"nftables\" or \"iptables\""
            )));
        }
    };
    let (wrong, wrong_opts, name) = match backend {
        Backend::Nftables => ("iptables", ipt_opts, "nftables"),
        Backend::Iptables => ("nftables", nft_opts, "iptables"),
    };
    if !wrong_opts.is_empty() {
        return Err(Error::invalid_config(format!(
            "{name} backend was requested but the configuration contains {wrong}-specific options {}",
            wrong_opts.join(", ")
        )));
    }
    Ok(backend)
}

/// Conditions become part of one rule: a line break, `;` or `#` would end it early.
fn conditions(name: &str, conds: Option<Vec<String>>) -> Result<Vec<String>, Error> {
    let conds: Vec<String> = conds.unwrap_or_default().into_iter().filter(|c| !c.is_empty()).collect();
    if let Some(bad) = conds.iter().find(|c| c.contains(['\n', '\r', ';', '#'])) {
        return Err(Error::invalid_config(format!(
            "{name}: condition {bad:?} must not contain a line break, ';' or '#'"
        )));
    }
    Ok(conds)
}

fn check_chain_name(chain: &str) -> Result<(), Error> {
    let ok = !chain.is_empty()
        && chain.len() <= 28
        && chain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_config(format!(
            "externalSetMarkChain {chain:?} is not an iptables chain name (letters, digits, - and _, at most 28)"
        )))
    }
}

fn port(what: &str, value: i64) -> Result<u16, Error> {
    match u16::try_from(value) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(Error::invalid_config(format!("invalid {what} port number {value}: must be 1-65535"))),
    }
}

/// Validates the requested mappings; an exact duplicate is kept once, the same host port
/// mapped twice to different targets is refused.
pub fn mappings(requested: &[PortMapping]) -> Result<Vec<Mapping>, Error> {
    let mut out: Vec<Mapping> = Vec::new();
    for pm in requested {
        let protocol = Protocol::parse(&pm.protocol).ok_or_else(|| {
            Error::invalid_config(format!(
                "unknown protocol {:?} for host port {}: expected tcp, udp or sctp",
                pm.protocol, pm.host_port
            ))
        })?;
        let host_ip = match pm.host_ip.as_deref() {
            None | Some("") => None,
            Some(text) => Some(text.parse::<IpAddr>().map_err(|_| {
                Error::invalid_config(format!("invalid hostIP {text:?} for host port {}", pm.host_port))
            })?),
        };
        let m = Mapping {
            protocol,
            host_port: port("host", pm.host_port)?,
            container_port: port("container", pm.container_port)?,
            host_ip,
        };
        // The same host port (per family and destination) to two targets cannot both win.
        let clash = |o: &&Mapping| {
            (o.protocol, o.host_port, o.dst()) == (m.protocol, m.host_port, m.dst())
                && [false, true].iter().any(|v6| o.applies_to(*v6) && m.applies_to(*v6))
                && o.container_port != m.container_port
        };
        if let Some(o) = out.iter().find(clash) {
            return Err(Error::invalid_config(format!(
                "host port {}/{} is mapped twice (to container ports {} and {})",
                m.protocol.name(),
                m.host_port,
                o.container_port,
                m.container_port
            )));
        }
        if !out.contains(&m) {
            out.push(m);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "conf_tests.rs"]
mod tests;
