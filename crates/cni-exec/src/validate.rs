//! Checks libcni makes before running a plugin, so a bad name never reaches a plugin or a
//! cache file path. The rules themselves live in cni-spec.

use crate::{Error, RuntimeConf};

/// Everything an attachment's identity must satisfy.
pub fn attachment(network: &str, rt: &RuntimeConf) -> Result<(), Error> {
    cni_spec::validate_network_name(network)
        .and_then(|()| cni_spec::validate_container_id(&rt.container_id))
        .and_then(|()| cni_spec::validate_ifname(&rt.ifname))
        .map_err(Error::Config)
}
