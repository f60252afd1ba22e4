//! Where the datastore is and how to reach it, as every twill command and twilld take it:
//! `file:DIR`, or `etcd:http[s]://HOST:PORT[,http[s]://HOST2:PORT...]` with the TLS files of
//! an etcd cluster (CA, client certificate and key). Combinations that cannot work are refused
//! here, before anything is contacted.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use super::{Datastore, EtcdStore, FileStore, StoreError};

/// The datastore's address: a directory, or the client URLs of an etcd cluster's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    File(PathBuf),
    /// `http://HOST:PORT` or `https://HOST:PORT`, one per member, all of one scheme.
    Etcd(Vec<String>),
}

impl Endpoint {
    /// True for `https://` etcd members.
    pub fn is_https(&self) -> bool {
        matches!(self, Endpoint::Etcd(urls) if urls.iter().any(|u| u.starts_with("https://")))
    }
}

fn bad(value: &str, reason: &'static str) -> StoreError {
    StoreError::InvalidEndpoint { value: value.to_string(), reason }
}

/// `http://HOST:PORT` or `https://HOST:PORT` (a trailing `/` is dropped).
fn parse_member(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| bad(url, "etcd members are http://HOST:PORT or https://HOST:PORT"))?;
    let host_port = rest.trim_end_matches('/');
    let port_ok = host_port.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty() && !host.ends_with(':') && port.parse::<u16>().is_ok_and(|p| p != 0)
    });
    if host_port.contains('/') || !port_ok {
        return Err(bad(url, "etcd URL must be http[s]://HOST:PORT"));
    }
    Ok(url[..url.len() - (rest.len() - host_port.len())].to_string())
}

impl FromStr for Endpoint {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Endpoint, StoreError> {
        if let Some(dir) = s.strip_prefix("file:") {
            if dir.is_empty() {
                return Err(bad(s, "file: needs a directory"));
            }
            return Ok(Endpoint::File(PathBuf::from(dir)));
        }
        let Some(list) = s.strip_prefix("etcd:") else {
            return Err(bad(s, "must start with file: or etcd:"));
        };
        let urls = list.split(',').map(parse_member).collect::<Result<Vec<_>, _>>()?;
        let https = urls.iter().filter(|u| u.starts_with("https://")).count();
        if https != 0 && https != urls.len() {
            return Err(bad(s, "etcd members must all be http:// or all https://"));
        }
        Ok(Endpoint::Etcd(urls))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::File(dir) => write!(f, "file:{}", dir.display()),
            Endpoint::Etcd(urls) => write!(f, "etcd:{}", urls.join(",")),
        }
    }
}

/// PEM files for an etcd cluster that uses TLS: the CA its members' certificates are signed
/// by, and this client's certificate and key when the members demand one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdTls {
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl EtcdTls {
    pub fn is_empty(&self) -> bool {
        self.cacert.is_none() && self.cert.is_none() && self.key.is_none()
    }
}

/// A checked datastore address with its TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatastoreConf {
    pub endpoint: Endpoint,
    pub tls: EtcdTls,
}

impl DatastoreConf {
    /// Checks that the TLS files fit the endpoint: https needs a CA, a client certificate
    /// needs its key (and the other way round), and plain http or a file store takes none.
    pub fn new(endpoint: Endpoint, tls: EtcdTls) -> Result<DatastoreConf, StoreError> {
        let value = endpoint.to_string();
        let reason = match (&endpoint, endpoint.is_https()) {
            (Endpoint::File(_), _) if !tls.is_empty() => Some("TLS files apply to an etcd datastore only"),
            (Endpoint::Etcd(_), false) if !tls.is_empty() => {
                Some("TLS files were given but the etcd URLs are http://; use https://")
            }
            (Endpoint::Etcd(_), true) if tls.cacert.is_none() => {
                Some("https:// etcd members need the CA that signed their certificates (--etcd-cacert)")
            }
            _ if tls.cert.is_some() != tls.key.is_some() => Some(
                "a client certificate needs its key and a key its certificate (--etcd-cert with --etcd-key)",
            ),
            _ => None,
        };
        match reason {
            Some(reason) => Err(StoreError::InvalidEndpoint { value, reason }),
            None => Ok(DatastoreConf { endpoint, tls }),
        }
    }

    /// Parses `file:DIR` / `etcd:URL[,URL...]` and checks it with `tls`.
    pub fn parse(value: &str, tls: EtcdTls) -> Result<DatastoreConf, StoreError> {
        DatastoreConf::new(value.parse()?, tls)
    }

    /// Opens the datastore (creating the directory of a file store). An etcd client connects
    /// lazily: use [`Datastore::check`] to find out whether the members can be reached.
    pub fn open(&self) -> Result<Arc<dyn Datastore>, StoreError> {
        match &self.endpoint {
            Endpoint::File(dir) => Ok(Arc::new(FileStore::open(dir)?)),
            Endpoint::Etcd(urls) => Ok(Arc::new(EtcdStore::connect(urls, &self.tls)?)),
        }
    }
}

impl fmt::Display for DatastoreConf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.endpoint.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!("file:/tmp/x".parse::<Endpoint>().unwrap(), Endpoint::File("/tmp/x".into()));
        assert_eq!(
            "etcd:http://127.0.0.1:2379".parse::<Endpoint>().unwrap(),
            Endpoint::Etcd(vec!["http://127.0.0.1:2379".into()])
        );
        assert_eq!(
            "etcd:https://a:2379/,https://[fd00::1]:2379".parse::<Endpoint>().unwrap().to_string(),
            "etcd:https://a:2379,https://[fd00::1]:2379"
        );
        for bad in [
            "",
            "file:",
            "etcd:127.0.0.1:2379",
            "etcd:http://",
            "etcd:http://a/b:1",
            "etcd:http://a:0",
            "etcd:http://a:x",
            "etcd:http://a:1,",
            "etcd:http://a:1,https://b:2",
            "zk:x",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }

    fn tls(cacert: bool, cert: bool, key: bool) -> EtcdTls {
        let p = |b: bool, n: &str| b.then(|| PathBuf::from(n));
        EtcdTls { cacert: p(cacert, "/ca.pem"), cert: p(cert, "/c.pem"), key: p(key, "/k.pem") }
    }

    #[test]
    fn tls_files_must_fit_the_endpoint() {
        let ok = |v: &str, t: EtcdTls| DatastoreConf::parse(v, t).map(|_| ()).map_err(|e| e.to_string());
        assert!(ok("etcd:https://a:1", tls(true, true, true)).is_ok());
        assert!(ok("etcd:https://a:1", tls(true, false, false)).is_ok());
        assert!(ok("etcd:http://a:1", tls(false, false, false)).is_ok());
        assert!(ok("file:/x", EtcdTls::default()).is_ok());
        let e = ok("etcd:https://a:1", tls(false, true, true)).unwrap_err();
        assert!(e.contains("--etcd-cacert"), "{e}");
        let e = ok("etcd:https://a:1", tls(true, true, false)).unwrap_err();
        assert!(e.contains("--etcd-key"), "{e}");
        let e = ok("etcd:http://a:1", tls(true, false, false)).unwrap_err();
        assert!(e.contains("use https://"), "{e}");
        assert!(ok("file:/x", tls(true, false, false)).is_err());
    }
}
