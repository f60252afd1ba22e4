//! Finding a network's configuration in a config directory, the way libcni does: `.conflist`
//! files first (sorted by file name), then single-plugin `.conf`/`.json` files, and for lists
//! without inline plugins, plugin files under `<dir>/<network name>/*.conf` (spec 1.1.0).

use std::path::{Path, PathBuf};

use cni_spec::{ErrorCode, NetConfList};
use serde_json::Value;

use crate::Error;

/// A loaded network list plus the bytes it came from (cached by ADD as libcni does).
#[derive(Clone, Debug)]
pub struct LoadedList {
    pub list: NetConfList,
    pub bytes: Vec<u8>,
    pub source: PathBuf,
}

/// Loads the network named `name` from `dir`.
pub fn load_network(dir: &Path, name: &str) -> Result<LoadedList, Error> {
    for file in conf_files(dir, &["conflist"])? {
        let loaded = load_list_file(&file)?;
        if loaded.list.name == name {
            return Ok(loaded);
        }
    }
    for file in conf_files(dir, &["conf", "json"])? {
        let bytes = read(&file)?;
        let list = NetConfList::from_conf(&bytes).map_err(|e| in_file(&file, e))?;
        if list.name == name {
            return Ok(LoadedList { list, bytes, source: file });
        }
    }
    Err(Error::Config(cni_spec::Error::new(
        ErrorCode::InvalidConfig,
        format!("no net configuration with name {name:?} in {}", dir.display()),
    )))
}

/// Parses one conflist file, pulling plugins from `<dir>/<name>/*.conf` unless
/// `loadOnlyInlinedPlugins` is set.
pub fn load_list_file(file: &Path) -> Result<LoadedList, Error> {
    let bytes = read(file)?;
    let mut raw: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).map_err(|e| {
        in_file(file, cni_spec::Error::new(ErrorCode::Decode, format!("parse conflist: {e}")))
    })?;
    let inline_only = raw.get("loadOnlyInlinedPlugins").and_then(Value::as_bool) == Some(true);
    let name = raw.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    if !inline_only && !name.is_empty() {
        let extra = plugin_files(&file.parent().unwrap_or(Path::new(".")).join(&name))?;
        if !extra.is_empty() {
            let plugins = raw.entry("plugins").or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = plugins {
                items.extend(extra);
            }
        }
    }
    let merged = serde_json::to_vec(&raw).unwrap_or_else(|_| bytes.clone());
    let list = NetConfList::parse(&merged).map_err(|e| in_file(file, e))?;
    Ok(LoadedList { list, bytes: merged, source: file.to_path_buf() })
}

fn plugin_files(dir: &Path) -> Result<Vec<Value>, Error> {
    conf_files(dir, &["conf"])?
        .iter()
        .map(|file| {
            let bytes = read(file)?;
            serde_json::from_slice(&bytes).map_err(|e| {
                in_file(file, cni_spec::Error::new(ErrorCode::Decode, format!("parse plugin config: {e}")))
            })
        })
        .collect()
}

/// Files in `dir` with one of `extensions`, sorted by name; a missing dir has none.
pub fn conf_files(dir: &Path, extensions: &[&str]) -> Result<Vec<PathBuf>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| p.extension().and_then(|x| x.to_str()).is_some_and(|x| extensions.contains(&x)))
        .collect();
    files.sort();
    Ok(files)
}

fn read(file: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(file).map_err(|e| io_err(file, e))
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Config(cni_spec::Error::new(ErrorCode::Io, format!("read {}: {e}", path.display())))
}

fn in_file(file: &Path, e: cni_spec::Error) -> Error {
    let msg = format!("{}: {}", file.display(), e.msg);
    Error::Config(cni_spec::Error { msg, ..e })
}
