// The workloads with rumqttc, shared by its 3.1.1 (`bench-rumqttc-v4`) and
// 5.0 (`bench-rumqttc-v5`) APIs: each binary brings the names (`AsyncClient`,
// `MqttOptions`, `Event`, `Packet`, `QoS`, `options()`, `CLIENT`, `VERSION`)
// into scope and `include!`s this file.
//
// The documented idiom: `AsyncClient::new(options, cap)` plus an `EventLoop`
// polled in its own task. `publish_bytes(..).await` only queues the request
// (the payload `Bytes` is shared, not copied); acknowledgements and incoming
// messages are seen by the event-loop task, which counts them itself and
// tells the workload what it waits for over a channel.

use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;
use zmqtt_bench::{
    fail, kib_per_conn, progress, rss_bytes, run_main, Args, Failure, Meter, Report, Workload,
    W7_SETTLE,
};

/// Capacity of the request channel between `AsyncClient` and `EventLoop`
/// (zmqtt's command queue holds 1024 too).
const REQUEST_CAPACITY: usize = 1024;

/// What the event-loop task reports.
#[derive(Debug)]
enum Signal {
    Connected,
    Subscribed,
    /// One PUBACK (QoS 1) or PUBCOMP (QoS 2) arrived.
    Acked,
    /// The `ack_target`-th acknowledgement arrived.
    AllAcked(Instant),
    /// One message arrived (only with `forward_messages`).
    Message,
    /// The `message_target`-th message arrived.
    AllReceived(Instant),
    Failed(String),
}

/// What the event-loop task counts and forwards.
#[derive(Debug, Default, Clone, Copy)]
struct Watch {
    forward_acks: bool,
    ack_target: Option<u64>,
    forward_messages: bool,
    message_target: Option<u64>,
}

/// Connects one client: returns it and the channel of its event-loop task,
/// after CONNACK.
async fn connect(
    args: &Args,
    role: &str,
    watch: Watch,
) -> Result<(AsyncClient, mpsc::UnboundedReceiver<Signal>), Failure> {
    let (client, mut eventloop) =
        AsyncClient::new(options(args, args.client_id(CLIENT, role)), REQUEST_CAPACITY);
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut acks = 0u64;
        let mut messages = 0u64;
        loop {
            let event = match eventloop.poll().await {
                Ok(event) => event,
                Err(error) => {
                    let _ = tx.send(Signal::Failed(error.to_string()));
                    return;
                }
            };
            let signal = match event {
                Event::Incoming(Packet::ConnAck(_)) => Signal::Connected,
                Event::Incoming(Packet::SubAck(_)) => Signal::Subscribed,
                Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_)) => {
                    acks += 1;
                    if watch.ack_target == Some(acks) {
                        Signal::AllAcked(Instant::now())
                    } else if watch.forward_acks {
                        Signal::Acked
                    } else {
                        continue;
                    }
                }
                Event::Incoming(Packet::Publish(_)) => {
                    messages += 1;
                    progress();
                    if watch.message_target == Some(messages) {
                        Signal::AllReceived(Instant::now())
                    } else if watch.forward_messages {
                        Signal::Message
                    } else {
                        continue;
                    }
                }
                _ => continue,
            };
            if tx.send(signal).is_err() {
                return;
            }
        }
    });
    match rx.recv().await {
        Some(Signal::Connected) => Ok((client, rx)),
        Some(Signal::Failed(error)) => Err(fail(format!("connect failed: {error}"))),
        other => Err(fail(format!("unexpected before CONNACK: {other:?}"))),
    }
}

/// Waits for the next signal, failing on an error or an unexpected one.
async fn expect(
    rx: &mut mpsc::UnboundedReceiver<Signal>,
    what: &str,
    pick: impl Fn(&Signal) -> bool,
) -> Result<Signal, Failure> {
    match rx.recv().await {
        Some(signal) if pick(&signal) => Ok(signal),
        Some(Signal::Failed(error)) => Err(fail(format!("waiting for {what}: {error}"))),
        other => Err(fail(format!("waiting for {what}, got {other:?}"))),
    }
}

async fn subscribe(
    client: &AsyncClient,
    rx: &mut mpsc::UnboundedReceiver<Signal>,
    topic: &str,
    qos: QoS,
) -> Result<(), Failure> {
    client.subscribe(topic, qos).await?;
    expect(rx, "SUBACK", |s| matches!(s, Signal::Subscribed)).await?;
    Ok(())
}

async fn all_received(rx: &mut mpsc::UnboundedReceiver<Signal>) -> Result<Instant, Failure> {
    match expect(rx, "all messages", |s| matches!(s, Signal::AllReceived(_))).await? {
        Signal::AllReceived(at) => Ok(at),
        _ => Err(fail("unreachable")),
    }
}

