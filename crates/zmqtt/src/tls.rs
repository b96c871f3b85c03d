//! TLS settings: which certificates to trust, which to present, and how the
//! rustls `ClientConfig` is made from them.
//!
//! [`Tls`] is what a client is configured with (`.tls(...)` on the builder
//! accepts anything that converts into it). [`TlsConfig`] is plain data
//! (paths, bytes, flags) so that other front ends, e.g. the Python package
//! mapping an `ssl.SSLContext`, can fill it without touching rustls.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme, SupportedProtocolVersion,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// How to secure the connection to the broker.
///
/// Anything that converts into `Tls` can be given to the client builder's
/// `.tls(...)`: a [`TlsConfig`], a `rustls::ClientConfig` (or an
/// `Arc` of one), or a `bool` (`true` = [`Tls::System`], `false` = [`Tls::Off`]).
#[derive(Debug, Clone, Default)]
pub enum Tls {
    /// Plain TCP, no TLS.
    #[default]
    Off,
    /// TLS verified against the platform's trusted root certificates.
    System,
    /// TLS with a rustls configuration of your own. The TLS server name is the
    /// client's host.
    Custom(Arc<ClientConfig>),
    /// TLS configured from [`TlsConfig`] (CA files, client certificate, SNI, ALPN, …).
    Files(TlsConfig),
}

impl Tls {
    /// True unless this is [`Tls::Off`].
    pub fn is_enabled(&self) -> bool {
        !matches!(self, Tls::Off)
    }

    /// The rustls configuration and the server-name override to connect with,
    /// or `None` for plain TCP. Reads files (blocking): call it off the runtime
    /// threads.
    pub(crate) fn setup(&self) -> Result<Option<TlsSetup>> {
        match self {
            Tls::Off => Ok(None),
            Tls::System => Ok(Some(TlsSetup {
                config: TlsConfig::new().build()?,
                server_name: None,
            })),
            Tls::Custom(config) => Ok(Some(TlsSetup {
                config: Arc::clone(config),
                server_name: None,
            })),
            Tls::Files(settings) => Ok(Some(TlsSetup {
                config: settings.build()?,
                server_name: settings.server_name.clone(),
            })),
        }
    }
}

impl From<ClientConfig> for Tls {
    fn from(config: ClientConfig) -> Self {
        Tls::Custom(Arc::new(config))
    }
}

impl From<Arc<ClientConfig>> for Tls {
    fn from(config: Arc<ClientConfig>) -> Self {
        Tls::Custom(config)
    }
}

impl From<TlsConfig> for Tls {
    fn from(config: TlsConfig) -> Self {
        Tls::Files(config)
    }
}

impl From<bool> for Tls {
    /// `true` is [`Tls::System`], `false` is [`Tls::Off`] (as `tls=True/False` in Python).
    fn from(enabled: bool) -> Self {
        if enabled {
            Tls::System
        } else {
            Tls::Off
        }
    }
}

/// The lowest TLS version to accept. rustls never speaks anything below 1.2.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.2 or 1.3 (the default).
    #[default]
    Tls1_2,
    /// TLS 1.3 only.
    Tls1_3,
}

/// TLS settings as plain data: CA certificates, an optional client
/// certificate, server-name override, ALPN and verification switches.
///
/// Build it with the chained setters or struct update syntax
/// (`TlsConfig { ca_file: Some(path), ..Default::default() }`).
///
/// Trust: the certificates of `ca_file` and `ca_pem`; the platform roots are
/// added when `use_system_roots` is set or when neither CA is given.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM file with the CA certificate(s) to trust.
    pub ca_file: Option<PathBuf>,
    /// PEM text with CA certificate(s) to trust, in addition to `ca_file`.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM file with the client certificate chain (mutual TLS), leaf first.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the client's private key (PKCS#8, PKCS#1 or SEC1, not
    /// encrypted). When absent, the key is looked for in `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Name sent as SNI and checked against the server certificate, instead
    /// of the host connected to. An IP address is checked as an IP (no SNI).
    pub server_name: Option<String>,
    /// ALPN protocols to offer, most preferred first (e.g. `b"mqtt"`).
    pub alpn: Vec<Vec<u8>>,
    /// Also trust the platform's root certificates when a CA is given.
    pub use_system_roots: bool,
    /// The lowest TLS version to accept.
    pub min_version: TlsVersion,
    /// DANGER: accept any server certificate (no chain, expiry or name check).
    /// The connection is then open to interception; for tests only.
    pub danger_accept_invalid_certs: bool,
    /// DANGER: verify the certificate chain but not that it names the server
    /// (Python's `check_hostname=False`).
    pub danger_accept_invalid_hostnames: bool,
}

