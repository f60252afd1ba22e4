//! `macspoofchk`: frames entering the bridge from a pod's host-side veth must carry the pod's
//! own MAC as source. One bridge-family table with fixed rules; a pod is two owner-tagged
//! set elements (its port, and its port with its MAC).

use cni_spec::{Attachment, Error};
use fw::{Batch, OwnedTable};

use crate::kernel::fw_error;
use crate::owner::is_stale;

const TABLE: &str = "twill_spoof";

fn definition() -> String {
    format!(
        "table bridge {TABLE} {{
  set guarded {{ type ifname; }}
  set allowed {{ type ifname . ether_addr; }}
  chain prerouting {{
    type filter hook prerouting priority -300; policy accept;
    iifname @guarded iifname . ether saddr != @allowed drop
  }}
}}"
    )
}

fn table() -> OwnedTable {
    OwnedTable { family: "bridge", name: TABLE, definition: definition() }
}

/// The element statements guarding `port` for `mac`.
pub fn elements(owner: &str, port: &str, mac: &str) -> Batch {
    let mut batch = Batch::new();
    batch.add(format!("add element bridge {TABLE} guarded {{ \"{port}\" comment \"{owner}\" }}"));
    batch.add(format!("add element bridge {TABLE} allowed {{ \"{port}\" . {mac} comment \"{owner}\" }}"));
    batch
}

pub fn setup(owner: &str, port: &str, mac: &str) -> Result<(), Error> {
    table().add(&elements(owner, port, mac)).map_err(fw_error)
}

pub fn teardown(owner: &str) -> Result<(), Error> {
    table().remove_owner(owner).map(drop).map_err(fw_error)
}

pub fn gc(network: &str, valid: &[Attachment]) -> Result<(), Error> {
    table().remove_where(|o| is_stale(o, network, valid)).map(drop).map_err(fw_error)
}

#[cfg(test)]
mod tests {
    #[test]
    fn elements_quote_the_port() {
        let text = super::elements("n/c/eth0", "veth0a1b2c3d", "02:00:00:00:00:01").text();
        assert!(text.contains("guarded { \"veth0a1b2c3d\" comment \"n/c/eth0\" }"));
        assert!(text.contains("allowed { \"veth0a1b2c3d\" . 02:00:00:00:00:01 comment"));
    }
}
