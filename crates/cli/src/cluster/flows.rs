//! `twill cluster flows`: every node's flow records through its agent's `/flows`, found by
//! the `http` address of its node record, or the agents named with `--agent`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use super::Connection;
use crate::flows::{FlowSource, FlowsArgs, http_get, run};

#[derive(Args, Debug)]
pub struct ClusterFlowsArgs {
    #[command(flatten)]
    pub flows: FlowsArgs,
    /// Ask this agent (`HOST:PORT` of its --health-listen) instead of the datastore's nodes;
    /// repeat for several (`--agent 127.0.0.1:9099` on a node itself).
    #[arg(long = "agent", value_name = "HOST:PORT")]
    pub agents: Vec<String>,
}

/// Node name → the agent's address (`None`: it publishes none).
struct Agents(BTreeMap<String, Option<String>>);

impl FlowSource for Agents {
    fn nodes(&self) -> Result<Vec<String>> {
        Ok(self.0.keys().cloned().collect())
    }

    fn get(&self, node: &str, path: &str) -> Result<(u16, String)> {
        match self.0.get(node).cloned().flatten() {
            Some(addr) => http_get(&addr, path, Duration::from_secs(3)),
            None => bail!(
                "its twilld serves HTTP on its loopback only (--health-listen 127.0.0.1:...): \
                 give it a reachable --health-listen, or run `twill cluster flows --agent 127.0.0.1:9099` on it"
            ),
        }
    }
}

pub fn flows(conn: &Connection, args: &ClusterFlowsArgs) -> Result<()> {
    let agents = match args.agents.is_empty() {
        false => args.agents.iter().map(|a| (a.clone(), Some(a.clone()))).collect(),
        true => {
            let store = conn.open()?;
            let nodes = cluster::Registry::new(store.as_ref()).nodes()?.items;
            if nodes.is_empty() {
                bail!("the datastore has no nodes");
            }
            nodes.into_iter().map(|n| (n.name, n.http)).collect()
        }
    };
    run(&Agents(agents), &args.flows, &mut std::io::stdout().lock())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_on_loopback_only_is_named_with_the_way_out() {
        let agents = Agents([("node-1".to_string(), None)].into());
        assert_eq!(agents.nodes().unwrap(), ["node-1"]);
        let e = agents.get("node-1", "/flows").unwrap_err().to_string();
        assert!(e.contains("loopback only") && e.contains("--agent 127.0.0.1:9099"), "{e}");
    }
}
