//! `macspoofchk`: frames entering the bridge from a pod's host-side veth must carry the pod's
//! own MAC as source. One bridge-family table with fixed rules; a pod is two owner-tagged
//! set elements (its port, and its port with its MAC).

use cni_spec::Attachment;
use fw::nft::owned::{Found, deletions, find_owned, find_where};
use fw::nft::{
    Batch, Chain, ChainType, Conn, DataType, Elem, Family, Field, Hook, KeyPart, Match, Rule, Set, Stmt,
    Table, Value, Verdict,
};

use crate::owner::is_stale;

const TABLE: &str = "twill_spoof";

/// The fixed table: frames from a guarded port whose source MAC is not the pod's are dropped.
pub fn table() -> Table {
    let mut t = Table::new(Family::Bridge, TABLE);
    t.sets.push(Set::new("guarded", &[DataType::Ifname]));
    t.sets.push(Set::new("allowed", &[DataType::Ifname, DataType::EtherAddr]));
    // Logged for twilld's flow logs, like the spoofchk drops (crate::guard).
    let log = Stmt::Log { group: fw::nflog::TWILL_GROUP, prefix: fw::nflog::spoof_prefix("mac") };
    let rule = Rule::new(
        vec![
            Match::in_set(&[Field::Iifname], "guarded"),
            Match::not_in_set(&[Field::Iifname, Field::EtherSaddr], "allowed"),
        ],
        vec![log, Stmt::Verdict(Verdict::Drop)],
    );
    t.chains.push(Chain::hooked("prerouting", ChainType::Filter, Hook::Prerouting, -300, vec![rule]));
    t
}

/// The elements guarding `port` for `mac`.
pub fn elems(owner: &str, port: &str, mac: [u8; 6]) -> Vec<(&'static str, Elem)> {
    let port = KeyPart::Exact(Value::Ifname(port.to_string()));
    vec![
        ("guarded", Elem::new(vec![port.clone()]).with_comment(owner)),
        ("allowed", Elem::new(vec![port, KeyPart::Exact(Value::Ether(mac))]).with_comment(owner)),
    ]
}

pub fn add_batch(owner: &str, port: &str, mac: [u8; 6]) -> Batch {
    let t = table();
    let mut batch = Batch::new();
    for (set, elem) in elems(owner, port, mac) {
        if let Some(set) = t.set(set) {
            batch.add_elems(&t.id(), set, vec![elem]);
        }
    }
    batch
}

/// The deletions of `owner`'s elements: by port and MAC when known, else by reading the sets.
pub fn teardown_batch(
    conn: &mut Conn,
    owner: &str,
    known: Option<(&str, [u8; 6])>,
) -> Result<Batch, fw::nft::Error> {
    let found: Vec<Found> = match known {
        Some((port, mac)) => find_owned(conn, &table(), &elems(owner, port, mac), owner)?,
        None => find_where(conn, &table().id(), |o| o == owner)?,
    };
    Ok(deletions(&table().id(), &found))
}

pub fn gc_batch(conn: &mut Conn, network: &str, valid: &[Attachment]) -> Result<Batch, fw::nft::Error> {
    let found = find_where(conn, &table().id(), |o| is_stale(o, network, valid))?;
    Ok(deletions(&table().id(), &found))
}

#[cfg(test)]
mod tests {
    #[test]
    fn elements_quote_the_port() {
        let text = super::add_batch("n/c/eth0", "veth0a1b2c3d", [2, 0, 0, 0, 0, 1]).text();
        assert!(text.contains("guarded { \"veth0a1b2c3d\" comment \"n/c/eth0\" }"), "{text}");
        assert!(text.contains("allowed { \"veth0a1b2c3d\" . 02:00:00:00:00:01 comment"), "{text}");
        let table = super::table().text();
        let rule = "iifname @guarded iifname . ether saddr != @allowed log prefix \"twill denied spoof mac\" group 6120 drop";
        assert!(table.contains(rule), "{table}");
    }
}
