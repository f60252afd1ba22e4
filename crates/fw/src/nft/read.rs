//! Reading nf_tables back: a few elements by key (what CHECK and DEL need: no listing), all
//! elements of one set (GC), whether a table or set exists, and a fingerprint of a whole
//! table that ignores counters (so a daemon can tell whether someone changed it).

use super::conn::{Conn, Error};
use super::table::{Elem, Set, TableId};
use super::types::DataType;
use super::wire::abi::*;
use super::wire::reader::{Attrs, Messages};
use super::wire::{self, Query, decode};

impl Conn {
    /// The elements of `set` whose keys `keys` name, each as the kernel holds it (data and
    /// comment included), or `None` where there is none; a missing table or set has none.
    pub fn get_elems(
        &mut self,
        table: &TableId,
        set: &Set,
        keys: &[Elem],
    ) -> Result<Vec<Option<Elem>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let first = self.next_seq(keys.len() as u32);
        let bytes = wire::encode_get_elems(table, set, keys, first)?;
        let replies = self.exchange(&bytes, first, keys.len() as u32)?;
        let mut out = Vec::with_capacity(keys.len());
        for (key, reply) in keys.iter().zip(replies) {
            match reply {
                Ok(msgs) => {
                    let raws = msgs
                        .iter()
                        .flat_map(|m| Messages(m).flatten().flat_map(|m| decode::raw_elems(&m)))
                        .collect();
                    let found = decode::elems(set, raws);
                    // An interval lookup answers with the range that holds the key.
                    out.push(found.into_iter().find(|e| e.key == key.key));
                }
                Err((libc::ENOENT, _)) => out.push(None),
                Err((errno, detail)) => {
                    let op = format!("get element {table} {} {}", set.name, super::text::elem_text(key));
                    return Err(Error::Kernel { op, errno, detail });
                }
            }
        }
        Ok(out)
    }

    /// Every element of `set` (empty when the table or set is missing).
    pub fn elems(&mut self, table: &TableId, set: &Set) -> Result<Vec<Elem>, Error> {
        let Some(msgs) = self.query(table, Query::Elems(&set.name))? else { return Ok(Vec::new()) };
        let raws =
            msgs.iter().flat_map(|m| Messages(m).flatten().flat_map(|m| decode::raw_elems(&m))).collect();
        Ok(decode::elems(set, raws))
    }

    /// The named sets and maps of a table, as declared in the kernel (without elements);
    /// sets of types twill does not model are left out.
    pub fn sets(&mut self, table: &TableId) -> Result<Vec<Set>, Error> {
        let msgs = self.query(table, Query::Sets)?.unwrap_or_default();
        Ok(msgs
            .iter()
            .flat_map(|m| Messages(m).flatten().filter_map(|m| set_decl(m.attrs())).collect::<Vec<_>>())
            .collect())
    }

    pub fn has_table(&mut self, table: &TableId) -> Result<bool, Error> {
        Ok(self.query(table, Query::Table)?.is_some())
    }

    pub fn has_set(&mut self, table: &TableId, name: &str) -> Result<bool, Error> {
        Ok(self.query(table, Query::Set(name))?.is_some())
    }

    /// A hash of everything in the table (chains, rules, sets, elements) except what changes
    /// by itself (counters, reference counts, handles); `None` when there is no table.
    pub fn fingerprint(&mut self, table: &TableId) -> Result<Option<u64>, Error> {
        let Some(tables) = self.query(table, Query::Table)? else { return Ok(None) };
        let mut h = Fnv::default();
        for (q, skip) in [
            (Query::Chains, &[NFTA_CHAIN_HANDLE_ATTR, NFTA_CHAIN_USE, NFTA_CHAIN_COUNTERS][..]),
            (Query::Rules, &[NFTA_RULE_HANDLE][..]),
            (Query::Sets, &[NFTA_SET_HANDLE_ATTR][..]),
        ] {
            let msgs = self.query(table, q)?.unwrap_or_default();
            hash_messages(&mut h, &msgs, skip);
        }
        hash_messages(&mut h, &tables, &[NFTA_TABLE_USE, NFTA_TABLE_HANDLE_ATTR]);
        let sets = self.query(table, Query::Sets)?.unwrap_or_default();
        for name in set_names(&sets) {
            let msgs = self.query(table, Query::Elems(&name))?.unwrap_or_default();
            hash_messages(&mut h, &msgs, &[]);
        }
        Ok(Some(h.0))
    }
}

/// Splits nft's concatenated type number into types (6 bits each, no type is 0).
fn types(mut id: u32) -> Option<Vec<DataType>> {
    if id == NFT_DATA_VERDICT {
        return Some(vec![DataType::Verdict]);
    }
    let mut out = Vec::new();
    while id != 0 {
        out.insert(0, DataType::from_id(id & 0x3f)?);
        id >>= 6;
    }
    Some(out)
}

fn set_decl(attrs: Attrs<'_>) -> Option<Set> {
    let flags = attrs.get(NFTA_SET_FLAGS).and_then(|a| a.u32()).unwrap_or(0);
    if flags & NFT_SET_ANONYMOUS != 0 {
        return None;
    }
    let name = attrs.get(NFTA_SET_NAME)?.str();
    let key = types(attrs.get(NFTA_SET_KEY_TYPE)?.u32()?)?;
    let data = match attrs.get(NFTA_SET_DATA_TYPE).and_then(|a| a.u32()) {
        Some(id) => types(id)?,
        None => Vec::new(),
    };
    Some(Set { name, key, data, interval: flags & NFT_SET_INTERVAL != 0, elems: Vec::new() })
}

const NFTA_CHAIN_HANDLE_ATTR: u16 = 2;
const NFTA_TABLE_HANDLE_ATTR: u16 = 4;
const NFTA_SET_HANDLE_ATTR: u16 = 16;

fn set_names(msgs: &[Vec<u8>]) -> Vec<String> {
    msgs.iter()
        .flat_map(|m| {
            Messages(m)
                .flatten()
                .filter_map(|m| m.attrs().get(NFTA_SET_NAME).map(|a| a.str()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// FNV-1a, 64 bits: stable across runs, unlike std's hasher.
#[derive(Default)]
struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        if self.0 == 0 {
            self.0 = 0xcbf2_9ce4_8422_2325;
        }
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn hash_messages(h: &mut Fnv, msgs: &[Vec<u8>], skip: &[u16]) {
    for raw in msgs {
        for m in Messages(raw).flatten() {
            h.write(&m.kind.to_ne_bytes());
            let rule = m.kind & 0xff == NFT_MSG_NEWRULE;
            for a in m.attrs().filter(|a| !skip.contains(&a.kind)) {
                h.write(&a.kind.to_ne_bytes());
                match rule && a.kind == NFTA_RULE_EXPRESSIONS {
                    true => a.nested().for_each(|e| hash_expr(h, e.nested())),
                    false => h.write(a.data),
                }
            }
        }
    }
}

/// Hashes one expression, leaving out a counter's data: its packet and byte counts change
/// with traffic.
fn hash_expr(h: &mut Fnv, attrs: Attrs<'_>) {
    let counter = attrs.get(NFTA_EXPR_NAME).is_some_and(|n| n.str() == "counter");
    for a in attrs.filter(|a| !(counter && a.kind == NFTA_EXPR_DATA)) {
        h.write(&a.kind.to_ne_bytes());
        h.write(a.data);
    }
}
