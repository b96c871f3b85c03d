//! `bench-rumqttc-v5`: the workloads with rumqttc's MQTT 5.0 API
//! (`rumqttc::v5::{AsyncClient, EventLoop}`). The workload code is shared
//! with `bench-rumqttc-v4` (src/rumqttc_common.rs).

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};

const CLIENT: &str = "rumqttc-v5";
const VERSION: &str = zmqtt_bench::locked_version!("LOCKED_RUMQTTC");

fn options(args: &zmqtt_bench::Args, client_id: String) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, args.host.clone(), args.port);
    options.set_keep_alive(Duration::from_secs(60));
    if args.payload_size + 1024 > 10 * 1024 {
        options.set_max_packet_size(Some((args.payload_size + 1024) as u32));
    }
    // W3's bound on outstanding QoS 1 publishes (the broker's Receive Maximum
    // applies too, when smaller).
    options.set_outgoing_inflight_upper_limit(args.window.clamp(1, u16::MAX as usize) as u16);
    options
}

include!("../rumqttc_common.rs");
