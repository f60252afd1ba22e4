//! One invocation: environment and stdin in, a result or an error out.

use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use cni_spec::{Error, NetConf, Version, validate_network_name, version_info};
use serde_json::Value;

use crate::args::{CmdArgs, Env};
use crate::command::Command;
use crate::plugin::Plugin;

/// What a successful invocation prints (nothing for CHECK, DEL, GC, STATUS).
type Output = Option<Value>;

/// A failure and the `cniVersion` to report it in.
struct Failure {
    error: Error,
    version: String,
}

/// Runs one invocation and returns the process exit code: 0 on success,
/// 1 after printing an error as JSON on `stdout`.
///
/// Errors are written in the configuration's `cniVersion`, or in the
/// plugin's highest supported version when the configuration could not be
/// read. A panicking plugin is reported as code 999 (in builds that unwind).
pub fn run(
    plugin: &dyn Plugin,
    about: &str,
    env: &dyn Env,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let outcome = catch_unwind(AssertUnwindSafe(|| dispatch(plugin, about, env, stdin, stderr)))
        .unwrap_or_else(|_| {
            Err(Failure { error: Error::internal("plugin panicked"), version: highest(plugin) })
        });
    match outcome {
        Ok(None) => 0,
        Ok(Some(value)) => match write_json(stdout, &value) {
            Ok(()) => 0,
            Err(e) => {
                let _ = writeln!(stderr, "writing result to stdout: {e}");
                1
            }
        },
        Err(failure) => {
            if let Err(e) = write_json(stdout, &failure.error.to_json(&failure.version)) {
                let _ = writeln!(stderr, "writing error to stdout: {e}: {}", failure.error);
            }
            1
        }
    }
}

/// Runs one invocation against the real process environment and standard
/// streams; a plugin binary's `main` passes the returned code to `exit`.
pub fn run_process(plugin: &dyn Plugin, about: &str) -> i32 {
    run(
        plugin,
        about,
        &crate::ProcessEnv,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    )
}

/// The JSON in one write: stdout is line-buffered, and a pretty result written straight to
/// it costs a system call per line.
fn write_json(out: &mut dyn Write, value: &Value) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    out.write_all(&text)?;
    out.flush()
}

fn highest(plugin: &dyn Plugin) -> String {
    plugin.supported_versions().iter().max().unwrap_or(&Version::LATEST).as_str().to_owned()
}

fn dispatch(
    plugin: &dyn Plugin,
    about: &str,
    env: &dyn Env,
    stdin: &mut dyn Read,
    stderr: &mut dyn Write,
) -> Result<Output, Failure> {
    let early = |error: Error| Failure { error, version: highest(plugin) };
    let command = read_command(plugin, about, env, stderr).map_err(early)?;
    let mut args = CmdArgs::from_env(command, env).map_err(early)?;
    stdin
        .read_to_end(&mut args.stdin)
        .map_err(|e| early(Error::io(format!("error reading from stdin: {e}"))))?;
    if command == Command::Version {
        return answer_version(plugin, &args.stdin).map(Some).map_err(early);
    }
    let conf = NetConf::parse(&args.stdin).map_err(early)?;
    let version = check_conf(plugin, command, &conf)
        .map_err(|error| Failure { error, version: reply_version(plugin, &conf) })?;
    call(plugin, &args, &conf, version)
        .map_err(|error| Failure { error, version: version.as_str().to_owned() })
}

/// `CNI_COMMAND`; when it is unset, `about` and the supported versions go
/// to stderr for a human who ran the binary by hand.
fn read_command(
    plugin: &dyn Plugin,
    about: &str,
    env: &dyn Env,
    stderr: &mut dyn Write,
) -> Result<Command, Error> {
    let raw = env.var("CNI_COMMAND").unwrap_or_default();
    if raw.is_empty() {
        if !about.is_empty() {
            let _ = writeln!(stderr, "{about}");
            let _ = writeln!(
                stderr,
                "CNI protocol versions supported: {}",
                cni_spec::version::join(plugin.supported_versions())
            );
        }
        return Err(Error::invalid_env("required env variables [CNI_COMMAND] missing"));
    }
    Command::parse(&raw).ok_or_else(|| Error::invalid_env(format!("unknown CNI_COMMAND: {raw}")))
}

/// VERSION: answers in the `cniVersion` given on stdin, else the highest
/// supported. Empty stdin is fine; stdin that is not JSON is code 6.
fn answer_version(plugin: &dyn Plugin, stdin: &[u8]) -> Result<Value, Error> {
    let supported = plugin.supported_versions();
    let mut answer = highest(plugin);
    if !stdin.iter().all(u8::is_ascii_whitespace) {
        let v: Value = serde_json::from_slice(stdin)
            .map_err(|e| Error::decode(format!("error parsing VERSION input: {e}")))?;
        if let Some(given) = v.get("cniVersion").and_then(Value::as_str)
            && !given.is_empty()
        {
            given.clone_into(&mut answer);
        }
    }
    Ok(version_info(&answer, supported))
}

/// The `cniVersion` to report a configuration error in: the config's own
/// when it is a known version, else the plugin's highest.
fn reply_version(plugin: &dyn Plugin, conf: &NetConf) -> String {
    match conf.version() {
        Ok(v) => v.as_str().to_owned(),
        Err(_) => highest(plugin),
    }
}

/// Network name, version support, and whether the version has the verb.
fn check_conf(plugin: &dyn Plugin, command: Command, conf: &NetConf) -> Result<Version, Error> {
    validate_network_name(&conf.name)?;
    let supported = plugin.supported_versions();
    let version = conf.version().ok().filter(|v| supported.contains(v)).ok_or_else(|| {
        let list: Vec<String> = supported.iter().map(|v| format!("{:?}", v.as_str())).collect();
        Error::incompatible("incompatible CNI versions").with_details(format!(
            "config is {:?}, plugin supports [{}]",
            conf.cni_version,
            list.join(" ")
        ))
    })?;
    let allowed = match command {
        Command::Check => version.supports_check(),
        Command::Gc | Command::Status => version.supports_gc(),
        _ => true,
    };
    if !allowed {
        return Err(Error::incompatible(format!("config version does not allow {command}"))
            .with_details(format!("config is {version}, {command} needs {}", min_version(command))));
    }
    Ok(version)
}

fn min_version(command: Command) -> Version {
    match command {
        Command::Check => Version::V0_4_0,
        Command::Gc | Command::Status => Version::V1_1_0,
        _ => Version::V0_1_0,
    }
}

fn call(plugin: &dyn Plugin, args: &CmdArgs, conf: &NetConf, version: Version) -> Result<Output, Error> {
    match args.command {
        Command::Add => plugin.add(args, conf)?.to_json(version).map(Some),
        Command::Check => plugin.check(args, conf).map(|()| None),
        Command::Del => plugin.del(args, conf).map(|()| None),
        Command::Gc => plugin.gc(args, conf).map(|()| None),
        Command::Status => plugin.status(args, conf).map(|()| None),
        Command::Version => Ok(Some(version_info(version.as_str(), plugin.supported_versions()))),
    }
}
