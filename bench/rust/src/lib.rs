//! What every benchmark binary shares: the command line, the measurements
//! (wall clock, CPU from `getrusage`, RSS from `/proc/self/statm`, latency
//! percentiles) and the one JSON line each run prints.
//!
//! Each `bench-<client>` binary runs one workload once and prints one JSON
//! line on stdout; see README.md for the contract with the orchestrator.

use std::fmt::Write as _;
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub mod sink;

/// The workloads of BENCH.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// QoS 0 end to end: one connection publishes, another receives all.
    W1,
    /// QoS 1 sequential: each publish awaited to PUBACK.
    W2,
    /// QoS 1 pipelined (at most `window` outstanding), a subscriber receives all.
    W3,
    /// QoS 2 sequential.
    W4,
    /// Round trip: publish, await receipt on the own subscription, repeat.
    W5,
    /// QoS 0 publishes into the sink (no broker).
    W6,
    /// Idle connected clients in one process.
    W7,
}

impl Workload {
    fn parse(text: &str) -> Option<Workload> {
        Some(match text.to_ascii_uppercase().as_str() {
            "W1" => Workload::W1,
            "W2" => Workload::W2,
            "W3" => Workload::W3,
            "W4" => Workload::W4,
            "W5" => Workload::W5,
            "W6" => Workload::W6,
            "W7" => Workload::W7,
            _ => return None,
        })
    }

    /// "W1" … "W7".
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
            Workload::W5 => "W5",
            Workload::W6 => "W6",
            Workload::W7 => "W7",
        }
    }
}

/// The command line shared by every `bench-<client>` binary.
#[derive(Debug, Clone)]
pub struct Args {
    pub workload: Workload,
    pub host: String,
    pub port: u16,
    /// Messages (W1–W6); W7 uses `connections`.
    pub count: u64,
    pub payload_size: usize,
    /// W7: idle clients to connect.
    pub connections: u64,
    /// W3: most QoS 1 publishes outstanding at once.
    pub window: usize,
    /// Client-specific publishing mode (zmqtt: `try_send` or `await`).
    pub mode: Option<String>,
    /// Give up (exit 1) after this long.
    pub timeout: Duration,
    /// W5: round trips done before the measured ones.
    pub warmup: u64,
    /// MQTT protocol level for clients that speak both (zmqtt): 4 or 5.
    pub protocol: u8,
}

const USAGE: &str = "usage: bench-<client> --workload W1|W2|W3|W4|W5|W6|W7 [--host H] [--port P] \
[--count N] [--payload-size B] [--connections C] [--window W] [--mode M] [--timeout S] [--warmup K] [--protocol 3.1.1|5]";

impl Args {
    /// Parses `std::env::args()`; prints usage and exits 2 on a bad line.
    pub fn parse() -> Args {
        match Args::try_parse(std::env::args().skip(1)) {
            Ok(args) => args,
            Err(message) => {
                eprintln!("{message}\n{USAGE}");
                process::exit(2);
            }
        }
    }

