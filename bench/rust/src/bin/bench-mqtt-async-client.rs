//! `bench-mqtt-async-client`: the workloads with `mqtt-async-client`
//! (MQTT 3.1.1 only; no QoS 2, so W4 reports "unsupported").
//!
//! Idiom: `Client::publish(&Publish).await` — for QoS 0 it returns once the
//! request is queued for the client's I/O task, for QoS 1 once PUBACK came;
//! W3 keeps `--window` publish futures going at once (`buffer_unordered`, as
//! the crate's docs suggest: `publish` takes `&self`). Messages are read with
//! `read_subscriptions().await`.
//!
//! `connect()` only starts the I/O task, so each client first completes one
//! QoS 1 publish on a side topic (or its SUBSCRIBE): measurements start on
//! an established connection.

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use mqtt_async_client::client::{Client, KeepAlive, Publish, QoS, Subscribe, SubscribeTopic};
use zmqtt_bench::{
    fail, kib_per_conn, locked_version, progress, rss_bytes, run_main, Args, Failure, Meter,
    Report, Workload, W7_SETTLE,
};

const CLIENT: &str = "mqtt-async-client";

fn main() {
    run_main(
        locked_version!("LOCKED_MQTT_ASYNC_CLIENT"),
        |_| (CLIENT.to_string(), "await".to_string()),
        |args, report| async move { run(args, report).await },
    )
}

fn publish_of(topic: &str, payload: &[u8], qos: QoS) -> Publish {
    let mut publish = Publish::new(topic.to_string(), payload.to_vec());
    publish.set_qos(qos);
    publish
}

/// A client whose connection is established (see the module docs).
async fn connect(
    args: &Args,
    role: &str,
    subscribe: Option<(&str, QoS)>,
) -> Result<Client, Failure> {
    let mut client = Client::builder()
        .set_url_string(&format!("mqtt://{}:{}", args.host, args.port))?
        .set_client_id(Some(args.client_id(CLIENT, role)))
        .set_keep_alive(KeepAlive::from_secs(60))
        .set_max_packet_len((args.payload_size + 1024).max(64 * 1024))
        .set_operation_timeout(Duration::from_secs(120))
        .build()?;
    client.connect().await?;
    match subscribe {
        Some((topic, qos)) => {
            let result = client
                .subscribe(Subscribe::new(vec![SubscribeTopic {
                    topic_path: topic.to_string(),
                    qos,
                }]))
                .await?;
            result.any_failures()?;
        }
        None => {
            let side = format!("{}/connected", args.topic(CLIENT));
            client
                .publish(&publish_of(&side, b"", QoS::AtLeastOnce))
                .await?;
        }
    }
    Ok(client)
}

/// A task that reads `count` messages and returns when the last arrived.
fn receiver(mut client: Client, count: u64) -> tokio::task::JoinHandle<Result<Instant, String>> {
    tokio::spawn(async move {
        for received in 0..count {
            if let Err(error) = client.read_subscriptions().await {
                return Err(format!("after {received} messages: {error}"));
            }
            progress();
        }
        Ok(Instant::now())
    })
}

async fn run(args: Args, report: Report) -> Result<Report, Failure> {
    let topic = args.topic(CLIENT);
    let payload = args.payload();
    let count = args.count;
    match args.workload {
        Workload::W1 => {
            let sub = connect(&args, "sub", Some((&topic, QoS::AtMostOnce))).await?;
            let receive = receiver(sub, count);
            let publisher = connect(&args, "pub", None).await?;
            let message = publish_of(&topic, &payload, QoS::AtMostOnce);
            let meter = Meter::start();
            for _ in 0..count {
                publisher.publish(&message).await?;
            }
            let end = receive.await?.map_err(fail)?;
            Ok(report.throughput(meter.stop_at(end)))
        }
        Workload::W2 => {
            let client = connect(&args, "pub", None).await?;
            let message = publish_of(&topic, &payload, QoS::AtLeastOnce);
            let meter = Meter::start();
            for _ in 0..count {
                client.publish(&message).await?;
                progress();
            }
            Ok(report.throughput(meter.stop()))
        }
        Workload::W3 => {
            let sub = connect(&args, "sub", Some((&topic, QoS::AtLeastOnce))).await?;
            let receive = receiver(sub, count);
            let publisher = connect(&args, "pub", None).await?;
            let message = publish_of(&topic, &payload, QoS::AtLeastOnce);
            let meter = Meter::start();
            futures::stream::iter(0..count)
                .map(|_| publisher.publish(&message))
                .buffer_unordered(args.window)
                .try_for_each(|()| async { Ok(()) })
                .await?;
            let acked = Instant::now();
            let received = receive.await?.map_err(fail)?;
            Ok(report.throughput(meter.stop_at(acked.max(received))))
        }
        Workload::W4 => Err(Failure::Unsupported(
            "mqtt-async-client does not implement QoS 2".into(),
        )),
        Workload::W5 => {
            let mut client = connect(&args, "rtt", Some((&topic, QoS::AtMostOnce))).await?;
            let message = publish_of(&topic, &payload, QoS::AtMostOnce);
            let mut samples = Vec::with_capacity(count as usize);
            let mut meter = Meter::start();
            for round in 0..args.warmup + count {
                if round == args.warmup {
                    meter = Meter::start();
                }
                let sent = Instant::now();
                client.publish(&message).await?;
                client.read_subscriptions().await?;
                if round >= args.warmup {
                    samples.push(sent.elapsed().as_nanos() as u64);
                }
            }
            Ok(report.throughput(meter.stop()).latency(samples))
        }
        Workload::W6 => {
            let client = connect(&args, "pub", None).await?;
            let message = publish_of(&topic, &payload, QoS::AtMostOnce);
            let meter = Meter::start();
            for _ in 0..count {
                client.publish(&message).await?;
            }
            // The fence: its PUBACK means the sink has read everything before it.
            client
                .publish(&publish_of(&topic, &payload, QoS::AtLeastOnce))
                .await?;
            Ok(report.throughput(meter.stop()))
        }
        Workload::W7 => {
            let first = connect(&args, "idle-0", None).await?;
            tokio::time::sleep(W7_SETTLE).await;
            let before = rss_bytes();
            let mut clients = vec![first];
            for index in 0..args.connections {
                clients.push(connect(&args, &format!("idle-{}", index + 1), None).await?);
                progress();
            }
            tokio::time::sleep(W7_SETTLE).await;
            let after = rss_bytes();
            let mut report = report;
            report.kib_per_conn = Some(kib_per_conn(before, after, args.connections));
            drop(clients);
            Ok(report)
        }
    }
}
