//! Test helpers for TLS: certificates made at run time with rcgen, a TLS
//! server (tokio-rustls) that reports what it saw of each handshake, and a
//! temporary directory for PEM files.
//!
//! Used by the unit tests of `src/tls.rs` and `src/connection/transport.rs`
//! (through `#[path]`) and by `tests/tls.rs`; each uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// Bytes the test server writes right after a successful handshake.
pub const GREETING: &[u8] = b"hello from the test server\n";

/// Directory of the static key fixtures (PKCS#1 and SEC1 keys, which rcgen
/// with ring cannot produce).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("tls_support")
        .join("fixtures")
}

/// The ring crypto provider (the one zmqtt uses).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate authority made for one test.
pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The CA certificate, DER.
    pub ca_der: CertificateDer<'static>,
}

/// A certificate with its private key.
pub struct Identity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The private key, DER (PKCS#8).
    pub key_der: Vec<u8>,
}

impl Identity {
    /// The private key for rustls.
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

impl Pki {
    /// A new self-signed CA named `name`.
    pub fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            issuer: Issuer::new(params, key),
            ca_pem: cert.pem(),
            ca_der: cert.der().clone(),
        }
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Identity {
        self.issue(names, None, ExtendedKeyUsagePurpose::ServerAuth, false)
    }

    /// A server certificate for `names` that expired in 2001.
    pub fn expired_server(&self, names: &[&str]) -> Identity {
        self.issue(names, None, ExtendedKeyUsagePurpose::ServerAuth, true)
    }

    /// A client certificate with common name `name`.
    pub fn client(&self, name: &str) -> Identity {
        self.issue(&[], Some(name), ExtendedKeyUsagePurpose::ClientAuth, false)
    }

    /// The CA as a rustls root store.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        roots
    }

    fn issue(
        &self,
        names: &[&str],
        common_name: Option<&str>,
        usage: ExtendedKeyUsagePurpose,
        expired: bool,
    ) -> Identity {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        if let Some(name) = common_name.or(names.first().map(String::as_str)) {
            params.distinguished_name.push(DnType::CommonName, name);
        }
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }
}

/// What kind of client authentication a test server asks for.
pub enum ClientAuth<'a> {
    /// None.
    Off,
    /// A certificate signed by this CA is required.
    Required(&'a Pki),
}

/// A rustls server configuration presenting `identity`.
pub fn server_config(
    identity: &Identity,
    client_auth: ClientAuth<'_>,
    alpn: &[&[u8]],
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = match client_auth {
        ClientAuth::Off => builder.with_no_client_auth(),
        ClientAuth::Required(pki) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(pki.roots()), provider())
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(vec![identity.cert_der.clone()], identity.key())
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Arc::new(config)
}

/// What the test server saw of one handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The SNI the client sent.
    pub sni: Option<String>,
    /// The ALPN protocol agreed on.
    pub alpn: Option<Vec<u8>>,
    /// Whether the client presented a certificate.
    pub client_certificate: bool,
}

/// A TLS server on 127.0.0.1 that accepts any number of connections; for each
/// it reports the handshake, writes [`GREETING`], then echoes what it reads.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    handshakes: mpsc::UnboundedReceiver<Result<Handshake, String>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Starts a server with `config` on a free port of 127.0.0.1.
    pub async fn start(config: Arc<ServerConfig>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(config);
        let (sender, handshakes) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    let mut stream = match acceptor.accept(tcp).await {
                        Ok(stream) => stream,
                        Err(error) => {
                            let _ = sender.send(Err(error.to_string()));
                            return;
                        }
                    };
                    let connection = stream.get_ref().1;
                    let handshake = Handshake {
                        sni: connection.server_name().map(str::to_owned),
                        alpn: connection.alpn_protocol().map(<[u8]>::to_vec),
                        client_certificate: connection
                            .peer_certificates()
                            .is_some_and(|certs| !certs.is_empty()),
                    };
                    let _ = sender.send(Ok(handshake));
                    if stream.write_all(GREETING).await.is_err() || stream.flush().await.is_err() {
                        return;
                    }
                    let mut buffer = [0u8; 4096];
                    loop {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if stream.write_all(&buffer[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        TestServer {
            addr,
            handshakes,
            task,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// What the server saw of the next handshake (`Err`: why it failed).
    pub async fn next_handshake(&mut self) -> Result<Handshake, String> {
        tokio::time::timeout(std::time::Duration::from_secs(10), self.handshakes.recv())
            .await
            .expect("the test server saw no handshake within 10 s")
            .expect("the test server stopped")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A directory removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new empty directory under the system temp dir.
    pub fn new() -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let unique = format!(
            "zmqtt-tls-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    /// Writes `contents` to `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
