//! `bench-sink --port P [--host 127.0.0.1] [--verbose]`: the W6 sink server.
//!
//! Answers CONNECT with a success CONNACK (3.1.1 or 5.0, as the CONNECT
//! asked), PINGREQ with PINGRESP, QoS 1/2 publishes with their
//! acknowledgements, and discards everything else. With `--port 0` it prints
//! `PORT=<n>` on stdout once listening. Runs until killed, on one thread so
//! that it leaves the other core to the client under test.

use std::io::Write;

fn main() {
    let mut host = "127.0.0.1".to_string();
    let mut port: u16 = 0;
    let mut verbose = false;
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        match flag.as_str() {
            "--port" => {
                port = argv
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--host" => host = argv.next().unwrap_or_else(|| usage()),
            "--verbose" => verbose = true,
            _ => usage(),
        }
    }
    zmqtt_bench::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome: std::io::Result<()> = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
        let bound = listener.local_addr()?.port();
        println!("PORT={bound}");
        std::io::stdout().flush()?;
        zmqtt_bench::sink::serve(listener, verbose).await
    });
    if let Err(error) = outcome {
        eprintln!("bench-sink: {error}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!("usage: bench-sink --port P [--host 127.0.0.1] [--verbose]");
    std::process::exit(2)
}
