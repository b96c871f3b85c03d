//! Private mosquitto brokers for zmqtt's integration tests and benchmarks.
//!
//! [`Broker::start`] runs `python3 scripts/testbroker.py serve` from this
//! workspace, which writes a config in a private temporary directory,
//! generates certificates, and starts mosquitto on four free loopback ports:
//!
//! - [`Broker::port`]: plain MQTT, anonymous clients allowed;
//! - [`Broker::tls_port`]: TLS, server certificate for `localhost` and
//!   `127.0.0.1` signed by [`Broker::ca_file`];
//! - [`Broker::mtls_port`]: TLS that requires a client certificate
//!   ([`Broker::client_cert`], [`Broker::client_key`]);
//! - [`Broker::password_port`]: plain MQTT that requires
//!   [`Broker::username`] / [`Broker::password`].
//!
//! The broker is stopped and its directory removed when the [`Broker`] is
//! dropped. Nothing here is an MQTT client: tests bring their own.
//!
//! ```no_run
//! use zmqtt_testbed::{Broker, BrokerOptions};
//!
//! let broker = Broker::start(BrokerOptions::new().max_qos(1))?;
//! let stream = std::net::TcpStream::connect(broker.addr())?;
//! # drop(stream);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The interpreter is `python3`, or the one named by the environment
//! variable `ZMQTT_TESTBED_PYTHON`.

#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// Environment variable naming the Python interpreter (default `python3`).
pub const PYTHON_ENV: &str = "ZMQTT_TESTBED_PYTHON";

/// How long the script may take beyond its own startup deadline before a
/// command is declared hung (it also covers a graceful stop).
const REPLY_SLACK: Duration = Duration::from_secs(20);
/// Startup deadline passed to the script when the options name none.
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `Drop` waits for the script to stop mosquitto and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Path of `scripts/testbroker.py` in this workspace.
pub fn script_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("scripts")
        .join("testbroker.py")
}

/// How to configure a broker. `None` keeps mosquitto's default.
///
/// Build it with struct update syntax (`BrokerOptions { max_qos: Some(1),
/// ..Default::default() }`) or the chained setters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerOptions {
    /// `max_inflight_messages`: outgoing QoS 1/2 messages in flight per client.
    pub max_inflight_messages: Option<u32>,
    /// `max_packet_size`: larger packets from a client get it disconnected
    /// (announced to 5.0 clients in CONNACK). mosquitto refuses values below 20.
    pub max_packet_size: Option<u32>,
    /// `max_qos` on every listener: a PUBLISH above it gets the client
    /// disconnected; a SUBSCRIBE above it is granted this QoS.
    pub max_qos: Option<u8>,
    /// `retain_available`: when false, a PUBLISH with RETAIN gets the client
    /// disconnected.
    pub retain_available: Option<bool>,
    /// `allow_duplicate_messages` (overlapping subscriptions deliver twice).
    pub allow_duplicate_messages: Option<bool>,
    /// Keep sessions and messages in a database across [`Broker::restart`].
    pub persistence: bool,
    /// `max_queued_messages`: QoS 1/2 messages queued per client beyond the
    /// in-flight ones; more are dropped.
    pub max_queued_messages: Option<u32>,
    /// Text of an ACL file applied on every listener. mosquitto's ACL files
    /// act on PUBLISH only (`read` filters deliveries, `write` drops
    /// publishes silently); they never refuse a SUBSCRIBE.
    pub acl: Option<String>,
    /// Topic patterns (wildcards allowed, e.g. `denied/#`): a SUBSCRIBE on the
    /// plain listener to a filter they match is refused (SUBACK 0x80 in 3.1.1,
    /// 0x87 in 5.0). Other listeners are not affected.
    pub deny_subscribe: Vec<String>,
    /// Raw lines for the global section of `mosquitto.conf` (they must not
    /// change logging: startup is detected in the log).
    pub extra_config: Vec<String>,
    /// Raw lines added to every listener's section.
    pub listener_config: Vec<String>,
    /// How long mosquitto may take to accept connections (default 10 s).
    pub startup_timeout: Option<Duration>,
}

impl BrokerOptions {
    /// Options that keep every mosquitto default (no persistence).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`BrokerOptions::max_inflight_messages`].
    pub fn max_inflight_messages(mut self, count: u32) -> Self {
        self.max_inflight_messages = Some(count);
        self
    }

    /// Sets [`BrokerOptions::max_packet_size`].
    pub fn max_packet_size(mut self, bytes: u32) -> Self {
        self.max_packet_size = Some(bytes);
        self
    }

    /// Sets [`BrokerOptions::max_qos`].
    pub fn max_qos(mut self, qos: u8) -> Self {
        self.max_qos = Some(qos);
        self
    }