impl TlsConfig {
    /// Settings that trust the platform roots and present no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts the CA certificate(s) in this PEM file.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Trusts the CA certificate(s) in this PEM text.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents the client certificate chain in this PEM file (mutual TLS).
    pub fn cert_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.cert_file = Some(path.into());
        self
    }

    /// The private key of [`TlsConfig::cert_file`], in this PEM file.
    pub fn key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_file = Some(path.into());
        self
    }

    /// Sends this name as SNI and verifies the certificate against it.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Offers these ALPN protocols, most preferred first.
    pub fn alpn<P: Into<Vec<u8>>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.alpn = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Also trusts the platform roots when a CA is given.
    pub fn use_system_roots(mut self, enabled: bool) -> Self {
        self.use_system_roots = enabled;
        self
    }

    /// Sets the lowest TLS version to accept.
    pub fn min_version(mut self, version: TlsVersion) -> Self {
        self.min_version = version;
        self
    }

    /// DANGER: accepts any server certificate. See the field's docs.
    pub fn danger_accept_invalid_certs(mut self, enabled: bool) -> Self {
        self.danger_accept_invalid_certs = enabled;
        self
    }

    /// DANGER: skips the host-name check. See the field's docs.
    pub fn danger_accept_invalid_hostnames(mut self, enabled: bool) -> Self {
        self.danger_accept_invalid_hostnames = enabled;
        self
    }

    /// Reads the files and makes the rustls configuration (ring provider).
    ///
    /// Fails with [`Error::InvalidArgument`] for unusable settings (a file that
    /// cannot be read, no certificate or key in it, a key that does not match
    /// the certificate, a bad server name or ALPN entry) and with
    /// [`Error::Tls`] when no platform root certificate can be loaded.
    pub fn build(&self) -> Result<Arc<ClientConfig>> {
        if let Some(name) = &self.server_name {
            check_server_name(name)?;
        }
        if self
            .alpn
            .iter()
            .any(|protocol| protocol.is_empty() || protocol.len() > 255)
        {
            return Err(Error::invalid(
                "ALPN protocol names must be 1 to 255 bytes long",
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&'static SupportedProtocolVersion] = match self.min_version {
            TlsVersion::Tls1_2 => rustls::DEFAULT_VERSIONS,
            TlsVersion::Tls1_3 => &[&rustls::version::TLS13],
        };
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(|error| tls_error(format!("cannot configure TLS: {error}"), error))?;

        let builder = if self.danger_accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
        } else {
            let roots = Arc::new(self.root_store()?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                .build()
                .map_err(|error| Error::Tls {
                    message: format!("cannot set up certificate verification: {error}"),
                    source: None,
                })?;
            if self.danger_accept_invalid_hostnames {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(IgnoreHostName { inner: webpki }))
            } else {
                builder.with_webpki_verifier(webpki)
            }
        };

        let mut config = match self.client_identity()? {
            Some(identity) => builder
                .with_client_auth_cert(identity.chain, identity.key)
                .map_err(|error| identity_error(&identity.cert_path, &identity.key_path, error))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(Arc::new(config))
    }

    /// The trust anchors: the given CA certificates, plus the platform's when
    /// asked for or when no CA is given.
    fn root_store(&self) -> Result<RootCertStore> {
        let mut roots = RootCertStore::empty();
        if let Some(path) = &self.ca_file {
            let pem = read_file(path, "ca_file")?;
            add_ca_certificates(&mut roots, &pem, &format!("ca_file '{}'", path.display()))?;
        }
        if let Some(pem) = &self.ca_pem {
            add_ca_certificates(&mut roots, pem, "ca_pem")?;
        }
        if self.use_system_roots || roots.is_empty() {
            roots.extend(system_roots()?.roots.iter().cloned());
        }
        Ok(roots)
    }

    /// The client certificate chain and key, when mutual TLS is configured.
    fn client_identity(&self) -> Result<Option<ClientIdentity>> {
        let cert_path = match (&self.cert_file, &self.key_file) {
            (None, None) => return Ok(None),
            (None, Some(_)) => return Err(Error::invalid("key_file was given without cert_file")),
            (Some(cert_path), _) => cert_path,
        };
        let cert_pem = read_file(cert_path, "cert_file")?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|error| {
                Error::invalid(format!(
                    "invalid PEM in cert_file '{}': {error}",
                    cert_path.display()
                ))
            })?;
        if chain.is_empty() {
            return Err(Error::invalid(format!(
                "no certificate found in cert_file '{}'",
                cert_path.display()
            )));
        }

        let (key_pem, key_path, key_label) = match &self.key_file {
            Some(key_path) => (read_file(key_path, "key_file")?, key_path, "key_file"),
            None => (cert_pem, cert_path, "cert_file"),
        };
        let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
            Ok(key) => key,
            Err(rustls_pki_types::pem::Error::NoItemsFound) if is_encrypted_key(&key_pem) => {
                return Err(Error::invalid(format!(
                    "the private key in {key_label} '{}' is encrypted; \
                     password-protected keys are not supported, decrypt it first",
                    key_path.display()
                )));
            }
            Err(rustls_pki_types::pem::Error::NoItemsFound) => {
                let hint = if self.key_file.is_none() {
                    "; give key_file"
                } else {
                    " (expected a PEM PKCS#8, PKCS#1 or SEC1 key)"
                };
                return Err(Error::invalid(format!(
                    "no private key found in {key_label} '{}'{hint}",
                    key_path.display()
                )));
            }
            Err(error) => {
                return Err(Error::invalid(format!(
                    "invalid PEM in {key_label} '{}': {error}",
                    key_path.display()
                )));
            }
        };
        Ok(Some(ClientIdentity {
            chain,
            key,
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
        }))
    }
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // PEM bytes and ALPN ids are shown as text, not as lists of numbers.
        let ca_pem = self
            .ca_pem
            .as_ref()
            .map(|pem| format!("<{} bytes>", pem.len()));
        let alpn: Vec<_> = self
            .alpn
            .iter()
            .map(|id| String::from_utf8_lossy(id))
            .collect();
        f.debug_struct("TlsConfig")
            .field("ca_file", &self.ca_file)
            .field("ca_pem", &ca_pem)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("server_name", &self.server_name)
            .field("alpn", &alpn)
            .field("use_system_roots", &self.use_system_roots)
            .field("min_version", &self.min_version)
            .field(
                "danger_accept_invalid_certs",
                &self.danger_accept_invalid_certs,
            )
            .field(
                "danger_accept_invalid_hostnames",
                &self.danger_accept_invalid_hostnames,
            )
            .finish()
    }
}

