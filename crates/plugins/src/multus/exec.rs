//! How multus runs its delegates: through the runtime side (`cni_exec`), with an executor
//! that runs twill's own node-local plugins in this process when the binary found on the
//! delegate path is this build's (`twill-cni` beside this `twill-cni-cluster`: ADR 0001's
//! rule for IPAM, extended to delegates; ADR 0014), and executes every other plugin as a
//! runtime would. The in-process plugin gets exactly what an
//! executed one would — the CNI_* variables and stdin — through `cni_skel::run`, so the two
//! are indistinguishable to the runtime side and its cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cni_exec::{Exec, InvokeArgs, RawExec};

use crate::delegate::runs_in_process;

/// Runs twill's plugins in-process, anything else as a child process.
#[derive(Debug, Default)]
pub struct DelegateExec {
    raw: RawExec,
}

impl Exec for DelegateExec {
    fn find(&self, plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf, cni_exec::Error> {
        self.raw.find(plugin_type, path)
    }

    fn exec(&self, plugin: &Path, stdin: &[u8], args: &InvokeArgs) -> Result<Vec<u8>, cni_exec::Error> {
        let name = plugin.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let own = crate::plugin_by_name(name).filter(|_| runs_in_process(plugin));
        let Some(own) = own else { return self.raw.exec(plugin, stdin, args) };
        let env: HashMap<String, String> = args.env().into_iter().collect();
        let mut out = Vec::new();
        let mut input = stdin;
        let about = format!("twill {name} plugin v{}", env!("CARGO_PKG_VERSION"));
        let code = cni_skel::run(own.as_ref(), &about, &env, &mut input, &mut out, &mut std::io::stderr());
        match code {
            0 => Ok(out),
            c => Err(cni_exec::plugin_failure(plugin, &format!("exit status: {c}"), &out)),
        }
    }
}