    /// Sets [`BrokerOptions::retain_available`].
    pub fn retain_available(mut self, available: bool) -> Self {
        self.retain_available = Some(available);
        self
    }

    /// Sets [`BrokerOptions::allow_duplicate_messages`].
    pub fn allow_duplicate_messages(mut self, allow: bool) -> Self {
        self.allow_duplicate_messages = Some(allow);
        self
    }

    /// Sets [`BrokerOptions::persistence`].
    pub fn persistence(mut self, on: bool) -> Self {
        self.persistence = on;
        self
    }

    /// Sets [`BrokerOptions::max_queued_messages`].
    pub fn max_queued_messages(mut self, count: u32) -> Self {
        self.max_queued_messages = Some(count);
        self
    }

    /// Sets [`BrokerOptions::acl`].
    pub fn acl(mut self, text: impl Into<String>) -> Self {
        self.acl = Some(text.into());
        self
    }

    /// Adds a pattern to [`BrokerOptions::deny_subscribe`].
    pub fn deny_subscribe(mut self, pattern: impl Into<String>) -> Self {
        self.deny_subscribe.push(pattern.into());
        self
    }

    /// Adds a line to [`BrokerOptions::extra_config`].
    pub fn extra_config(mut self, line: impl Into<String>) -> Self {
        self.extra_config.push(line.into());
        self
    }

    /// Adds a line to [`BrokerOptions::listener_config`].
    pub fn listener_config(mut self, line: impl Into<String>) -> Self {
        self.listener_config.push(line.into());
        self
    }

    /// Sets [`BrokerOptions::startup_timeout`].
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = Some(timeout);
        self
    }

    /// The `serve` arguments these options stand for.
    fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |flag: &str, value: String| {
            args.push(flag.to_owned());
            args.push(value);
        };
        if let Some(count) = self.max_inflight_messages {
            push("--max-inflight-messages", count.to_string());
        }
        if let Some(bytes) = self.max_packet_size {
            push("--max-packet-size", bytes.to_string());
        }
        if let Some(qos) = self.max_qos {
            push("--max-qos", qos.to_string());
        }
        if let Some(available) = self.retain_available {
            push("--retain-available", available.to_string());
        }
        if let Some(allow) = self.allow_duplicate_messages {
            push("--allow-duplicate-messages", allow.to_string());
        }
        if let Some(count) = self.max_queued_messages {
            push("--max-queued-messages", count.to_string());
        }
        if let Some(text) = &self.acl {
            push("--acl", text.clone());
        }
        for pattern in &self.deny_subscribe {
            push("--deny-subscribe", pattern.clone());
        }
        for line in &self.extra_config {
            push("--config-line", line.clone());
        }
        for line in &self.listener_config {
            push("--listener-config-line", line.clone());
        }
        let timeout = self.startup_timeout.unwrap_or(DEFAULT_STARTUP_TIMEOUT);
        push("--startup-timeout", timeout.as_secs_f64().to_string());
        if self.persistence {
            args.push("--persistence".to_owned());
        }
        args
    }
}

/// Where a running broker listens and the files a client needs to reach it,
/// as reported by the script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The address every listener binds: `127.0.0.1`.
    pub host: String,
    /// Plain MQTT listener, anonymous clients allowed.
    pub port: u16,
    /// TLS listener (no client certificate needed).
    pub tls_port: u16,
    /// TLS listener that requires a client certificate signed by `ca_file`.
    pub mtls_port: u16,
    /// Plain listener that accepts only `username` / `password`.
    pub password_port: u16,
    /// The CA certificate (PEM) that signed the server and client certificates.
    pub ca_file: PathBuf,
    /// The server certificate (PEM); SANs `DNS:localhost`, `IP:127.0.0.1`.
    pub server_cert: PathBuf,
    /// The server's private key (PEM, PKCS#8, ECDSA P-256).
    pub server_key: PathBuf,
    /// A client certificate (PEM) the mTLS listener accepts.
    pub client_cert: PathBuf,
    /// The private key (PEM, PKCS#8, ECDSA P-256) of `client_cert`.
    pub client_key: PathBuf,
    /// The user the password listener accepts.
    pub username: String,
    /// The password of `username`.
    pub password: String,
    /// mosquitto's log (every run of this broker, appended).
    pub log_path: PathBuf,
    /// The private directory (config, certificates, log, persistence).
    pub dir: PathBuf,
    /// The pid of mosquitto, `None` after [`Broker::kill`].
    pub pid: Option<u32>,
}

