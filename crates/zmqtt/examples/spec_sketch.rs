//! SPEC.md section 2's code sketch, as written, made runnable.
//!
//! Needs a broker: `ZMQTT_HOST` / `ZMQTT_PORT` (default `localhost:1883`).
//! It subscribes to `sensors/#`, publishes one reading there itself, handles
//! and acknowledges that message, and ends.
//!
//! ```text
//! ZMQTT_PORT=1883 cargo run -p zmqtt --example spec_sketch
//! ```

use futures::StreamExt;
use zmqtt::{Message, PublishProperties, QoS, ReconnectConfig, Tls};

fn handle(msg: &Message) {
    println!(
        "received {} bytes on {} (QoS {})",
        msg.payload.len(),
        msg.topic,
        msg.qos as u8
    );
}

/// The broker's address: `ZMQTT_HOST` / `ZMQTT_PORT`, default `localhost:1883`.
fn broker_address() -> Result<(String, u16), zmqtt::Error> {
    let host = std::env::var("ZMQTT_HOST").unwrap_or_else(|_| "localhost".to_owned());
    let port = match std::env::var("ZMQTT_PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| zmqtt::Error::InvalidArgument(format!("bad ZMQTT_PORT '{port}'")))?,
        Err(_) => 1883,
    };
    Ok((host, port))
}

/// The sketch. Its lines are kept as SPEC.md shows them (hence no rustfmt);
/// the additions are marked.
#[rustfmt::skip]
pub async fn run() -> Result<(), zmqtt::Error> {
    let (host, port) = broker_address()?; // added: where the broker is
    let client = zmqtt::create_client(host.as_str())  // ClientBuilder<V311>
        .port(port).client_id("my-app").keepalive(60)
        .credentials("user", "secret")
        // The sketch says `Tls::System`: TLS verified against the platform's
        // roots. A plain local test broker speaks no TLS, so this runnable copy
        // uses `Tls::Off` (see tests/tls.rs for TLS against a real broker).
        .tls(Tls::Off)                                     // Off | System | Custom(rustls::ClientConfig)
        .reconnect(ReconnectConfig::default())
        .build();                                          // Client<V311>, no I/O yet
    client.connect().await?;
    client.publish("test", "hello").qos(QoS::AtLeastOnce).await?;

    let v5 = zmqtt::create_client(host.as_str()).v5()     // ClientBuilder<V5>
        .port(port)                                        // added
        .session_expiry_interval(3600).build();            // Client<V5>
    v5.connect().await?;
    v5.publish("data", b"payload".as_slice())
        .properties(PublishProperties { message_expiry_interval: Some(60), ..Default::default() })
        .await?;                                           // .properties() exists only for V5
    let mut sub = v5.subscribe(["sensors/#"]).qos(QoS::AtLeastOnce).auto_ack(false).await?;
    // added: a message for the loop below, which ends once it has seen it
    client.publish("sensors/demo/temperature", "21.5").qos(QoS::AtLeastOnce).await?;
    while let Some(msg) = sub.next().await { handle(&msg); msg.ack().await?;
        if msg.topic == "sensors/demo/temperature" { break; } } // added: the end
    v5.disconnect().await?;
    client.disconnect().await?; // added
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), zmqtt::Error> {
    run().await
}
