//! The byte stream to the broker: TCP, optionally wrapped in TLS.
//!
//! [`open`] resolves the host, tries each address in turn until one accepts,
//! and runs the TLS handshake, all within one deadline.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::{Error, Result};
use crate::tls::{self, Tls, TlsSetup};

/// An open connection to the broker.
pub(crate) enum Transport {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large).
    Tls(Box<TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, stream) = match self {
            Transport::Tcp(stream) => ("Tcp", stream),
            Transport::Tls(stream) => ("Tls", stream.get_ref().0),
        };
        f.debug_struct("Transport")
            .field("kind", &kind)
            .field("peer", &stream.peer_addr().ok())
            .finish()
    }
}

/// The longest connect timeout honoured as given; longer ones are cut to it.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Connects to `host:port` and, when `tls` is enabled, runs the TLS handshake.
///
/// A host name that resolves to several addresses (`localhost` → `::1`,
/// `127.0.0.1`) has each tried in turn until one accepts. Resolution,
/// connecting and the handshake together take at most `timeout`, else
/// [`Error::Timeout`] with `what: "connection"`. TLS settings that cannot be
/// used fail before any network I/O ([`Error::InvalidArgument`] / [`Error::Tls`]);
/// refused or unreachable addresses are [`Error::Io`]; a certificate that does
/// not verify or a server that rejects the handshake is [`Error::Tls`].
pub(crate) async fn open(host: &str, port: u16, tls: &Tls, timeout: Duration) -> Result<Transport> {
    let host = host
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(host);
    let setup = prepare_tls(tls).await?;
    let verify_name = match &setup {
        Some(setup) => Some(tls::check_server_name(
            setup.server_name.as_deref().unwrap_or(host),
        )?),
        None => None,
    };

    // A huge timeout ("wait forever", e.g. Duration::MAX) must not overflow
    // the clock; a century is forever enough.
    let deadline = Instant::now() + timeout.min(LONGEST_TIMEOUT);
    let connecting = async {
        let addrs = resolve(host, port).await?;
        let tcp = connect_any(host, port, &addrs, deadline).await?;
        match (setup, verify_name) {
            (Some(setup), Some(name)) => {
                let shown_name = name.to_str().into_owned();
                let connector = TlsConnector::from(setup.config);
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|error| handshake_failure(error, &shown_name, host, port))?;
                Ok(Transport::Tls(Box::new(stream)))
            }
            _ => Ok(Transport::Tcp(tcp)),
        }
    };
    match tokio::time::timeout_at(deadline, connecting).await {
        Ok(result) => result,
        Err(_elapsed) => Err(Error::Timeout {
            what: "connection",
            after: timeout,
        }),
    }
}

/// Builds the rustls configuration; file reads run on the blocking pool.
async fn prepare_tls(tls: &Tls) -> Result<Option<TlsSetup>> {
    match tls {
        Tls::Off | Tls::Custom(_) => tls.setup(),
        Tls::System | Tls::Files(_) => {
            let tls = tls.clone();
            tokio::task::spawn_blocking(move || tls.setup())
                .await
                .map_err(|error| {
                    Error::Io(io::Error::other(format!(
                        "loading the TLS settings failed: {error}"
                    )))
                })?
        }
    }
}

/// The addresses of `host`, in the resolver's order, without repeats. An IP
/// literal is used as is.
async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let resolved = tokio::net::lookup_host((host, port))
        .await
        .map_err(|error| {
            Error::Io(io::Error::new(
                error.kind(),
                format!("cannot resolve host '{host}': {error}"),
            ))
        })?;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in resolved {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("host '{host}' has no address"),
        )));
    }
    Ok(addrs)
}

