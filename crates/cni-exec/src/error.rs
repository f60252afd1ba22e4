//! The runtime side's one error type; each variant names the object it concerns.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while a runtime drives plugins.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No executable named like the plugin type on CNI_PATH.
    #[error("failed to find plugin {plugin:?} in path {path:?}")]
    PluginNotFound { plugin: String, path: Vec<PathBuf> },
    /// The plugin binary could not be started or talked to.
    #[error("run plugin {plugin}: {source}")]
    Spawn { plugin: PathBuf, source: io::Error },
    /// The plugin answered with a CNI error.
    #[error("{0}")]
    Plugin(cni_spec::Error),
    /// The plugin exited non-zero without a readable CNI error on stdout.
    #[error("plugin {plugin} exited with {status} and no CNI error on stdout: {output:?}")]
    Crashed { plugin: PathBuf, status: String, output: String },
    /// A plugin in a list failed; carries which one and for which verb.
    #[error("plugin type={plugin_type:?} name={network:?} failed ({verb}): {cause}")]
    Chain { plugin_type: String, network: String, verb: &'static str, cause: Box<Error> },
    /// The network configuration could not be found or read.
    #[error("{0}")]
    Config(cni_spec::Error),
    /// The result cache could not be read or written.
    #[error("{op} cache file {path}: {source}")]
    Cache { op: &'static str, path: PathBuf, source: io::Error },
    /// Input to the runtime itself was invalid (container id, ifname, network name).
    #[error("{0}")]
    Invalid(String),
    /// Several independent failures (GC keeps going and reports them all).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Many(Vec<Error>),
}

impl Error {
    /// The CNI error closest to this failure, for runtimes that report spec codes.
    pub fn to_cni(&self) -> cni_spec::Error {
        use cni_spec::{Error as CniError, ErrorCode};
        match self {
            Error::Plugin(e) | Error::Config(e) => e.clone(),
            Error::Chain { cause, .. } => {
                let inner = cause.to_cni();
                CniError::new(inner.code, self.to_string())
            }
            Error::Invalid(msg) => CniError::new(ErrorCode::InvalidEnvironment, msg.clone()),
            Error::PluginNotFound { .. } | Error::Spawn { .. } | Error::Cache { .. } => {
                CniError::new(ErrorCode::Io, self.to_string())
            }
            Error::Crashed { .. } | Error::Many(_) => CniError::new(ErrorCode::Internal, self.to_string()),
        }
    }
}
