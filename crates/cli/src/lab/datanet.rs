//! The lab's data network: a second switch in the underlay namespace, apart from the one
//! node-to-node and pod traffic takes, with every node plugged in as `data0`. It carries no
//! addresses of its own; it is the master that macvlan (and similar) secondary networks of
//! multi-network pods sit on, so pods on different nodes meet over it as they would on a
//! storage or telco network beside a cluster's pod network.

use anyhow::{Context, Result};
use netns::NetNs;

use super::names::Names;
use super::state::NodeState;

/// Every node's link to the data network.
pub const DATA_IFACE: &str = "data0";
/// The data switch, inside the underlay namespace (the pod network's switches are `brN`).
const DATA_BRIDGE: &str = "data";

/// A node's port on the data switch.
fn port(index: u8) -> String {
    format!("dnode{index}")
}

/// Plugs every node into the data switch (created on first use); idempotent per node.
pub fn apply_data_network(names: &Names, nodes: &[NodeState]) -> Result<()> {
    let underlay = NetNs::open(netns::named_path(&names.underlay()))?;
    let nl = nl::Handle::in_netns(&underlay)?;
    let bridge = nl.bridge_ensure(DATA_BRIDGE, None, None)?;
    nl.link_set_up(bridge.index, true)?;
    for node in nodes {
        let ns = NetNs::open(netns::named_path(&node.netns))?;
        let name = port(node.index);
        nl.veth_add(&name, DATA_IFACE, Some(&ns), None, None, None)
            .with_context(|| format!("plug {} into the data network", node.name))?;
        let p = nl.link_get(&name)?.with_context(|| format!("veth {name} vanished"))?;
        nl.link_set_master(p.index, Some(bridge.index))?;
        nl.link_set_up(p.index, true)?;
        let inside = nl::Handle::in_netns(&ns)?;
        let data =
            inside.link_get(DATA_IFACE)?.with_context(|| format!("no {DATA_IFACE} in {}", node.netns))?;
        inside.link_set_up(data.index, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_fit_interface_names() {
        assert_eq!(port(200), "dnode200");
        assert!(port(u8::MAX).len() <= 15);
    }
}
