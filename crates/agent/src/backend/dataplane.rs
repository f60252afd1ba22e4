//! Reading and writing the kernel entries of a [`Plan`] through netlink: routes stamped with
//! [`PROTO_TWILL`] in the main table, and the vxlan device's FDB and permanent neighbours.

use nl::neigh::{NTF_SELF, NUD_PERMANENT};
use nl::route::TABLE_MAIN;
use nl::{Handle, Route};

use super::plan::{Changes, FdbSpec, NeighSpec, PROTO_TWILL, Plan, RouteSpec, plan_changes};
use super::{Applied, BackendError};

/// The kernel side of a backend: one netlink socket in the node's namespace.
#[derive(Debug)]
pub struct Dataplane {
    h: Handle,
}

fn route_of(r: &RouteSpec) -> Route {
    Route {
        dst: r.dst,
        gw: Some(r.gw),
        oif: Some(r.oif),
        onlink: r.onlink,
        protocol: Some(PROTO_TWILL),
        table: Some(TABLE_MAIN),
        ..Route::default()
    }
}

impl Dataplane {
    pub fn new(h: Handle) -> Dataplane {
        Dataplane { h }
    }

    pub fn handle(&self) -> &Handle {
        &self.h
    }

    /// What the kernel holds now: twill's routes, and the FDB remotes and permanent
    /// neighbours of the vxlan device `vxlan`.
    pub fn observe(&self, vxlan: Option<u32>) -> Result<Plan, BackendError> {
        let routes = self
            .h
            .route_list(None, Some(TABLE_MAIN))?
            .into_iter()
            .filter(|r| r.protocol == Some(PROTO_TWILL))
            .filter_map(|r| Some(RouteSpec { dst: r.dst, gw: r.gw?, oif: r.oif?, onlink: r.onlink }))
            .collect();
        let mut plan = Plan { routes, ..Plan::default() };
        if let Some(vx) = vxlan {
            plan.fdb = self
                .h
                .fdb_list(Some(vx))?
                .into_iter()
                .filter(|f| f.flags & NTF_SELF != 0)
                .filter_map(|f| Some(FdbSpec { mac: f.mac, dst: f.dst? }))
                .collect();
            plan.neigh = self
                .h
                .neigh_list(Some(vx), None)?
                .into_iter()
                .filter(|n| n.state & NUD_PERMANENT != 0)
                .filter_map(|n| Some(NeighSpec { ip: n.ip, mac: n.mac? }))
                .collect();
        }
        Ok(plan)
    }

    /// Makes the kernel hold exactly `desired`.
    pub fn sync(&self, desired: &Plan, vxlan: Option<u32>) -> Result<Applied, BackendError> {
        let changes = plan_changes(desired, &self.observe(vxlan)?);
        self.apply(&changes, vxlan)
    }

    /// Adds what of `desired` is missing, removes nothing.
    pub fn ensure(&self, desired: &Plan, vxlan: Option<u32>) -> Result<Applied, BackendError> {
        let changes = Changes { remove: Plan::default(), ..plan_changes(desired, &self.observe(vxlan)?) };
        self.apply(&changes, vxlan)
    }

    /// Removes the entries of `plan` that exist.
    pub fn remove(&self, plan: &Plan, vxlan: Option<u32>) -> Result<Applied, BackendError> {
        self.apply(&Changes { remove: plan.clone(), add: Plan::default() }, vxlan)
    }

    /// Removals first (a replaced entry's old form goes before the new one comes), then FDB
    /// and neighbours before the routes that use them. Every step is tried; the first
    /// failure is reported after the others ran.
    pub fn apply(&self, ch: &Changes, vxlan: Option<u32>) -> Result<Applied, BackendError> {
        let mut errors: Vec<nl::Error> = Vec::new();
        let mut note = |r: nl::Result<()>, absent_ok: bool| match r {
            Ok(()) => true,
            Err(e) if absent_ok && e.is_not_found() => false,
            Err(e) => {
                errors.push(e);
                false
            }
        };
        let mut done = Applied::default();
        for r in &ch.remove.routes {
            done.removed += usize::from(note(self.h.route_del(&route_of(r)), true));
        }
        if let Some(vx) = vxlan {
            for f in &ch.remove.fdb {
                done.removed += usize::from(note(self.h.fdb_del(vx, f.mac, Some(f.dst)), true));
            }
            for n in &ch.remove.neigh {
                done.removed += usize::from(note(self.h.neigh_del(vx, n.ip), true));
            }
            for f in &ch.add.fdb {
                done.added += usize::from(note(self.h.fdb_replace(vx, f.mac, f.dst), false));
            }
            for n in &ch.add.neigh {
                done.added += usize::from(note(self.h.neigh_replace(vx, n.ip, n.mac), false));
            }
        }
        for r in &ch.add.routes {
            done.added += usize::from(note(self.h.route_replace(&route_of(r)), false));
        }
        match errors.into_iter().next() {
            Some(e) => Err(e.into()),
            None => Ok(done),
        }
    }
}
