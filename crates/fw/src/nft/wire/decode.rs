//! Set elements as the kernel reports them (`NFT_MSG_NEWSETELEM` replies to gets and
//! dumps), turned back into [`Elem`]s with the help of the set's declaration.

use super::abi::*;
use super::objects::concat_len;
use super::reader::{Attr, Message};
use super::writer::user_data_str;
use crate::nft::table::{Elem, ElemData, KeyPart, Set};
use crate::nft::types::{DataType, Value, Verdict};

/// One kernel record of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawElem {
    pub key: Vec<u8>,
    pub key_end: Option<Vec<u8>>,
    pub interval_end: bool,
    pub data: Option<RawData>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawData {
    Value(Vec<u8>),
    Verdict(i32, Option<String>),
}

fn data_value(a: Attr<'_>) -> Option<Vec<u8>> {
    a.nested().get(NFTA_DATA_VALUE).map(|v| v.data.to_vec())
}

fn raw_elem(a: Attr<'_>) -> Option<RawElem> {
    let attrs = a.nested();
    let key = data_value(attrs.get(NFTA_SET_ELEM_KEY)?)?;
    let key_end = attrs.get(NFTA_SET_ELEM_KEY_END).and_then(data_value);
    let flags = attrs.get(NFTA_SET_ELEM_FLAGS).and_then(|f| f.u32()).unwrap_or(0);
    let data = attrs.get(NFTA_SET_ELEM_DATA).and_then(|d| {
        let inner = d.nested();
        if let Some(v) = inner.get(NFTA_DATA_VALUE) {
            return Some(RawData::Value(v.data.to_vec()));
        }
        let verdict = inner.get(NFTA_DATA_VERDICT)?.nested();
        let code = verdict.get(NFTA_VERDICT_CODE)?.u32()? as i32;
        Some(RawData::Verdict(code, verdict.get(NFTA_VERDICT_CHAIN).map(|c| c.str())))
    });
    let comment = attrs.get(NFTA_SET_ELEM_USERDATA).and_then(|u| user_data_str(u.data, UDATA_COMMENT));
    Some(RawElem { key, key_end, interval_end: flags & NFT_SET_ELEM_INTERVAL_END != 0, data, comment })
}

/// The element records of a `NFT_MSG_NEWSETELEM` message.
pub fn raw_elems(msg: &Message<'_>) -> Vec<RawElem> {
    let Some(list) = msg.attrs().get(NFTA_SET_ELEM_LIST_ELEMENTS) else { return Vec::new() };
    list.nested().filter(|a| a.kind == NFTA_LIST_ELEM).filter_map(raw_elem).collect()
}

/// Splits concatenated bytes into values of `types`.
fn split(types: &[DataType], bytes: &[u8]) -> Option<Vec<Value>> {
    if bytes.len() < concat_len(types) {
        return None;
    }
    let mut out = Vec::with_capacity(types.len());
    let mut off = 0;
    for t in types {
        out.push(Value::from_bytes(*t, &bytes[off..])?);
        off += if types.len() == 1 { t.size() } else { t.size().div_ceil(4) * 4 };
    }
    Some(out)
}

fn predecessor(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for b in out.iter_mut().rev() {
        if *b == 0 {
            *b = 0xff;
        } else {
            *b -= 1;
            break;
        }
    }
    out
}

fn data_of(set: &Set, raw: &RawElem) -> Option<ElemData> {
    match raw.data.as_ref()? {
        RawData::Value(b) => Some(ElemData::Values(split(&set.data, b)?)),
        RawData::Verdict(code, chain) => Some(ElemData::Verdict(Verdict::from_code(*code, chain.clone())?)),
    }
}

fn part(lo: Value, hi: Value) -> KeyPart {
    if lo == hi { KeyPart::Exact(lo) } else { KeyPart::Range(lo, hi) }
}

/// Turns records into elements. Records of a single-field interval set come as starts and
/// ends in any order: they are sorted, and each start is paired with the end after it
/// (none: the range runs to the top of the key space). Undecodable records are skipped.
pub fn elems(set: &Set, mut raws: Vec<RawElem>) -> Vec<Elem> {
    let mut out = Vec::new();
    if set.interval && set.key.len() == 1 {
        raws.sort_by(|a, b| a.key.cmp(&b.key).then(b.interval_end.cmp(&a.interval_end)));
        let t = set.key[0];
        let mut i = 0;
        while i < raws.len() {
            let start = &raws[i];
            i += 1;
            if start.interval_end {
                continue;
            }
            let hi = match raws.get(i).filter(|r| r.interval_end) {
                Some(end) => {
                    i += 1;
                    predecessor(&end.key)
                }
                None => vec![0xff; t.size()],
            };
            let (Some(lo), Some(hi)) = (Value::from_bytes(t, &start.key), Value::from_bytes(t, &hi)) else {
                continue;
            };
            out.push(Elem {
                key: vec![part(lo, hi)],
                comment: start.comment.clone(),
                data: data_of(set, start),
            });
        }
        return out;
    }
    for raw in &raws {
        let Some(lows) = split(&set.key, &raw.key) else { continue };
        let highs = match &raw.key_end {
            Some(end) => match split(&set.key, end) {
                Some(h) => h,
                None => continue,
            },
            None => lows.clone(),
        };
        let key = lows.into_iter().zip(highs).map(|(lo, hi)| part(lo, hi)).collect();
        out.push(Elem { key, comment: raw.comment.clone(), data: data_of(set, raw) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(key: &[u8], end: bool, comment: Option<&str>) -> RawElem {
        RawElem {
            key: key.to_vec(),
            key_end: None,
            interval_end: end,
            data: None,
            comment: comment.map(Into::into),
        }
    }

    #[test]
    fn interval_records_pair_up() {
        let set = Set::new("s", &[DataType::Ipv4Addr]).intervals();
        // As the kernel dumps them: newest first, ends and starts mixed.
        let raws = vec![
            raw(&[200, 0, 0, 0], false, None),
            raw(&[11, 0, 0, 0], true, None),
            raw(&[10, 0, 0, 0], false, Some("a")),
        ];
        let got = elems(&set, raws);
        assert_eq!(got[0], Elem::new(vec![KeyPart::net("10.0.0.0/8".parse().unwrap())]).with_comment("a"));
        assert_eq!(
            got[1].key,
            [KeyPart::Range(
                Value::Addr("200.0.0.0".parse().unwrap()),
                Value::Addr("255.255.255.255".parse().unwrap())
            )]
        );
    }

    #[test]
    fn concatenations_and_maps() {
        let set = Set::map(
            "m",
            &[DataType::InetProto, DataType::InetService],
            &[DataType::Ipv4Addr, DataType::InetService],
        );
        let r = RawElem {
            key: vec![6, 0, 0, 0, 0x1f, 0x90, 0, 0],
            key_end: None,
            interval_end: false,
            data: Some(RawData::Value(vec![10, 88, 0, 2, 0, 80, 0, 0])),
            comment: Some("n/c/eth0".into()),
        };
        let got = elems(&set, vec![r]);
        let want = Elem::new(vec![KeyPart::Exact(Value::Proto(6)), KeyPart::Exact(Value::Port(8080))])
            .with_comment("n/c/eth0")
            .mapped_to(ElemData::Values(vec![Value::Addr("10.88.0.2".parse().unwrap()), Value::Port(80)]));
        assert_eq!(got, [want]);
    }
}
