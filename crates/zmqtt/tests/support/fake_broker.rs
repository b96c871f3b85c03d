//! A scripted MQTT peer for behaviour mosquitto cannot be made to show:
//! malformed packets, silence, out-of-order or missing acknowledgements.
//!
//! The test plays the broker one packet at a time:
//!
//! ```ignore
//! let fake = FakeBroker::start();
//! // ... point the client at fake.addr() and start connecting ...
//! let mut conn = fake.accept().await;
//! let connect = conn.accept_connect(false).await;
//! conn.send_raw(&[0xd0, 0x01, 0x00]).await; // a malformed PINGRESP
//! conn.expect_closed().await;
//! ```
//!
//! Every wait has a deadline and panics with what was seen, so a test fails
//! with a message instead of hanging. Packets are decoded and encoded with
//! `zmqtt_proto::codec`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use zmqtt_proto::codec::{decode, encode};
use zmqtt_proto::{ConnAck, Connect, Packet, ProtocolVersion, ReasonCode};

/// How long each accept, receive and close expectation waits.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener on a free `127.0.0.1` port that hands out raw connections.
#[derive(Debug)]
pub struct FakeBroker {
    listener: TcpListener,
    addr: SocketAddr,
}

impl FakeBroker {
    /// Listens on a free loopback port. Must be called inside a tokio runtime.
    pub fn start() -> FakeBroker {
        let bound = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .and_then(TcpListener::from_std);
        let listener = match bound {
            Ok(listener) => listener,
            Err(error) => panic!("fake broker: cannot listen: {error}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(error) => panic!("fake broker: no local address: {error}"),
        };
        FakeBroker { listener, addr }
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients should connect to (host `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The next client connection; panics if none arrives within
    /// [`STEP_TIMEOUT`].
    pub async fn accept(&self) -> FakeConnection {
        match timeout(STEP_TIMEOUT, self.listener.accept()).await {
            Ok(Ok((stream, _))) => FakeConnection::new(stream),
            Ok(Err(error)) => panic!("fake broker: accept failed: {error}"),
            Err(_) => panic!("fake broker: no client connected within {STEP_TIMEOUT:?}"),
        }
    }

    /// Accepts a connection, reads its CONNECT and accepts it with a success
    /// CONNACK. Returns the connection and the client's CONNECT.
    pub async fn accept_client(&self, session_present: bool) -> (FakeConnection, Connect) {
        let mut connection = self.accept().await;
        let connect = connection.accept_connect(session_present).await;
        (connection, connect)
    }
}

/// One TCP connection spoken to packet by packet (or byte by byte).
#[derive(Debug)]
pub struct FakeConnection {
    stream: TcpStream,
    /// Bytes read but not yet decoded into a packet.
    received: BytesMut,
}

impl FakeConnection {
    fn new(stream: TcpStream) -> FakeConnection {
        let _ = stream.set_nodelay(true);
        FakeConnection {
            stream,
            received: BytesMut::new(),
        }
    }

    /// The same tool in the client role: a raw connection to `addr` (for
    /// example to watch a real broker directly while the client under test
    /// goes through a proxy).
    pub async fn connect(addr: SocketAddr) -> FakeConnection {
        match timeout(STEP_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => FakeConnection::new(stream),
            Ok(Err(error)) => panic!("cannot connect to {addr}: {error}"),
            Err(_) => panic!("connecting to {addr} took more than {STEP_TIMEOUT:?}"),
        }
    }

    /// The next packet from the peer, decoded for `version` (a CONNECT is
    /// decoded by its own protocol level). Panics if the peer closes, sends
    /// bytes that do not decode, or sends nothing complete within
    /// [`STEP_TIMEOUT`].
    pub async fn recv_packet(&mut self, version: ProtocolVersion) -> Packet {
        let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
        loop {
            match decode(&mut self.received, version, u32::MAX) {
                Ok(Some(packet)) => return packet,
                Ok(None) => {}
                Err(error) => panic!(
                    "peer sent an undecodable packet ({error}): {:02x?}",
                    &self.received[..]
                ),
            }
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.received));
            match read.await {
                Ok(Ok(0)) => panic!(
                    "peer closed the connection while a packet was expected (unread: {:02x?})",
                    &self.received[..]
                ),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => panic!("reading from the peer failed: {error}"),
                Err(_) => panic!(
                    "no complete packet within {STEP_TIMEOUT:?} (unread: {:02x?})",
                    &self.received[..]
                ),
            }
        }
    }

    /// Encodes `packet` for `version` and writes it.
    pub async fn send_packet(&mut self, packet: &Packet, version: ProtocolVersion) {
        let mut bytes = BytesMut::new();
        if let Err(error) = encode(packet, version, &mut bytes) {
            panic!("cannot encode {packet:?} for {version:?}: {error}");
        }
        self.send_raw(&bytes).await;
    }

    /// Writes `bytes` as they are (malformed input, split packets, ...).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(error) = self.stream.write_all(bytes).await {
            panic!("writing to the peer failed: {error}");
        }
    }

    /// Reads the first packet and checks it is a CONNECT.
    pub async fn read_connect(&mut self) -> Connect {
        // The version argument does not matter: CONNECT carries its own.
        match self.recv_packet(ProtocolVersion::V5).await {
            Packet::Connect(connect) => *connect,
            other => panic!("expected CONNECT, got {other:?}"),
        }
    }

    /// Reads CONNECT and answers a success CONNACK (no properties) in the
    /// client's protocol version. Returns the CONNECT.
    pub async fn accept_connect(&mut self, session_present: bool) -> Connect {
        self.accept_connect_with(ConnAck {
            session_present,
            code: ReasonCode::SUCCESS,
            properties: Default::default(),
        })
        .await
    }

    /// Reads CONNECT and answers `connack` (any code or properties) in the
    /// client's protocol version. Returns the CONNECT.
    pub async fn accept_connect_with(&mut self, connack: ConnAck) -> Connect {
        let connect = self.read_connect().await;
        self.send_packet(&Packet::ConnAck(connack), connect.protocol)
            .await;
        connect
    }

    /// Asserts the peer closes the connection (end of stream or reset)
    /// within [`STEP_TIMEOUT`] without sending anything more first.
    pub async fn expect_closed(&mut self) {
        self.expect_closed_within(STEP_TIMEOUT).await;
    }

    /// [`FakeConnection::expect_closed`] with a deadline of the caller's choice.
    pub async fn expect_closed_within(&mut self, limit: Duration) {
        assert!(
            self.received.is_empty(),
            "peer sent bytes not read before the expected close: {:02x?}",
            &self.received[..]
        );
        match timeout(limit, self.stream.read_buf(&mut self.received)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(_)) => panic!(
                "expected the peer to close, it sent {:02x?}",
                &self.received[..]
            ),
            Err(_) => panic!("the peer did not close the connection within {limit:?}"),
        }
    }

    /// Asserts the peer sends nothing and keeps the connection open for
    /// `period` (use only where absence is the point of the test).
    pub async fn expect_silence(&mut self, period: Duration) {
        assert!(
            self.received.is_empty(),
            "peer sent bytes not read before the silence: {:02x?}",
            &self.received[..]
        );
        match timeout(period, self.stream.read_buf(&mut self.received)).await {
            Err(_) => {}
            Ok(Ok(0)) => panic!("the peer closed the connection during {period:?} of silence"),
            Ok(Ok(_)) => panic!(
                "expected silence for {period:?}, the peer sent {:02x?}",
                &self.received[..]
            ),
            Ok(Err(error)) => panic!("the connection failed during the silence: {error}"),
        }
    }

    /// Closes the connection abruptly (TCP reset instead of a clean close),
    /// like a broker that crashed.
    pub fn reset(self) {
        let _ = self.stream.set_zero_linger();
    }
}