    fn try_parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut workload = None;
        // Defaults: ZMQTT_HOST / ZMQTT_PORT (set by scripts/with-broker), else
        // 127.0.0.1:1883.
        let env_port = std::env::var("ZMQTT_PORT")
            .ok()
            .and_then(|p| p.parse().ok());
        let mut args = Args {
            workload: Workload::W1,
            host: std::env::var("ZMQTT_HOST").unwrap_or_else(|_| "127.0.0.1".into()),
            port: env_port.unwrap_or(1883),
            count: 0,
            payload_size: 64,
            connections: 1000,
            window: 100,
            mode: None,
            timeout: Duration::from_secs(300),
            warmup: 100,
            protocol: 4,
        };
        let mut count = None;
        while let Some(flag) = argv.next() {
            if flag == "-h" || flag == "--help" {
                println!("{USAGE}");
                process::exit(0);
            }
            let value = argv.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |value: &str| {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("{flag}: not a number: {value}"))
            };
            match flag.as_str() {
                "--workload" => {
                    workload = Some(
                        Workload::parse(&value)
                            .ok_or_else(|| format!("unknown workload {value}"))?,
                    )
                }
                "--host" => args.host = value,
                "--port" => {
                    args.port = u16::try_from(number(&value)?).map_err(|_| "bad port")?;
                }
                "--count" => count = Some(number(&value)?),
                "--payload-size" => args.payload_size = number(&value)? as usize,
                "--connections" => args.connections = number(&value)?,
                "--window" => args.window = (number(&value)? as usize).max(1),
                "--mode" => args.mode = Some(value),
                "--timeout" => args.timeout = Duration::from_secs(number(&value)?),
                "--warmup" => args.warmup = number(&value)?,
                "--protocol" => {
                    args.protocol = match value.as_str() {
                        "4" | "3.1.1" | "311" => 4,
                        "5" | "5.0" => 5,
                        _ => return Err(format!("--protocol: 3.1.1 or 5, not {value}")),
                    }
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        args.workload = workload.ok_or("--workload is required")?;
        args.count = count.unwrap_or(match args.workload {
            Workload::W1 => 200_000,
            Workload::W6 => 1_000_000,
            Workload::W7 => args.connections,
            _ => 10_000,
        });
        if args.workload == Workload::W7 {
            args.count = args.connections;
        }
        if args.count == 0 {
            return Err("--count must be positive".into());
        }
        Ok(args)
    }

    /// The payload every message carries: `payload_size` bytes.
    pub fn payload(&self) -> Vec<u8> {
        (0..self.payload_size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect()
    }

    /// A topic no other run uses, so runs against one broker never mix.
    pub fn topic(&self, client: &str) -> String {
        format!("bench/{client}/{}/{}", process::id(), self.workload.name())
    }

    /// A client id unique to this process: `<client>-<pid>-<role>`.
    pub fn client_id(&self, client: &str, role: &str) -> String {
        format!("{client}-{}-{}-{role}", process::id(), self.workload.name())
    }
}

/// Process CPU time (user + system) in microseconds, from getrusage(RUSAGE_SELF).
pub fn cpu_time_us() -> u64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF is valid and `usage` is a valid out pointer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return 0;
    }
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

/// Resident set size of this process in bytes, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let resident_pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory effects.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    resident_pages * page.max(1) as u64
}

/// Raises the open-file limit to its hard maximum (W7 opens many sockets).
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit read/write the struct we pass.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Wall clock and CPU time of one measured interval.
#[derive(Debug, Clone, Copy)]
pub struct Meter {
    started: Instant,
    cpu_started_us: u64,
}

/// What a [`Meter`] measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub elapsed: Duration,
    pub cpu_us: u64,
}

impl Meter {
    /// Starts the interval now.
    pub fn start() -> Meter {
        Meter {
            cpu_started_us: cpu_time_us(),
            started: Instant::now(),
        }
    }

    /// When the interval started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Ends the interval now.
    pub fn stop(&self) -> Measured {
        self.stop_at(Instant::now())
    }

    /// Ends the interval at `end` (e.g. the instant the last message arrived);
    /// CPU is read now.
    pub fn stop_at(&self, end: Instant) -> Measured {
        Measured {
            elapsed: end.saturating_duration_since(self.started),
            cpu_us: cpu_time_us().saturating_sub(self.cpu_started_us),
        }
    }
}

/// The JSON line of one run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub client: String,
    pub workload: String,
    pub count: u64,
    pub msgs_per_s: Option<f64>,
    pub cpu_us_per_msg: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub kib_per_conn: Option<f64>,
    pub version: String,
    pub mode: String,
    pub elapsed_s: Option<f64>,
    pub error: Option<String>,
}

impl Report {
    pub fn new(client: &str, version: &str, mode: &str, args: &Args) -> Report {
        Report {
            client: client.into(),
            workload: args.workload.name().into(),
            count: args.count,
            version: version.into(),
            mode: mode.into(),
            ..Report::default()
        }
    }

    /// Fills msgs/s and CPU/msg from a measured interval of `count` messages.
    pub fn throughput(mut self, measured: Measured) -> Report {
        let seconds = measured.elapsed.as_secs_f64();
        self.elapsed_s = Some(seconds);
        self.msgs_per_s = Some(if seconds > 0.0 {
            self.count as f64 / seconds
        } else {
            0.0
        });
        self.cpu_us_per_msg = Some(measured.cpu_us as f64 / self.count as f64);
        self
    }

    /// Fills p50/p99 from round-trip samples (nanoseconds; sorted here).
    pub fn latency(mut self, mut samples_ns: Vec<u64>) -> Report {
        samples_ns.sort_unstable();
        self.p50_us = percentile(&samples_ns, 0.50).map(|ns| ns as f64 / 1000.0);
        self.p99_us = percentile(&samples_ns, 0.99).map(|ns| ns as f64 / 1000.0);
        self
    }

