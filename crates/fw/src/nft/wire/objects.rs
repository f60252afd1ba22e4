//! The attributes of tables, chains, sets and set elements, as nft writes them (so that
//! `nft list` prints what twill wrote exactly as if nft had written it).

use super::abi::*;
use super::writer::{UserData, Writer};
use crate::nft::table::{Chain, Elem, ElemData, KeyPart, Set};
use crate::nft::types::{DataType, Value};

/// Why an object cannot be encoded (a bug in whoever built it, or bad input passed through).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// Bytes of a key or value made of `types`: one field as it is, a concatenation with each
/// field padded to 4 bytes (one 32-bit register each).
pub fn concat_len(types: &[DataType]) -> usize {
    match types {
        [one] => one.size(),
        many => many.iter().map(|t| pad4(t.size())).sum(),
    }
}

/// nft's number for a (concatenated) type: 6 bits per field.
pub fn type_id(types: &[DataType]) -> u32 {
    types.iter().fold(0, |acc, t| (acc << 6) | t.id())
}

/// The bytes of `values`, laid out as [`concat_len`] describes.
pub fn concat_bytes(values: &[&Value]) -> Vec<u8> {
    let single = values.len() == 1;
    let mut out = Vec::new();
    for v in values {
        out.extend(v.bytes());
        if !single {
            out.resize(pad4(out.len()), 0);
        }
    }
    out
}

/// Adds one to a big-endian number; `None` when it overflows (the range ran to the end).
fn successor(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = bytes.to_vec();
    for b in out.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return Some(out);
        }
    }
    None
}

fn check_key(set: &Set, e: &Elem) -> Result<(), Invalid> {
    let types: Vec<DataType> = e.key.iter().map(KeyPart::data_type).collect();
    if types != set.key {
        return Err(Invalid(format!(
            "element of set {} has key types {types:?}, the set {:?}",
            set.name, set.key
        )));
    }
    let ranged = e.key.iter().any(|p| matches!(p, KeyPart::Range(..)));
    if ranged && !set.interval {
        return Err(Invalid(format!("set {} has no interval flag: an element cannot be a range", set.name)));
    }
    Ok(())
}

pub fn write_table(w: &mut Writer, name: &str) {
    w.put_str(NFTA_TABLE_NAME, name);
    w.put_u32(NFTA_TABLE_FLAGS, 0);
}

pub fn write_chain(w: &mut Writer, family: crate::nft::types::Family, table: &str, chain: &Chain) {
    w.put_str(NFTA_CHAIN_TABLE, table);
    w.put_str(NFTA_CHAIN_NAME, &chain.name);
    if let Some(base) = &chain.base {
        w.put_str(NFTA_CHAIN_TYPE, base.kind.name());
        w.put_u32(NFTA_CHAIN_POLICY, if base.drop { 0 } else { 1 });
        w.begin_nest(NFTA_CHAIN_HOOK);
        w.put_u32(NFTA_HOOK_HOOKNUM, base.hook.number(family));
        w.put_u32(NFTA_HOOK_PRIORITY, base.priority as u32);
        if let Some(dev) = &base.device {
            w.put_str(NFTA_HOOK_DEV, dev);
        }
        w.end_nest();
    }
    if let Some(c) = &chain.comment {
        let mut u = UserData::new();
        u.put_str(UDATA_COMMENT, c);
        w.put(NFTA_CHAIN_USERDATA, u.bytes());
    }
}

/// nft's marker for a concatenated `type` in a set's user data (a "typeof" record naming
/// the concatenation with no per-field expressions), copied from what nft 1.0.6 writes.
const CONCAT_TYPEOF: [u8; 8] = [0, 4, 13, 0, 0, 0, 1, 0];

fn set_user_data(set: &Set) -> UserData {
    let order = |ts: &[DataType]| if ts.len() == 1 { ts[0].byteorder() } else { 0 };
    let mut u = UserData::new();
    u.put_u32(UDATA_SET_KEYBYTEORDER, order(&set.key));
    if set.is_map() {
        u.put_u32(UDATA_SET_DATABYTEORDER, if set.is_vmap() { 0 } else { order(&set.data) });
    }
    if set.key.len() > 1 {
        u.put(UDATA_SET_KEY_TYPEOF, &CONCAT_TYPEOF);
    }
    if set.data.len() > 1 {
        u.put(UDATA_SET_DATA_TYPEOF, &CONCAT_TYPEOF);
    }
    if set.is_map() {
        u.put_u32(UDATA_SET_DATA_INTERVAL, 0);
    }
    u
}

