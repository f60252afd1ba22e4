//! Finding and executing plugin binaries: the `Exec` seam lets the runtime be tested without
//! binaries, as libcni's `invoke.Exec` does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use netns::NetNs;

use crate::Error;

/// The CNI_* variables of one invocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvokeArgs {
    pub command: &'static str,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: Vec<(String, String)>,
    pub path: Vec<PathBuf>,
}

impl InvokeArgs {
    /// The environment a plugin sees, as (name, value) pairs.
    pub fn env(&self) -> Vec<(String, String)> {
        let cni_args = self.args.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(";");
        let path =
            std::env::join_paths(&self.path).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        vec![
            ("CNI_COMMAND".into(), self.command.into()),
            ("CNI_CONTAINERID".into(), self.container_id.clone()),
            ("CNI_NETNS".into(), self.netns.clone()),
            ("CNI_IFNAME".into(), self.ifname.clone()),
            ("CNI_ARGS".into(), cni_args),
            ("CNI_PATH".into(), path),
        ]
    }
}

/// How plugins are located and run.
pub trait Exec: Send + Sync {
    /// The executable for `plugin_type`, searched in `path` in order.
    fn find(&self, plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf, Error>;
    /// Runs `plugin` with `stdin` and the invocation's environment; returns stdout on success.
    fn exec(&self, plugin: &Path, stdin: &[u8], args: &InvokeArgs) -> Result<Vec<u8>, Error>;
}

/// Runs real binaries as child processes, optionally inside a network namespace (a test's or
/// the lab's fake host), which the child joins before exec.
#[derive(Clone, Debug, Default)]
pub struct RawExec {
    pub netns: Option<Arc<NetNs>>,
}

impl RawExec {
    /// Plugins run inside `ns` instead of the caller's namespace.
    pub fn in_netns(ns: NetNs) -> RawExec {
        RawExec { netns: Some(Arc::new(ns)) }
    }
}

impl Exec for RawExec {
    fn find(&self, plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf, Error> {
        find_in_path(plugin_type, path)
    }

    fn exec(&self, plugin: &Path, stdin: &[u8], args: &InvokeArgs) -> Result<Vec<u8>, Error> {
        let spawn_err = |source| Error::Spawn { plugin: plugin.to_path_buf(), source };
        let mut cmd = Command::new(plugin);
        cmd.envs(args.env()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = match &self.netns {
            Some(ns) => ns.spawn(&mut cmd),
            None => cmd.spawn(),
        }
        .map_err(spawn_err)?;
        if let Some(mut input) = child.stdin.take() {
            // A plugin may exit before reading stdin (VERSION); a broken pipe is not our failure.
            if let Err(e) = input.write_all(stdin)
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(spawn_err(e));
            }
        }
        let out = child.wait_with_output().map_err(spawn_err)?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        Err(plugin_failure(plugin, &out.status.to_string(), &out.stdout))
    }
}

/// Turns a failed plugin's stdout into the CNI error it printed, or a crash report.
pub fn plugin_failure(plugin: &Path, status: &str, stdout: &[u8]) -> Error {
    let parsed =
        serde_json::from_slice::<serde_json::Value>(stdout).ok().and_then(|v| cni_spec::Error::from_json(&v));
    match parsed {
        Some(e) => Error::Plugin(e),
        None => Error::Crashed {
            plugin: plugin.to_path_buf(),
            status: status.to_string(),
            output: String::from_utf8_lossy(stdout).into_owned(),
        },
    }
}

/// The first executable file named `plugin_type` in `path`.
pub fn find_in_path(plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf, Error> {
    let not_found = || Error::PluginNotFound { plugin: plugin_type.to_string(), path: path.to_vec() };
    if plugin_type.is_empty() || plugin_type.contains('/') {
        return Err(not_found());
    }
    path.iter()
        .map(|dir| dir.join(plugin_type))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(not_found)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_joins_args_and_path() {
        let a = InvokeArgs {
            command: "ADD",
            container_id: "c1".into(),
            netns: "/run/netns/x".into(),
            ifname: "eth0".into(),
            args: vec![("IP".into(), "10.0.0.2".into()), ("K".into(), "v".into())],
            path: vec!["/a".into(), "/b".into()],
        };
        let env = a.env();
        assert!(env.contains(&("CNI_ARGS".into(), "IP=10.0.0.2;K=v".into())));
        assert!(env.contains(&("CNI_PATH".into(), "/a:/b".into())));
        assert!(env.contains(&("CNI_COMMAND".into(), "ADD".into())));
    }

    #[test]
    fn find_rejects_paths_and_missing() {
        assert!(matches!(find_in_path("../bridge", &["/usr/bin".into()]), Err(Error::PluginNotFound { .. })));
        assert!(matches!(
            find_in_path("no-such-plugin-xyz", &["/usr/bin".into()]),
            Err(Error::PluginNotFound { .. })
        ));
        assert_eq!(find_in_path("sh", &["/nonexistent".into(), "/bin".into()]).ok(), Some("/bin/sh".into()));
    }

    #[test]
    fn failure_output_is_parsed() {
        let out = br#"{"cniVersion":"1.0.0","code":7,"msg":"bad","details":"x"}"#;
        match plugin_failure(Path::new("/p"), "exit status: 1", out) {
            Error::Plugin(e) => assert_eq!(e.code.code(), 7),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(plugin_failure(Path::new("/p"), "signal: 9", b"garbage"), Error::Crashed { .. }));
    }
}
