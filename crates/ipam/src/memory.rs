//! An in-memory [`Store`], for tests of the engine and of code built on it.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use crate::error::Error;
use crate::range::canonical;
use crate::store::{Owner, Reservation, Store};

/// Reservations in a map; behaves like [`DiskStore`](crate::DiskStore) minus the files.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryStore {
    reservations: BTreeMap<IpAddr, Owner>,
    last_reserved: HashMap<usize, IpAddr>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Put a record in place as another writer would have (legacy or garbage included).
    pub fn insert(&mut self, ip: IpAddr, owner: Owner) {
        self.reservations.insert(canonical(ip), owner);
    }

    /// The holder of `ip`, if any.
    pub fn owner(&self, ip: IpAddr) -> Option<&Owner> {
        self.reservations.get(&canonical(ip))
    }

    /// How many addresses are reserved.
    pub fn len(&self) -> usize {
        self.reservations.len()
    }

    /// Whether nothing is reserved.
    pub fn is_empty(&self) -> bool {
        self.reservations.is_empty()
    }
}

impl Store for MemoryStore {
    fn reserve(&mut self, ip: IpAddr, id: &str, ifname: &str) -> Result<bool, Error> {
        let ip = canonical(ip);
        if self.reservations.contains_key(&ip) {
            return Ok(false);
        }
        let owner = Owner::Attachment { id: id.to_string(), ifname: ifname.to_string() };
        self.reservations.insert(ip, owner);
        Ok(true)
    }

    fn release(&mut self, ip: IpAddr) -> Result<bool, Error> {
        Ok(self.reservations.remove(&canonical(ip)).is_some())
    }

    fn list(&self) -> Result<Vec<Reservation>, Error> {
        let all = self.reservations.iter().map(|(ip, owner)| Reservation { ip: *ip, owner: owner.clone() });
        Ok(all.collect())
    }

    fn last_reserved(&self, range_set: usize) -> Result<Option<IpAddr>, Error> {
        Ok(self.last_reserved.get(&range_set).copied())
    }

    fn set_last_reserved(&mut self, range_set: usize, ip: IpAddr) -> Result<(), Error> {
        self.last_reserved.insert(range_set, ip);
        Ok(())
    }
}
