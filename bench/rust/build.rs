//! Exposes the locked versions of the benchmarked crates as environment
//! variables (`LOCKED_<NAME>`), so each JSON line names what it measured.

use std::fs;

fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=../../crates/zmqtt/Cargo.toml");
    let lock = fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut name: Option<String> = None;
    for line in lock.lines() {
        if let Some(value) = line.strip_prefix("name = ") {
            name = Some(value.trim_matches('"').to_string());
        } else if let (Some(value), Some(current)) = (line.strip_prefix("version = "), &name) {
            let variable = match current.as_str() {
                "zmqtt" => "LOCKED_ZMQTT",
                "rumqttc" => "LOCKED_RUMQTTC",
                "paho-mqtt" => "LOCKED_PAHO_MQTT",
                "paho-mqtt-sys" => "LOCKED_PAHO_MQTT_SYS",
                "mqtt-async-client" => "LOCKED_MQTT_ASYNC_CLIENT",
                _ => continue,
            };
            println!("cargo:rustc-env={variable}={}", value.trim_matches('"'));
        }
    }
}
