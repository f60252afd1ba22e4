//! `twilld`: the twill node agent. See the crate documentation and docs/agent.md.

use std::sync::mpsc;

use anyhow::Context;
use nix::sys::signal::{SigSet, Signal};
use twill_agent::Args;
use twill_agent::conf_file::LoadError;
use twill_agent::watcher::Input;

fn main() {
    let args = match Args::load_from(std::env::args_os(), |name| std::env::var_os(name)) {
        Ok(args) => args,
        // clap prints usage errors, --help and --version itself (exit 2, 0, 0).
        Err(LoadError::Cli(e)) => e.exit(),
        Err(LoadError::File(e)) => {
            eprintln!("twilld: {e}");
            std::process::exit(2);
        }
    };
    let log = twill_agent::log::dispatch(args.log_format, std::io::stderr);
    // Only fails when a subscriber is already installed, which nothing here does.
    let _ = tracing::dispatcher::set_global_default(log);
    if let Err(e) = run(&args) {
        tracing::error!(error = %format!("{e:#}"), "twilld failed");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let conf = args.validate()?;
    // Blocked before any thread exists, so every thread inherits the mask and the signals
    // wait for the one thread that takes them with sigwait.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block().context("block SIGTERM/SIGINT")?;
    let (tx, rx) = mpsc::channel();
    let shutdown = tx.clone();
    std::thread::Builder::new()
        .name("twilld-signals".into())
        .spawn(move || {
            if let Ok(sig) = signals.wait() {
                tracing::info!(signal = sig.as_str(), "signal received; leaving the cluster");
                let _ = shutdown.send(Input::Shutdown);
            }
        })
        .context("start signal thread")?;
    twill_agent::run(conf, tx, rx)?;
    Ok(())
}
