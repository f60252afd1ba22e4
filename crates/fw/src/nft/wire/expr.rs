//! Compiling a [`Rule`] to the kernel's expressions (the VM nft targets): loads into
//! registers, comparisons, set lookups and statements, with the protocol dependencies nft
//! would add (so `nft list` prints the rule as written).

use super::abi::*;
use super::objects::Invalid;
use super::writer::{UserData, Writer};
use crate::nft::rule::{Field, L3, LOG_PREFIX_MAX, Match, Operand, Rule, Source, Stmt};
use crate::nft::table::{Elem, KeyPart, Set};
use crate::nft::types::{DataType, Family, Value};

const NFT_REG_VERDICT: u32 = 0;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NFT_LOOKUP_F_INV: u32 = 1;
const NFT_BYTEORDER_HTON: u32 = 1;
const NFT_NAT_DNAT: u32 = 1;
const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
const NFTA_FIB_F_DADDR: u32 = 2;
const NFTA_LOG_GROUP: u16 = 1;
const NFTA_LOG_PREFIX: u16 = 2;

/// A register by its offset in 32-bit words from the first data register, written as nft
/// does: the 16-byte register number where the offset is aligned to one, else the 4-byte one.
fn reg(words: usize) -> u32 {
    if words.is_multiple_of(4) { 1 + (words / 4) as u32 } else { 8 + words as u32 }
}

/// Where the sets a rule looks up come from: their declarations (for their shape) and the
/// batch-local ids of those created in the same batch.
pub trait SetLookup {
    fn set(&self, name: &str) -> Option<(&Set, Option<u32>)>;
}

struct Compiler<'a> {
    w: &'a mut Writer,
    family: Family,
    l3: Option<L3>,
    l4: Option<u8>,
}