/// What [`Tls::setup`] hands to the transport.
#[derive(Debug)]
pub(crate) struct TlsSetup {
    /// The rustls configuration.
    pub(crate) config: Arc<ClientConfig>,
    /// Overrides the host as SNI / verification name.
    pub(crate) server_name: Option<String>,
}

struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: PathBuf,
    key_path: PathBuf,
}

/// Checks that `name` can be used as a TLS server name (DNS name or IP).
pub(crate) fn check_server_name(name: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(name.to_owned())
        .map_err(|_| Error::invalid(format!("invalid TLS server name '{name}'")))
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| {
        Error::invalid(format!("cannot read {what} '{}': {error}", path.display()))
    })
}

fn add_ca_certificates(roots: &mut RootCertStore, pem: &[u8], origin: &str) -> Result<()> {
    let mut found = false;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert =
            cert.map_err(|error| Error::invalid(format!("invalid PEM in {origin}: {error}")))?;
        roots.add(cert).map_err(|error| {
            Error::invalid(format!("invalid CA certificate in {origin}: {error}"))
        })?;
        found = true;
    }
    if found {
        Ok(())
    } else {
        Err(Error::invalid(format!("no certificate found in {origin}")))
    }
}

fn is_encrypted_key(pem: &[u8]) -> bool {
    let contains = |needle: &[u8]| pem.windows(needle.len()).any(|window| window == needle);
    contains(b"ENCRYPTED PRIVATE KEY") || contains(b"Proc-Type: 4,ENCRYPTED")
}

fn identity_error(cert_path: &Path, key_path: &Path, error: rustls::Error) -> Error {
    match error {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            Error::invalid(format!(
                "the private key in '{}' does not match the certificate in '{}'",
                key_path.display(),
                cert_path.display()
            ))
        }
        other => Error::invalid(format!(
            "cannot use the client certificate '{}' with the key '{}': {other}",
            cert_path.display(),
            key_path.display()
        )),
    }
}

