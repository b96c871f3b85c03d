//! TLS through the public API, against the testbed's mosquitto.
//!
//! The transport itself (`open()`: address fallback, certificate errors,
//! ALPN, SNI, mutual TLS) is unit-tested in `src/connection/transport.rs`;
//! this file checks what a user of the crate sees: that `TlsConfig` and the
//! conversions into `Tls` are usable from outside, that the rustls
//! configuration `TlsConfig::build()` returns talks to a real broker, and
//! that a client built with `.tls(..)` connects (custom CA, mutual TLS) or
//! fails at once, without retrying, when verification fails (unknown CA,
//! wrong name, expired certificate, no client certificate).

mod support;
mod tls_support;

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use support::{publish_qos1, step, unique_topic, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use zmqtt::{
    create_client, Client, ConnectionState, Error, Protocol, QoS, ReconnectConfig, Tls, TlsConfig,
};
use zmqtt_testbed::{Broker, BrokerOptions};

use tls_support::{server_config, ClientAuth, Pki, TempDir, TestServer};

const TIMEOUT: Duration = Duration::from_secs(10);

/// What the client builder's `.tls(impl Into<Tls>)` will accept.
fn into_tls(tls: impl Into<Tls>) -> Tls {
    tls.into()
}

fn start_broker() -> Broker {
    Broker::start(BrokerOptions::default()).expect("cannot start mosquitto")
}

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

/// Connects with `config`, sends CONNECT, returns the 4 bytes of CONNACK.
async fn connack_over(config: Arc<rustls::ClientConfig>, port: u16, client_id: &str) -> [u8; 4] {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut stream = TlsConnector::from(config).connect(name, tcp).await.unwrap();
    stream.write_all(&raw_connect(client_id)).await.unwrap();
    stream.flush().await.unwrap();
    let mut connack = [0u8; 4];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut connack))
        .await
        .expect("no CONNACK in time")
        .unwrap();
    connack
}

#[test]
fn tls_settings_convert_from_the_usual_types() {
    assert!(matches!(into_tls(false), Tls::Off));
    assert!(matches!(into_tls(true), Tls::System));
    assert!(matches!(Tls::default(), Tls::Off));

    let settings = TlsConfig::new()
        .ca_pem(b"-----BEGIN CERTIFICATE-----".to_vec())
        .server_name("broker.test")
        .alpn(["mqtt"]);
    match into_tls(settings) {
        Tls::Files(inner) => {
            assert_eq!(inner.server_name.as_deref(), Some("broker.test"));
            assert_eq!(inner.alpn, vec![b"mqtt".to_vec()]);
        }
        other => panic!("expected Tls::Files, got {other:?}"),
    }

    let config = TlsConfig::new()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    assert!(matches!(into_tls(Arc::clone(&config)), Tls::Custom(_)));
    assert!(matches!(into_tls((*config).clone()), Tls::Custom(_)));
}

#[test]
fn struct_update_syntax_builds_the_same_settings() {
    let chained = TlsConfig::new()
        .ca_file("/etc/ca.pem")
        .cert_file("/etc/client.pem")
        .key_file("/etc/client.key")
        .use_system_roots(true);
    let literal = TlsConfig {
        ca_file: Some("/etc/ca.pem".into()),
        cert_file: Some("/etc/client.pem".into()),
        key_file: Some("/etc/client.key".into()),
        use_system_roots: true,
        ..Default::default()
    };
    assert_eq!(chained, literal);
}