/// Connects to the first address of `addrs` that accepts, in order.
///
/// Every address but the last gets an equal share of the time left, so one
/// that silently drops packets cannot use up the whole deadline. The caller
/// enforces the deadline itself on the last attempt.
async fn connect_any(
    host: &str,
    port: u16,
    addrs: &[SocketAddr],
    deadline: Instant,
) -> Result<TcpStream> {
    let mut failures: Vec<(SocketAddr, io::Error)> = Vec::new();
    for (index, addr) in addrs.iter().enumerate() {
        let remaining_addrs = addrs.len() - index;
        let attempt = if remaining_addrs > 1 {
            let left = deadline.saturating_duration_since(Instant::now());
            let share = left / u32::try_from(remaining_addrs).unwrap_or(u32::MAX);
            match tokio::time::timeout(share, TcpStream::connect(addr)).await {
                Ok(result) => result,
                Err(_elapsed) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {share:?}"),
                )),
            }
        } else {
            TcpStream::connect(addr).await
        };
        match attempt {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                tracing::debug!(target: "zmqtt::client", %addr, "TCP connection established");
                return Ok(stream);
            }
            Err(error) => {
                tracing::debug!(target: "zmqtt::client", %addr, %error, "TCP connect failed");
                failures.push((*addr, error));
            }
        }
    }
    Err(Error::Io(connect_failure(host, port, failures)))
}

/// One I/O error that names every address tried and why it failed; its kind
/// is the last failure's.
fn connect_failure(host: &str, port: u16, failures: Vec<(SocketAddr, io::Error)>) -> io::Error {
    let kind = failures
        .last()
        .map_or(io::ErrorKind::NotFound, |(_, error)| error.kind());
    let target = match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("{host}:{port}"),
    };
    let message = match failures.as_slice() {
        [(addr, error)] if addr.to_string() == target => {
            format!("cannot connect to {target}: {error}")
        }
        _ => {
            let details = failures
                .iter()
                .map(|(addr, error)| format!("{addr}: {error}"))
                .collect::<Vec<_>>()
                .join("; ");
            format!("cannot connect to {target} ({details})")
        }
    };
    io::Error::new(kind, message)
}

