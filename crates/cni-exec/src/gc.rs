//! GC and STATUS of a network list (spec 1.1.0). GC first synthesises DEL for every cached
//! attachment of the network that is not in the valid set — so even plugins without a GC verb
//! get their stale attachments removed — then sends GC to the plugins when the list's version
//! is 1.1.0 or newer.

use cni_spec::{Attachment, ErrorCode};
use serde_json::Value;

use crate::cache::CacheEntry;
use crate::exec::InvokeArgs;
use crate::load::LoadedList;
use crate::runtime::{chain, plugin_type};
use crate::{Error, Runtime, RuntimeConf};

/// What a GC run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Stale attachments removed by a synthesised DEL.
    pub deleted: Vec<Attachment>,
    /// Whether the GC verb was sent to the plugins (version ≥ 1.1.0).
    pub gc_sent: bool,
}

impl Runtime {
    /// GC with `valid` as the attachments that must survive. Errors are collected; every stale
    /// attachment and every plugin is tried.
    pub fn gc(&self, net: &LoadedList, valid: &[Attachment]) -> Result<GcReport, Error> {
        let mut report = GcReport::default();
        if net.list.disable_gc {
            return Ok(report);
        }
        let version = self.version_of(net)?;
        let mut errors = Vec::new();
        for entry in self.cache.list()? {
            if entry.network != net.list.name || is_valid(&entry, valid) {
                continue;
            }
            match self.del(net, &runtime_conf_of(&entry)) {
                Ok(()) => report.deleted.push(attachment_of(&entry)),
                Err(e) => errors.push(Error::Invalid(format!(
                    "delete stale attachment {} {}: {e}",
                    entry.container_id, entry.ifname
                ))),
            }
        }
        if version.supports_gc() {
            report.gc_sent = true;
            let valid_json = serde_json::to_value(valid).unwrap_or(Value::Array(Vec::new()));
            for plugin in &net.list.plugins {
                let mut conf = plugin.clone();
                conf.insert("name".into(), Value::String(net.list.name.clone()));
                conf.insert("cniVersion".into(), Value::String(version.as_str().into()));
                conf.insert("cni.dev/valid-attachments".into(), valid_json.clone());
                // libcni also sends the key the spec first misnamed (cni#1101).
                conf.insert("cni.dev/attachments".into(), valid_json.clone());
                if let Err(e) = self.invoke_plain(plugin_type(plugin), "GC", &Value::Object(conf)) {
                    errors.push(chain(plugin, &net.list.name, "gc", e));
                }
            }
        }
        if errors.is_empty() { Ok(report) } else { Err(Error::Many(errors)) }
    }

    /// STATUS: asks every plugin whether it can take ADDs. Lists older than 1.1.0 have no
    /// STATUS verb; they are reported ready (as libcni does) and `Ok(false)` says so.
    pub fn status(&self, net: &LoadedList) -> Result<bool, Error> {
        let version = self.version_of(net)?;
        if !version.supports_gc() {
            return Ok(false);
        }
        for plugin in &net.list.plugins {
            let mut conf = plugin.clone();
            conf.insert("name".into(), Value::String(net.list.name.clone()));
            conf.insert("cniVersion".into(), Value::String(version.as_str().into()));
            self.invoke_plain(plugin_type(plugin), "STATUS", &Value::Object(conf))
                .map_err(|e| chain(plugin, &net.list.name, "status", e))?;
        }
        Ok(true)
    }

    fn invoke_plain(&self, plugin_type: &str, verb: &'static str, conf: &Value) -> Result<Vec<u8>, Error> {
        let exe = self.exec.find(plugin_type, self.path())?;
        let args = InvokeArgs { command: verb, path: self.path().to_vec(), ..Default::default() };
        let bytes = serde_json::to_vec(conf)
            .map_err(|e| Error::Plugin(cni_spec::Error::new(ErrorCode::Decode, e.to_string())))?;
        self.exec.exec(&exe, &bytes, &args)
    }
}

fn is_valid(entry: &CacheEntry, valid: &[Attachment]) -> bool {
    valid.iter().any(|a| a.container_id == entry.container_id && a.ifname == entry.ifname)
}

fn attachment_of(entry: &CacheEntry) -> Attachment {
    Attachment { container_id: entry.container_id.clone(), ifname: entry.ifname.clone() }
}

fn runtime_conf_of(entry: &CacheEntry) -> RuntimeConf {
    RuntimeConf {
        container_id: entry.container_id.clone(),
        netns: entry.netns.clone(),
        ifname: entry.ifname.clone(),
        args: entry.cni_args.clone(),
        capability_args: entry.capability_args.clone(),
    }
}
