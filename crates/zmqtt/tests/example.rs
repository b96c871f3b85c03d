//! Runs examples/spec_sketch.rs (SPEC 2's sketch) against a private mosquitto.
//!
//! The example's code is compiled into this test and its `run()` called, so
//! the test needs no separately built binary.

mod support;

#[allow(dead_code)] // its `main` is not called here
#[path = "../examples/spec_sketch.rs"]
mod spec_sketch;

use support::{broker, with_timeout};

#[tokio::test]
async fn spec_sketch_runs_to_completion() {
    let broker = broker();
    // This binary runs only this test, so setting the process environment is safe.
    std::env::set_var("ZMQTT_HOST", "localhost");
    std::env::set_var("ZMQTT_PORT", broker.port().to_string());
    with_timeout(spec_sketch::run()).await.unwrap();
}
