//! `twill demo`: the newcomer's first run until the lab exists.

use anyhow::{Result, bail};
use clap::Args;

#[derive(Args)]
pub struct DemoArgs {}

pub fn run(_args: &DemoArgs) -> Result<()> {
    bail!("the demo is not implemented yet")
}
