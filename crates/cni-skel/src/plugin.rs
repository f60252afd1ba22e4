//! What a plugin implements.

use cni_spec::{CniResult, Error, NetConf, Version};

use crate::args::CmdArgs;

/// A CNI plugin. [`crate::run`] parses and checks everything the spec
/// defines before calling a method, so `conf` is always a parsed
/// configuration in a version listed by [`Plugin::supported_versions`] that
/// allows the verb.
pub trait Plugin {
    /// The spec versions this plugin accepts; all of them by default.
    fn supported_versions(&self) -> &[Version] {
        &Version::ALL
    }

    /// ADD: attach and return the result (written out in the config's version).
    fn add(&self, args: &CmdArgs, conf: &NetConf) -> Result<CniResult, Error>;

    /// CHECK: verify the attachment described by `conf.prev_result`.
    fn check(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error>;

    /// DEL: detach; must succeed when there is nothing left to remove.
    fn del(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error>;

    /// GC: remove resources of attachments not in the valid list.
    fn gc(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error>;

    /// STATUS: succeed when ADD can be serviced.
    fn status(&self, args: &CmdArgs, conf: &NetConf) -> Result<(), Error>;
}
