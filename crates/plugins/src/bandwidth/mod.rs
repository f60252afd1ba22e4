//! `bandwidth`: limits a pod's traffic in both directions with token buckets on the host
//! side of its veth (see `shape.rs`). Chained after an interface plugin that creates a veth
//! (bridge, ptp); options and semantics follow the reference plugin, see
//! docs/plugins/bandwidth.md.

mod conf;
mod gc;
mod shape;

use cni_skel::{CmdArgs, Plugin};
use cni_spec::{CniResult, Error, NetConf, Version};

use crate::iface;
use crate::kernel::{container_netns, container_netns_if_present, handle_in, host_handle, nl_error};
use crate::meta::{self, CHAINED_VERSIONS};
use crate::undo::{Undo, first_error};
pub use conf::BandwidthConf;

/// IFB names: the reference's prefix and length, so DEL finds what either plugin made.
const IFB_PREFIX: &str = "bwp";

pub struct Bandwidth;

/// The IFB of one attachment: `bwp` + SHA-512 of network name and container id, as the
/// reference names it.
pub fn ifb_name(network: &str, container_id: &str) -> String {
    crate::sha512::hashed_name(nl::link::IFNAME_MAX, IFB_PREFIX, &format!("{network}{container_id}"))
}

impl Plugin for Bandwidth {
    fn supported_versions(&self) -> &[Version] {
        &CHAINED_VERSIONS
    }

    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error> {
        let bw = BandwidthConf::parse(conf)?;
        let mut result = meta::prev_result(conf)?;
        if bw.is_empty() {
            return Ok(result);
        }
        let cont_ns = container_netns(args)?;
        let (host, cont) = (host_handle()?, handle_in(&cont_ns)?);
        let veth = meta::host_veth(&host, &cont, &cont_ns, &args.ifname, &result)?;
        let mut undo = Undo::new();
        let (name, alias) = (
            ifb_name(&conf.name, &args.container_id),
            gc::alias(&conf.name, &args.container_id, &args.ifname),
        );
        let id = shape::IfbId { name: &name, alias: &alias };
        let ifb = shape::setup(&host, &veth, &bw, &id, &mut undo)?;
        if let Some(ifb) = ifb {
            result.interfaces.push(iface::entry(&ifb, None));
        }
        undo.commit();
        Ok(result)
    }

    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let bw = BandwidthConf::parse(conf)?;
        let result = meta::prev_result(conf)?;
        let cont_ns = container_netns(args)?;
        let (host, cont) = (host_handle()?, handle_in(&cont_ns)?);
        let veth = meta::host_veth(&host, &cont, &cont_ns, &args.ifname, &result)?;
        if let Some(ingress) = bw.ingress {
            shape::check_tbf(&host, &veth, &ingress.tbf())?;
        }
        if let Some(egress) = bw.egress {
            let name = ifb_name(&conf.name, &args.container_id);
            let ifb = host
                .link_get(&name)
                .map_err(nl_error)?
                .ok_or_else(|| Error::internal(format!("ifb {name} does not exist")))?;
            shape::check_redirect(&host, &veth, &ifb)?;
            shape::check_tbf(&host, &ifb, &egress.tbf())?;
        }
        Ok(())
    }

    /// Needs neither prevResult, the container nor valid limits (a runtime cleans up after an
    /// ADD that failed on them): the IFB is found by name, the veth (when the container still
    /// exists) as the peer of CNI_IFNAME.
    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let host = host_handle()?;
        let veth = match container_netns_if_present(args) {
            Some(ns) => meta::veth_peer(&host, &handle_in(&ns)?, &args.ifname)?,
            None => None,
        };
        first_error(shape::teardown(&host, veth.as_ref(), &ifb_name(&conf.name, &args.container_id)))
    }

    /// IFBs outlive their pods until DEL; those of this network whose attachment is not
    /// valid any more go here, found by the owner in their alias (see `gc.rs`).
    fn gc(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        let valid = cni_spec::valid_attachments(conf)?.unwrap_or_default();
        first_error(gc::collect(&host_handle()?, &conf.name, &valid))
    }

    fn status(&self, _args: &CmdArgs, conf: &NetConf) -> Result<(), Error> {
        BandwidthConf::parse(conf).map(drop)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ifb_names_match_the_reference() {
        // `printf net1abc | sha512sum` starts 30f8de359c7f.
        assert_eq!(super::ifb_name("net1", "abc"), "bwp30f8de359c7f");
    }
}
