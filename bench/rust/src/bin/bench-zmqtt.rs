//! `bench-zmqtt`: the workloads with this project's client, `zmqtt`.
//!
//! Natural API: `client.publish(..).qos(..).await` for QoS 1/2 and, for
//! QoS 0 (W1, W5, W6), `PublishBuilder::try_send()` falling back to `.await`
//! when the command queue is full (mode `try_send`, the default), or
//! `.await` on every publish (`--mode await`). `--protocol 5` runs the
//! 5.0 client (reported as `zmqtt-v5`).

use std::future::IntoFuture;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use zmqtt::{Client, Protocol, QoS};
use zmqtt_bench::{
    fail, kib_per_conn, locked_version, progress, rss_bytes, run_main, Args, Failure, Meter,
    Report, Workload, W7_SETTLE,
};

fn main() {
    run_main(
        locked_version!("LOCKED_ZMQTT"),
        |args| {
            let name = if args.protocol == 5 {
                "zmqtt-v5"
            } else {
                "zmqtt"
            };
            let mode = match args.workload {
                Workload::W1 | Workload::W5 | Workload::W6 => "try_send",
                _ => "await",
            };
            (name.to_string(), mode.to_string())
        },
        |args, report| async move {
            if args.protocol == 5 {
                let make = |args: &Args, id: String| {
                    zmqtt::create_client(args.host.clone())
                        .v5()
                        .port(args.port)
                        .client_id(id)
                        .build()
                };
                run(args, report, make).await
            } else {
                let make = |args: &Args, id: String| {
                    zmqtt::create_client(args.host.clone())
                        .port(args.port)
                        .client_id(id)
                        .build()
                };
                run(args, report, make).await
            }
        },
    )
}

/// Everything a workload needs.
struct Bench<'a, V, M> {
    args: &'a Args,
    make: M,
    name: String,
    topic: String,
    payload: Bytes,
    /// QoS 0 publishes go through `try_send` (else `.await`).
    try_send: bool,
    _version: std::marker::PhantomData<V>,
}

impl<V: Protocol, M: Fn(&Args, String) -> Client<V>> Bench<'_, V, M> {
    async fn connected(&self, role: &str) -> Result<Client<V>, Failure> {
        let client = (self.make)(self.args, self.args.client_id(&self.name, role));
        client.connect().await?;
        Ok(client)
    }

    /// One QoS 0 publish the way the mode says.
    async fn publish_qos0(&self, client: &Client<V>) -> Result<(), Failure> {
        if self.try_send
            && client
                .publish(self.topic.as_str(), self.payload.clone())
                .try_send()?
        {
            return Ok(());
        }
        client
            .publish(self.topic.as_str(), self.payload.clone())
            .await?;
        Ok(())
    }

    async fn publish_sequential(&self, client: &Client<V>, qos: QoS) -> Result<(), Failure> {
        for _ in 0..self.args.count {
            client
                .publish(self.topic.as_str(), self.payload.clone())
                .qos(qos)
                .await?;
            progress();
        }
        Ok(())
    }

    /// A subscriber task that returns the instant the `count`-th message arrived.
    async fn receiver(
        &self,
        qos: QoS,
    ) -> Result<(Client<V>, tokio::task::JoinHandle<Result<Instant, String>>), Failure> {
        let client = self.connected("sub").await?;
        let mut subscription = client.subscribe([self.topic.clone()]).qos(qos).await?;
        let count = self.args.count;
        let task = tokio::spawn(async move {
            let mut received = 0;
            while subscription.recv().await.is_some() {
                received += 1;
                progress();
                if received == count {
                    return Ok(Instant::now());
                }
            }
            Err(format!("subscription ended after {received} messages"))
        });
        Ok((client, task))
    }
}

async fn run<V: Protocol, M: Fn(&Args, String) -> Client<V>>(
    args: Args,
    report: Report,
    make: M,
) -> Result<Report, Failure> {
    let try_send = match report.mode.as_str() {
        "try_send" => true,
        "await" | "idle" => false,
        other => return Err(fail(format!("unknown mode {other} (try_send or await)"))),
    };
    let bench = Bench {
        args: &args,
        make,
        name: report.client.clone(),
        topic: args.topic(&report.client),
        payload: Bytes::from(args.payload()),
        try_send,
        _version: std::marker::PhantomData,
    };
    let count = args.count;
    match args.workload {
        Workload::W1 => {
            let (_sub_client, receiver) = bench.receiver(QoS::AtMostOnce).await?;
            let publisher = bench.connected("pub").await?;
            let meter = Meter::start();
            for _ in 0..count {
                bench.publish_qos0(&publisher).await?;
            }
            let end = receiver.await?.map_err(fail)?;
            Ok(report.throughput(meter.stop_at(end)))
        }
        Workload::W2 | Workload::W4 => {
            let qos = if args.workload == Workload::W2 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            let client = bench.connected("pub").await?;
            let meter = Meter::start();
            bench.publish_sequential(&client, qos).await?;
            Ok(report.throughput(meter.stop()))
        }
        Workload::W3 => {
            let (_sub_client, receiver) = bench.receiver(QoS::AtLeastOnce).await?;
            let publisher = bench.connected("pub").await?;
            let meter = Meter::start();
            futures::stream::iter(0..count)
                .map(|_| {
                    publisher
                        .publish(bench.topic.as_str(), bench.payload.clone())
                        .qos(QoS::AtLeastOnce)
                        .into_future()
                })
                .buffer_unordered(args.window)
                .try_for_each(|()| async { Ok(()) })
                .await?;
            let acked = Instant::now();
            let received = receiver.await?.map_err(fail)?;
            Ok(report.throughput(meter.stop_at(acked.max(received))))
        }
        Workload::W5 => {
            let client = bench.connected("rtt").await?;
            let mut subscription = client.subscribe([bench.topic.clone()]).await?;
            let mut samples = Vec::with_capacity(count as usize);
            let mut meter = Meter::start();
            for round in 0..args.warmup + count {
                if round == args.warmup {
                    meter = Meter::start();
                }
                let sent = Instant::now();
                bench.publish_qos0(&client).await?;
                subscription
                    .recv()
                    .await
                    .ok_or_else(|| fail("subscription ended"))?;
                if round >= args.warmup {
                    samples.push(sent.elapsed().as_nanos() as u64);
                    progress();
                }
            }
            Ok(report.throughput(meter.stop()).latency(samples))
        }
        Workload::W6 => {
            let client = bench.connected("pub").await?;
            let meter = Meter::start();
            for _ in 0..count {
                bench.publish_qos0(&client).await?;
            }
            // The fence: its PUBACK means the sink has read everything before it.
            client
                .publish(bench.topic.as_str(), bench.payload.clone())
                .qos(QoS::AtLeastOnce)
                .await?;
            Ok(report.throughput(meter.stop()))
        }
        Workload::W7 => {
            let first = bench.connected("idle-0").await?;
            tokio::time::sleep(W7_SETTLE).await;
            let before = rss_bytes();
            let mut clients = vec![first];
            for index in 0..args.connections {
                clients.push(bench.connected(&format!("idle-{}", index + 1)).await?);
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