impl BrokerInfo {
    fn set(&mut self, key: &str, value: String) -> io::Result<()> {
        let port = |value: &str| {
            value
                .parse::<u16>()
                .map_err(|_| invalid(format!("bad port {key}={value}")))
        };
        match key {
            "host" => self.host = value,
            "port" => self.port = port(&value)?,
            "tls_port" => self.tls_port = port(&value)?,
            "mtls_port" => self.mtls_port = port(&value)?,
            "password_port" => self.password_port = port(&value)?,
            "ca_file" => self.ca_file = value.into(),
            "server_cert" => self.server_cert = value.into(),
            "server_key" => self.server_key = value.into(),
            "client_cert" => self.client_cert = value.into(),
            "client_key" => self.client_key = value.into(),
            "username" => self.username = value,
            "password" => self.password = value,
            "log_path" => self.log_path = value.into(),
            "dir" => self.dir = value.into(),
            "pid" => self.pid = value.parse().ok(),
            _ => {} // a field added later; not needed here
        }
        Ok(())
    }

    fn check_complete(&self) -> io::Result<()> {
        let ports = [self.port, self.tls_port, self.mtls_port, self.password_port];
        if self.host.is_empty() || ports.contains(&0) || self.dir.as_os_str().is_empty() {
            return Err(invalid(format!(
                "testbroker.py said READY without every field: {self:?}"
            )));
        }
        Ok(())
    }
}

/// A private mosquitto run by `scripts/testbroker.py serve`.
///
/// Dropping it closes the script's stdin; the script then stops mosquitto
/// and removes the broker's directory.
pub struct Broker {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    reply_timeout: Duration,
    info: BrokerInfo,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("script_pid", &self.child.id())
            .field("info", &self.info)
            .finish()
    }
}