impl Compiler<'_> {
    fn expr(&mut self, name: &str, body: impl FnOnce(&mut Writer)) {
        self.w.begin_nest(NFTA_LIST_ELEM);
        self.w.put_str(NFTA_EXPR_NAME, name);
        self.w.begin_nest(NFTA_EXPR_DATA);
        body(self.w);
        self.w.end_nest();
        self.w.end_nest();
    }

    fn cmp(&mut self, sreg: u32, op: u32, bytes: &[u8]) {
        self.expr("cmp", |w| {
            w.put_u32(1, sreg);
            w.put_u32(2, op);
            w.put_data(3, bytes);
        });
    }

    fn meta(&mut self, dreg: u32, key: u32) {
        self.expr("meta", |w| {
            w.put_u32(2, key);
            w.put_u32(1, dreg);
        });
    }

    fn payload(&mut self, dreg: u32, base: u32, offset: u32, len: u32) {
        self.expr("payload", |w| {
            w.put_u32(1, dreg);
            w.put_u32(2, base);
            w.put_u32(3, offset);
            w.put_u32(4, len);
        });
    }

    /// Loads `field` (its first `len` bytes, for a payload) into `dreg`.
    fn load(&mut self, field: Field, dreg: u32, len: Option<u32>) {
        match field.spec().source {
            Source::Meta(key) => self.meta(dreg, key),
            Source::Payload(base, offset, full) => self.payload(dreg, base, offset, len.unwrap_or(full)),
            Source::Ct(key) => self.expr("ct", |w| {
                w.put_u32(2, key);
                w.put_u32(1, dreg);
            }),
            Source::FibDaddrType => self.expr("fib", |w| {
                w.put_u32(1, dreg);
                w.put_u32(2, NFT_FIB_RESULT_ADDRTYPE);
                w.put_u32(3, NFTA_FIB_F_DADDR);
            }),
        }
    }

    /// The implicit protocol checks a field needs, unless the rule already made them.
    fn depend(&mut self, field: Field) -> Result<(), Invalid> {
        let spec = field.spec();
        if let Some(l3) = spec.l3.filter(|l3| self.l3 != Some(*l3)) {
            match (self.family, l3) {
                (Family::Inet, L3::Ipv4) => self.eq_value(Field::NfProto, &Value::NfProto(2)),
                (Family::Inet, L3::Ipv6) => self.eq_value(Field::NfProto, &Value::NfProto(10)),
                (Family::Bridge | Family::Netdev, L3::Ipv4) => {
                    self.eq_value(Field::Protocol, &Value::EtherType(0x0800))
                }
                (Family::Bridge | Family::Netdev, L3::Ipv6) => {
                    self.eq_value(Field::Protocol, &Value::EtherType(0x86dd))
                }
                // nft uses the ether type in the bridge family, `meta protocol` in netdev.
                (Family::Bridge, L3::Arp) => self.eq_value(Field::EtherType, &Value::EtherType(0x0806)),
                (Family::Netdev, L3::Arp) => self.eq_value(Field::Protocol, &Value::EtherType(0x0806)),
                (Family::Ip, L3::Ipv4) | (Family::Ip6, L3::Ipv6) | (Family::Arp, L3::Arp) => {}
                (family, l3) => {
                    return Err(Invalid(format!(
                        "{} cannot be matched in a {family} table ({l3:?})",
                        spec.text
                    )));
                }
            }
            self.l3 = Some(l3);
        }
        if let Some(proto) = spec.l4.filter(|p| self.l4 != Some(*p)) {
            self.eq_value(Field::L4Proto, &Value::Proto(proto));
            self.l4 = Some(proto);
        }
        Ok(())
    }

    fn eq_value(&mut self, field: Field, v: &Value) {
        self.load(field, reg(0), None);
        self.cmp(reg(0), NFT_CMP_EQ, &v.bytes());
    }

    /// Remembers what an explicit match established, so no dependency repeats it.
    fn note(&mut self, m: &Match) {
        if let Match::Is { field, negate: false, operand: Operand::Value(v) } = m {
            match (field, v) {
                (Field::NfProto, Value::NfProto(2)) | (Field::Protocol, Value::EtherType(0x0800)) => {
                    self.l3 = Some(L3::Ipv4)
                }
                (Field::NfProto, Value::NfProto(10)) | (Field::Protocol, Value::EtherType(0x86dd)) => {
                    self.l3 = Some(L3::Ipv6)
                }
                (Field::EtherType | Field::Protocol, Value::EtherType(0x0806)) => self.l3 = Some(L3::Arp),
                (Field::L4Proto, Value::Proto(p)) => self.l4 = Some(*p),
                _ => {}
            }
        }
    }

    /// Loads a concatenation into consecutive registers from reg 1; fields of host byte
    /// order are converted for interval sets, whose ranges compare big-endian bytes.
    fn load_concat(&mut self, fields: &[Field], interval: bool) -> Result<usize, Invalid> {
        for f in fields {
            self.depend(*f)?;
        }
        let mut words = 0;
        for f in fields {
            let t = f.spec().data_type;
            let r = reg(words);
            self.load(*f, r, None);
            if interval && fields.len() > 1 && t.byteorder() == 1 && t != DataType::Ifname {
                let len = t.size() as u32;
                self.expr("byteorder", |w| {
                    w.put_u32(1, r);
                    w.put_u32(2, r);
                    w.put_u32(3, NFT_BYTEORDER_HTON);
                    w.put_u32(4, len);
                    w.put_u32(5, len.max(2));
                });
            }
            words += t.size().div_ceil(4);
        }
        Ok(words)
    }

    fn lookup(&mut self, set: &str, id: Option<u32>, dreg: Option<u32>, negate: bool) {
        self.expr("lookup", |w| {
            w.put_u32(2, reg(0));
            w.put_str(1, set);
            if let Some(id) = id {
                w.put_u32(4, id);
            }
            if let Some(d) = dreg {
                w.put_u32(3, d);
            }
            if negate {
                w.put_u32(5, NFT_LOOKUP_F_INV);
            }
        });
    }

    fn is(&mut self, field: Field, negate: bool, operand: &Operand) -> Result<(), Invalid> {
        self.depend(field)?;
        let op = if negate { NFT_CMP_NEQ } else { NFT_CMP_EQ };
        match operand {
            Operand::Value(v) => self.eq_or_ne(field, op, v),
            Operand::Prefix(net) => {
                let len = u32::from(net.prefix_len());
                let bytes = Value::Addr(net.network()).bytes();
                if len == 0 {
                    return Err(Invalid(format!(
                        "{} {net}: a /0 prefix matches everything",
                        field.spec().text
                    )));
                }
                if len.is_multiple_of(8) {
                    self.load(field, reg(0), Some(len / 8));
                    self.cmp(reg(0), op, &bytes[..(len / 8) as usize]);
                } else {
                    self.load(field, reg(0), None);
                    let mask = prefix_mask(bytes.len(), len);
                    self.expr("bitwise", |w| {
                        w.put_u32(1, reg(0));
                        w.put_u32(2, reg(0));
                        w.put_u32(3, mask.len() as u32);
                        w.put_data(4, &mask);
                        w.put_data(5, &vec![0; mask.len()]);
                    });
                    self.cmp(reg(0), op, &bytes);
                }
                Ok(())
            }
            Operand::Range(lo, hi) => {
                self.load(field, reg(0), None);
                self.expr("range", |w| {
                    w.put_u32(1, reg(0));
                    w.put_u32(2, op);
                    w.put_data(3, &lo.bytes());
                    w.put_data(4, &hi.bytes());
                });
                Ok(())
            }
        }
    }

    fn eq_or_ne(&mut self, field: Field, op: u32, v: &Value) -> Result<(), Invalid> {
        if v.data_type() != field.spec().data_type {
            return Err(Invalid(format!("{} cannot be compared with {v}", field.spec().text)));
        }
        self.load(field, reg(0), None);
        self.cmp(reg(0), op, &v.bytes());
        Ok(())
    }

    fn any_of(&mut self, field: Field, bits: u32) {
        self.load(field, reg(0), None);
        self.expr("bitwise", |w| {
            w.put_u32(1, reg(0));
            w.put_u32(2, reg(0));
            w.put_u32(3, 4);
            w.put_data(4, &bits.to_ne_bytes());
            w.put_data(5, &[0; 4]);
        });
        self.cmp(reg(0), NFT_CMP_NEQ, &[0; 4]);
    }

    fn verdict(&mut self, v: &crate::nft::types::Verdict) {
        self.expr("immediate", |w| {
            w.put_u32(1, NFT_REG_VERDICT);
            w.begin_nest(2);
            super::objects::write_verdict(w, v);
            w.end_nest();
        });
    }
}

