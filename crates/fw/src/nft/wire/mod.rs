//! nf_tables over netlink, the bytes: a [`Batch`] becomes ONE nfnetlink batch (begin, the
//! changes, end), which the kernel commits as one transaction; requests read elements back.
//! Pure: encoding and decoding only, the socket is in [`super::conn`].

pub mod abi;
pub mod decode;
pub mod expr;
pub mod objects;
pub mod reader;
pub mod writer;

use std::collections::HashMap;

use abi::*;
use expr::{SetLookup, anonymous_sets, write_rule};
use objects::{Invalid, write_chain, write_elem, write_set, write_table};
use writer::{NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, Writer};

use super::batch::{Batch, Op};
use super::table::{Elem, Set, TableId};

/// Elements per message stay under this many bytes: an attribute's length is 16 bits.
const ELEMS_BYTES: usize = 48 * 1024;

fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

/// An encoded batch: the bytes, and which [`Op`] each message's sequence number came from.
#[derive(Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    pub seqs: Vec<(u32, usize)>,
}

struct Encoder {
    w: Writer,
    seq: u32,
    seqs: Vec<(u32, usize)>,
    op: usize,
    next_set_id: u32,
    /// Sets declared in this batch, per table: declaration and batch id.
    sets: HashMap<(TableId, String), (Set, u32)>,
}

struct TableSets<'a>(&'a HashMap<(TableId, String), (Set, u32)>, &'a TableId);

impl SetLookup for TableSets<'_> {
    fn set(&self, name: &str) -> Option<(&Set, Option<u32>)> {
        self.0.get(&(self.1.clone(), name.to_string())).map(|(s, id)| (s, Some(*id)))
    }
}

impl Encoder {
    fn begin(&mut self, msg: u16, flags: u16, family: u8) {
        self.seq += 1;
        self.seqs.push((self.seq, self.op));
        self.w.begin_msg(nft_type(msg), NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, family, 0);
    }

    fn set_id(&mut self) -> u32 {
        self.next_set_id += 1;
        self.next_set_id
    }

    /// Element messages for `elems`, split so each stays under [`ELEMS_BYTES`].
    fn elems(
        &mut self,
        msg: u16,
        flags: u16,
        t: &TableId,
        set: &Set,
        elems: &[Elem],
        id: Option<u32>,
    ) -> Result<(), Invalid> {
        let mut rest = elems.iter().peekable();
        while rest.peek().is_some() {
            self.begin(msg, flags, t.family.nfproto());
            self.w.put_str(NFTA_SET_ELEM_LIST_TABLE, &t.name);
            self.w.put_str(NFTA_SET_ELEM_LIST_SET, &set.name);
            if let Some(id) = id {
                self.w.put_u32(NFTA_SET_ELEM_LIST_SET_ID, id);
            }
            self.w.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
            while let Some(e) = rest.next_if(|_| self.w.msg_len() < ELEMS_BYTES) {
                write_elem(&mut self.w, set, e, msg == NFT_MSG_NEWSETELEM)?;
            }
            self.w.end_nest();
            self.w.end_msg();
        }
        Ok(())
    }

    fn add_set(&mut self, t: &TableId, set: &Set, anonymous: bool) -> Result<u32, Invalid> {
        let id = self.set_id();
        self.begin(NFT_MSG_NEWSET, NLM_F_CREATE, t.family.nfproto());
        write_set(&mut self.w, &t.name, set, id, anonymous);
        self.w.end_msg();
        self.elems(NFT_MSG_NEWSETELEM, NLM_F_CREATE, t, set, &set.elems, Some(id))?;
        if !anonymous {
            self.sets.insert((t.clone(), set.name.clone()), (set.decl(), id));
        }
        Ok(id)
    }

    fn op(&mut self, op: &Op) -> Result<(), Invalid> {
        match op {
            Op::AddTable(t) | Op::DeleteTable(t) => {
                let (msg, flags) = match op {
                    Op::AddTable(_) => (NFT_MSG_NEWTABLE, NLM_F_CREATE),
                    _ => (NFT_MSG_DELTABLE, 0),
                };
                self.begin(msg, flags, t.family.nfproto());
                write_table(&mut self.w, &t.name);
                self.w.end_msg();
                if msg == NFT_MSG_DELTABLE {
                    self.sets.retain(|(table, _), _| table != t);
                }
            }
            Op::AddChain(t, chain) => {
                self.begin(NFT_MSG_NEWCHAIN, NLM_F_CREATE, t.family.nfproto());
                write_chain(&mut self.w, t.family, &t.name, chain);
                self.w.end_msg();
            }
            Op::AddSet(t, set) => {
                self.add_set(t, set, false)?;
            }
            Op::AddRule(t, chain, rule) => {
                let mut anon_ids = Vec::new();
                for set in anonymous_sets(rule) {
                    anon_ids.push(self.add_set(t, &set, true)?);
                }
                let sets = std::mem::take(&mut self.sets);
                self.begin(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, t.family.nfproto());
                self.w.put_str(NFTA_RULE_TABLE, &t.name);
                self.w.put_str(NFTA_RULE_CHAIN, chain);
                let written = write_rule(&mut self.w, t.family, rule, &TableSets(&sets, t), &anon_ids);
                self.sets = sets;
                written?;
                self.w.end_msg();
            }
            Op::AddElems { table, set, elems, create } => {
                let flags = if *create { NLM_F_CREATE | NLM_F_EXCL } else { NLM_F_CREATE };
                self.elems(NFT_MSG_NEWSETELEM, flags, table, set, elems, None)?;
            }
            Op::DelElems { table, set, elems } => {
                self.elems(NFT_MSG_DELSETELEM, 0, table, set, elems, None)?
            }
        }
        Ok(())
    }
}

