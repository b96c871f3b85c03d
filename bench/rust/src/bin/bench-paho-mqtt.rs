//! `bench-paho-mqtt`: the workloads with the Eclipse Paho Rust client
//! (`paho_mqtt::AsyncClient`, the C library built by the `bundled` feature),
//! MQTT 3.1.1, no persistence (the crate's default).
//!
//! Idiom: `publish(Message)` returns a `DeliveryToken`, a future that ends
//! when the C library is done with the message (written for QoS 0, PUBACK /
//! PUBCOMP for QoS 1/2). Sequential workloads await each token; bursts keep
//! at most a window of tokens outstanding (mode `tokens`: 1000 for QoS 0,
//! `--window` for W3). Messages arrive through `get_stream(None)` (an
//! unbounded channel fed by the C library's callback thread: a bounded one
//! drops messages when full).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use paho_mqtt as mqtt;
use zmqtt_bench::{
    fail, kib_per_conn, locked_version, progress, rss_bytes, run_main, Args, Failure, Meter,
    Report, Workload, W7_SETTLE,
};

const CLIENT: &str = "paho-mqtt";

/// Tokens of QoS 0 publishes allowed outstanding in a burst (env
/// `PAHO_qos0_window()` overrides, for tuning).
fn qos0_window() -> usize {
    std::env::var("PAHO_qos0_window()")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// The C library refuses a publish while this many wait in its queue
/// (`MQTTASYNC_MAX_BUFFERED_MESSAGES`; its default is 100): room for a window.
fn max_buffered(args: &Args) -> i32 {
    (qos0_window().max(args.window) + 16) as i32
}

type Stream = mqtt::AsyncReceiver<Option<mqtt::Message>>;

fn main() {
    let version = match (
        option_env!("LOCKED_PAHO_MQTT"),
        option_env!("LOCKED_PAHO_MQTT_SYS"),
    ) {
        (Some(crate_version), Some(sys)) => format!("{crate_version} (paho-mqtt-sys {sys})"),
        _ => locked_version!("LOCKED_PAHO_MQTT").to_string(),
    };
    run_main(
        &version,
        |_| (CLIENT.to_string(), "tokens".to_string()),
        |args, report| async move { run(args, report).await },
    )
}

/// A connected client; with `stream`, messages are collected from before the
/// connection.
async fn connect(
    args: &Args,
    role: &str,
    stream: bool,
) -> Result<(mqtt::AsyncClient, Option<Stream>), Failure> {
    let create = mqtt::CreateOptionsBuilder::new()
        .server_uri(format!("tcp://{}:{}", args.host, args.port))
        .client_id(args.client_id(CLIENT, role))
        .max_buffered_messages(max_buffered(args))
        .finalize();
    let mut client = mqtt::AsyncClient::new(create)?;
    let stream = stream.then(|| client.get_stream(None));
    let options = mqtt::ConnectOptionsBuilder::new_v3()
        .keep_alive_interval(Duration::from_secs(60))
        .clean_session(true)
        .finalize();
    client.connect(options).await?;
    Ok((client, stream))
}

fn message(topic: &str, payload: &[u8], qos: i32) -> mqtt::Message {
    mqtt::Message::new(topic, payload, qos)
}

/// Publishes `count` messages keeping at most `window` tokens outstanding;
/// returns when every token has completed.
async fn publish_windowed(
    client: &mqtt::AsyncClient,
    args: &Args,
    topic: &str,
    payload: &[u8],
    qos: i32,
    window: usize,
) -> Result<(), Failure> {
    let mut outstanding = VecDeque::with_capacity(window + 1);
    for _ in 0..args.count {
        outstanding.push_back(client.publish(message(topic, payload, qos)));
        if outstanding.len() > window {
            if let Some(token) = outstanding.pop_front() {
                token.await?;
            }
        }
    }
    for token in outstanding {
        token.await?;
    }
    Ok(())
}

/// A task that counts `count` messages and returns when the last arrived.
fn receiver(stream: Stream, count: u64) -> tokio::task::JoinHandle<Result<Instant, String>> {
    tokio::spawn(async move {
        let mut received = 0;
        loop {
            match stream.recv().await {
                Ok(Some(_)) => {
                    received += 1;
                    progress();
                    if received == count {
                        return Ok(Instant::now());
                    }
                }
                _ => return Err(format!("stream ended after {received} messages")),
            }
        }
    })
}

async fn run(args: Args, report: Report) -> Result<Report, Failure> {
    let topic = args.topic(CLIENT);
    let payload = args.payload();
    let count = args.count;
    match args.workload {
        Workload::W1 | Workload::W3 => {
            let (qos, window) = if args.workload == Workload::W1 {
                (mqtt::QOS_0, qos0_window())
            } else {
                (mqtt::QOS_1, args.window)
            };
            let (sub, stream) = connect(&args, "sub", true).await?;
            sub.subscribe(topic.as_str(), qos).await?;
            let stream = stream.ok_or_else(|| fail("no stream"))?;
            let receive = receiver(stream, count);
            let (publisher, _) = connect(&args, "pub", false).await?;
            let meter = Meter::start();
            publish_windowed(&publisher, &args, &topic, &payload, qos, window).await?;
            let published = Instant::now();
            let received = receive.await?.map_err(fail)?;
            Ok(report.throughput(meter.stop_at(published.max(received))))
        }
        Workload::W2 | Workload::W4 => {
            let qos = if args.workload == Workload::W2 {
                mqtt::QOS_1
            } else {
                mqtt::QOS_2
            };
            let (client, _) = connect(&args, "pub", false).await?;
            let meter = Meter::start();
            for _ in 0..count {
                client.publish(message(&topic, &payload, qos)).await?;
                progress();
            }
            Ok(report.throughput(meter.stop()))
        }
        Workload::W5 => {
            let (client, stream) = connect(&args, "rtt", true).await?;
            client.subscribe(topic.as_str(), mqtt::QOS_0).await?;
            let stream = stream.ok_or_else(|| fail("no stream"))?;
            let mut samples = Vec::with_capacity(count as usize);
            let mut meter = Meter::start();
            for round in 0..args.warmup + count {
                if round == args.warmup {
                    meter = Meter::start();
                }
                let sent = Instant::now();
                let token = client.publish(message(&topic, &payload, mqtt::QOS_0));
                match stream.recv().await {
                    Ok(Some(_)) => {}
                    _ => return Err(fail("stream ended")),
                }
                if round >= args.warmup {
                    samples.push(sent.elapsed().as_nanos() as u64);
                }
                token.await?;
            }
            Ok(report.throughput(meter.stop()).latency(samples))
        }
        Workload::W6 => {
            let (client, _) = connect(&args, "pub", false).await?;
            let meter = Meter::start();
            publish_windowed(&client, &args, &topic, &payload, mqtt::QOS_0, qos0_window()).await?;
            // The fence: its PUBACK means the sink has read everything before it.
            client
                .publish(message(&topic, &payload, mqtt::QOS_1))
                .await?;
            Ok(report.throughput(meter.stop()))
        }
        Workload::W7 => {
            let first = connect(&args, "idle-0", false).await?;
            tokio::time::sleep(W7_SETTLE).await;
            let before = rss_bytes();
            let mut clients = vec![first];
            for index in 0..args.connections {
                clients.push(connect(&args, &format!("idle-{}", index + 1), false).await?);
                progress();
            }
            tokio::time::sleep(W7_SETTLE).await;
            let after = rss_bytes();
            let mut report = report;
            report.kib_per_conn = Some(kib_per_conn(before, after, args.connections));
            // Dropping 1000 C clients is slow; the process exits instead.
            std::mem::forget(clients);
            Ok(report)
        }
    }
}