fn tls_error(message: String, source: rustls::Error) -> Error {
    Error::Tls {
        message,
        source: Some(source),
    }
}

/// The platform roots, loaded once per process (loading can be slow).
struct SystemRoots {
    roots: Vec<rustls_pki_types::TrustAnchor<'static>>,
}

fn system_roots() -> Result<Arc<SystemRoots>> {
    static CACHE: Mutex<Option<Arc<SystemRoots>>> = Mutex::new(None);
    let mut cache = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(roots) = cache.as_ref() {
        return Ok(Arc::clone(roots));
    }
    let loaded = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, ignored) = store.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let detail = match loaded.errors.first() {
            Some(error) => format!(": {error}"),
            None if ignored > 0 => format!(" ({ignored} unparsable certificates)"),
            None => String::new(),
        };
        return Err(Error::Tls {
            message: format!(
                "no trusted root certificates could be loaded from the system{detail}"
            ),
            source: None,
        });
    }
    for error in &loaded.errors {
        tracing::debug!(
            target: "zmqtt::client",
            %error,
            "some system root certificates could not be loaded"
        );
    }
    let roots = Arc::new(SystemRoots { roots: store.roots });
    *cache = Some(Arc::clone(&roots));
    Ok(roots)
}

/// Turns a failed handshake into [`Error::Tls`] with a message saying what
/// went wrong; `server_name` is the name the certificate was checked against.
pub(crate) fn handshake_error(error: rustls::Error, server_name: &str) -> Error {
    let message = match &error {
        rustls::Error::InvalidCertificate(cert_error) => {
            certificate_message(cert_error, server_name)
        }
        rustls::Error::AlertReceived(alert) => alert_message(*alert),
        rustls::Error::NoCertificatesPresented => "the server presented no certificate".to_owned(),
        rustls::Error::PeerIncompatible(_) => {
            format!("the server's TLS is not compatible: {error}")
        }
        rustls::Error::NoApplicationProtocol => {
            "the server chose an ALPN protocol that was not offered".to_owned()
        }
        _ => format!("handshake failed: {error}"),
    };
    tls_error(message, error)
}

/// Classifies an I/O error from an established transport: a TLS alert or
/// TLS failure becomes [`Error::Tls`] (e.g. a TLS 1.3 server that rejects the
/// client certificate only after the handshake), anything else [`Error::Io`].
pub(crate) fn io_error(error: io::Error) -> Error {
    let is_tls = error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>());
    if !is_tls {
        return Error::Io(error);
    }
    let kind = error.kind();
    match error
        .into_inner()
        .map(|inner| inner.downcast::<rustls::Error>())
    {
        Some(Ok(tls)) => handshake_error(*tls, "the server"),
        // Unreachable after the `is` check; keep the error rather than panic.
        Some(Err(inner)) => Error::Io(io::Error::new(kind, inner)),
        None => Error::Io(io::Error::from(kind)),
    }
}

fn certificate_message(error: &CertificateError, server_name: &str) -> String {
    match error {
        CertificateError::UnknownIssuer => "certificate not trusted (unknown issuer)".to_owned(),
        CertificateError::NotValidForName => {
            format!("certificate is not valid for name '{server_name}'")
        }
        CertificateError::NotValidForNameContext { presented, .. } => {
            if presented.is_empty() {
                format!("certificate is not valid for name '{server_name}'")
            } else {
                let names: Vec<&str> = presented.iter().map(|name| plain_name(name)).collect();
                format!(
                    "certificate is not valid for name '{server_name}' (it is for {})",
                    names.join(", ")
                )
            }
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate expired".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate not valid yet".to_owned()
        }
        CertificateError::Revoked => "certificate revoked".to_owned(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not for use by a TLS server".to_owned()
        }
        other => format!("certificate rejected: {other}"),
    }
}

/// A name of a certificate as rustls reports it (`DnsName("host")`,
/// `IpAddress(127.0.0.1)`) without the wrapping: `host`, `127.0.0.1`.
fn plain_name(presented: &str) -> &str {
    presented
        .find('(')
        .filter(|_| presented.ends_with(')'))
        .and_then(|open| presented.get(open + 1..presented.len() - 1))
        .map_or(presented, |inner| inner.trim_matches('"'))
}

