//! `twill lab flows`: each node's twilld answers `/flows` on the node's own loopback, so the
//! request is made from inside the node's namespace.

use std::time::Duration;

use anyhow::{Context, Result};
use netns::NetNs;

use super::agent::HEALTH_ADDR;
use super::health::http_get;
use super::names::Names;
use super::state::{LabState, load_running};
use crate::flows::{FlowSource, FlowsArgs};

struct LabNodes(LabState);

impl FlowSource for LabNodes {
    fn nodes(&self) -> Result<Vec<String>> {
        Ok(self.0.nodes.iter().map(|n| n.name.clone()).collect())
    }

    fn get(&self, node: &str, path: &str) -> Result<(u16, String)> {
        let n = self.0.nodes.iter().find(|n| n.name == node).with_context(|| format!("no node {node}"))?;
        let ns = NetNs::open(netns::named_path(&n.netns))?;
        http_get(&ns, HEALTH_ADDR, path, Duration::from_secs(3))
    }
}

pub fn run(names: &Names, args: &FlowsArgs) -> Result<()> {
    let lab = LabNodes(load_running(names)?);
    crate::flows::run(&lab, args, &mut std::io::stdout().lock())
}
