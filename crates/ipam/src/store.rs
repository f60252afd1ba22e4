//! The storage seam: what the allocator needs from wherever reservations live.
//!
//! The reference's `Store` interface also carries `Lock`/`Unlock` and `ReleaseByID`. Here the
//! lock is not a method: a store value *is* exclusive access (a [`DiskStore`] holds the flock
//! from `open` until it is dropped), which `&mut dyn Store` expresses. Matching reservations
//! to an attachment (new format vs legacy files) is done once, in the engine, over
//! [`Store::list`], so every store behaves alike; stores only free single addresses.
//!
//! [`DiskStore`]: crate::DiskStore

use std::fmt;
use std::net::IpAddr;

use crate::error::Error;

/// Who holds a reservation, as recorded in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// `<containerID>\r\n<ifname>`: what the reference writes today, and what twill writes.
    Attachment { id: String, ifname: String },
    /// Only `<containerID>`: files from reference versions that predate the ifname line.
    /// They match by container id alone.
    Legacy { id: String },
    /// Empty or unreadable content, e.g. left by a reference process that died between
    /// creating and writing the file. Matches nobody; the address stays taken until GC.
    Unreadable { reason: String },
}

impl Owner {
    /// Interpret reservation file content the way the reference compares it: whitespace
    /// around the whole content is ignored, the first `\r\n` separates id and ifname.
    pub fn parse(content: &[u8]) -> Owner {
        let Ok(text) = std::str::from_utf8(content) else {
            return Owner::Unreadable { reason: "content is not UTF-8".into() };
        };
        let text = text.trim();
        if text.is_empty() {
            return Owner::Unreadable { reason: "empty".into() };
        }
        match text.split_once("\r\n") {
            Some((id, ifname)) => Owner::Attachment { id: id.to_string(), ifname: ifname.to_string() },
            None => Owner::Legacy { id: text.to_string() },
        }
    }

    /// The file content for an attachment: `<id>\r\n<ifname>`, no trailing line break.
    pub fn file_content(id: &str, ifname: &str) -> String {
        format!("{id}\r\n{ifname}")
    }

    /// Recorded for exactly this container id and ifname.
    pub fn is_attachment(&self, id: &str, ifname: &str) -> bool {
        matches!(self, Owner::Attachment { id: i, ifname: n } if i == id && n == ifname)
    }

    /// A legacy record for this container id.
    pub fn is_legacy_of(&self, id: &str) -> bool {
        matches!(self, Owner::Legacy { id: i } if i == id)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Attachment { id, ifname } => write!(f, "container {id} on {ifname}"),
            Owner::Legacy { id } => write!(f, "container {id}"),
            Owner::Unreadable { reason } => write!(f, "an unreadable reservation ({reason})"),
        }
    }
}

/// One reserved address and its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub ip: IpAddr,
    pub owner: Owner,
}

/// Reservations of one network. Holding a value means holding exclusive access to them.
///
/// Range sets are identified by their index in the configuration, as the reference's
/// `last_reserved_ip.<index>` files are.
pub trait Store {
    /// Record `ip` for (`id`, `ifname`). `Ok(false)` when anything is already recorded for
    /// `ip`, whoever holds it and whatever its state.
    fn reserve(&mut self, ip: IpAddr, id: &str, ifname: &str) -> Result<bool, Error>;

    /// Forget the reservation of `ip`. `Ok(false)` when there was none.
    fn release(&mut self, ip: IpAddr) -> Result<bool, Error>;

    /// Every reservation, sorted by address.
    fn list(&self) -> Result<Vec<Reservation>, Error>;

    /// The address most recently reserved in range set `range_set`, if known and readable.
    fn last_reserved(&self, range_set: usize) -> Result<Option<IpAddr>, Error>;

    /// Remember `ip` as the most recent reservation in `range_set` (round-robin cursor).
    fn set_last_reserved(&mut self, range_set: usize, ip: IpAddr) -> Result<(), Error>;

    /// Remove leftovers of interrupted writes; returns how many. Called by GC.
    fn discard_incomplete(&mut self) -> Result<usize, Error> {
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_formats_like_the_reference() {
        let new = Owner::parse(b"abc\r\neth0");
        assert_eq!(new, Owner::Attachment { id: "abc".into(), ifname: "eth0".into() });
        assert_eq!(Owner::parse(b"  abc\r\neth0\n"), new);
        assert_eq!(Owner::parse(b"abc"), Owner::Legacy { id: "abc".into() });
        assert_eq!(Owner::parse(b"abc\n"), Owner::Legacy { id: "abc".into() });
        // A bare \n is not the separator: the reference compares against "<id>\r\n<ifname>".
        assert_eq!(Owner::parse(b"abc\neth0"), Owner::Legacy { id: "abc\neth0".into() });
    }

    #[test]
    fn garbage_is_unreadable() {
        assert!(matches!(Owner::parse(b""), Owner::Unreadable { .. }));
        assert!(matches!(Owner::parse(b" \r\n "), Owner::Unreadable { .. }));
        assert!(matches!(Owner::parse(&[0xff, 0xfe]), Owner::Unreadable { .. }));
    }

    #[test]
    fn matching() {
        let a = Owner::parse(Owner::file_content("abc", "eth0").as_bytes());
        assert!(a.is_attachment("abc", "eth0"));
        assert!(!a.is_attachment("abc", "eth1"));
        assert!(!a.is_legacy_of("abc"));
        assert!(Owner::Legacy { id: "abc".into() }.is_legacy_of("abc"));
        assert_eq!(a.to_string(), "container abc on eth0");
    }
}
