//! VLANs on the bridge (`vlan`, `vlanTrunk`, `preserveDefaultVlan`): the port memberships are
//! planned purely, then programmed with bridge VLAN filtering. With `isGateway` and a `vlan`,
//! the gateway lives on an 802.1Q interface `BRIDGE.VID` on top of the bridge, as in the
//! reference. Kernels without bridge VLAN filtering or 802.1Q (this CI machine's, for one)
//! refuse the netlink calls; that becomes a code-2 error naming the option and what the
//! kernel lacks, and ADD undoes everything.

use cni_spec::{Error, ErrorCode};
use nl::{Handle, Link, PortVlan};

use super::conf::BridgeConf;
use crate::kernel::nl_error;

/// The default VLAN every new bridge port is a member of.
pub const DEFAULT_VID: u16 = 1;

/// What to do to the pod's port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortPlan {
    /// Leave VLAN 1 (the kernel's default membership) first.
    pub remove_default: bool,
    pub add: Vec<PortVlan>,
}

/// The reference's rules: an access `vlan` is the port's PVID, untagged; every trunk VLAN is
/// tagged; trunk-only ports keep VLAN 1 as their untagged native VLAN; VLAN 1 is removed
/// first unless `preserveDefaultVlan`.
pub fn plan_port(conf: &BridgeConf) -> PortPlan {
    if !conf.uses_vlans() {
        return PortPlan::default();
    }
    let mut add = Vec::new();
    if conf.vlan != 0 {
        add.push(PortVlan { vid: conf.vlan, pvid: true, untagged: true });
    }
    add.extend(conf.vlan_trunk.iter().map(|&vid| PortVlan { vid, pvid: false, untagged: false }));
    if conf.vlan == 0 {
        add.push(PortVlan { vid: DEFAULT_VID, pvid: true, untagged: true });
    }
    PortPlan { remove_default: !conf.preserve_default_vlan, add }
}

/// The 802.1Q interface carrying the gateway of an access VLAN.
pub fn gateway_iface_name(bridge: &str, vid: u16) -> Result<String, Error> {
    let name = format!("{bridge}.{vid}");
    cni_spec::validate_ifname(&name).map_err(|_| {
        Error::invalid_config(format!("bridge name {bridge:?} is too long for a VLAN interface {name:?}"))
    })?;
    Ok(name)
}

/// Turns VLAN filtering on for the bridge.
pub fn enable_filtering(nl: &Handle, br: &Link) -> Result<(), Error> {
    nl.bridge_set_vlan_filtering(br.index, true).map_err(unsupported("vlan filtering"))
}

/// Programs the port's memberships.
pub fn apply_port(nl: &Handle, port: &Link, plan: &PortPlan) -> Result<(), Error> {
    if plan.remove_default {
        match nl.bridge_vlan_del(port.index, DEFAULT_VID) {
            Err(e) if !e.is_not_found() => return Err(unsupported("vlan")(e)),
            _ => {}
        }
    }
    for vlan in &plan.add {
        nl.bridge_vlan_add(port.index, *vlan).map_err(unsupported("vlan"))?;
    }
    Ok(())
}

/// The gateway interface for `vid`, created (and the bridge itself made a member) when missing.
pub fn ensure_gateway_iface(nl: &Handle, br: &Link, vid: u16) -> Result<Link, Error> {
    let name = gateway_iface_name(&br.name, vid)?;
    if let Some(link) = nl.link_get(&name).map_err(nl_error)? {
        return Ok(link);
    }
    nl.bridge_vlan_add(br.index, PortVlan { vid, pvid: false, untagged: false })
        .map_err(unsupported("vlan"))?;
    match nl.vlan_add(&name, br.index, vid) {
        Err(e) if !e.is_exists() => return Err(unsupported("vlan with isGateway (802.1Q)")(e)),
        _ => {}
    }
    let link =
        nl.link_get(&name).map_err(nl_error)?.ok_or_else(|| Error::internal(format!("{name} vanished")))?;
    nl.link_set_up(link.index, true).map_err(nl_error)?;
    Ok(link)
}

/// A kernel that lacks the feature says EOPNOTSUPP; say which option needs what.
fn unsupported(option: &'static str) -> impl Fn(nl::Error) -> Error {
    move |e| match e.errno() {
        Some(libc::EOPNOTSUPP) => Error::new(
            ErrorCode::UnsupportedField,
            format!("{option}: this kernel does not support bridge VLAN filtering / 802.1Q"),
        )
        .with_details(e.to_string()),
        _ => nl_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(vlan: u16, trunk: Vec<u16>, preserve: bool) -> BridgeConf {
        BridgeConf { vlan, vlan_trunk: trunk, preserve_default_vlan: preserve, ..BridgeConf::for_tests() }
    }

    fn v(vid: u16, pvid: bool, untagged: bool) -> PortVlan {
        PortVlan { vid, pvid, untagged }
    }

    #[test]
    fn no_vlans_no_plan() {
        assert_eq!(plan_port(&conf(0, vec![], false)), PortPlan::default());
    }

    #[test]
    fn access_vlan_is_pvid_untagged_and_drops_default() {
        let p = plan_port(&conf(10, vec![], false));
        assert!(p.remove_default);
        assert_eq!(p.add, vec![v(10, true, true)]);
    }

    #[test]
    fn trunk_only_keeps_vlan_1_native() {
        let p = plan_port(&conf(0, vec![20, 21], false));
        assert_eq!(p.add, vec![v(20, false, false), v(21, false, false), v(1, true, true)]);
    }

    #[test]
    fn access_plus_trunk_and_preserve_default() {
        let p = plan_port(&conf(10, vec![30], true));
        assert!(!p.remove_default);
        assert_eq!(p.add, vec![v(10, true, true), v(30, false, false)]);
    }

    #[test]
    fn gateway_iface_names() {
        assert_eq!(gateway_iface_name("cni0", 10).unwrap(), "cni0.10");
        assert_eq!(gateway_iface_name("averylongbr", 4094).unwrap_err().code.code(), 7);
    }
}
