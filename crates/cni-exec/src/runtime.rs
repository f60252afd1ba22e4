//! Driving a network list through its plugins: ADD in order with prevResult chaining, CHECK
//! against the cached result, DEL in reverse order, with the result cache kept in step.

use std::path::PathBuf;

use cni_spec::{CniResult, ErrorCode, Version, VersionInfo};
use serde_json::{Map, Value};

use crate::cache::{CACHE_KIND, Cache, CacheEntry};
use crate::exec::{Exec, InvokeArgs, RawExec};
use crate::load::LoadedList;
use crate::{Error, validate};

/// What the runtime knows about one attachment (libcni's RuntimeConf).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeConf {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// CNI_ARGS as key/value pairs.
    pub args: Vec<(String, String)>,
    /// Capability arguments; each plugin gets those it declares in `capabilities`.
    pub capability_args: Map<String, Value>,
}

/// Runs plugins found on `path`, caching results under the cache directory.
pub struct Runtime {
    pub(crate) path: Vec<PathBuf>,
    pub(crate) cache: Cache,
    pub(crate) exec: Box<dyn Exec>,
}

impl Runtime {
    /// A runtime executing real binaries.
    pub fn new(path: Vec<PathBuf>, cache_dir: impl Into<PathBuf>) -> Runtime {
        Runtime::with_exec(path, cache_dir, Box::new(RawExec::default()))
    }

    /// A runtime with an injected executor (tests, in-process plugins).
    pub fn with_exec(path: Vec<PathBuf>, cache_dir: impl Into<PathBuf>, exec: Box<dyn Exec>) -> Runtime {
        Runtime { path, cache: Cache::new(cache_dir), exec }
    }

    /// The result cache this runtime writes.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The version every plugin of the list is driven with.
    pub fn version_of(&self, net: &LoadedList) -> Result<Version, Error> {
        net.list.negotiate(&Version::ALL).map_err(Error::Config)
    }

    /// ADD: runs every plugin in order, each getting the previous one's result; caches the
    /// final result. On failure the caller should run DEL (as runtimes do).
    pub fn add(&self, net: &LoadedList, rt: &RuntimeConf) -> Result<CniResult, Error> {
        validate::attachment(&net.list.name, rt)?;
        let version = self.version_of(net)?;
        let mut prev: Option<CniResult> = None;
        for plugin in &net.list.plugins {
            let conf = plugin_conf(net, plugin, version, prev.as_ref(), Some(rt))?;
            let out =
                self.invoke(plugin, "ADD", &conf, rt).map_err(|e| chain(plugin, &net.list.name, "add", e))?;
            prev = Some(parse_result(&out, version).map_err(|e| chain(plugin, &net.list.name, "add", e))?);
        }
        let result = prev.ok_or_else(|| Error::Invalid("network list has no plugins".into()))?;
        self.cache.put(&CacheEntry {
            kind: CACHE_KIND.into(),
            container_id: rt.container_id.clone(),
            config: net.bytes.clone(),
            ifname: rt.ifname.clone(),
            network: net.list.name.clone(),
            netns: rt.netns.clone(),
            cni_args: rt.args.clone(),
            capability_args: rt.capability_args.clone(),
            result: Some(result.to_json(version).map_err(Error::Plugin)?),
        })?;
        Ok(result)
    }

    /// CHECK: every plugin verifies the cached result. Not available before 0.4.0; skipped
    /// entirely when the list sets `disableCheck`.
    pub fn check(&self, net: &LoadedList, rt: &RuntimeConf) -> Result<(), Error> {
        validate::attachment(&net.list.name, rt)?;
        let version = self.version_of(net)?;
        if !version.supports_check() {
            return Err(Error::Config(cni_spec::Error::new(
                ErrorCode::IncompatibleVersion,
                format!("configuration version {version} does not support the CHECK command"),
            )));
        }
        if net.list.disable_check {
            return Ok(());
        }
        let cached = self.cached_result(net, rt, version)?;
        for plugin in &net.list.plugins {
            let conf = plugin_conf(net, plugin, version, cached.as_ref(), Some(rt))?;
            self.invoke(plugin, "CHECK", &conf, rt).map_err(|e| chain(plugin, &net.list.name, "check", e))?;
        }
        Ok(())
    }

    /// DEL: every plugin in reverse order, with the cached result as prevResult (≥0.4.0);
    /// the cache entry goes once all plugins succeeded.
    pub fn del(&self, net: &LoadedList, rt: &RuntimeConf) -> Result<(), Error> {
        validate::attachment(&net.list.name, rt)?;
        let version = self.version_of(net)?;
        let cached = if version.supports_check() {
            self.cached_result(net, rt, version).unwrap_or(None)
        } else {
            None
        };
        for plugin in net.list.plugins.iter().rev() {
            let conf = plugin_conf(net, plugin, version, cached.as_ref(), Some(rt))?;
            self.invoke(plugin, "DEL", &conf, rt).map_err(|e| chain(plugin, &net.list.name, "delete", e))?;
        }
        self.cache.remove(&net.list.name, &rt.container_id, &rt.ifname)
    }