fn handshake_failure(error: io::Error, server_name: &str, host: &str, port: u16) -> Error {
    let is_tls = error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>());
    if is_tls {
        if let Some(Ok(tls_error)) = error
            .into_inner()
            .map(|inner| inner.downcast::<rustls::Error>())
        {
            return tls::handshake_error(*tls_error, server_name);
        }
        return Error::Io(io::Error::other("TLS handshake failed"));
    }
    Error::Io(io::Error::new(
        error.kind(),
        format!("TLS handshake with {host}:{port} failed: {error}"),
    ))
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_write(cx, buf),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Tcp(stream) => stream.is_write_vectored(),
            Transport::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;

    use rustls::version::{TLS12, TLS13};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::tls::tls_support::{
        server_config, ClientAuth, Handshake, Identity, Pki, TempDir, TestServer, GREETING,
    };
    use crate::tls::{TlsConfig, TlsVersion};

    const TIMEOUT: Duration = Duration::from_secs(10);
    const BOTH_VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&TLS13, &TLS12];

    /// A server presenting `identity` over TLS 1.2 or 1.3, offering the ALPN
    /// protocols `alpn` and asking for no client certificate.
    async fn server_without_client_auth(identity: &Identity, alpn: &[&[u8]]) -> TestServer {
        TestServer::start(server_config(
            identity,
            ClientAuth::Off,
            alpn,
            BOTH_VERSIONS,
        ))
        .await
    }

    /// A server with a certificate for localhost / 127.0.0.1 from `pki`.
    async fn localhost_server(pki: &Pki) -> TestServer {
        let identity = pki.server(&["localhost", "127.0.0.1"]);
        server_without_client_auth(&identity, &[]).await
    }

    fn trusting(pki: &Pki) -> TlsConfig {
        TlsConfig::new().ca_pem(pki.ca_pem.clone())
    }

    /// Opens TLS to localhost:`port`, trusting only the CA of `pki`.
    async fn open_localhost_trusting(pki: &Pki, port: u16) -> Result<Transport> {
        open("localhost", port, &Tls::from(trusting(pki)), TIMEOUT).await
    }

    async fn read_greeting(transport: &mut Transport) {
        let mut greeting = vec![0u8; GREETING.len()];
        transport.read_exact(&mut greeting).await.unwrap();
        assert_eq!(greeting, GREETING);
    }

    /// The message of an `Error::Tls`, checking that the rustls error is kept.
    fn tls_message(result: Result<Transport>) -> String {
        match result {
            Err(Error::Tls {
                message,
                source: Some(_),
            }) => message,
            other => panic!("expected Error::Tls with a source, got {other:?}"),
        }
    }

    fn tls_source(result: Result<Transport>) -> rustls::Error {
        match result {
            Err(Error::Tls {
                source: Some(source),
                ..
            }) => source,
            other => panic!("expected Error::Tls with a source, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn tls_to_a_host_name_sends_it_as_sni() {
        let pki = Pki::new("sni CA");
        let mut server = localhost_server(&pki).await;
        let tls = Tls::from(trusting(&pki));
        let mut transport = open("localhost", server.port(), &tls, TIMEOUT)
            .await
            .unwrap();
        read_greeting(&mut transport).await;
        let seen = server.next_handshake().await.unwrap();
        assert_eq!(seen.sni.as_deref(), Some("localhost"));
        assert!(!seen.client_certificate);
    }

    #[tokio::test]
    async fn tls_to_an_ip_is_verified_against_the_ip_without_sni() {
        let pki = Pki::new("ip CA");
        let mut server = localhost_server(&pki).await;
        let tls = Tls::from(trusting(&pki));
        let mut transport = open("127.0.0.1", server.port(), &tls, TIMEOUT)
            .await
            .unwrap();
        read_greeting(&mut transport).await;
        assert_eq!(server.next_handshake().await.unwrap().sni, None);
    }

    #[tokio::test]
    async fn tls_transport_reads_writes_and_writes_vectored() {
        let pki = Pki::new("echo CA");
        let server = localhost_server(&pki).await;
        let mut transport = open_localhost_trusting(&pki, server.port()).await.unwrap();
        read_greeting(&mut transport).await;
        assert!(transport.is_write_vectored());
        let slices = [io::IoSlice::new(b"abc"), io::IoSlice::new(b"def")];
        let written = transport.write_vectored(&slices).await.unwrap();
        assert!(written > 0);
        transport.write_all(&b"abcdef"[written..]).await.unwrap();
        transport.flush().await.unwrap();
        let mut echoed = [0u8; 6];
        transport.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"abcdef");
        transport.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn unknown_ca_is_refused_as_not_trusted() {
        let pki = Pki::new("server CA");
        let other = Pki::new("other CA");
        let server = localhost_server(&pki).await;
        let result = open_localhost_trusting(&other, server.port()).await;
        let error = result.unwrap_err();
        assert!(!error.is_retryable());
        assert_eq!(
            error.to_string(),
            "TLS error: certificate not trusted (unknown issuer)"
        );
        let result = open_localhost_trusting(&other, server.port()).await;
        assert!(matches!(
            tls_source(result),
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ));
    }

    #[tokio::test]
    async fn certificate_for_another_name_is_refused() {
        let pki = Pki::new("name CA");
        let identity = pki.server(&["other.test"]);
        let server = server_without_client_auth(&identity, &[]).await;
        let result = open_localhost_trusting(&pki, server.port()).await;
        let message = tls_message(result);
        assert!(
            message.starts_with("certificate is not valid for name 'localhost'"),
            "{message}"
        );
        assert!(message.contains("other.test"), "{message}");
    }

    #[tokio::test]
    async fn expired_certificate_is_refused() {
        let pki = Pki::new("expiry CA");
        let identity = pki.expired_server(&["localhost"]);
        let server = server_without_client_auth(&identity, &[]).await;
        let result = open_localhost_trusting(&pki, server.port()).await;
        assert_eq!(tls_message(result), "certificate expired");
    }

    #[tokio::test]
    async fn server_name_overrides_sni_and_the_verified_name() {
        let pki = Pki::new("override CA");
        let identity = pki.server(&["broker.test"]);
        let mut server = server_without_client_auth(&identity, &[]).await;
        let tls = Tls::from(trusting(&pki).server_name("broker.test"));
        let mut transport = open("127.0.0.1", server.port(), &tls, TIMEOUT)
            .await
            .unwrap();
        read_greeting(&mut transport).await;
        assert_eq!(
            server.next_handshake().await.unwrap().sni.as_deref(),
            Some("broker.test")
        );
        // Without the override the same certificate does not match the host.
        let result = open_localhost_trusting(&pki, server.port()).await;
        assert!(tls_message(result).starts_with("certificate is not valid for name 'localhost'"));
    }

    #[tokio::test]
    async fn alpn_protocol_is_negotiated() {
        let pki = Pki::new("alpn CA");
        let identity = pki.server(&["localhost"]);
        let mut server = server_without_client_auth(&identity, &[b"mqtt"]).await;
        let tls = Tls::from(trusting(&pki).alpn(["x-unknown", "mqtt"]));
        let transport = open("localhost", server.port(), &tls, TIMEOUT)
            .await
            .unwrap();
        match &transport {
            Transport::Tls(stream) => {
                assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"mqtt"[..]))
            }
            Transport::Tcp(_) => panic!("expected TLS"),
        }
        assert_eq!(
            server.next_handshake().await.unwrap().alpn.as_deref(),
            Some(&b"mqtt"[..])
        );
    }

    #[tokio::test]
    async fn alpn_without_a_common_protocol_is_refused() {
        let pki = Pki::new("alpn mismatch CA");
        let identity = pki.server(&["localhost"]);
        let server = server_without_client_auth(&identity, &[b"mqtt"]).await;
        let tls = Tls::from(trusting(&pki).alpn(["h2"]));
        let result = open("localhost", server.port(), &tls, TIMEOUT).await;
        assert_eq!(
            tls_message(result),
            "the server supports none of the offered ALPN protocols"
        );
    }

    #[tokio::test]
    async fn mutual_tls_presents_the_client_certificate() {
        let pki = Pki::new("mtls CA");
        let identity = pki.server(&["localhost"]);
        let mut server = TestServer::start(server_config(
            &identity,
            ClientAuth::Required(&pki),
            &[],
            BOTH_VERSIONS,
        ))
        .await;
        let client = pki.client("zmqtt-test-client");
        let dir = TempDir::new();
        let tls = Tls::from(
            trusting(&pki)
                .cert_file(dir.write("client.pem", &client.cert_pem))
                .key_file(dir.write("client.key", &client.key_pem)),
        );
        let mut transport = open("localhost", server.port(), &tls, TIMEOUT)
            .await
            .unwrap();
        read_greeting(&mut transport).await;
        assert_eq!(
            server.next_handshake().await.unwrap(),
            Handshake {
                sni: Some("localhost".into()),
                alpn: None,
                client_certificate: true
            }
        );
    }

    /// A TLS 1.3 server checks the client certificate after the client has
    /// finished the handshake, so the refusal shows on the first read.
    #[tokio::test]
    async fn mutual_tls_without_client_certificate_is_refused_tls13() {
        let pki = Pki::new("mtls13 CA");
        let identity = pki.server(&["localhost"]);
        let mut server = TestServer::start(server_config(
            &identity,
            ClientAuth::Required(&pki),
            &[],
            &[&TLS13],
        ))
        .await;
        let mut transport = open_localhost_trusting(&pki, server.port()).await.unwrap();
        let mut buffer = [0u8; 64];
        let error = transport.read(&mut buffer).await.unwrap_err();
        match tls::io_error(error) {
            Error::Tls { message, .. } => {
                assert_eq!(message, "the server requires a client certificate")
            }
            other => panic!("expected Error::Tls, got {other:?}"),
        }
        assert!(server.next_handshake().await.is_err());
    }

    /// A TLS 1.2 server refuses during the handshake itself.
    #[tokio::test]
    async fn mutual_tls_without_client_certificate_is_refused_tls12() {
        let pki = Pki::new("mtls12 CA");
        let identity = pki.server(&["localhost"]);
        let server = TestServer::start(server_config(
            &identity,
            ClientAuth::Required(&pki),
            &[],
            &[&TLS12],
        ))
        .await;
        let result = open_localhost_trusting(&pki, server.port()).await;
        assert_eq!(
            tls_message(result),
            "the server requires a client certificate"
        );
    }

    #[tokio::test]
    async fn client_certificate_from_an_unknown_ca_is_rejected() {
        let pki = Pki::new("mtls server CA");
        let stranger = Pki::new("stranger CA").client("stranger");
        let identity = pki.server(&["localhost"]);
        let server = TestServer::start(server_config(
            &identity,
            ClientAuth::Required(&pki),
            &[],
            &[&TLS12],
        ))
        .await;
        let dir = TempDir::new();
        let tls = Tls::from(
            trusting(&pki)
                .cert_file(dir.write("client.pem", &stranger.cert_pem))
                .key_file(dir.write("client.key", &stranger.key_pem)),
        );
        let result = open("localhost", server.port(), &tls, TIMEOUT).await;
        let message = tls_message(result);
        assert!(
            message.starts_with("the server rejected the client certificate"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn min_version_1_3_refuses_a_tls12_only_server() {
        let pki = Pki::new("version CA");
        let identity = pki.server(&["localhost"]);
        let server =
            TestServer::start(server_config(&identity, ClientAuth::Off, &[], &[&TLS12])).await;
        let tls = Tls::from(trusting(&pki).min_version(TlsVersion::Tls1_3));
        let result = open("localhost", server.port(), &tls, TIMEOUT).await;
        assert_eq!(
            tls_message(result),
            "the server does not support the offered TLS versions"
        );
        let tls = Tls::from(trusting(&pki));
        assert!(open("localhost", server.port(), &tls, TIMEOUT)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn accept_invalid_certs_skips_verification() {
        let stranger = Pki::new("stranger CA");
        let identity = stranger.expired_server(&["elsewhere.test"]);
        let server = server_without_client_auth(&identity, &[]).await;
        let tls = Tls::from(TlsConfig::new().danger_accept_invalid_certs(true));
        let mut transport = open("localhost", server.port(), &tls, TIMEOUT)
            .await
            .unwrap();
        read_greeting(&mut transport).await;
    }

    #[tokio::test]
    async fn accept_invalid_hostnames_still_checks_the_chain() {
        let pki = Pki::new("hostname CA");
        let identity = pki.server(&["elsewhere.test"]);
        let server = server_without_client_auth(&identity, &[]).await;
        let tls = Tls::from(trusting(&pki).danger_accept_invalid_hostnames(true));
        let mut transport = open("localhost", server.port(), &tls, TIMEOUT)
            .await
            .unwrap();
        read_greeting(&mut transport).await;

        let other = Pki::new("other CA");
        let tls = Tls::from(trusting(&other).danger_accept_invalid_hostnames(true));
        let result = open("localhost", server.port(), &tls, TIMEOUT).await;
        assert_eq!(
            tls_message(result),
            "certificate not trusted (unknown issuer)"
        );
    }

    #[tokio::test]
    async fn custom_rustls_config_is_used_as_given() {
        let pki = Pki::new("custom CA");
        let mut server = localhost_server(&pki).await;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
        let mut transport = open("localhost", server.port(), &Tls::from(config), TIMEOUT)
            .await
            .unwrap();
        read_greeting(&mut transport).await;
        assert_eq!(
            server.next_handshake().await.unwrap().sni.as_deref(),
            Some("localhost")
        );
    }

    #[tokio::test]
    async fn bad_tls_settings_fail_before_connecting() {
        // Nothing listens on port 1: the settings error must come first.
        let tls = Tls::from(TlsConfig::new().ca_file("/nonexistent/ca.pem"));
        let result = open("127.0.0.1", 1, &tls, TIMEOUT).await;
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{result:?}"
        );
        let tls = Tls::from(TlsConfig::new().danger_accept_invalid_certs(true));
        let result = open("not a host name", 1, &tls, TIMEOUT).await;
        match result {
            Err(Error::InvalidArgument(message)) => {
                assert_eq!(message, "invalid TLS server name 'not a host name'")
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn stalled_handshake_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and then says nothing.
        let _holder = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
        });
        let tls = Tls::from(TlsConfig::new().danger_accept_invalid_certs(true));
        let timeout = Duration::from_millis(200);
        let result = open("127.0.0.1", port, &tls, timeout).await;
        match result {
            Err(Error::Timeout { what, after }) => {
                assert_eq!(what, "connection");
                assert_eq!(after, timeout);
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn plain_tcp_sets_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let transport = open("127.0.0.1", port, &Tls::Off, TIMEOUT).await.unwrap();
        match &transport {
            Transport::Tcp(stream) => assert!(stream.nodelay().unwrap()),
            Transport::Tls(_) => panic!("expected plain TCP"),
        }
        let (mut accepted, _) = listener.accept().await.unwrap();
        let mut transport = transport;
        transport.write_all(b"ping").await.unwrap();
        let mut received = [0u8; 4];
        accepted.read_exact(&mut received).await.unwrap();
        assert_eq!(&received, b"ping");
    }

    /// A port on 127.0.0.1 that refuses connections (bound, then closed).
    async fn refusing_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn refused_connection_is_an_io_error_naming_the_address() {
        let port = refusing_port().await;
        let result = open("127.0.0.1", port, &Tls::Off, TIMEOUT).await;
        match result {
            Err(Error::Io(error)) => {
                assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
                assert!(
                    error
                        .to_string()
                        .starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")),
                    "{error}"
                );
            }
            other => panic!("expected Error::Io, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn next_address_is_tried_when_the_first_refuses() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good = listener.local_addr().unwrap();
        let refusing = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), refusing_port().await);
        let deadline = Instant::now() + TIMEOUT;
        let stream = connect_any("example", 0, &[refusing, good], deadline)
            .await
            .unwrap();
        assert_eq!(stream.peer_addr().unwrap(), good);
        assert!(stream.nodelay().unwrap());

        // Every address refused: one error naming each.
        let other = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), refusing.port());
        match connect_any("example", refusing.port(), &[other, refusing], deadline).await {
            Err(Error::Io(error)) => {
                let text = error.to_string();
                assert!(
                    text.starts_with(&format!("cannot connect to example:{} (", refusing.port())),
                    "{text}"
                );
                assert!(text.contains(&format!("{other}: ")), "{text}");
                assert!(text.contains(&format!("{refusing}: ")), "{text}");
            }
            other => panic!("expected Error::Io, got {other:?}"),
        }
    }

    /// SPEC 1.1: `localhost` may resolve to `::1` and `127.0.0.1`; a listener
    /// on only one of them is still reached.
    #[tokio::test]
    async fn localhost_reaches_an_ipv4_only_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let addrs = resolve("localhost", port).await.unwrap();
        assert!(
            addrs.contains(&SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
            "{addrs:?}"
        );
        let transport = open("localhost", port, &Tls::Off, TIMEOUT).await.unwrap();
        let Transport::Tcp(stream) = transport else {
            panic!("expected plain TCP")
        };
        assert_eq!(stream.peer_addr().unwrap().port(), port);
    }

    #[tokio::test]
    async fn bracketed_ipv6_literal_connects() {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            eprintln!("no IPv6 loopback here; skipping");
            return;
        };
        let port = listener.local_addr().unwrap().port();
        for host in ["::1", "[::1]"] {
            let transport = open(host, port, &Tls::Off, TIMEOUT).await.unwrap();
            let Transport::Tcp(stream) = transport else {
                panic!("expected plain TCP")
            };
            assert_eq!(
                stream.peer_addr().unwrap().ip(),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            );
        }
    }

    #[tokio::test]
    async fn unknown_host_is_an_io_error() {
        let result = open("no-such-host.invalid", 1883, &Tls::Off, TIMEOUT).await;
        match result {
            Err(Error::Io(error)) => assert!(
                error
                    .to_string()
                    .starts_with("cannot resolve host 'no-such-host.invalid': "),
                "{error}"
            ),
            other => panic!("expected Error::Io, got {other:?}"),
        }
    }

    // ----- against mosquitto (zmqtt-testbed) -----

    /// A minimal MQTT 3.1.1 CONNECT (clean session, keepalive 60).
    fn raw_connect(client_id: &str) -> Vec<u8> {
        let id = client_id.as_bytes();
        let mut variable = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
        variable.extend_from_slice(&u16::try_from(id.len()).unwrap().to_be_bytes());
        variable.extend_from_slice(id);
        let mut packet = vec![0x10, u8::try_from(variable.len()).unwrap()];
        packet.extend_from_slice(&variable);
        packet
    }

    /// Sends CONNECT and expects CONNACK "accepted" (MQTT-3.2.2-1 layout: 20 02 00 00).
    async fn connect_and_expect_connack(transport: &mut Transport, client_id: &str) {
        transport.write_all(&raw_connect(client_id)).await.unwrap();
        transport.flush().await.unwrap();
        let mut connack = [0u8; 4];
        tokio::time::timeout(TIMEOUT, transport.read_exact(&mut connack))
            .await
            .expect("no CONNACK in time")
            .unwrap();
        assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
    }

    fn start_broker() -> zmqtt_testbed::Broker {
        zmqtt_testbed::Broker::start(zmqtt_testbed::BrokerOptions::default()).unwrap()
    }

    #[tokio::test]
    async fn mosquitto_tls_listener_accepts_a_verified_connection() {
        let broker = tokio::task::spawn_blocking(start_broker).await.unwrap();
        for host in ["localhost", "127.0.0.1"] {
            let tls = Tls::from(TlsConfig::new().ca_file(broker.ca_file()));
            let mut transport = open(host, broker.tls_port(), &tls, TIMEOUT).await.unwrap();
            assert!(matches!(transport, Transport::Tls(_)));
            connect_and_expect_connack(&mut transport, "zmqtt-transport-tls").await;
        }
        // The testbed's CA is not the platform's: refused.
        let other = Pki::new("not mosquitto's CA");
        let tls = Tls::from(TlsConfig::new().ca_pem(other.ca_pem.clone()));
        let result = open("localhost", broker.tls_port(), &tls, TIMEOUT).await;
        assert_eq!(
            tls_message(result),
            "certificate not trusted (unknown issuer)"
        );
        let result = open("localhost", broker.tls_port(), &Tls::System, TIMEOUT).await;
        assert_eq!(
            tls_message(result),
            "certificate not trusted (unknown issuer)"
        );
    }

    #[tokio::test]
    async fn mosquitto_mtls_listener_needs_the_client_certificate() {
        let broker = tokio::task::spawn_blocking(start_broker).await.unwrap();
        let with_cert = Tls::from(
            TlsConfig::new()
                .ca_file(broker.ca_file())
                .cert_file(broker.client_cert())
                .key_file(broker.client_key()),
        );
        let mut transport = open("localhost", broker.mtls_port(), &with_cert, TIMEOUT)
            .await
            .unwrap();
        connect_and_expect_connack(&mut transport, "zmqtt-transport-mtls").await;

        // Without a certificate: refused in the handshake (TLS 1.2) or on the
        // first read (TLS 1.3); either way an Error::Tls, never a CONNACK.
        let without = Tls::from(TlsConfig::new().ca_file(broker.ca_file()));
        let error = match open("localhost", broker.mtls_port(), &without, TIMEOUT).await {
            Err(error) => error,
            Ok(mut transport) => {
                let _ = transport
                    .write_all(&raw_connect("zmqtt-transport-nocert"))
                    .await;
                let mut buffer = [0u8; 4];
                match tokio::time::timeout(TIMEOUT, transport.read(&mut buffer))
                    .await
                    .unwrap()
                {
                    Err(error) => tls::io_error(error),
                    Ok(n) => panic!("expected a TLS error, read {:?}", &buffer[..n]),
                }
            }
        };
        match error {
            Error::Tls { message, .. } => assert!(
                message.starts_with("the server requires a client certificate")
                    || message.starts_with("the server rejected the client certificate")
                    || message.starts_with("the server aborted the handshake"),
                "{message}"
            ),
            other => panic!("expected Error::Tls, got {other:?}"),
        }
    }
}