/// A named set's declaration; `anonymous` makes it a constant set private to one rule.
pub fn write_set(w: &mut Writer, table: &str, set: &Set, id: u32, anonymous: bool) {
    let concat_interval = set.interval && set.key.len() > 1;
    let mut flags = if set.interval { NFT_SET_INTERVAL } else { 0 };
    if set.is_map() {
        flags |= NFT_SET_MAP;
    }
    if concat_interval {
        flags |= NFT_SET_CONCAT;
    }
    if anonymous {
        flags |= NFT_SET_ANONYMOUS | NFT_SET_CONSTANT;
    }
    w.put_str(NFTA_SET_TABLE, table);
    w.put_str(NFTA_SET_NAME, &set.name);
    w.put_u32(NFTA_SET_FLAGS, flags);
    w.put_u32(NFTA_SET_KEY_TYPE, type_id(&set.key));
    w.put_u32(NFTA_SET_KEY_LEN, concat_len(&set.key) as u32);
    if set.is_vmap() {
        w.put_u32(NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
        w.put_u32(NFTA_SET_DATA_LEN, 0);
    } else if set.is_map() {
        w.put_u32(NFTA_SET_DATA_TYPE, type_id(&set.data));
        w.put_u32(NFTA_SET_DATA_LEN, concat_len(&set.data) as u32);
    }
    w.put_u32(NFTA_SET_ID, id);
    if concat_interval || anonymous {
        w.begin_nest(NFTA_SET_DESC);
        if anonymous {
            w.put_u32(NFTA_SET_DESC_SIZE, set.elems.len() as u32);
        }
        if concat_interval {
            w.begin_nest(NFTA_SET_DESC_CONCAT);
            for t in &set.key {
                w.begin_nest(NFTA_LIST_ELEM);
                w.put_u32(NFTA_SET_FIELD_LEN, t.size() as u32);
                w.end_nest();
            }
            w.end_nest();
        }
        w.end_nest();
    }
    w.put(NFTA_SET_USERDATA, set_user_data(set).bytes());
}

fn write_elem_data(w: &mut Writer, data: &ElemData) {
    match data {
        ElemData::Values(vs) => w.put_data(NFTA_SET_ELEM_DATA, &concat_bytes(&vs.iter().collect::<Vec<_>>())),
        ElemData::Verdict(v) => {
            w.begin_nest(NFTA_SET_ELEM_DATA);
            write_verdict(w, v);
            w.end_nest();
        }
    }
}

/// `NFTA_DATA_VERDICT { code, chain }`.
pub fn write_verdict(w: &mut Writer, v: &crate::nft::types::Verdict) {
    w.begin_nest(NFTA_DATA_VERDICT);
    w.put_u32(NFTA_VERDICT_CODE, v.code() as u32);
    if let Some(chain) = v.chain() {
        w.put_str(NFTA_VERDICT_CHAIN, chain);
    }
    w.end_nest();
}

/// One record of an element as the kernel stores it.
struct Record<'a> {
    key: Vec<u8>,
    key_end: Option<Vec<u8>>,
    interval_end: bool,
    open: bool,
    elem: Option<&'a Elem>,
}

