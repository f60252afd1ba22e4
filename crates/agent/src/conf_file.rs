//! Where twilld's settings come from: the command line, the environment and a TOML file
//! (`--config FILE`), in that order of precedence, then the defaults.
//!
//! Every flag is a key of the file with the flag's own name (`node-ip = "10.0.0.11"`), so the
//! file needs no schema of its own and cannot drift from the flags. The layers are merged
//! into one command line that clap parses — file values first, then environment values,
//! then the real arguments — and since a later occurrence of a flag overrides an earlier
//! one, the precedence is the order. [`crate::Args::validate`] then checks the result, the
//! same way whichever layer a value came from.
//!
//! The environment is injected (twilld passes `std::env::var_os`), so tests neither read nor
//! change the process's variables; the variables' names are those the flags declare.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches};

use crate::conf::Args;

/// Keys a file may not set: `config` would name a second file.
const NOT_KEYS: [&str; 3] = ["config", "help", "version"];

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The command line itself (also `--help` and `--version`, which clap prints).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    #[error(transparent)]
    File(#[from] ConfFileError),
}

/// What is wrong with a config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfFileError {
    #[error("read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config file {path}: unknown key `{key}`{hint}")]
    UnknownKey { path: PathBuf, key: String, hint: String },
    #[error("config file {path}: key `{key}` must be a string or an integer")]
    Kind { path: PathBuf, key: String },
    #[error("config file {path}: key `{key}`: {message}")]
    Value { path: PathBuf, key: String, message: String },
}

/// The command without clap's own environment lookups: the environment layer is injected.
fn command() -> clap::Command {
    Args::command().mut_args(|a| a.env(None::<&'static str>))
}

impl Args {
    /// Parses `argv` (program name first) with the environment read through `env` and the
    /// `--config` file, if any: flags > environment > file > defaults. Required settings
    /// are checked by [`Args::validate`], not here, as they may come from any layer.
    pub fn load_from<I, T>(argv: I, env: impl Fn(&str) -> Option<OsString>) -> Result<Args, LoadError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        // With clap's own environment lookups, so that --help shows the variables; the values
        // it finds are not used (the final parse takes them from `env`).
        let cli = Args::command().try_get_matches_from(&argv)?;
        let program = argv.first().cloned().unwrap_or_else(|| "twilld".into());
        let mut merged = vec![program.clone()];
        if let Some(path) = cli.get_one::<PathBuf>("config") {
            merged.extend(file_args(path, &program)?);
        }
        merged.extend(env_args(&env));
        merged.extend(argv.into_iter().skip(1));
        Ok(Args::from_arg_matches(&command().try_get_matches_from(merged)?)?)
    }
}

/// `--flag=VALUE` for every flag whose environment variable is set and not empty.
fn env_args(env: &impl Fn(&str) -> Option<OsString>) -> Vec<OsString> {
    let cmd = Args::command();
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        let (Some(var), Some(long)) = (arg.get_env().and_then(OsStr::to_str), arg.get_long()) else {
            continue;
        };
        if let Some(value) = env(var).filter(|v| !v.is_empty()) {
            let mut flag = OsString::from(format!("--{long}="));
            flag.push(value);
            out.push(flag);
        }
    }
    out
}

/// `--key=VALUE` for every key of the file at `path`, each checked on its own so that an
/// error names the file and the key.
fn file_args(path: &Path, program: &OsStr) -> Result<Vec<OsString>, ConfFileError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfFileError::Read { path: path.into(), source })?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| ConfFileError::Syntax { path: path.into(), message: e.to_string().trim_end().into() })?;
    let cmd = command();
    let known = |k: &str| !NOT_KEYS.contains(&k) && cmd.get_arguments().any(|a| a.get_long() == Some(k));
    let mut out = Vec::new();
    for (key, value) in &table {
        if !known(key) {
            return Err(ConfFileError::UnknownKey {
                path: path.into(),
                key: key.clone(),
                hint: hint(key, known),
            });
        }
        let value = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            _ => return Err(ConfFileError::Kind { path: path.into(), key: key.clone() }),
        };
        let flag = OsString::from(format!("--{key}={value}"));
        if let Err(e) = command().try_get_matches_from([program.to_os_string(), flag.clone()]) {
            return Err(ConfFileError::Value {
                path: path.into(),
                key: key.clone(),
                message: clap_reason(&e),
            });
        }
        out.push(flag);
    }
    Ok(out)
}

/// A nudge for the usual mistakes: snake_case keys, `config` inside the file.
fn hint(key: &str, known: impl Fn(&str) -> bool) -> String {
    let kebab = key.replace('_', "-");
    if key == "config" {
        " (--config is a command-line flag only)".into()
    } else if known(&kebab) {
        format!(" (did you mean `{kebab}`?)")
    } else {
        " (the keys are twilld's flag names without the leading --; see twilld --help)".into()
    }
}