async fn all_acked(rx: &mut mpsc::UnboundedReceiver<Signal>) -> Result<Instant, Failure> {
    match expect(rx, "all acknowledgements", |s| matches!(s, Signal::AllAcked(_))).await? {
        Signal::AllAcked(at) => Ok(at),
        _ => Err(fail("unreachable")),
    }
}

fn main() {
    run_main(
        VERSION,
        |_| (CLIENT.to_string(), "publish_bytes".to_string()),
        |args, report| async move { run(args, report).await },
    )
}

async fn run(args: Args, report: Report) -> Result<Report, Failure> {
    let topic = args.topic(CLIENT);
    let payload = Bytes::from(args.payload());
    let count = args.count;
    match args.workload {
        Workload::W1 => {
            let receive = Watch {
                message_target: Some(count),
                ..Watch::default()
            };
            let (sub, mut sub_rx) = connect(&args, "sub", receive).await?;
            subscribe(&sub, &mut sub_rx, &topic, QoS::AtMostOnce).await?;
            let (publisher, _pub_rx) = connect(&args, "pub", Watch::default()).await?;
            let meter = Meter::start();
            for _ in 0..count {
                publisher
                    .publish_bytes(topic.as_str(), QoS::AtMostOnce, false, payload.clone())
                    .await?;
            }
            let end = all_received(&mut sub_rx).await?;
            Ok(report.throughput(meter.stop_at(end)))
        }
        Workload::W2 | Workload::W4 => {
            let qos = if args.workload == Workload::W2 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            let watch = Watch {
                forward_acks: true,
                ..Watch::default()
            };
            let (client, mut rx) = connect(&args, "pub", watch).await?;
            let meter = Meter::start();
            for _ in 0..count {
                client
                    .publish_bytes(topic.as_str(), qos, false, payload.clone())
                    .await?;
                expect(&mut rx, "acknowledgement", |s| matches!(s, Signal::Acked)).await?;
                progress();
            }
            Ok(report.throughput(meter.stop()))
        }
        Workload::W3 => {
            let receive = Watch {
                message_target: Some(count),
                ..Watch::default()
            };
            let (sub, mut sub_rx) = connect(&args, "sub", receive).await?;
            subscribe(&sub, &mut sub_rx, &topic, QoS::AtLeastOnce).await?;
            // rumqttc itself keeps at most `inflight` (set to --window) unacknowledged.
            let acks = Watch {
                ack_target: Some(count),
                ..Watch::default()
            };
            let (publisher, mut pub_rx) = connect(&args, "pub", acks).await?;
            let meter = Meter::start();
            for _ in 0..count {
                publisher
                    .publish_bytes(topic.as_str(), QoS::AtLeastOnce, false, payload.clone())
                    .await?;
            }
            let acked = all_acked(&mut pub_rx).await?;
            let received = all_received(&mut sub_rx).await?;
            Ok(report.throughput(meter.stop_at(acked.max(received))))
        }
        Workload::W5 => {
            let watch = Watch {
                forward_messages: true,
                ..Watch::default()
            };
            let (client, mut rx) = connect(&args, "rtt", watch).await?;
            subscribe(&client, &mut rx, &topic, QoS::AtMostOnce).await?;
            let mut samples = Vec::with_capacity(count as usize);
            let mut meter = Meter::start();
            for round in 0..args.warmup + count {
                if round == args.warmup {
                    meter = Meter::start();
                }
                let sent = Instant::now();
                client
                    .publish_bytes(topic.as_str(), QoS::AtMostOnce, false, payload.clone())
                    .await?;
                expect(&mut rx, "own message", |s| matches!(s, Signal::Message)).await?;
                if round >= args.warmup {
                    samples.push(sent.elapsed().as_nanos() as u64);
                }
            }
            Ok(report.throughput(meter.stop()).latency(samples))
        }
        Workload::W6 => {
            let fence = Watch {
                ack_target: Some(1),
                ..Watch::default()
            };
            let (client, mut rx) = connect(&args, "pub", fence).await?;
            let meter = Meter::start();
            for _ in 0..count {
                client
                    .publish_bytes(topic.as_str(), QoS::AtMostOnce, false, payload.clone())
                    .await?;
            }
            // The fence: its PUBACK means the sink has read everything before it.
            client
                .publish_bytes(topic.as_str(), QoS::AtLeastOnce, false, payload.clone())
                .await?;
            all_acked(&mut rx).await?;
            Ok(report.throughput(meter.stop()))
        }
        Workload::W7 => {
            let first = connect(&args, "idle-0", Watch::default()).await?;
            tokio::time::sleep(W7_SETTLE).await;
            let before = rss_bytes();
            let mut clients = vec![first];
            for index in 0..args.connections {
                clients.push(connect(&args, &format!("idle-{}", index + 1), Watch::default()).await?);
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