fn prefix_mask(len: usize, bits: u32) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let start = (i * 8) as u32;
            match bits.saturating_sub(start) {
                0 => 0,
                n if n >= 8 => 0xff,
                n => 0xffu8 << (8 - n),
            }
        })
        .collect()
}

/// The anonymous sets a rule needs (one per [`Match::OneOf`]), in order.
pub fn anonymous_sets(rule: &Rule) -> Vec<Set> {
    let one_of = rule.matches.iter().filter_map(|m| match m {
        Match::OneOf { field, values, .. } if values.len() > 1 => Some((field, values)),
        _ => None,
    });
    let to_set = |(field, values): (&Field, &Vec<KeyPart>)| {
        let elems = values.iter().map(|v| Elem::new(vec![v.clone()])).collect();
        let set = Set::new("__set%d", &[field.spec().data_type]).with_elems(elems);
        match values.iter().any(|v| matches!(v, KeyPart::Range(..))) {
            true => set.intervals(),
            false => set,
        }
    };
    one_of.map(to_set).collect()
}

/// Writes `NFTA_RULE_EXPRESSIONS` (and the comment) of `rule`; `anon_ids` are the batch ids of
/// [`anonymous_sets`], already created in the same batch.
pub fn write_rule(
    w: &mut Writer,
    family: Family,
    rule: &Rule,
    sets: &dyn SetLookup,
    anon_ids: &[u32],
) -> Result<(), Invalid> {
    let mut c = Compiler { w, family, l3: None, l4: None };
    c.w.begin_nest(NFTA_RULE_EXPRESSIONS);
    let mut anon = anon_ids.iter();
    for m in &rule.matches {
        match m {
            Match::Is { field, negate, operand } => c.is(*field, *negate, operand)?,
            Match::AnyOf { field, bits } => c.any_of(*field, *bits),
            Match::In { fields, negate, set } => {
                let (decl, id) = sets
                    .set(set)
                    .ok_or_else(|| Invalid(format!("rule looks up set {set}, which is not declared")))?;
                c.load_concat(fields, decl.interval)?;
                c.lookup(set, id, None, *negate);
            }
            // One value is a comparison, as nft makes it.
            Match::OneOf { field, negate, values } if values.len() == 1 => {
                let operand = match (&values[0], values[0].as_prefix()) {
                    (KeyPart::Exact(v), _) => Operand::Value(v.clone()),
                    (_, Some(net)) => Operand::Prefix(net),
                    (KeyPart::Range(lo, hi), None) => Operand::Range(lo.clone(), hi.clone()),
                };
                c.is(*field, *negate, &operand)?;
            }
            Match::OneOf { field, negate, .. } => {
                let id = anon.next().copied().ok_or_else(|| Invalid("anonymous set without an id".into()))?;
                c.load_concat(&[*field], false)?;
                c.lookup("__set%d", Some(id), None, *negate);
            }
        }
        c.note(m);
    }
    for s in &rule.stmts {
        stmt(&mut c, s, sets)?;
    }
    c.w.end_nest();
    if let Some(comment) = &rule.comment {
        let mut u = UserData::new();
        u.put_str(UDATA_COMMENT, comment);
        c.w.put(NFTA_RULE_USERDATA, u.bytes());
    }
    Ok(())
}

