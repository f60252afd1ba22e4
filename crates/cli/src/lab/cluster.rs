//! The running lab's cluster as NetworkPolicy sees it, read from its datastore: what
//! `twill policy explain` judges connections against (the same records, and the same
//! world-building, the agents use).

use anyhow::Result;
use policy::World;

use super::names::Names;
use super::{registry, state};

/// The world of the lab chosen by `TWILL_LAB_PREFIX`; records that cannot be used are
/// reported on stderr and left out.
pub fn cluster_world() -> Result<World> {
    let names = Names::from_env()?;
    let state = state::load_running(&names)?;
    let (records, _) = registry::read_cluster(&names.state_dir(), &state)?;
    let (world, problems) = agent::policy::build_world(&records);
    for p in problems {
        eprintln!("twill: ignoring {p}");
    }
    Ok(world)
}
