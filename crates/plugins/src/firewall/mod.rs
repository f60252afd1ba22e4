//! `firewall`: lets a pod's addresses through the host's FORWARD path and, with an isolating
//! `ingressPolicy`, drops traffic forwarded into its bridge from other isolated bridges.
//! nftables by default (one shared table, owner-tagged elements), or iptables in the
//! reference's chain layout. Options follow the reference plugin; see
//! docs/plugins/firewall.md.

mod conf;
mod ipt;
mod nft;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, NetConf, Version};

use crate::kernel::host_handle;
use crate::meta::{self, CHAINED_VERSIONS};
use crate::owner;
use crate::undo::{Undo, first_error};
use conf::{FirewallConf, plan};
use fw::Backend;

pub struct Firewall;

impl Plugin for Firewall {
    fn supported_versions(&self) -> &[Version] {
        &CHAINED_VERSIONS
    }

    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let fc = FirewallConf::parse(conf)?;
        let result = meta::prev_result(conf)?;
        let plan = plan(&fc, &result)?;
        let owner = owner::tag(&conf.name, &args.container_id, &args.ifname);
        let mut undo = Undo::new();
        match fc.backend {
            Backend::Nftables => nft::setup(&owner, &plan, fc.policy)?,
            Backend::Iptables => {
                ipt::setup(&owner, &plan.ips, &fc.admin_chain)?;
                undo.push("remove iptables rules", || ipt::teardown(&owner, &[]));
                // Isolation lives in nftables whatever the backend (see docs/plugins/firewall.md).
                if plan.bridge.is_some() {
                    let bridge_only = conf::FirewallPlan { ips: Vec::new(), ..plan.clone() };
                    nft::setup(&owner, &bridge_only, fc.policy)?;
                }
            }
        }
        undo.commit();
        Ok(result)
    }

    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let fc = FirewallConf::parse(conf)?;
        let result = meta::prev_result(conf)?;
        let plan = plan(&fc, &result)?;
        let owner = owner::tag(&conf.name, &args.container_id, &args.ifname);
        match fc.backend {
            Backend::Nftables => nft::check(&owner, &plan, fc.policy),
            Backend::Iptables => {
                ipt::check(&owner, &plan.ips, &fc.admin_chain)?;
                let bridge_only = conf::FirewallPlan { ips: Vec::new(), ..plan };
                nft::check(&owner, &bridge_only, fc.policy)
            }
        }
    }

    /// Everything tagged with the attachment goes, whatever the backend named now; the
    /// reference's iptables rules go by prevResult's addresses when it is given. Neither the
    /// container nor a valid configuration is needed.
    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let owner = owner::tag(&conf.name, &args.container_id, &args.ifname);
        let prev_ips: Option<Vec<_>> =
            conf.prev_result().ok().flatten().map(|r| r.ips.iter().map(|ip| ip.address.addr()).collect());
        let mut errors: Vec<Error> = nft::teardown(&owner, prev_ips.as_deref()).err().into_iter().collect();
        if uses_iptables(conf) {
            errors.extend(ipt::teardown(&owner, prev_ips.as_deref().unwrap_or_default()).err());
        }
        first_error(errors)
    }

    fn gc(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let fc = FirewallConf::parse(conf)?;
        let valid = cni_spec::valid_attachments(conf)?.unwrap_or_default();
        let host = host_handle()?;
        let bridge_exists = |name: &str| !matches!(host.link_get(name), Ok(None));
        let mut errors: Vec<Error> = nft::gc(&conf.name, &valid, bridge_exists).err().into_iter().collect();
        if fc.backend == Backend::Iptables {
            errors.extend(ipt::gc(&conf.name, &valid).err());
        }
        first_error(errors)
    }

    fn status(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        FirewallConf::parse(conf).map(drop)
    }
}

/// Whether the configuration selects iptables, read leniently for DEL.
fn uses_iptables(conf: &NetConf) -> bool {
    conf.raw.get("backend").and_then(|b| b.as_str()) == Some("iptables")
}