impl Broker {
    /// Starts a broker and returns once every listener accepts connections.
    ///
    /// Fails with the script's message (which includes mosquitto's log) when
    /// mosquitto cannot be installed, configured or started.
    pub fn start(options: BrokerOptions) -> io::Result<Broker> {
        let python = std::env::var_os(PYTHON_ENV).unwrap_or_else(|| "python3".into());
        let script = script_path();
        let mut child = Command::new(&python)
            .arg(&script)
            .arg("serve")
            .args(options.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!(
                        "cannot run {} {}: {error}",
                        python.to_string_lossy(),
                        script.display()
                    ),
                )
            })?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("child stdout was not captured"));
        };
        let (sender, lines) = mpsc::channel();
        // The reader thread ends at the script's end of output (it closes the
        // pipe when it exits), so it never outlives the script for long.
        thread::Builder::new()
            .name("testbroker-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            })?;
        let startup = options.startup_timeout.unwrap_or(DEFAULT_STARTUP_TIMEOUT);
        let mut broker = Broker {
            child,
            stdin,
            lines,
            // Generous: the first run may apt-get install mosquitto.
            reply_timeout: startup + REPLY_SLACK + Duration::from_secs(120),
            info: BrokerInfo::default(),
        };
        broker.info = broker.read_ready()?;
        broker.reply_timeout = startup + REPLY_SLACK;
        Ok(broker)
    }

    /// Stops mosquitto gracefully (it saves its persistence database) and
    /// starts it again on the same ports with the same config and files.
    pub fn restart(&mut self) -> io::Result<()> {
        self.command("restart")?;
        self.info = self.read_ready()?;
        Ok(())
    }

    /// Kills mosquitto with SIGKILL (an abrupt loss: nothing is saved).
    /// The ports refuse connections until [`Broker::start_again`].
    pub fn kill(&mut self) -> io::Result<()> {
        self.command("kill")?;
        self.expect_line("KILLED")?;
        self.info.pid = None;
        Ok(())
    }

    /// Starts mosquitto again after [`Broker::kill`], on the same ports with
    /// the same config and files. Does nothing if it is running.
    pub fn start_again(&mut self) -> io::Result<()> {
        self.command("start")?;
        self.info = self.read_ready()?;
        Ok(())
    }

    /// Stops the broker, removes its directory and reports how the script
    /// ended. Dropping the `Broker` does the same, ignoring errors.
    pub fn stop(mut self) -> io::Result<()> {
        let status = self.shut_down()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "testbroker.py ended with {status}"
            )))
        }
    }

    /// Everything the script reported about the broker.
    pub fn info(&self) -> &BrokerInfo {
        &self.info
    }

    /// The address every listener binds (`127.0.0.1`).
    pub fn host(&self) -> &str {
        &self.info.host
    }

    /// Plain MQTT listener port, anonymous clients allowed.
    pub fn port(&self) -> u16 {
        self.info.port
    }

    /// TLS listener port (server certificate for `localhost` / `127.0.0.1`).
    pub fn tls_port(&self) -> u16 {
        self.info.tls_port
    }

    /// TLS listener port that requires [`Broker::client_cert`].
    pub fn mtls_port(&self) -> u16 {
        self.info.mtls_port
    }

    /// Plain listener port that accepts only [`Broker::username`] /
    /// [`Broker::password`].
    pub fn password_port(&self) -> u16 {
        self.info.password_port
    }

    /// Socket address of the plain listener.
    pub fn addr(&self) -> SocketAddr {
        self.socket_addr(self.info.port)
    }

    /// Socket address of the TLS listener.
    pub fn tls_addr(&self) -> SocketAddr {
        self.socket_addr(self.info.tls_port)
    }

    /// Socket address of the mutual-TLS listener.
    pub fn mtls_addr(&self) -> SocketAddr {
        self.socket_addr(self.info.mtls_port)
    }

    /// Socket address of the password listener.
    pub fn password_addr(&self) -> SocketAddr {
        self.socket_addr(self.info.password_port)
    }

    /// The CA certificate (PEM) to trust for the TLS listeners.
    pub fn ca_file(&self) -> &Path {
        &self.info.ca_file
    }

    /// The server certificate (PEM).
    pub fn server_cert(&self) -> &Path {
        &self.info.server_cert
    }

    /// A client certificate (PEM) accepted by the mTLS listener.
    pub fn client_cert(&self) -> &Path {
        &self.info.client_cert
    }

    /// The private key (PEM, PKCS#8) of [`Broker::client_cert`].
    pub fn client_key(&self) -> &Path {
        &self.info.client_key
    }

    /// The user the password listener accepts.
    pub fn username(&self) -> &str {
        &self.info.username
    }

    /// The password of [`Broker::username`].
    pub fn password(&self) -> &str {
        &self.info.password
    }

    /// mosquitto's log file, useful in a failing test's message.
    pub fn log_path(&self) -> &Path {
        &self.info.log_path
    }

    /// mosquitto's log so far (empty if it cannot be read).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.info.log_path).unwrap_or_default()
    }

    fn socket_addr(&self, port: u16) -> SocketAddr {
        let ip = self
            .info
            .host
            .parse::<IpAddr>()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        SocketAddr::new(ip, port)
    }

    fn command(&mut self, command: &str) -> io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("the broker was stopped"))?;
        stdin.write_all(format!("{command}\n").as_bytes())?;
        stdin.flush()
    }

    /// The next line from the script, failing on ERROR=, end of output or
    /// the reply deadline.
    fn next_line(&mut self, deadline: Instant) -> io::Result<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(left) {
            Ok(line) => match line.strip_prefix("ERROR=") {
                Some(message) => Err(io::Error::other(format!(
                    "testbroker.py: {}",
                    unescape(message)
                ))),
                None => Ok(line),
            },
            Err(RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "testbroker.py gave no answer within {:?}",
                    self.reply_timeout
                ),
            )),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait()?;
                Err(io::Error::other(format!(
                    "testbroker.py ended ({status}) before answering; see its stderr"
                )))
            }
        }
    }

    fn read_ready(&mut self) -> io::Result<BrokerInfo> {
        let deadline = Instant::now() + self.reply_timeout;
        let mut info = BrokerInfo::default();
        loop {
            let line = self.next_line(deadline)?;
            if line == "READY" {
                info.check_complete()?;
                return Ok(info);
            }
            match line.split_once('=') {
                Some((key, value)) => info.set(key, unescape(value))?,
                None => {
                    return Err(invalid(format!(
                        "unexpected line from testbroker.py: {line}"
                    )))
                }
            }
        }
    }

    fn expect_line(&mut self, expected: &str) -> io::Result<()> {
        let deadline = Instant::now() + self.reply_timeout;
        let line = self.next_line(deadline)?;
        if line == expected {
            Ok(())
        } else {
            Err(invalid(format!(
                "expected {expected} from testbroker.py, got {line}"
            )))
        }
    }

    /// Closes the script's stdin and waits for it to exit (killing it if it
    /// does not within `STOP_TIMEOUT`).
    fn shut_down(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.child.kill()?;
                return self.child.wait();
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.shut_down();
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Undoes the script's escaping of backslash and newline in values.
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_restores_newlines_and_backslashes() {
        assert_eq!(unescape(r"a\nb\\c"), "a\nb\\c");
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("trailing\\"), "trailing\\");
    }

    #[test]
    fn options_become_serve_arguments() {
        let args = BrokerOptions::new()
            .max_qos(1)
            .retain_available(false)
            .persistence(true)
            .deny_subscribe("denied/#")
            .startup_timeout(Duration::from_millis(2500))
            .to_args();
        let joined = args.join(" ");
        assert!(joined.contains("--max-qos 1"), "{joined}");
        assert!(joined.contains("--retain-available false"), "{joined}");
        assert!(joined.contains("--deny-subscribe denied/#"), "{joined}");
        assert!(joined.contains("--startup-timeout 2.5"), "{joined}");
        assert!(joined.ends_with("--persistence"), "{joined}");
    }

    #[test]
    fn script_path_points_at_the_workspace_script() {
        assert!(script_path().is_file(), "{}", script_path().display());
    }
}