    /// The one-line JSON object.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        let _ = write!(out, "\"client\": {}", json_str(&self.client));
        let _ = write!(out, ", \"workload\": {}", json_str(&self.workload));
        let _ = write!(out, ", \"count\": {}", self.count);
        for (name, value) in [
            ("msgs_per_s", self.msgs_per_s),
            ("cpu_us_per_msg", self.cpu_us_per_msg),
            ("p50_us", self.p50_us),
            ("p99_us", self.p99_us),
            ("kib_per_conn", self.kib_per_conn),
        ] {
            let _ = write!(out, ", \"{name}\": {}", json_num(value, 3));
        }
        let _ = write!(out, ", \"version\": {}", json_str(&self.version));
        let _ = write!(out, ", \"mode\": {}", json_str(&self.mode));
        let _ = write!(out, ", \"elapsed_s\": {}", json_num(self.elapsed_s, 6));
        if let Some(error) = &self.error {
            let _ = write!(out, ", \"error\": {}", json_str(error));
        }
        out.push('}');
        out
    }
}

/// The nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[u64], fraction: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

fn json_num(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => {
            let mut text = format!("{v:.decimals$}");
            if text.contains('.') {
                while text.ends_with('0') {
                    text.pop();
                }
                if text.ends_with('.') {
                    text.push('0');
                }
            }
            text
        }
        _ => "null".into(),
    }
}

fn json_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Why a run produced no measurement.
#[derive(Debug)]
pub enum Failure {
    /// This client cannot run this workload (exit status 3).
    Unsupported(String),
    /// The run failed (exit status 1).
    Error(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure::Error(error.to_string())
    }
}

/// Shorthand for a failed run.
pub fn fail(message: impl Into<String>) -> Failure {
    Failure::Error(message.into())
}

/// A counter of delivered messages, shown in the error when a run times out.
pub static PROGRESS: AtomicU64 = AtomicU64::new(0);

/// Bumps [`PROGRESS`].
pub fn progress() {
    PROGRESS.fetch_add(1, Ordering::Relaxed);
}

/// Runs one measurement under `args.timeout` on a multi-threaded tokio
/// runtime (what `#[tokio::main]` gives, the same for every client), prints
/// the JSON line and exits: 0 measured, 1 failed, 3 unsupported.
///
/// `describe` names the client and its publishing mode for the parsed
/// arguments; `body` gets the arguments and a report with those filled in.
pub fn run_main<D, F, Fut>(version: &str, describe: D, body: F) -> !
where
    D: FnOnce(&Args) -> (String, String),
    F: FnOnce(Args, Report) -> Fut,
    Fut: std::future::Future<Output = Result<Report, Failure>>,
{
    let args = Args::parse();
    raise_fd_limit();
    let (client, default_mode) = describe(&args);
    let mode = match (&args.mode, args.workload) {
        (Some(mode), _) => mode.clone(),
        (None, Workload::W7) => "idle".to_string(),
        (None, _) => default_mode,
    };
    let template = Report::new(&client, version, &mode, &args);
    let failed = template.clone();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => finish(failed, Err(Failure::Error(error.to_string()))),
    };
    let timeout = args.timeout;
    let outcome = runtime.block_on(async move {
        match tokio::time::timeout(timeout, body(args, template)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(fail(format!(
                "timed out after {}s (progress counter {})",
                timeout.as_secs(),
                PROGRESS.load(Ordering::Relaxed)
            ))),
        }
    });
    // Client libraries may leave tasks or threads behind; do not wait for them.
    runtime.shutdown_background();
    finish(failed, outcome)
}

fn finish(failed: Report, outcome: Result<Report, Failure>) -> ! {
    let (report, status) = match outcome {
        Ok(report) => (report, 0),
        Err(Failure::Unsupported(why)) => (
            Report {
                error: Some(format!("unsupported: {why}")),
                ..failed
            },
            3,
        ),
        Err(Failure::Error(why)) => {
            eprintln!("error: {why}");
            (
                Report {
                    error: Some(why),
                    ..failed
                },
                1,
            )
        }
    };
    println!("{}", report.to_json());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    process::exit(status)
}

/// W7's figure: RSS growth per connection in KiB.
pub fn kib_per_conn(before: u64, after: u64, connections: u64) -> f64 {
    after.saturating_sub(before) as f64 / 1024.0 / connections.max(1) as f64
}

/// How long W7 waits, once every client is connected, before reading RSS
/// (lets lazily-started per-connection work settle).
pub const W7_SETTLE: Duration = Duration::from_millis(500);

/// The version of a dependency as locked in Cargo.lock (set by build.rs).
#[macro_export]
macro_rules! locked_version {
    ($env:literal) => {
        match option_env!($env) {
            Some(version) => version,
            None => "unknown",
        }
    };
}
