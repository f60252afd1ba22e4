//! `twilld`: the twill node agent. See the crate documentation and docs/agent.md.

use std::sync::mpsc;

use anyhow::Context;
use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use twill_agent::log::Logger;
use twill_agent::watcher::Input;

fn main() {
    let args = twill_agent::Args::parse();
    let log = Logger::stderr(args.log_format);
    if let Err(e) = run(&args, log.clone()) {
        log.error("twilld failed", &[("error", &format!("{e:#}"))]);
        std::process::exit(1);
    }
}

fn run(args: &twill_agent::Args, log: Logger) -> anyhow::Result<()> {
    let conf = args.validate()?;
    // Blocked before any thread exists, so every thread inherits the mask and the signals
    // wait for the one thread that takes them with sigwait.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block().context("block SIGTERM/SIGINT")?;
    let (tx, rx) = mpsc::channel();
    let shutdown = tx.clone();
    let signal_log = log.clone();
    std::thread::Builder::new()
        .name("twilld-signals".into())
        .spawn(move || {
            if let Ok(sig) = signals.wait() {
                signal_log.info("signal received; leaving the cluster", &[("signal", &sig.as_str())]);
                let _ = shutdown.send(Input::Shutdown);
            }
        })
        .context("start signal thread")?;
    twill_agent::run(conf, log, tx, rx)?;
    Ok(())
}