/// Encodes `batch` as one nfnetlink batch; every change asks for an ack, so a reply per
/// message tells what failed. Sequence numbers start after `first_seq`.
pub fn encode_batch(batch: &Batch, first_seq: u32) -> Result<Encoded, Invalid> {
    let mut e = Encoder {
        w: Writer::new(),
        seq: first_seq,
        seqs: Vec::new(),
        op: 0,
        next_set_id: 0,
        sets: HashMap::new(),
    };
    e.seq += 1;
    e.w.begin_msg(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, e.seq, 0, NFNL_SUBSYS_NFTABLES);
    e.w.end_msg();
    for (i, op) in batch.ops().iter().enumerate() {
        e.op = i;
        e.op(op)?;
    }
    e.seq += 1;
    e.w.begin_msg(NFNL_MSG_BATCH_END, NLM_F_REQUEST, e.seq, 0, NFNL_SUBSYS_NFTABLES);
    e.w.end_msg();
    Ok(Encoded { bytes: e.w.into_bytes(), seqs: e.seqs })
}

/// A request to get the elements with the keys of `elems`, one message each (a missing key
/// fails only its own request).
pub fn encode_get_elems(t: &TableId, set: &Set, elems: &[Elem], first_seq: u32) -> Result<Vec<u8>, Invalid> {
    let mut w = Writer::new();
    for (i, e) in elems.iter().enumerate() {
        w.begin_msg(
            nft_type(NFT_MSG_GETSETELEM),
            NLM_F_REQUEST | NLM_F_ACK,
            first_seq + i as u32,
            t.family.nfproto(),
            0,
        );
        w.put_str(NFTA_SET_ELEM_LIST_TABLE, &t.name);
        w.put_str(NFTA_SET_ELEM_LIST_SET, &set.name);
        w.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
        write_elem(&mut w, set, &e.key_only(), false)?;
        w.end_nest();
        w.end_msg();
    }
    Ok(w.into_bytes())
}

/// What to ask the kernel for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query<'a> {
    Table,
    Set(&'a str),
    Chains,
    Rules,
    Sets,
    Elems(&'a str),
}

/// A get (table, one set) or dump (chains, rules, sets, one set's elements) of table `t`.
pub fn encode_query(t: &TableId, q: Query<'_>, seq: u32) -> Vec<u8> {
    let (msg, dump) = match q {
        Query::Table => (NFT_MSG_GETTABLE, false),
        Query::Set(_) => (NFT_MSG_GETSET, false),
        Query::Chains => (NFT_MSG_GETCHAIN, true),
        Query::Rules => (NFT_MSG_GETRULE, true),
        Query::Sets => (NFT_MSG_GETSET, true),
        Query::Elems(_) => (NFT_MSG_GETSETELEM, true),
    };
    let flags = if dump { NLM_F_REQUEST | NLM_F_DUMP } else { NLM_F_REQUEST | NLM_F_ACK };
    let mut w = Writer::new();
    w.begin_msg(nft_type(msg), flags, seq, t.family.nfproto(), 0);
    match q {
        Query::Table => w.put_str(NFTA_TABLE_NAME, &t.name),
        Query::Set(name) => {
            w.put_str(NFTA_SET_TABLE, &t.name);
            w.put_str(NFTA_SET_NAME, name);
        }
        Query::Chains => w.put_str(NFTA_CHAIN_TABLE, &t.name),
        Query::Rules => w.put_str(NFTA_RULE_TABLE, &t.name),
        Query::Sets => w.put_str(NFTA_SET_TABLE, &t.name),
        Query::Elems(name) => {
            w.put_str(NFTA_SET_ELEM_LIST_TABLE, &t.name);
            w.put_str(NFTA_SET_ELEM_LIST_SET, name);
        }
    }
    w.end_msg();
    w.into_bytes()
}

#[cfg(test)]
mod tests;
