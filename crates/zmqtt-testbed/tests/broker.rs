//! The test bed against a real mosquitto, spoken to with hand-written MQTT
//! 3.1.1 bytes over a plain `TcpStream`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use zmqtt_testbed::{Broker, BrokerOptions};

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s, client id "tb1".
const CONNECT_ANONYMOUS: [u8; 17] = [
    0x10, 0x0f, // CONNECT, remaining length 15
    0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name
    0x04, // protocol level 4 = 3.1.1
    0x02, // connect flags: clean session
    0x00, 0x3c, // keep-alive 60
    0x00, 0x03, b't', b'b', b'1', // client id
];

/// A length-prefixed UTF-8 string as MQTT encodes it.
fn mqtt_string(text: &str) -> Vec<u8> {
    let len = u16::try_from(text.len()).unwrap();
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}

/// CONNECT, MQTT 3.1.1, clean session, with user name and password flags
/// (0x80 | 0x40 | 0x02); the remaining length fits in one byte here.
fn connect_with_credentials(client_id: &str, username: &str, password: &str) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xc2, 0x00, 0x3c];
    body.extend(mqtt_string(client_id));
    body.extend(mqtt_string(username));
    body.extend(mqtt_string(password));
    let mut packet = vec![0x10, u8::try_from(body.len()).unwrap()];
    packet.extend(body);
    packet
}

/// Sends `connect` and returns the 4 bytes of the CONNACK.
fn handshake(addr: SocketAddr, connect: &[u8]) -> (TcpStream, [u8; 4]) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.write_all(connect).unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).unwrap();
    (stream, connack)
}

/// True once the peer has closed the connection (read returns 0 or reset).
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => matches!(
            error.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    }
}

// MQTT-3.2.2-1: a clean-session connection accepted → Session Present 0,
// return code 0.
#[test]
fn plain_listener_accepts_connect_with_connack_0_mqtt_3_2_2_1() {
    let broker = Broker::start(BrokerOptions::new()).unwrap();
    let (_stream, connack) = handshake(broker.addr(), &CONNECT_ANONYMOUS);
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "log:\n{}", broker.log());
}

// mosquitto answers a wrong password with return code 5 (not authorized), not
// 4 (bad user name or password); Session Present is 0 (MQTT-3.2.2-4) and the
// connection is closed afterwards (MQTT-3.2.2-5).
#[test]
fn password_listener_refuses_wrong_password_with_return_code_5_mqtt_3_2_2_4_and_5() {
    let broker = Broker::start(BrokerOptions::new()).unwrap();
    let bad = connect_with_credentials("tb2", broker.username(), "not-the-password");
    let (mut stream, connack) = handshake(broker.password_addr(), &bad);
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x05], "log:\n{}", broker.log());
    assert!(closed_by_peer(&mut stream));
}

#[test]
fn password_listener_accepts_the_known_credentials_and_refuses_anonymous() {
    let broker = Broker::start(BrokerOptions::new()).unwrap();
    let good = connect_with_credentials("tb3", broker.username(), broker.password());
    let (_stream, connack) = handshake(broker.password_addr(), &good);
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "log:\n{}", broker.log());
    let (_stream, connack) = handshake(broker.password_addr(), &CONNECT_ANONYMOUS);
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x05], "log:\n{}", broker.log());
}

#[test]
fn restart_and_kill_then_start_again_keep_the_ports() {
    let mut broker = Broker::start(BrokerOptions::new()).unwrap();
    let before = broker.info().clone();
    let first_pid = before.pid.unwrap();

    broker.restart().unwrap();
    assert_eq!(broker.port(), before.port);
    assert_eq!(broker.tls_port(), before.tls_port);
    assert_eq!(broker.mtls_port(), before.mtls_port);
    assert_eq!(broker.password_port(), before.password_port);
    assert_ne!(broker.info().pid.unwrap(), first_pid);
    let (_stream, connack) = handshake(broker.addr(), &CONNECT_ANONYMOUS);
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);

    broker.kill().unwrap();
    assert_eq!(broker.info().pid, None);
    assert!(
        TcpStream::connect(broker.addr()).is_err(),
        "killed broker still listens"
    );

    broker.start_again().unwrap();
    assert_eq!(broker.port(), before.port);
    assert_eq!(broker.password_port(), before.password_port);
    let (_stream, connack) = handshake(broker.addr(), &CONNECT_ANONYMOUS);
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
}

#[test]
fn dropping_the_broker_stops_it_and_removes_its_directory() {
    let broker = Broker::start(BrokerOptions::new()).unwrap();
    let addr = broker.addr();
    let dir = broker.info().dir.clone();
    assert!(broker.ca_file().is_file());
    assert!(broker.client_key().is_file());
    assert!(dir.is_dir());
    drop(broker);
    assert!(!dir.exists(), "{} still exists", dir.display());
    assert!(
        TcpStream::connect(addr).is_err(),
        "stopped broker still listens"
    );
}

#[test]
fn stop_reports_a_clean_exit() {
    let broker = Broker::start(BrokerOptions::new()).unwrap();
    let dir = broker.info().dir.clone();
    broker.stop().unwrap();
    assert!(!dir.exists());
}

#[test]
fn a_bad_option_fails_start_with_the_scripts_message() {
    // mosquitto refuses max_packet_size below 20; the script checks it first.
    let error = Broker::start(BrokerOptions::new().max_packet_size(5)).unwrap_err();
    assert!(error.to_string().contains("max_packet_size"), "{error}");
}
