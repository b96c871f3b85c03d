//! TLS through the public API, against the testbed's mosquitto.
//!
//! The transport itself (`open()`: address fallback, certificate errors,
//! ALPN, SNI, mutual TLS) is unit-tested in `src/connection/transport.rs`;
//! this file checks what a user of the crate sees: that `TlsConfig` and the
//! conversions into `Tls` are usable from outside, and that the rustls
//! configuration `TlsConfig::build()` returns talks to a real broker.

mod tls_support;

use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use zmqtt::{Error, Tls, TlsConfig};
use zmqtt_testbed::{Broker, BrokerOptions};

use tls_support::{Pki, TempDir};

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