/// The kernel records of one element. Concatenated interval sets take start and end in one
/// record; single-field interval sets take a start record and an end record holding the
/// first value after the range (none when the range runs to the end of the key space).
fn records<'a>(set: &Set, e: &'a Elem) -> Result<Vec<Record<'a>>, Invalid> {
    check_key(set, e)?;
    let lows: Vec<&Value> = e.key.iter().map(|p| p.bounds().0).collect();
    let highs: Vec<&Value> = e.key.iter().map(|p| p.bounds().1).collect();
    let key = concat_bytes(&lows);
    let whole = |key, key_end, interval_end, open| Record { key, key_end, interval_end, open, elem: Some(e) };
    if !set.interval {
        return Ok(vec![whole(key, None, false, false)]);
    }
    if set.key.len() > 1 {
        return Ok(vec![whole(key, Some(concat_bytes(&highs)), false, false)]);
    }
    if set.key[0].byteorder() != 2 {
        return Err(Invalid(format!("interval set {} needs a big-endian key type", set.name)));
    }
    match successor(&concat_bytes(&highs)) {
        None => Ok(vec![whole(key, None, false, true)]),
        Some(end) => Ok(vec![
            whole(key, None, false, false),
            Record { key: end, key_end: None, interval_end: true, open: false, elem: None },
        ]),
    }
}

/// Writes the records of `e` as list elements; `with_payload` adds data, comment and flags
/// (adding) or leaves only what identifies the record (deleting, looking up).
pub fn write_elem(w: &mut Writer, set: &Set, e: &Elem, with_payload: bool) -> Result<(), Invalid> {
    for r in records(set, e)? {
        w.begin_nest(NFTA_LIST_ELEM);
        w.put_data(NFTA_SET_ELEM_KEY, &r.key);
        if let Some(end) = &r.key_end {
            w.put_data(NFTA_SET_ELEM_KEY_END, end);
        }
        if r.interval_end {
            w.put_u32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        }
        if let (true, Some(e)) = (with_payload, r.elem) {
            if let Some(data) = &e.data {
                write_elem_data(w, data);
            }
            let mut u = UserData::new();
            if let Some(c) = &e.comment {
                u.put_str(UDATA_COMMENT, c);
            }
            if r.open {
                u.put_u32(UDATA_SET_ELEM_FLAGS, SET_ELEM_F_INTERVAL_OPEN);
            }
            if !u.is_empty() {
                w.put(NFTA_SET_ELEM_USERDATA, u.bytes());
            }
        }
        w.end_nest();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenated_types_and_lengths() {
        let key = [DataType::Ipv4Addr, DataType::InetProto, DataType::InetService];
        assert_eq!(type_id(&key), 0x730d);
        assert_eq!(concat_len(&key), 12);
        assert_eq!(type_id(&[DataType::Ifname, DataType::Ifname]), 0xa69);
        assert_eq!(concat_len(&[DataType::InetService]), 2);
        let b = concat_bytes(&[&Value::Proto(6), &Value::Port(8080)]);
        assert_eq!(b, [6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
    }

    #[test]
    fn single_field_intervals_have_start_and_end_records() {
        let set = Set::new("s", &[DataType::Ipv4Addr]).intervals();
        let e = Elem::new(vec![KeyPart::net("10.0.0.0/8".parse().unwrap())]);
        let r = records(&set, &e).unwrap();
        assert_eq!((r[0].key.as_slice(), r[0].interval_end), (&[10, 0, 0, 0][..], false));
        assert_eq!((r[1].key.as_slice(), r[1].interval_end), (&[11, 0, 0, 0][..], true));
        let all = Elem::new(vec![KeyPart::net("0.0.0.0/0".parse().unwrap())]);
        let r = records(&set, &all).unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].open);
    }

    #[test]
    fn concatenated_intervals_carry_their_end() {
        let set = Set::new("m", &[DataType::Ipv4Addr, DataType::Ipv4Addr]).intervals();
        let e = Elem::new(vec![
            KeyPart::net("10.88.0.0/24".parse().unwrap()),
            KeyPart::addr("10.88.0.2".parse().unwrap()),
        ]);
        let r = records(&set, &e).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].key, [10, 88, 0, 0, 10, 88, 0, 2]);
        assert_eq!(r[0].key_end.as_deref(), Some(&[10, 88, 0, 255, 10, 88, 0, 2][..]));
    }

    #[test]
    fn mismatched_elements_are_refused() {
        let set = Set::new("s", &[DataType::Ipv4Addr]);
        let v6 = Elem::new(vec![KeyPart::addr("fd00::1".parse().unwrap())]);
        assert!(records(&set, &v6).is_err());
        let range = Elem::new(vec![KeyPart::net("10.0.0.0/8".parse().unwrap())]);
        assert!(records(&set, &range).is_err());
    }
}