#[test]
fn build_errors_are_invalid_arguments_that_name_the_file() {
    let pki = Pki::new("errors CA");
    let client = pki.client("client");
    let other = pki.client("other");
    let dir = TempDir::new();
    let cert = dir.write("client.pem", &client.cert_pem);
    let wrong_key = dir.write("other.key", &other.key_pem);
    let error = TlsConfig::new()
        .cert_file(&cert)
        .key_file(&wrong_key)
        .build()
        .unwrap_err();
    assert!(matches!(error, Error::InvalidArgument(_)), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "the private key in '{}' does not match the certificate in '{}'",
            wrong_key.display(),
            cert.display()
        )
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn built_config_connects_to_mosquitto_tls() {
    let broker = tokio::task::spawn_blocking(start_broker).await.unwrap();
    let config = TlsConfig::new().ca_file(broker.ca_file()).build().unwrap();
    let connack = connack_over(config, broker.tls_port(), "zmqtt-tls-public").await;
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
}

#[tokio::test]
async fn built_config_with_client_certificate_connects_to_mosquitto_mtls() {
    let broker = tokio::task::spawn_blocking(start_broker).await.unwrap();
    let config = TlsConfig::new()
        .ca_file(broker.ca_file())
        .cert_file(broker.client_cert())
        .key_file(broker.client_key())
        .build()
        .unwrap();
    let connack = connack_over(config, broker.mtls_port(), "zmqtt-mtls-public").await;
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
}

// ---------------------------------------------------------------------------
// TLS through the client API: `create_client(..).tls(..)`, connect, publish.
// ---------------------------------------------------------------------------

/// Retries forever, quickly: a test that retried what must not be retried
/// would see more connections (or hang and fail on its step timeout).
fn retry_forever() -> ReconnectConfig {
    ReconnectConfig {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(50),
        max_attempts: None,
        ..ReconnectConfig::default()
    }
}

/// Subscribes, publishes at QoS 1 and receives the message back.
async fn round_trip<V: Protocol>(client: &Client<V>) {
    let topic = unique_topic("tls/round-trip");
    let mut sub = step(client.subscribe([topic.as_str()]).qos(QoS::AtLeastOnce))
        .await
        .unwrap();
    publish_qos1(client, topic.as_str(), "over tls").await;
    let message = step(sub.recv()).await.unwrap();
    assert_eq!(message.topic, topic);
    assert_eq!(message.payload_str(), Some("over tls"));
}

#[tokio::test]
async fn client_with_a_custom_ca_connects_and_round_trips() {
    let broker = tokio::task::spawn_blocking(start_broker).await.unwrap();
    // "localhost": a DNS name checked against the certificate's SAN (and
    // `::1`, where mosquitto does not listen, is skipped for 127.0.0.1).
    let client = create_client("localhost")
        .port(broker.tls_port())
        .tls(TlsConfig::new().ca_file(broker.ca_file()))
        .reconnect(ReconnectConfig::disabled())
        .build();
    step(client.connect()).await.unwrap();
    round_trip(&client).await;
    step(client.disconnect()).await.unwrap();

    // A rustls configuration built by hand is taken as it is (Tls::Custom).
    let config = TlsConfig::new().ca_file(broker.ca_file()).build().unwrap();
    let v5 = create_client("127.0.0.1")
        .port(broker.tls_port())
        .tls(config)
        .v5()
        .build();
    step(v5.connect()).await.unwrap();
    round_trip(&v5).await;
    step(v5.disconnect()).await.unwrap();
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate_connects() {
    let broker = tokio::task::spawn_blocking(start_broker).await.unwrap();
    let client = create_client("127.0.0.1")
        .port(broker.mtls_port())
        .tls(
            TlsConfig::new()
                .ca_file(broker.ca_file())
                .cert_file(broker.client_cert())
                .key_file(broker.client_key()),
        )
        .v5()
        .build();
    step(client.connect()).await.unwrap();
    round_trip(&client).await;
    step(client.disconnect()).await.unwrap();
}

#[tokio::test]
async fn mutual_tls_without_a_client_certificate_is_refused_and_not_retried() {
    let broker = tokio::task::spawn_blocking(start_broker).await.unwrap();
    let proxy = FaultProxy::start(broker.mtls_addr());
    let client = create_client("127.0.0.1")
        .port(proxy.port())
        .tls(TlsConfig::new().ca_file(broker.ca_file()))
        .reconnect(retry_forever())
        .build();
    let error = step(client.connect()).await.unwrap_err();
    // TLS 1.3: the server rejects the (missing) certificate after the
    // client's side of the handshake is done, with an alert.
    assert!(
        matches!(&error, Error::Tls { message, .. } if message.contains("client certificate")),
        "{error:?}"
    );
    assert!(!error.is_retryable(), "{error:?}");
    assert_eq!(proxy.connections_accepted(), 1, "one attempt only");
    assert_eq!(client.state(), ConnectionState::Disconnected);
}

/// Connects through a proxy in front of `upstream` with `tls` and reconnection
/// on; checks the connection fails with an `Error::Tls` whose message is
/// `expected` after exactly one attempt, and returns the rustls error.
async fn refused_once(
    upstream: std::net::SocketAddr,
    tls: TlsConfig,
    expected: &str,
) -> rustls::Error {
    let proxy = FaultProxy::start(upstream);
    let client = create_client("127.0.0.1")
        .port(proxy.port())
        .tls(tls)
        .reconnect(retry_forever())
        .build();
    let error = step(client.connect()).await.unwrap_err();
    assert!(!error.is_retryable(), "{error:?}");
    assert_eq!(proxy.connections_accepted(), 1, "never retried");
    assert_eq!(client.state(), ConnectionState::Disconnected);
    assert_eq!(
        step(client.stopped()).await.map(|e| e.to_string()),
        Some(error.to_string())
    );
    match error {
        Error::Tls {
            message,
            source: Some(source),
        } => {
            assert_eq!(message, expected);
            source
        }
        other => panic!("expected Error::Tls with its rustls cause, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_signed_by_another_ca_is_refused_and_not_retried() {
    let broker = tokio::task::spawn_blocking(start_broker).await.unwrap();
    let other = Pki::new("not the broker's CA");
    let source = refused_once(
        broker.tls_addr(),
        TlsConfig::new().ca_pem(other.ca_pem.clone()),
        "certificate not trusted (unknown issuer)",
    )
    .await;
    assert!(matches!(
        source,
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
    ));
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let broker = tokio::task::spawn_blocking(start_broker).await.unwrap();
    let source = refused_once(
        broker.tls_addr(),
        TlsConfig::new()
            .ca_file(broker.ca_file())
            .server_name("wrong.example"),
        "certificate is not valid for name 'wrong.example' (it is for localhost, 127.0.0.1)",
    )
    .await;
    assert!(
        matches!(source, rustls::Error::InvalidCertificate(_)),
        "{source:?}"
    );
}

#[tokio::test]
async fn an_expired_server_certificate_is_refused() {
    let pki = Pki::new("expiry CA");
    let identity = pki.expired_server(&["127.0.0.1"]);
    let mut server = TestServer::start(server_config(
        &identity,
        ClientAuth::Off,
        &[],
        rustls::ALL_VERSIONS,
    ))
    .await;
    let source = refused_once(
        server.addr,
        TlsConfig::new().ca_pem(pki.ca_pem.clone()),
        "certificate expired",
    )
    .await;
    assert!(
        matches!(
            source,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::Expired | rustls::CertificateError::ExpiredContext { .. }
            )
        ),
        "{source:?}"
    );
    // The server saw the client abort the handshake.
    assert!(server.next_handshake().await.is_err());
}