    /// The cached result of an attachment, in `version`.
    pub fn cached_result(
        &self,
        net: &LoadedList,
        rt: &RuntimeConf,
        version: Version,
    ) -> Result<Option<CniResult>, Error> {
        let Some(entry) = self.cache.get(&net.list.name, &rt.container_id, &rt.ifname) else {
            return Ok(None);
        };
        let Some(raw) = entry.result else { return Ok(None) };
        let parsed = CniResult::from_json(&raw).map_err(Error::Plugin)?;
        Ok(Some(CniResult { cni_version: version, ..parsed }))
    }

    /// VERSION of one plugin type.
    pub fn version_info(&self, plugin_type: &str) -> Result<VersionInfo, Error> {
        let exe = self.exec.find(plugin_type, &self.path)?;
        let args = InvokeArgs { command: "VERSION", path: self.path.clone(), ..Default::default() };
        let stdin = serde_json::json!({ "cniVersion": Version::V1_1_0.as_str() });
        let out = self.exec.exec(&exe, stdin.to_string().as_bytes(), &args)?;
        let value: Value = serde_json::from_slice(&out).map_err(|e| {
            Error::Plugin(cni_spec::Error::decode(format!("plugin {plugin_type} VERSION output: {e}")))
        })?;
        VersionInfo::from_json(&value).map_err(Error::Plugin)
    }

    pub(crate) fn invoke(
        &self,
        plugin: &Map<String, Value>,
        verb: &'static str,
        conf: &[u8],
        rt: &RuntimeConf,
    ) -> Result<Vec<u8>, Error> {
        let exe = self.exec.find(plugin_type(plugin), &self.path)?;
        let args = InvokeArgs {
            command: verb,
            container_id: rt.container_id.clone(),
            netns: rt.netns.clone(),
            ifname: rt.ifname.clone(),
            args: rt.args.clone(),
            path: self.path.clone(),
        };
        self.exec.exec(&exe, conf, &args)
    }

    pub(crate) fn path(&self) -> &[PathBuf] {
        &self.path
    }
}

/// The `type` of a plugin entry (parsing already checked it is there).
pub(crate) fn plugin_type(plugin: &Map<String, Value>) -> &str {
    plugin.get("type").and_then(Value::as_str).unwrap_or_default()
}

pub(crate) fn chain(plugin: &Map<String, Value>, network: &str, verb: &'static str, e: Error) -> Error {
    Error::Chain {
        plugin_type: plugin_type(plugin).into(),
        network: network.into(),
        verb,
        cause: Box::new(e),
    }
}

/// One plugin's stdin: its entry with the list's name and version, prevResult, and the
/// capability arguments it declares, as libcni's buildOneConfig does.
pub(crate) fn plugin_conf(
    net: &LoadedList,
    plugin: &Map<String, Value>,
    version: Version,
    prev: Option<&CniResult>,
    rt: Option<&RuntimeConf>,
) -> Result<Vec<u8>, Error> {
    let mut conf = plugin.clone();
    conf.insert("name".into(), Value::String(net.list.name.clone()));
    conf.insert("cniVersion".into(), Value::String(version.as_str().into()));
    if let Some(prev) = prev {
        conf.insert("prevResult".into(), prev.to_json(version).map_err(Error::Plugin)?);
    }
    if let Some(rt) = rt {
        let runtime_config = capability_args_for(plugin, &rt.capability_args);
        if !runtime_config.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(runtime_config));
        }
    }
    serde_json::to_vec(&conf).map_err(|e| Error::Invalid(format!("encode plugin config: {e}")))
}

fn capability_args_for(plugin: &Map<String, Value>, caps: &Map<String, Value>) -> Map<String, Value> {
    let Some(Value::Object(declared)) = plugin.get("capabilities") else {
        return Map::new();
    };
    declared
        .iter()
        .filter(|(_, on)| on.as_bool() == Some(true))
        .filter_map(|(name, _)| caps.get(name).map(|v| (name.clone(), v.clone())))
        .collect()
}

/// A plugin's ADD output, read in its own cniVersion (or the list's when it names none).
fn parse_result(out: &[u8], version: Version) -> Result<CniResult, Error> {
    let value: Value = serde_json::from_slice(out)
        .map_err(|e| Error::Plugin(cni_spec::Error::decode(format!("decode plugin result: {e}"))))?;
    let parsed = if value.get("cniVersion").is_some() {
        CniResult::from_json(&value)
    } else {
        CniResult::from_json_as(&value, version)
    };
    parsed.map_err(Error::Plugin)
}