/// clap's one-line reason without its `error: ` prefix and usage advice.
fn clap_reason(e: &clap::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::store::Endpoint;

    struct File(PathBuf);

    impl File {
        fn new(text: &str) -> File {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("twilld-conf-{}-{i}.toml", std::process::id()));
            std::fs::write(&path, text).unwrap();
            File(path)
        }

        fn arg(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const FULL: &str = r#"
node = "node-1"
node-ip = "10.100.0.11"
underlay-iface = "eth0"
datastore = "file:/run/from-file"
cluster-cidr = "10.244.0.0/16"
cni-conf-dir = "/etc/cni/net.d"
cni-bin-dir = "/opt/cni/bin"
state-dir = "/var/lib/twilld"
resync-seconds = 7
log-format = "json"
"#;

    fn load(argv: &[&str], env: &[(&str, &str)]) -> Result<Args, LoadError> {
        let env: HashMap<String, OsString> = env.iter().map(|(k, v)| (k.to_string(), v.into())).collect();
        Args::load_from(std::iter::once("twilld").chain(argv.iter().copied()), |k| env.get(k).cloned())
    }

    fn file_error(text: &str) -> String {
        let f = File::new(text);
        match load(&["--config", &f.arg()], &[]) {
            Err(LoadError::File(e)) => {
                let msg = e.to_string();
                assert!(msg.contains(&f.arg()), "names the file: {msg}");
                msg
            }
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    #[test]
    fn a_file_alone_is_a_whole_configuration() {
        let f = File::new(FULL);
        let c = load(&["--config", &f.arg()], &[]).unwrap().validate().unwrap();
        assert_eq!(c.node, "node-1");
        assert_eq!(c.datastore.endpoint, Endpoint::File("/run/from-file".into()));
        assert_eq!(c.resync, std::time::Duration::from_secs(7));
        assert_eq!(c.log_format, crate::log::LogFormat::Json);
        // Defaults fill what the file leaves out.
        assert_eq!(c.ttl, std::time::Duration::from_secs(30));
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let f = File::new(FULL);
        let env = [("TWILL_DATASTORE", "file:/run/from-env")];
        let c = load(&["--config", &f.arg()], &env).unwrap().validate().unwrap();
        assert_eq!(c.datastore.endpoint, Endpoint::File("/run/from-env".into()));
        let c = load(
            &["--config", &f.arg(), "--datastore", "file:/run/from-flag", "--resync-seconds", "3"],
            &env,
        )
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(c.datastore.endpoint, Endpoint::File("/run/from-flag".into()));
        assert_eq!(c.resync, std::time::Duration::from_secs(3));
        // Flags before --config override it too: the position of --config does not matter.
        let c = load(&["--node", "node-9", "--config", &f.arg()], &[]).unwrap().validate().unwrap();
        assert_eq!(c.node, "node-9");
        // An empty variable counts as unset.
        let c = load(&["--config", &f.arg()], &[("TWILL_DATASTORE", "")]).unwrap().validate().unwrap();
        assert_eq!(c.datastore.endpoint, Endpoint::File("/run/from-file".into()));
    }

    #[test]
    fn tls_files_come_from_the_environment() {
        let env = [
            ("TWILL_DATASTORE", "etcd:https://10.0.0.1:2379,https://10.0.0.2:2379"),
            ("TWILL_ETCD_CACERT", "/etc/twill/pki/ca.pem"),
            ("TWILL_ETCD_CERT", "/etc/twill/pki/node.pem"),
            ("TWILL_ETCD_KEY", "/etc/twill/pki/node-key.pem"),
        ];
        let f = File::new(&FULL.replace("datastore = \"file:/run/from-file\"\n", ""));
        let c = load(&["--config", &f.arg()], &env).unwrap().validate().unwrap();
        assert_eq!(c.datastore.tls.cacert, Some("/etc/twill/pki/ca.pem".into()));
        assert_eq!(c.datastore.tls.key, Some("/etc/twill/pki/node-key.pem".into()));
        assert!(matches!(c.datastore.endpoint, Endpoint::Etcd(ref urls) if urls.len() == 2));
    }

    #[test]
    fn required_settings_may_come_from_any_layer() {
        let f = File::new(&FULL.replace("node = \"node-1\"\n", ""));
        let e = load(&["--config", &f.arg()], &[]).unwrap().validate().unwrap_err().to_string();
        assert!(e.contains("--node is required") && e.contains("`node = ...`"), "{e}");
        assert!(load(&["--config", &f.arg(), "--node", "n1"], &[]).unwrap().validate().is_ok());
    }

    #[test]
    fn bad_files_name_the_file_and_the_key() {
        let e = file_error("nodes = \"x\"\n");
        assert!(e.contains("unknown key `nodes`"), "{e}");
        let e = file_error("node_ip = \"10.0.0.1\"\n");
        assert!(e.contains("unknown key `node_ip` (did you mean `node-ip`?)"), "{e}");
        let e = file_error("config = \"/etc/other.toml\"\n");
        assert!(e.contains("unknown key `config`"), "{e}");
        let e = file_error("node-ip = \"10.0.0.300\"\n");
        assert!(e.contains("key `node-ip`: invalid value '10.0.0.300' for '--node-ip"), "{e}");
        let e = file_error("backend = \"udp\"\n");
        assert!(e.contains("key `backend`"), "{e}");
        let e = file_error("resync-seconds = [1]\n");
        assert!(e.contains("key `resync-seconds` must be a string or an integer"), "{e}");
        let e = file_error("node = \n");
        assert!(e.contains("not valid TOML") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let e = load(&["--config", "/nonexistent/twilld.toml"], &[]).unwrap_err().to_string();
        assert!(e.contains("read config file /nonexistent/twilld.toml"), "{e}");
    }
}
