//! Why a TLS connection to an etcd member fails. Through gRPC, a member that refuses this
//! client's certificate (or its lack of one) only shows up as a broken pipe, because TLS 1.3
//! servers judge the client's certificate after the handshake. One plain rustls handshake plus
//! an HTTP/2 preface, with the same files, brings the server's alert to light, so the operator
//! reads "certificate required" rather than "transport error".

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::EtcdTls;

const TIMEOUT: Duration = Duration::from_secs(2);
/// What an HTTP/2 client sends first: the preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fn config(tls: &EtcdTls) -> Result<ClientConfig, String> {
    let ca = tls.cacert.as_ref().ok_or("no CA")?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("read {}: {e}", ca.display()))? {
        let cert = cert.map_err(|e| format!("read {}: {e}", ca.display()))?;
        roots.add(cert).map_err(|e| format!("CA {}: {e}", ca.display()))?;
    }
    // The provider tonic's `tls-ring` feature uses, so this probe negotiates as the gRPC client
    // does (rustls deprecates it only for lacking post-quantum key exchange).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("read {}: {e}", cert.display()))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("read {}: {e}", key.display()))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("client certificate: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The TLS problem with the member at `url` (`https://HOST:PORT`), if there is one; `None`
/// when the handshake and the first exchange succeed or the member cannot be reached at all.
pub fn diagnose(url: &str, tls: &EtcdTls) -> Option<String> {
    let host_port = url.strip_prefix("https://")?;
    let host = host_port.rsplit_once(':')?.0.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_string()).ok()?;
    let config = match config(tls) {
        Ok(c) => c,
        Err(e) => return Some(e),
    };
    let addr = host_port.to_socket_addrs().ok()?.next()?;
    let sock = TcpStream::connect_timeout(&addr, TIMEOUT).ok()?;
    sock.set_read_timeout(Some(TIMEOUT)).ok()?;
    sock.set_write_timeout(Some(TIMEOUT)).ok()?;
    let conn = ClientConnection::new(Arc::new(config), name).ok()?;
    let mut stream = StreamOwned::new(conn, sock);
    if let Err(e) = stream.write_all(H2_PREFACE).and_then(|()| stream.flush()) {
        return tls_error(&e);
    }
    let mut buf = [0u8; 64];
    // Any answer (the server's SETTINGS) means the certificates were accepted.
    match stream.read(&mut buf) {
        Ok(0..) => None,
        Err(e) => tls_error(&e),
    }
}

/// The rustls error inside an I/O error, as text.
fn tls_error(e: &std::io::Error) -> Option<String> {
    let inner = e.get_ref()?;
    inner.downcast_ref::<rustls::Error>().map(ToString::to_string)
}
