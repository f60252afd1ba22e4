//! The firewall plugin's configuration and what it means for one attachment (pure): which
//! addresses to let through, and which bridge to isolate.

use std::net::IpAddr;

use cni_spec::{CniResult, Error, ErrorCode, NetConf};
use fw::Backend;
use serde::Deserialize;

/// `ingressPolicy`, with the reference's meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngressPolicy {
    /// Everything may reach the pod (default).
    Open,
    /// Traffic forwarded from another isolated bridge into the pod's bridge is dropped.
    SameBridge,
    /// Like `SameBridge`, and traffic forwarded between ports of the same bridge too.
    Isolated,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Raw {
    backend: Option<String>,
    iptables_admin_chain_name: Option<String>,
    ingress_policy: Option<String>,
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirewallConf {
    pub backend: Backend,
    pub policy: IngressPolicy,
    /// The iptables chain administrators put their own FORWARD rules in.
    pub admin_chain: String,
}

impl FirewallConf {
    pub fn parse(conf: &NetConf) -> Result<FirewallConf, Error> {
        let raw: Raw = conf.plugin_conf()?;
        let backend = match raw.backend.as_deref() {
            None | Some("") | Some("nftables") => Backend::Nftables,
            Some("iptables") => Backend::Iptables,
            Some("firewalld") => {
                return Err(Error::new(
                    ErrorCode::UnsupportedField,
                    "firewall: backend firewalld is not implemented by twill; use nftables or iptables",
                ));
            }
            Some(other) => {
                return Err(Error::invalid_config(format!(
                    "firewall: unknown backend {other:?}: expected \"nftables\" or \"iptables\""
                )));
            }
        };
        let policy = match raw.ingress_policy.as_deref() {
            None | Some("") | Some("open") => IngressPolicy::Open,
            Some("same-bridge") => IngressPolicy::SameBridge,
            Some("isolated") => IngressPolicy::Isolated,
            Some(other) => {
                return Err(Error::invalid_config(format!(
                    "firewall: unknown ingress policy {other:?}: expected \"open\", \"same-bridge\" or \"isolated\""
                )));
            }
        };
        let admin_chain = raw.iptables_admin_chain_name.filter(|c| !c.is_empty());
        let admin_chain = admin_chain.unwrap_or_else(|| "CNI-ADMIN".into());
        if admin_chain.len() > 28 || admin_chain.starts_with('-') || !admin_chain.chars().all(is_chain_char) {
            return Err(Error::invalid_config(format!(
                "firewall: iptablesAdminChainName {admin_chain:?} is not a valid iptables chain name"
            )));
        }
        Ok(FirewallConf { backend, policy, admin_chain })
    }
}

fn is_chain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// What one attachment needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirewallPlan {
    /// The pod's addresses, let through the FORWARD path.
    pub ips: Vec<IpAddr>,
    /// The bridge to isolate, for the policies that isolate.
    pub bridge: Option<String>,
}

/// Every address of the result; for an isolating policy the bridge is the result's first
/// interface, as the reference takes it (so chain the firewall after `bridge`).
pub fn plan(conf: &FirewallConf, result: &CniResult) -> Result<FirewallPlan, Error> {
    let ips = result.ips.iter().map(|ip| ip.address.addr()).collect();
    let bridge = match conf.policy {
        IngressPolicy::Open => None,
        _ => {
            let first = result.interfaces.first().filter(|i| !i.name.is_empty() && i.sandbox.is_none());
            let name = first.map(|i| i.name.clone()).ok_or_else(|| {
                Error::invalid_config(
                    "firewall: an isolating ingressPolicy needs the bridge as prevResult's first \
                     interface; chain the firewall plugin after bridge",
                )
            })?;
            Some(name)
        }
    };
    Ok(FirewallPlan { ips, bridge })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{merged, net_conf};
    use cni_spec::{Interface, IpConfig};
    use serde_json::{Value, json};

    fn parse(v: Value) -> Result<FirewallConf, Error> {
        let base = json!({"cniVersion": "1.0.0", "name": "n", "type": "firewall"});
        FirewallConf::parse(&net_conf(&merged(base, &v)))
    }

    #[test]
    fn defaults_and_choices() {
        let c = parse(json!({})).unwrap();
        assert_eq!(
            (c.backend, c.policy, c.admin_chain.as_str()),
            (Backend::Nftables, IngressPolicy::Open, "CNI-ADMIN")
        );
        let c = parse(json!({"backend": "iptables", "ingressPolicy": "same-bridge", "iptablesAdminChainName": "MY-ADMIN"}))
            .unwrap();
        assert_eq!(
            (c.backend, c.policy, c.admin_chain.as_str()),
            (Backend::Iptables, IngressPolicy::SameBridge, "MY-ADMIN")
        );
    }

    #[test]
    fn bad_choices_have_clear_codes() {
        assert_eq!(parse(json!({"backend": "firewalld"})).unwrap_err().code.code(), 2);
        for bad in [
            json!({"backend": "pf"}),
            json!({"ingressPolicy": "closed"}),
            json!({"iptablesAdminChainName": "has space"}),
            json!({"iptablesAdminChainName": "A-VERY-LONG-CHAIN-NAME-THAT-IPTABLES-REFUSES"}),
        ] {
            assert_eq!(parse(bad.clone()).unwrap_err().code.code(), 7, "{bad}");
        }
    }

    #[test]
    fn plan_takes_every_address_and_the_first_interface_as_bridge() {
        let result = CniResult {
            interfaces: vec![
                Interface { name: "cni0".into(), ..Default::default() },
                Interface { name: "eth0".into(), sandbox: Some("/run/netns/x".into()), ..Default::default() },
            ],
            ips: vec![
                IpConfig { address: "10.1.0.5/24".parse().unwrap(), gateway: None, interface: Some(1) },
                IpConfig { address: "fd00::5/64".parse().unwrap(), gateway: None, interface: Some(1) },
            ],
            ..Default::default()
        };
        let open = parse(json!({})).unwrap();
        let p = plan(&open, &result).unwrap();
        assert_eq!(p.ips, vec!["10.1.0.5".parse::<IpAddr>().unwrap(), "fd00::5".parse().unwrap()]);
        assert_eq!(p.bridge, None);
        let same = parse(json!({"ingressPolicy": "same-bridge"})).unwrap();
        assert_eq!(plan(&same, &result).unwrap().bridge.as_deref(), Some("cni0"));
        let no_ifaces = CniResult { interfaces: vec![], ..result };
        assert_eq!(plan(&same, &no_ifaces).unwrap_err().code.code(), 7);
    }
}
