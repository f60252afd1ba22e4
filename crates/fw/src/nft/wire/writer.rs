//! Writing netfilter netlink messages: the netlink header, the `nfgenmsg` that follows it,
//! and (nested) attributes, appended to one buffer so a whole batch is one `sendmsg`.
//! Integers in nf_tables attributes are big-endian; header fields are host order.

/// `NLM_F_*` flags.
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;

const NLA_F_NESTED: u16 = 0x8000;

/// Appends messages and their attributes to one buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
    msg_start: Option<usize>,
    nests: Vec<usize>,
}

fn pad(len: usize) -> usize {
    (len + 3) & !3
}

impl Writer {
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Starts a message: netlink header (length patched by [`Writer::end_msg`]) and
    /// `nfgenmsg { family, version 0, res_id }` (`res_id` big-endian).
    pub fn begin_msg(&mut self, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) {
        debug_assert!(self.msg_start.is_none() && self.nests.is_empty());
        self.msg_start = Some(self.buf.len());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&[family, 0]);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
    }

    pub fn end_msg(&mut self) {
        if let Some(start) = self.msg_start.take() {
            let len = (self.buf.len() - start) as u32;
            self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// Bytes written since the current message began.
    pub fn msg_len(&self) -> usize {
        self.msg_start.map_or(0, |s| self.buf.len() - s)
    }

    pub fn put(&mut self, kind: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(self.buf.len() + pad(len) - len, 0);
    }

    /// Attributes encoded elsewhere (copied from a reply), padded.
    pub fn put_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(pad(self.buf.len()), 0);
    }

    /// A NUL-terminated string.
    pub fn put_str(&mut self, kind: u16, s: &str) {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.put(kind, &data);
    }

    pub fn put_u32(&mut self, kind: u16, v: u32) {
        self.put(kind, &v.to_be_bytes());
    }

    pub fn begin_nest(&mut self, kind: u16) {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    pub fn end_nest(&mut self) {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// `{ NFTA_DATA_VALUE: bytes }` nested under `kind`.
    pub fn put_data(&mut self, kind: u16, bytes: &[u8]) {
        self.begin_nest(kind);
        self.put(super::abi::NFTA_DATA_VALUE, bytes);
        self.end_nest();
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// nftnl's user data: `{ u8 type, u8 len, value }` records (comments, set byte orders).
#[derive(Debug, Default)]
pub struct UserData(Vec<u8>);

impl UserData {
    pub fn new() -> UserData {
        UserData::default()
    }

    pub fn put(&mut self, kind: u8, value: &[u8]) -> &mut UserData {
        self.0.push(kind);
        self.0.push(value.len() as u8);
        self.0.extend_from_slice(value);
        self
    }

    /// A NUL-terminated string (comments).
    pub fn put_str(&mut self, kind: u8, s: &str) -> &mut UserData {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.put(kind, &v)
    }

    /// A host-order u32 (nft's byte order records).
    pub fn put_u32(&mut self, kind: u8, v: u32) -> &mut UserData {
        self.put(kind, &v.to_ne_bytes())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The string of the user-data record `kind` (a comment), if present.
pub fn user_data_str(data: &[u8], kind: u8) -> Option<String> {
    let mut rest = data;
    while let [t, len, tail @ ..] = rest {
        let value = tail.get(..usize::from(*len))?;
        if *t == kind {
            let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
            return Some(String::from_utf8_lossy(&value[..end]).into_owned());
        }
        rest = &tail[usize::from(*len)..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_with_nested_attributes() {
        let mut w = Writer::new();
        w.begin_msg(0x0a00, NLM_F_REQUEST, 7, 1, 0);
        w.put_str(1, "t");
        w.begin_nest(4);
        w.put_u32(1, 4);
        w.end_nest();
        w.end_msg();
        let b = w.into_bytes();
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize, b.len());
        assert_eq!(b.len(), 16 + 4 + 8 + 12);
        // nfgenmsg: family 1 (inet), version 0, res_id 0.
        assert_eq!(&b[16..20], &[1, 0, 0, 0]);
        // "t\0" padded to 4 bytes after its 4-byte header.
        assert_eq!(&b[20..28], &[6, 0, 1, 0, b't', 0, 0, 0]);
        assert_eq!(&b[28..32], &[12, 0, 4, 0x80]);
        assert_eq!(&b[36..40], &[0, 0, 0, 4]);
    }

    #[test]
    fn user_data_records() {
        let mut u = UserData::new();
        u.put_u32(0, 2).put_str(7, "n/c/eth0");
        assert_eq!(&u.bytes()[..6], &[0, 4, 2, 0, 0, 0]);
        assert_eq!(user_data_str(u.bytes(), 7).as_deref(), Some("n/c/eth0"));
        assert_eq!(user_data_str(u.bytes(), 3), None);
        assert_eq!(user_data_str(&[0, 9, b'x'], 0), None);
    }
}