fn alert_message(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::CertificateRequired => {
            "the server requires a client certificate".to_owned()
        }
        AlertDescription::BadCertificate
        | AlertDescription::UnsupportedCertificate
        | AlertDescription::CertificateRevoked
        | AlertDescription::CertificateExpired
        | AlertDescription::CertificateUnknown
        | AlertDescription::UnknownCA
        | AlertDescription::AccessDenied => {
            format!("the server rejected the client certificate (alert {alert:?})")
        }
        AlertDescription::NoApplicationProtocol => {
            "the server supports none of the offered ALPN protocols".to_owned()
        }
        AlertDescription::ProtocolVersion => {
            "the server does not support the offered TLS versions".to_owned()
        }
        AlertDescription::UnrecognisedName => {
            "the server does not know the requested server name (SNI)".to_owned()
        }
        other => format!("the server aborted the handshake (alert {other:?})"),
    }
}

/// `danger_accept_invalid_certs`: trusts any certificate, but still checks
/// that the server owns its key (handshake signatures).
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `danger_accept_invalid_hostnames`: the normal verifier, except that a
/// certificate for another name is accepted. The chain is checked before the
/// name, so a name error means the chain itself was valid.
#[derive(Debug)]
struct IgnoreHostName {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for IgnoreHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Certificates and a TLS server for the tests (shared with `tests/tls.rs`).
#[cfg(test)]
#[path = "../tests/tls_support/mod.rs"]
pub(crate) mod tls_support;

#[cfg(test)]
mod tests {
    use super::tls_support::{fixtures_dir, Pki, TempDir};
    use super::*;