fn stmt(c: &mut Compiler<'_>, s: &Stmt, sets: &dyn SetLookup) -> Result<(), Invalid> {
    let declared = |name: &str| {
        sets.set(name).ok_or_else(|| Invalid(format!("rule uses map {name}, which is not declared")))
    };
    match s {
        Stmt::Counter => c.expr("counter", |_| {}),
        Stmt::Verdict(v) => c.verdict(v),
        Stmt::Masquerade => c.expr("masq", |_| {}),
        Stmt::Log { group, prefix } => {
            if prefix.len() > LOG_PREFIX_MAX || prefix.contains('\0') {
                return Err(Invalid(format!(
                    "log prefix {prefix:?}: more than {LOG_PREFIX_MAX} bytes or a NUL"
                )));
            }
            c.expr("log", |w| {
                w.put(NFTA_LOG_GROUP, &group.to_be_bytes());
                w.put_str(NFTA_LOG_PREFIX, prefix);
            });
        }
        Stmt::Vmap { key, map } => {
            let (decl, id) = declared(map)?;
            c.load_concat(key, decl.interval)?;
            c.lookup(map, id, Some(NFT_REG_VERDICT), false);
        }
        Stmt::DnatMap { v6, key, map } => {
            let (decl, id) = declared(map)?;
            c.depend(if *v6 { Field::Ip6Daddr } else { Field::IpDaddr })?;
            c.load_concat(key, decl.interval)?;
            c.lookup(map, id, Some(reg(0)), false);
            let (family, addr_words) = if *v6 { (10, 4) } else { (2, 1) };
            c.expr("nat", |w| {
                w.put_u32(1, NFT_NAT_DNAT);
                w.put_u32(2, family);
                w.put_u32(3, reg(0));
                w.put_u32(5, reg(addr_words));
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_are_numbered_as_nft_does() {
        assert_eq!([reg(0), reg(1), reg(2), reg(4), reg(5)], [1, 9, 10, 2, 13]);
    }

    #[test]
    fn prefix_masks() {
        assert_eq!(prefix_mask(4, 4), [0xf0, 0, 0, 0]);
        assert_eq!(prefix_mask(4, 12), [0xff, 0xf0, 0, 0]);
        assert_eq!(prefix_mask(4, 32), [0xff; 4]);
    }
}
