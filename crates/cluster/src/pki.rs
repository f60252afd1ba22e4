//! A throw-away certificate authority for an etcd cluster that speaks TLS: one CA, one server
//! certificate valid for the members' addresses, one client certificate. `twill lab up
//! --datastore etcd` and the tests make one; a real cluster brings its own PKI and only hands
//! twill the file paths.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The PEM files written by [`generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("generate {what}: {source}")]
    Generate { what: &'static str, source: rcgen::Error },
    #[error("write {}: {source}", .path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

fn gen_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |source| PkiError::Generate { what, source }
}

fn write(dir: &Path, name: &str, pem: &str, private: bool) -> Result<PathBuf, PkiError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let io = |source| PkiError::Write { path: path.clone(), source };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&path)
        .map_err(io)?;
    std::io::Write::write_all(&mut f, pem.as_bytes()).map_err(io)?;
    Ok(path)
}

/// One leaf certificate: `names` (IP addresses or DNS names) as its subject alternative names.
fn leaf(
    cn: &str,
    names: &[String],
    usage: ExtendedKeyUsagePurpose,
    ca: &Issuer<'_, KeyPair>,
) -> Result<(String, String), PkiError> {
    let mut params = CertificateParams::new(names.to_vec()).map_err(gen_err("certificate names"))?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate().map_err(gen_err("key"))?;
    let cert = params.signed_by(&key, ca).map_err(gen_err("certificate"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `ca.pem`, `server.pem`/`server-key.pem` (valid for `server_names`, e.g. the members'
/// IP addresses and `localhost`) and `client.pem`/`client-key.pem` into `dir`.
pub fn generate(dir: &Path, server_names: &[String]) -> Result<Pki, PkiError> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Write { path: dir.to_path_buf(), source })?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err("CA"))?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "twill etcd CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(gen_err("CA key"))?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen_err("CA certificate"))?;
    let issuer = Issuer::new(ca_params, ca_key);
    let (server, server_key) = leaf("etcd", server_names, ExtendedKeyUsagePurpose::ServerAuth, &issuer)?;
    let (client, client_key) = leaf("twill", &[], ExtendedKeyUsagePurpose::ClientAuth, &issuer)?;
    Ok(Pki {
        ca: write(dir, "ca.pem", &ca_cert.pem(), false)?,
        server_cert: write(dir, "server.pem", &server, false)?,
        server_key: write(dir, "server-key.pem", &server_key, true)?,
        client_cert: write(dir, "client.pem", &client, false)?,
        client_key: write(dir, "client-key.pem", &client_key, true)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pem_files_with_private_keys_closed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("twill-pki-{}", std::process::id()));
        let pki = generate(&dir, &["127.0.0.1".into(), "localhost".into()]).unwrap();
        for p in [&pki.ca, &pki.server_cert, &pki.client_cert] {
            assert!(std::fs::read_to_string(p).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
        }
        for p in [&pki.server_key, &pki.client_key] {
            assert!(std::fs::read_to_string(p).unwrap().contains("PRIVATE KEY-----"));
            assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
