//! `bench-rumqttc-v4`: the workloads with rumqttc's MQTT 3.1.1 API
//! (`rumqttc::{AsyncClient, EventLoop}`). The workload code is shared with
//! `bench-rumqttc-v5` (src/rumqttc_common.rs).

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const CLIENT: &str = "rumqttc-v4";
const VERSION: &str = zmqtt_bench::locked_version!("LOCKED_RUMQTTC");

fn options(args: &zmqtt_bench::Args, client_id: String) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, args.host.clone(), args.port);
    options.set_keep_alive(Duration::from_secs(60));
    // The default limit is 10 KiB; leave room for big payloads.
    let limit = (args.payload_size + 1024).max(10 * 1024);
    options.set_max_packet_size(limit, limit);
    // W3's bound on outstanding QoS 1 publishes (rumqttc's default is 100 too).
    options.set_inflight(args.window.clamp(1, u16::MAX as usize) as u16);
    options
}

include!("../rumqttc_common.rs");