    fn invalid_argument(result: Result<Arc<ClientConfig>>) -> String {
        match result {
            Err(Error::InvalidArgument(message)) => message,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn conversions_into_tls() {
        assert!(matches!(Tls::default(), Tls::Off));
        assert!(matches!(Tls::from(false), Tls::Off));
        assert!(matches!(Tls::from(true), Tls::System));
        let settings = TlsConfig::new().server_name("broker.test");
        assert!(matches!(Tls::from(settings.clone()), Tls::Files(inner) if inner == settings));

        let pki = Pki::new("conversions CA");
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(pki.roots())
                .with_no_client_auth();
        assert!(matches!(Tls::from(config.clone()), Tls::Custom(_)));
        let shared = Arc::new(config);
        match Tls::from(Arc::clone(&shared)) {
            Tls::Custom(inner) => assert!(Arc::ptr_eq(&inner, &shared)),
            other => panic!("expected Custom, got {other:?}"),
        }
        assert!(!Tls::Off.is_enabled());
        assert!(Tls::System.is_enabled());
    }

    #[test]
    fn debug_shows_pem_size_and_alpn_as_text() {
        let settings = TlsConfig::new().ca_pem(vec![b'x'; 1200]).alpn(["mqtt"]);
        let text = format!("{settings:?}");
        assert!(text.contains("ca_pem: Some(\"<1200 bytes>\")"), "{text}");
        assert!(text.contains("alpn: [\"mqtt\"]"), "{text}");
    }

    #[test]
    fn custom_setup_keeps_the_given_config_and_the_host_as_name() {
        let config = TlsConfig::new()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap();
        let setup = Tls::Custom(Arc::clone(&config)).setup().unwrap().unwrap();
        assert!(Arc::ptr_eq(&setup.config, &config));
        assert_eq!(setup.server_name, None);
        assert!(Tls::Off.setup().unwrap().is_none());
    }

    #[test]
    fn files_setup_carries_the_server_name_and_alpn() {
        let pki = Pki::new("setup CA");
        let tls = Tls::from(
            TlsConfig::new()
                .ca_pem(pki.ca_pem.clone())
                .server_name("broker.test")
                .alpn(["mqtt"]),
        );
        let setup = tls.setup().unwrap().unwrap();
        assert_eq!(setup.server_name.as_deref(), Some("broker.test"));
        assert_eq!(setup.config.alpn_protocols, vec![b"mqtt".to_vec()]);
    }

    #[test]
    fn system_roots_load_on_this_machine() {
        let setup = Tls::System.setup().unwrap().unwrap();
        assert_eq!(setup.server_name, None);
        assert!(!system_roots().unwrap().roots.is_empty());
    }

    #[test]
    fn missing_ca_file_is_named() {
        let message = invalid_argument(TlsConfig::new().ca_file("/nonexistent/ca.pem").build());
        assert!(
            message.starts_with("cannot read ca_file '/nonexistent/ca.pem': "),
            "{message}"
        );
    }

    #[test]
    fn ca_file_without_certificate_is_refused() {
        let dir = TempDir::new();
        let path = dir.write("empty.pem", "not a certificate\n");
        let message = invalid_argument(TlsConfig::new().ca_file(&path).build());
        assert_eq!(
            message,
            format!("no certificate found in ca_file '{}'", path.display())
        );
        let message = invalid_argument(TlsConfig::new().ca_pem(b"".to_vec()).build());
        assert_eq!(message, "no certificate found in ca_pem");
    }

    #[test]
    fn ca_from_file_and_pem_are_both_trusted() {
        let first = Pki::new("first CA");
        let second = Pki::new("second CA");
        let dir = TempDir::new();
        let settings = TlsConfig::new()
            .ca_file(dir.write("ca.pem", &first.ca_pem))
            .ca_pem(second.ca_pem.clone());
        assert_eq!(settings.root_store().unwrap().roots.len(), 2);
        let with_system = settings.use_system_roots(true).root_store().unwrap();
        assert!(with_system.roots.len() > 2);
    }

    #[test]
    fn key_file_without_cert_file_is_refused() {
        let message = invalid_argument(TlsConfig::new().key_file("/tmp/key.pem").build());
        assert_eq!(message, "key_file was given without cert_file");
    }

    #[test]
    fn missing_key_file_is_named() {
        let pki = Pki::new("key CA");
        let client = pki.client("client");
        let dir = TempDir::new();
        let message = invalid_argument(
            TlsConfig::new()
                .cert_file(dir.write("client.pem", &client.cert_pem))
                .key_file("/nonexistent/key.pem")
                .build(),
        );
        assert!(
            message.starts_with("cannot read key_file '/nonexistent/key.pem': "),
            "{message}"
        );
    }

    #[test]
    fn cert_file_without_certificate_is_refused() {
        let pki = Pki::new("cert CA");
        let client = pki.client("client");
        let dir = TempDir::new();
        let cert = dir.write("key-only.pem", &client.key_pem);
        let message = invalid_argument(TlsConfig::new().cert_file(&cert).key_file(&cert).build());
        assert_eq!(
            message,
            format!("no certificate found in cert_file '{}'", cert.display())
        );
    }

    #[test]
    fn key_is_taken_from_cert_file_when_key_file_is_absent() {
        let pki = Pki::new("combined CA");
        let client = pki.client("client");
        let dir = TempDir::new();
        let combined = dir.write(
            "combined.pem",
            format!("{}{}", client.cert_pem, client.key_pem),
        );
        let config = TlsConfig::new()
            .ca_pem(pki.ca_pem.clone())
            .cert_file(&combined)
            .build()
            .unwrap();
        assert!(config.client_auth_cert_resolver.has_certs());

        let cert_only = dir.write("cert.pem", &client.cert_pem);
        let message = invalid_argument(TlsConfig::new().cert_file(&cert_only).build());
        assert_eq!(
            message,
            format!(
                "no private key found in cert_file '{}'; give key_file",
                cert_only.display()
            )
        );
    }

    #[test]
    fn key_file_without_key_is_refused() {
        let pki = Pki::new("nokey CA");
        let client = pki.client("client");
        let dir = TempDir::new();
        let cert = dir.write("cert.pem", &client.cert_pem);
        let message = invalid_argument(TlsConfig::new().cert_file(&cert).key_file(&cert).build());
        assert_eq!(
            message,
            format!(
                "no private key found in key_file '{}' (expected a PEM PKCS#8, PKCS#1 or SEC1 key)",
                cert.display()
            )
        );
    }

    #[test]
    fn encrypted_key_is_refused_with_a_reason() {
        let pki = Pki::new("encrypted CA");
        let client = pki.client("client");
        let dir = TempDir::new();
        let cert = dir.write("cert.pem", &client.cert_pem);
        let key = dir.write(
            "key.pem",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let message = invalid_argument(TlsConfig::new().cert_file(&cert).key_file(&key).build());
        assert_eq!(
            message,
            format!(
                "the private key in key_file '{}' is encrypted; password-protected keys are \
                 not supported, decrypt it first",
                key.display()
            )
        );
    }

    #[test]
    fn key_that_does_not_match_the_certificate_is_refused() {
        let pki = Pki::new("mismatch CA");
        let client = pki.client("client");
        let other = pki.client("other");
        let dir = TempDir::new();
        let cert = dir.write("cert.pem", &client.cert_pem);
        let key = dir.write("key.pem", &other.key_pem);
        let message = invalid_argument(TlsConfig::new().cert_file(&cert).key_file(&key).build());
        assert_eq!(
            message,
            format!(
                "the private key in '{}' does not match the certificate in '{}'",
                key.display(),
                cert.display()
            )
        );
    }

    #[test]
    fn pkcs8_pkcs1_and_sec1_keys_are_accepted() {
        let pki = Pki::new("formats CA");
        let client = pki.client("client");
        let dir = TempDir::new();
        let pairs = [
            (
                dir.write("p8.pem", &client.cert_pem),
                dir.write("p8.key", &client.key_pem),
            ),
            (
                fixtures_dir().join("rsa_cert.pem"),
                fixtures_dir().join("rsa_pkcs1_key.pem"),
            ),
            (
                fixtures_dir().join("ec_cert.pem"),
                fixtures_dir().join("ec_sec1_key.pem"),
            ),
        ];
        for (cert, key) in pairs {
            let config = TlsConfig::new()
                .ca_pem(pki.ca_pem.clone())
                .cert_file(&cert)
                .key_file(&key)
                .build()
                .unwrap_or_else(|error| panic!("{}: {error}", key.display()));
            assert!(
                config.client_auth_cert_resolver.has_certs(),
                "{}",
                key.display()
            );
        }
        let pkcs1 = std::fs::read_to_string(fixtures_dir().join("rsa_pkcs1_key.pem")).unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let sec1 = std::fs::read_to_string(fixtures_dir().join("ec_sec1_key.pem")).unwrap();
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    }

    #[test]
    fn invalid_server_name_is_refused() {
        let message = invalid_argument(TlsConfig::new().server_name("not a name").build());
        assert_eq!(message, "invalid TLS server name 'not a name'");
        let message = invalid_argument(TlsConfig::new().server_name("").build());
        assert_eq!(message, "invalid TLS server name ''");
        assert!(TlsConfig::new()
            .server_name("10.0.0.1")
            .danger_accept_invalid_certs(true)
            .build()
            .is_ok());
    }

    #[test]
    fn empty_or_long_alpn_protocol_is_refused() {
        for protocols in [vec![Vec::new()], vec![vec![b'x'; 256]]] {
            let message = invalid_argument(TlsConfig::new().alpn(protocols).build());
            assert_eq!(message, "ALPN protocol names must be 1 to 255 bytes long");
        }
    }

    #[test]
    fn accept_invalid_certs_needs_no_ca() {
        let config = TlsConfig::new()
            .ca_file("/nonexistent/ca.pem")
            .danger_accept_invalid_certs(true)
            .build();
        assert!(config.is_ok(), "{config:?}");
    }

    #[test]
    fn handshake_errors_say_what_failed() {
        let cases = [
            (
                rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "certificate not trusted (unknown issuer)",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                "certificate is not valid for name 'broker.test'",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::Expired),
                "certificate expired",
            ),
            (
                rustls::Error::InvalidCertificate(CertificateError::NotValidYet),
                "certificate not valid yet",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
                "the server requires a client certificate",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::UnknownCA),
                "the server rejected the client certificate (alert UnknownCA)",
            ),
            (
                rustls::Error::AlertReceived(AlertDescription::NoApplicationProtocol),
                "the server supports none of the offered ALPN protocols",
            ),
        ];
        for (error, expected) in cases {
            match handshake_error(error, "broker.test") {
                Error::Tls { message, source } => {
                    assert_eq!(message, expected);
                    assert!(source.is_some());
                }
                other => panic!("expected Error::Tls, got {other:?}"),
            }
        }
    }

    #[test]
    fn io_error_unwraps_tls_alerts_and_keeps_plain_io() {
        let alert = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        );
        match io_error(alert) {
            Error::Tls {
                message,
                source: Some(rustls::Error::AlertReceived(AlertDescription::CertificateRequired)),
            } => assert_eq!(message, "the server requires a client certificate"),
            other => panic!("expected Error::Tls, got {other:?}"),
        }
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(
            matches!(io_error(reset), Error::Io(e) if e.kind() == io::ErrorKind::ConnectionReset)
        );
    }
}
