//! Reading netlink replies: messages in a datagram, attributes in a message, and the
//! errors and extended-ack text the kernel sends back.

/// `NLMSG_ERROR` and `NLMSG_DONE`.
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
/// The error carries extended-ack attributes after the echoed request.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// The echoed request was cut to its header (`NETLINK_CAP_ACK`).
const NLM_F_CAPPED: u16 = 0x100;
/// A dump was interrupted by a concurrent change.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
const NLMSGERR_ATTR_MSG: u16 = 1;
const HDR: usize = 16;

/// One netlink message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// Everything after the netlink header.
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// The attributes after the 4-byte `nfgenmsg` of a netfilter message.
    pub fn attrs(&self) -> Attrs<'a> {
        Attrs(self.payload.get(4..).unwrap_or_default())
    }

    /// For `NLMSG_ERROR`/`NLMSG_DONE`: the (positive) errno, 0 for an ack, and the
    /// extended-ack text if any.
    pub fn error(&self) -> Option<(i32, Option<String>)> {
        let code = i32::from_ne_bytes(self.payload.get(..4)?.try_into().ok()?);
        // Saturating: i32::MIN has no negation (the nflog fuzz target sent one).
        if self.kind == NLMSG_DONE {
            return Some((code.saturating_neg(), None));
        }
        let detail = if self.flags & NLM_F_ACK_TLVS == 0 {
            None
        } else {
            let echoed = self.payload.get(4..)?;
            let skip = if self.flags & NLM_F_CAPPED != 0 {
                HDR
            } else {
                (u32::from_ne_bytes(echoed.get(..4)?.try_into().ok()?) as usize + 3) & !3
            };
            Attrs(echoed.get(skip..).unwrap_or_default())
                .find(|a| a.kind == NLMSGERR_ATTR_MSG)
                .map(|a| a.str())
        };
        Some((code.saturating_neg(), detail))
    }
}

/// The messages in one datagram.
pub struct Messages<'a>(pub &'a [u8]);

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.len() < HDR {
            return None;
        }
        let b = self.0;
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < HDR || len > b.len() {
            self.0 = &[];
            return Some(Err(format!("bad netlink message length {len} in a {}-byte datagram", b.len())));
        }
        let msg = Message {
            kind: u16::from_ne_bytes([b[4], b[5]]),
            flags: u16::from_ne_bytes([b[6], b[7]]),
            seq: u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
            payload: &b[HDR..len],
        };
        self.0 = b.get((len + 3) & !3..).unwrap_or_default();
        Some(Ok(msg))
    }
}

/// One attribute (its type without the nested/byte-order flags).
#[derive(Debug, Clone, Copy)]
pub struct Attr<'a> {
    pub kind: u16,
    pub data: &'a [u8],
}

impl<'a> Attr<'a> {
    pub fn nested(&self) -> Attrs<'a> {
        Attrs(self.data)
    }

    pub fn u32(&self) -> Option<u32> {
        Some(u32::from_be_bytes(self.data.get(..4)?.try_into().ok()?))
    }

    pub fn str(&self) -> String {
        let end = self.data.iter().position(|b| *b == 0).unwrap_or(self.data.len());
        String::from_utf8_lossy(&self.data[..end]).into_owned()
    }
}

/// The attributes in a buffer; a truncated one ends the iteration.
#[derive(Debug, Clone, Copy)]
pub struct Attrs<'a>(pub &'a [u8]);

impl<'a> Attrs<'a> {
    pub fn get(self, kind: u16) -> Option<Attr<'a>> {
        self.into_iter().find(|a| a.kind == kind)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Attr<'a>;

    fn next(&mut self) -> Option<Attr<'a>> {
        let b = self.0;
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        if len < 4 || len > b.len() {
            self.0 = &[];
            return None;
        }
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        let attr = Attr { kind, data: &b[4..len] };
        self.0 = b.get((len + 3) & !3..).unwrap_or_default();
        Some(attr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::wire::writer::{NLM_F_REQUEST, Writer};

    #[test]
    fn reads_back_what_the_writer_wrote() {
        let mut w = Writer::new();
        for seq in [1, 2] {
            w.begin_msg(0x0a0c, NLM_F_REQUEST, seq, 1, 0);
            w.put_str(1, "t");
            w.begin_nest(3);
            w.put_u32(1, 0xdead);
            w.end_nest();
            w.end_msg();
        }
        let bytes = w.into_bytes();
        let msgs: Vec<Message> = Messages(&bytes).map(Result::unwrap).collect();
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[1].kind, msgs[1].seq), (0x0a0c, 2));
        let attrs = msgs[0].attrs();
        assert_eq!(attrs.get(1).unwrap().str(), "t");
        assert_eq!(attrs.get(3).unwrap().nested().get(1).unwrap().u32(), Some(0xdead));
    }

    /// fuzz: nflog — an error code of i32::MIN panicked on negation.
    #[test]
    fn an_error_code_without_a_negation_saturates() {
        let payload = i32::MIN.to_ne_bytes();
        for kind in [NLMSG_ERROR, NLMSG_DONE] {
            let m = Message { kind, flags: 0, seq: 1, payload: &payload };
            assert_eq!(m.error(), Some((i32::MAX, None)));
        }
    }

    #[test]
    fn errors_with_extended_ack() {
        // NLMSG_ERROR, capped, with an NLMSGERR_ATTR_MSG: errno 2 for request seq 9.
        let mut b = Vec::new();
        let payload_len = 4 + 16 + 12;
        b.extend_from_slice(&((16 + payload_len) as u32).to_ne_bytes());
        b.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        b.extend_from_slice(&(NLM_F_ACK_TLVS | NLM_F_CAPPED).to_ne_bytes());
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&(-2i32).to_ne_bytes());
        let mut echoed = [0u8; 16];
        echoed[8..12].copy_from_slice(&9u32.to_ne_bytes());
        b.extend_from_slice(&echoed);
        b.extend_from_slice(&[8, 0, 1, 0, b'n', b'o', 0, 0, 4, 0, 2, 0]);
        let msg = Messages(&b).next().unwrap().unwrap();
        assert_eq!(msg.error(), Some((2, Some("no".into()))));
    }
}
