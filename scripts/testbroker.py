#!/usr/bin/env python3
"""Private mosquitto brokers for zmqtt's tests and benchmarks.

Every test that needs a real broker starts its own through this module, either
in Python (``with TestBroker() as broker: ...``) or through the command line
(``python3 scripts/testbroker.py serve``), which is how the Rust crate
``zmqtt-testbed`` drives it.

A broker gets a private temporary directory holding its config, freshly
generated certificates, a password file, its log and (optionally) its
persistence database, and listens on four free loopback ports:

* ``port``: plain MQTT, anonymous clients allowed;
* ``tls_port``: TLS with a server certificate for ``localhost``/``127.0.0.1``;
* ``mtls_port``: TLS that requires a client certificate signed by the same CA;
* ``password_port``: plain MQTT that requires ``username``/``password``.

Standard library only, so that it runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import atexit
import glob
import json
import os
import pwd
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self

LOOPBACK = "127.0.0.1"
"""The only address the test brokers listen on."""

USERNAME = "zmqtt-user"
"""The user known to every broker's password listener."""

PASSWORD = "zmqtt-secret"
"""The password of `USERNAME`."""

# Markers in mosquitto's log.
# "mosquitto version X running" is printed once every listener is open.
_RUNNING_MARKER = " running"
_BIND_FAILURE_MARKERS = ("Address already in use", "Unable to bind")

_SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
_BROKER_TOOLS = {"mosquitto": "mosquitto", "mosquitto_passwd": "mosquitto"}
_CLIENT_TOOLS = {
    "mosquitto_pub": "mosquitto-clients",
    "mosquitto_sub": "mosquitto-clients",
}
_TLS_TOOLS = {"openssl": "openssl"}

_PORT_ATTEMPTS = 5
_POLL_INTERVAL = 0.005
_STOP_GRACE = 5.0


class BrokerError(RuntimeError):
    """A broker (or a tool it needs) could not be set up, started or stopped."""


# ---------------------------------------------------------------------------
# Tools and their installation


def find_tool(name: str) -> str | None:
    """Return the path of executable ``name`` (on PATH or in an sbin dir), or None."""
    found = shutil.which(name)
    if found is not None:
        return found
    for directory in _SBIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _is_root() -> bool:
    return os.geteuid() == 0


def _apt_install(packages: Sequence[str]) -> None:
    """Install Debian packages; run ``apt-get update`` and retry once if that fails."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", *packages]
    first = subprocess.run(
        install, env=env, capture_output=True, text=True, check=False
    )
    if first.returncode == 0:
        return
    update = subprocess.run(
        ["apt-get", "update"], env=env, capture_output=True, text=True, check=False
    )
    second = subprocess.run(
        install, env=env, capture_output=True, text=True, check=False
    )
    if second.returncode != 0:
        raise BrokerError(
            f"`{' '.join(install)}` failed (exit {second.returncode}):\n"
            f"{update.stderr}{second.stdout}{second.stderr}"
        )


def ensure_tools(tools: dict[str, str]) -> dict[str, str]:
    """Make sure every tool in ``tools`` (name -> Debian package) is installed.

    Missing tools are installed with apt-get when running as root; otherwise a
    BrokerError says which packages to install. Returns name -> path.
    """
    missing = {name: pkg for name, pkg in tools.items() if find_tool(name) is None}
    if missing:
        packages = sorted(set(missing.values()))
        if "mosquitto" in packages or "mosquitto-clients" in packages:
            packages = sorted(set(packages) | {"mosquitto", "mosquitto-clients"})
        if not _is_root():
            raise BrokerError(
                f"missing {', '.join(sorted(missing))}: install the Debian packages "
                f"{' '.join(packages)} (`sudo apt-get install -y {' '.join(packages)}`) "
                "or run this as root so that it installs them itself"
            )
        _apt_install(packages)
    paths: dict[str, str] = {}
    for name, package in tools.items():
        path = find_tool(name)
        if path is None:
            raise BrokerError(f"{name} is still missing after installing {package}")
        paths[name] = path
    return paths


def ensure_installed() -> dict[str, str]:
    """Ensure mosquitto, its clients, mosquitto_passwd and openssl are installed."""
    return ensure_tools({**_BROKER_TOOLS, **_CLIENT_TOOLS, **_TLS_TOOLS})


# ---------------------------------------------------------------------------
# Certificates

_OPENSSL_CONFIG = """\
[req]
distinguished_name = dn
prompt = no

[dn]
CN = zmqtt-test

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""

_KEY_ARGS = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_VALID_DAYS = "3650"


def _run_tool(args: Sequence[str]) -> None:
    result = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BrokerError(
            f"`{' '.join(args)}` failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )


def _openssl_config(directory: Path) -> Path:
    config = directory / "openssl.cnf"
    if not config.exists():
        config.write_text(_OPENSSL_CONFIG)
    return config


def make_ca(
    directory: Path, name: str = "ca", common_name: str = "zmqtt test CA"
) -> tuple[Path, Path]:
    """Create a self-signed CA (ECDSA P-256) in ``directory``; return (cert, key) paths."""
    openssl = ensure_tools(_TLS_TOOLS)["openssl"]
    config = _openssl_config(directory)
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _run_tool(
        [openssl, "req", "-x509", "-new", *_KEY_ARGS, "-keyout", str(key), "-out", str(cert),
         "-days", _VALID_DAYS, "-subj", f"/CN={common_name}", "-config", str(config),
         "-extensions", "ca_ext"]
    )  # fmt: skip
    return cert, key


def make_signed_cert(
    directory: Path, name: str, common_name: str, ca: tuple[Path, Path], extensions: str
) -> tuple[Path, Path]:
    """Create a key and a certificate signed by ``ca`` (cert, key) using an extension
    section of the generated openssl config (``server_ext`` or ``client_ext``)."""
    openssl = ensure_tools(_TLS_TOOLS)["openssl"]
    config = _openssl_config(directory)
    cert, key, csr = (
        directory / f"{name}.crt",
        directory / f"{name}.key",
        directory / f"{name}.csr",
    )
    ca_cert, ca_key = ca
    _run_tool(
        [openssl, "req", "-new", *_KEY_ARGS, "-keyout", str(key), "-out", str(csr),
         "-subj", f"/CN={common_name}", "-config", str(config)]
    )  # fmt: skip
    _run_tool(
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
         "-set_serial", str(secrets.randbits(63)), "-days", _VALID_DAYS, "-out", str(cert),
         "-extfile", str(config), "-extensions", extensions]
    )  # fmt: skip
    csr.unlink()
    return cert, key


# ---------------------------------------------------------------------------
# Ports


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct loopback ports that were free a moment ago.

    They are found by binding to port 0; another process may still take one
    before mosquitto binds it, which `TestBroker.start` handles by retrying.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((LOOPBACK, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def accepts_connection(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port can be opened (it is closed at once)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# The broker


@dataclass(frozen=True)
class BrokerInfo:
    """Where a running broker listens and the files a client needs to reach it."""

    host: str
    port: int
    tls_port: int
    mtls_port: int
    password_port: int
    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    username: str
    password: str
    log_path: Path
    dir: Path

    def fields(self) -> dict[str, str]:
        """Every field as text, in declaration order (the ``serve`` output)."""
        return {name: str(getattr(self, name)) for name in self.__dataclass_fields__}


class _LaunchFailed(BrokerError):
    def __init__(self, message: str, *, bind_failure: bool) -> None:
        super().__init__(message)
        self.bind_failure = bind_failure


_LIVE_BROKERS: set[TestBroker] = set()


@atexit.register
def _stop_live_brokers() -> None:
    for broker in list(_LIVE_BROKERS):
        broker.stop()


def _bool_word(value: bool) -> str:
    return "true" if value else "false"


class TestBroker:
    """A private mosquitto on free loopback ports, for one test or benchmark.

    Use it as a context manager (start on enter, stop on exit) or call `start`
    and `stop`. `restart` (graceful) and `kill` followed by `start` (abrupt
    loss) bring the broker back on the same ports, with the same config,
    certificates and persistence directory.

    Options left at None keep mosquitto's default. ``acl`` is the text of an
    ACL file for every listener; mosquitto's ACL files act on PUBLISH only
    (``read`` filters deliveries, ``write`` silently drops publishes) and never
    refuse a SUBSCRIBE. ``deny_subscribe`` lists topic patterns (MQTT wildcards
    allowed, e.g. ``denied/#``): a SUBSCRIBE on the plain listener (`port`) to a
    filter they match is refused (SUBACK 0x80 in 3.1.1, 0x87 in 5.0), through
    mosquitto's dynamic security plugin, loaded on that listener only (loading
    it on several listeners crashes mosquitto 2.0.11 at exit).

    ``extra_config`` lines go into the global section, before the listeners;
    ``listener_config`` lines are added to every listener. They must not change
    logging (``log_dest``, ``log_type``): startup is detected in the log.
    """

    __test__ = False  # not a pytest test class, despite its name

    def __init__(
        self,
        *,
        max_inflight_messages: int | None = None,
        max_packet_size: int | None = None,
        max_qos: int | None = None,
        retain_available: bool | None = None,
        allow_duplicate_messages: bool | None = None,
        persistence: bool = False,
        max_queued_messages: int | None = None,
        acl: str | None = None,
        deny_subscribe: Sequence[str] = (),
        extra_config: Sequence[str] = (),
        listener_config: Sequence[str] = (),
        startup_timeout: float = 10.0,
    ) -> None:
        if max_qos is not None and max_qos not in (0, 1, 2):
            raise ValueError(f"max_qos must be 0, 1 or 2, not {max_qos}")
        if max_packet_size is not None and max_packet_size < 20:
            raise ValueError("mosquitto refuses a max_packet_size below 20")
        for name, number in (
            ("max_inflight_messages", max_inflight_messages),
            ("max_queued_messages", max_queued_messages),
        ):
            if number is not None and number < 0:
                raise ValueError(f"{name} must not be negative")
        for line in (*extra_config, *listener_config):
            if "\n" in line:
                raise ValueError(f"config lines must not contain a newline: {line!r}")
        self.max_inflight_messages = max_inflight_messages
        self.max_packet_size = max_packet_size
        self.max_qos = max_qos
        self.retain_available = retain_available
        self.allow_duplicate_messages = allow_duplicate_messages
        self.persistence = persistence
        self.max_queued_messages = max_queued_messages
        self.acl = acl
        self.deny_subscribe = list(deny_subscribe)
        self.extra_config = list(extra_config)
        self.listener_config = list(listener_config)
        self.startup_timeout = startup_timeout
        self._info: BrokerInfo | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._mosquitto = ""

    # -- what clients need ---------------------------------------------------

    @property
    def info(self) -> BrokerInfo:
        """All endpoints and files; raises BrokerError before the first `start`."""
        if self._info is None:
            raise BrokerError("the broker has not been started")
        return self._info

    @property
    def host(self) -> str:
        """The address every listener binds (127.0.0.1)."""
        return self.info.host

    @property
    def port(self) -> int:
        """Plain MQTT listener, anonymous clients allowed."""
        return self.info.port

    @property
    def tls_port(self) -> int:
        """TLS listener (server certificate for localhost / 127.0.0.1 signed by `ca_file`)."""
        return self.info.tls_port

    @property
    def mtls_port(self) -> int:
        """TLS listener that requires a client certificate signed by `ca_file`."""
        return self.info.mtls_port

    @property
    def password_port(self) -> int:
        """Plain listener that accepts only `username` / `password`."""
        return self.info.password_port

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) that signed the server and client certificates."""
        return self.info.ca_file

    @property
    def server_cert(self) -> Path:
        """The server certificate (PEM); SANs DNS:localhost and IP:127.0.0.1."""
        return self.info.server_cert

    @property
    def server_key(self) -> Path:
        """The server's private key (PEM, PKCS#8, ECDSA P-256)."""
        return self.info.server_key

    @property
    def client_cert(self) -> Path:
        """A client certificate (PEM) accepted by the mTLS listener."""
        return self.info.client_cert

    @property
    def client_key(self) -> Path:
        """The private key (PEM, PKCS#8, ECDSA P-256) of `client_cert`."""
        return self.info.client_key

    @property
    def username(self) -> str:
        """The user the password listener accepts."""
        return self.info.username

    @property
    def password(self) -> str:
        """The password of `username`."""
        return self.info.password

    @property
    def log_path(self) -> Path:
        """mosquitto's log (stderr of every run of this broker, appended)."""
        return self.info.log_path

    @property
    def dir(self) -> Path:
        """The private directory holding config, certificates, log and persistence."""
        return self.info.dir

    @property
    def pid(self) -> int | None:
        """The pid of the running mosquitto, or None when it is not running."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    @property
    def running(self) -> bool:
        """True while mosquitto runs."""
        return self.pid is not None

    # -- life cycle -----------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> TestBroker:
        """Start mosquitto and return once every listener accepts connections.

        The first start creates the directory, certificates, password file and
        ports (new ports are tried if one was taken meanwhile). After `kill`,
        it starts again on the same ports with the same files. Does nothing if
        mosquitto already runs.
        """
        if self.running:
            return self
        if self._info is not None:
            self._launch_on_same_ports()
            return self
        tools = ensure_tools({**_BROKER_TOOLS, **_TLS_TOOLS})
        self._mosquitto = tools["mosquitto"]
        directory = Path(tempfile.mkdtemp(prefix="zmqtt-broker-"))
        _LIVE_BROKERS.add(self)
        try:
            self._prepare_files(directory, tools["mosquitto_passwd"])
            last_error: BrokerError | None = None
            for _ in range(_PORT_ATTEMPTS):
                self._info = self._new_info(directory, free_ports(4))
                self._write_config()
                try:
                    self._launch()
                    return self
                except _LaunchFailed as error:
                    if not error.bind_failure:
                        raise
                    last_error = error
            raise BrokerError(
                f"no free ports after {_PORT_ATTEMPTS} attempts: {last_error}"
            )
        except BaseException:
            self.stop()
            raise

    def restart(self) -> TestBroker:
        """Stop mosquitto gracefully (it saves its persistence database) and
        start it again on the same ports with the same config and files.
        (After `stop`, the directory is gone: this is then a fresh `start`.)"""
        self._terminate(graceful=True)
        self.start()
        return self

    def kill(self) -> None:
        """SIGKILL mosquitto: an abrupt loss, nothing since the last save of the
        persistence database survives. `start` brings it back on the same ports."""
        self._terminate(graceful=False)

    def stop(self) -> None:
        """Terminate mosquitto (SIGTERM, SIGKILL after a grace period) and remove
        its directory. Safe to call more than once."""
        try:
            self._terminate(graceful=True)
        finally:
            if self._info is not None:
                shutil.rmtree(self._info.dir, ignore_errors=True)
                self._info = None
            _LIVE_BROKERS.discard(self)

    # -- internals -------------------------------------------------------------

    def _new_info(self, directory: Path, ports: list[int]) -> BrokerInfo:
        port, tls_port, mtls_port, password_port = ports
        return BrokerInfo(
            host=LOOPBACK,
            port=port,
            tls_port=tls_port,
            mtls_port=mtls_port,
            password_port=password_port,
            ca_file=directory / "ca.crt",
            server_cert=directory / "server.crt",
            server_key=directory / "server.key",
            client_cert=directory / "client.crt",
            client_key=directory / "client.key",
            username=USERNAME,
            password=PASSWORD,
            log_path=directory / "mosquitto.log",
            dir=directory,
        )

    def _prepare_files(self, directory: Path, mosquitto_passwd: str) -> None:
        ca = make_ca(directory)
        make_signed_cert(directory, "server", "localhost", ca, "server_ext")
        make_signed_cert(directory, "client", "zmqtt-test-client", ca, "client_ext")
        _run_tool(
            [
                mosquitto_passwd,
                "-b",
                "-c",
                str(directory / "passwd"),
                USERNAME,
                PASSWORD,
            ]
        )
        if self.acl is not None:
            (directory / "acl").write_text(
                self.acl if self.acl.endswith("\n") else self.acl + "\n"
            )
        if self.deny_subscribe:
            if find_dynamic_security_plugin() is None:
                raise BrokerError(
                    "deny_subscribe needs mosquitto's dynamic security plugin "
                    "(mosquitto_dynamic_security.so, from the Debian package mosquitto)"
                )
            (directory / "dynsec.json").write_text(
                _dynamic_security_config(self.deny_subscribe)
            )
        (directory / "persistence").mkdir()
        (directory / "mosquitto.log").touch()
        _hand_over(directory)

    def _config_text(self) -> str:
        info = self.info
        directory = info.dir
        lines = [
            "# Generated by scripts/testbroker.py",
            "per_listener_settings true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp true",
            "connection_messages true",
            "set_tcp_nodelay true",
            f"persistence {_bool_word(self.persistence)}",
            f"persistence_location {directory / 'persistence'}/",
        ]
        if _is_root():
            lines.append(f"user {_run_as_user().pw_name}")
        if self.max_inflight_messages is not None:
            lines.append(f"max_inflight_messages {self.max_inflight_messages}")
        if self.max_packet_size is not None:
            lines.append(f"max_packet_size {self.max_packet_size}")
        if self.retain_available is not None:
            lines.append(f"retain_available {_bool_word(self.retain_available)}")
        if self.allow_duplicate_messages is not None:
            lines.append(
                f"allow_duplicate_messages {_bool_word(self.allow_duplicate_messages)}"
            )
        if self.max_queued_messages is not None:
            lines.append(f"max_queued_messages {self.max_queued_messages}")
        lines.extend(self.extra_config)

        # With per_listener_settings true, allow_anonymous (default false),
        # password_file and acl_file belong to each listener: every listener
        # states them. max_qos is a per-listener option in any case.
        def listener(port: int, anonymous: bool, extra: Sequence[str]) -> list[str]:
            block = [
                "",
                f"listener {port} {LOOPBACK}",
                f"allow_anonymous {_bool_word(anonymous)}",
            ]
            if self.acl is not None:
                block.append(f"acl_file {directory / 'acl'}")
            if self.max_qos is not None:
                block.append(f"max_qos {self.max_qos}")
            block.extend(extra)
            block.extend(self.listener_config)
            return block

        tls = [
            f"cafile {info.ca_file}",
            f"certfile {info.server_cert}",
            f"keyfile {info.server_key}",
        ]
        plain: list[str] = []
        plugin = find_dynamic_security_plugin()
        if self.deny_subscribe and plugin is not None:
            plain = [
                f"plugin {plugin}",
                f"plugin_opt_config_file {directory / 'dynsec.json'}",
            ]
        lines += listener(info.port, True, plain)
        lines += listener(info.tls_port, True, [*tls, "require_certificate false"])
        lines += listener(info.mtls_port, True, [*tls, "require_certificate true"])
        lines += listener(
            info.password_port, False, [f"password_file {directory / 'passwd'}"]
        )
        return "\n".join(lines) + "\n"

    def _write_config(self) -> None:
        config = self.info.dir / "mosquitto.conf"
        config.write_text(self._config_text())
        _hand_over(config)

    def _launch_on_same_ports(self) -> None:
        last_error: BrokerError | None = None
        for _ in range(3):
            try:
                self._launch()
                return
            except _LaunchFailed as error:
                if not error.bind_failure:
                    raise
                last_error = error
        raise BrokerError(f"could not bind the same ports again: {last_error}")

    def _launch(self) -> None:
        info = self.info
        log_offset = info.log_path.stat().st_size
        with info.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self._mosquitto, "-c", str(info.dir / "mosquitto.conf")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=info.dir,
            )
        self._wait_ready(self._process, log_offset)

    def _log_since(self, offset: int) -> str:
        try:
            with self.info.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def _wait_ready(self, process: subprocess.Popen[bytes], log_offset: int) -> None:
        info = self.info
        pending = [info.port, info.tls_port, info.mtls_port, info.password_port]
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = process.poll()
            if code is not None:
                log = self._log_since(log_offset)
                raise _LaunchFailed(
                    f"mosquitto exited with status {code} during startup; its log:\n{log}",
                    bind_failure=any(marker in log for marker in _BIND_FAILURE_MARKERS),
                )
            # The "running" line comes only after every listener is bound, so a
            # port answered by some other process is not mistaken for ours.
            if _RUNNING_MARKER in self._log_since(log_offset):
                pending = [
                    port for port in pending if not accepts_connection(info.host, port)
                ]
                if not pending:
                    return
            if time.monotonic() > deadline:
                self._terminate(graceful=False)
                raise BrokerError(
                    f"mosquitto not ready after {self.startup_timeout} s "
                    f"(ports not accepting: {pending}); its log:\n{self._log_since(log_offset)}"
                )
            time.sleep(_POLL_INTERVAL)

    def _terminate(self, *, graceful: bool) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if graceful:
            process.terminate()
            try:
                process.wait(timeout=_STOP_GRACE)
                return
            except subprocess.TimeoutExpired:
                pass
        process.kill()
        process.wait()


def find_dynamic_security_plugin() -> str | None:
    """Path of mosquitto's dynamic security plugin, or None when it is not installed."""
    patterns = (
        "/usr/lib/*/mosquitto_dynamic_security.so",
        "/usr/lib/mosquitto_dynamic_security.so",
        "/usr/local/lib/mosquitto_dynamic_security.so",
        "/usr/local/lib/*/mosquitto_dynamic_security.so",
    )
    for pattern in patterns:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def _dynamic_security_config(deny_subscribe: Sequence[str]) -> str:
    """A dynamic security config that lets anonymous clients do anything
    except subscribe to filters matched by ``deny_subscribe``."""
    config = {
        "defaultACLAccess": {
            "publishClientSend": True,
            "publishClientReceive": True,
            "subscribe": True,
            "unsubscribe": True,
        },
        "clients": [],
        "groups": [
            {"groupname": "anonymous", "roles": [{"rolename": "refuse-subscriptions"}]}
        ],
        "roles": [
            {
                "rolename": "refuse-subscriptions",
                "acls": [
                    {
                        "acltype": "subscribePattern",
                        "topic": pattern,
                        "priority": 0,
                        "allow": False,
                    }
                    for pattern in deny_subscribe
                ],
            }
        ],
        "anonymousGroup": "anonymous",
    }
    return json.dumps(config, indent=2) + "\n"


def _run_as_user() -> pwd.struct_passwd:
    """The account mosquitto switches to when started as root."""
    try:
        return pwd.getpwnam("mosquitto")
    except KeyError:
        return pwd.getpwnam("nobody")


def _hand_over(path: Path) -> None:
    """Make ``path`` (and, for a directory, its contents) owned by the account
    mosquitto runs as, private to it. Without root, mosquitto runs as us."""
    if not _is_root():
        return
    account = _run_as_user()
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in paths:
        os.chown(item, account.pw_uid, account.pw_gid)
        os.chmod(item, 0o700 if item.is_dir() else 0o600)


# ---------------------------------------------------------------------------
# Command line


def _broker_from_args(args: argparse.Namespace) -> TestBroker:
    acl: str | None = args.acl
    if args.acl_file is not None:
        acl = Path(args.acl_file).read_text()
    return TestBroker(
        max_inflight_messages=args.max_inflight_messages,
        max_packet_size=args.max_packet_size,
        max_qos=args.max_qos,
        retain_available=args.retain_available,
        allow_duplicate_messages=args.allow_duplicate_messages,
        persistence=args.persistence,
        max_queued_messages=args.max_queued_messages,
        acl=acl,
        deny_subscribe=args.deny_subscribe,
        extra_config=args.config_line,
        listener_config=args.listener_config_line,
        startup_timeout=args.startup_timeout,
    )


def _parse_bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes", "on"):
        return True
    if text.lower() in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


class _Output:
    """The serve protocol's stdout: whole lines, flushed at once."""

    def __init__(self) -> None:
        self.closed = False

    def lines(self, lines: Sequence[str]) -> None:
        if self.closed:
            return
        try:
            sys.stdout.write("".join(f"{line}\n" for line in lines))
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            self.closed = True

    def ready(self, broker: TestBroker) -> None:
        fields = {**broker.info.fields(), "pid": str(broker.pid)}
        self.lines(
            [*(f"{key}={_one_line(value)}" for key, value in fields.items()), "READY"]
        )


def _serve_command(broker: TestBroker, command: str, out: _Output) -> None:
    try:
        if command == "restart":
            broker.restart()
            out.ready(broker)
        elif command == "kill":
            broker.kill()
            out.lines(["KILLED"])
        elif command == "start":
            broker.start()
            out.ready(broker)
        elif command:
            out.lines([f"ERROR=unknown command {command!r} (restart, kill, start)"])
    except (BrokerError, OSError) as error:
        out.lines([f"ERROR={_one_line(str(error))}"])


def serve(broker: TestBroker) -> int:
    """Run ``broker`` for a parent process; see `main` for the protocol."""
    out = _Output()
    wake_read, wake_write = socket.socketpair()
    wake_read.setblocking(False)
    wake_write.setblocking(False)
    signal.set_wakeup_fd(wake_write.fileno())

    def note_signal(signum: int, frame: FrameType | None) -> None:
        """The wakeup fd receives the signal; the loop below acts on it."""

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, note_signal)
    try:
        try:
            broker.start()
        except BrokerError as error:
            out.lines([f"ERROR={_one_line(str(error))}"])
            print(f"testbroker: {error}", file=sys.stderr)
            return 1
        out.ready(broker)
        stdin = sys.stdin.fileno()
        pending = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdin, selectors.EVENT_READ)
            selector.register(wake_read, selectors.EVENT_READ)
            while True:
                events = selector.select()
                if any(key.fileobj is wake_read for key, _ in events):
                    return 0
                chunk = os.read(stdin, 4096)
                if not chunk:
                    return 0
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    _serve_command(broker, line.decode(errors="replace").strip(), out)
    finally:
        broker.stop()
        signal.set_wakeup_fd(-1)
        wake_read.close()
        wake_write.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; ``serve`` prints KEY=VALUE lines then READY and runs until
    stdin closes or SIGTERM/SIGINT/SIGHUP arrives."""
    parser = argparse.ArgumentParser(
        description="Private mosquitto brokers for zmqtt's tests.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""\
serve protocol (stdout): one KEY=VALUE line per field (host, port, tls_port,
mtls_port, password_port, ca_file, server_cert, server_key, client_cert,
client_key, username, password, log_path, dir, pid), then READY. Values never
contain a newline (backslash and newline are escaped as \\\\ and \\n).
On failure: ERROR=message and exit status 1.

Commands on stdin, one a line: 'restart' (graceful, same ports; answers the
fields and READY again), 'kill' (SIGKILL; answers KILLED), 'start' (after a
kill, same ports; answers the fields and READY). A failed command answers
ERROR=message. End of stdin, SIGTERM, SIGINT or SIGHUP stops the broker,
removes its directory and exits 0.""",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "install", help="ensure mosquitto, its clients and openssl are installed"
    )
    srv = commands.add_parser(
        "serve", help="run a broker until stdin closes or a signal"
    )
    srv.add_argument("--max-inflight-messages", type=int)
    srv.add_argument("--max-packet-size", type=int)
    srv.add_argument("--max-qos", type=int, choices=(0, 1, 2))
    srv.add_argument("--retain-available", type=_parse_bool, metavar="true|false")
    srv.add_argument(
        "--allow-duplicate-messages", type=_parse_bool, metavar="true|false"
    )
    srv.add_argument(
        "--persistence", action=argparse.BooleanOptionalAction, default=False
    )
    srv.add_argument("--max-queued-messages", type=int)
    acl = srv.add_mutually_exclusive_group()
    acl.add_argument("--acl", help="ACL file text (applies to every listener)")
    acl.add_argument("--acl-file", help="read the ACL text from this file")
    srv.add_argument(
        "--deny-subscribe",
        action="append",
        default=[],
        metavar="PATTERN",
        help="refuse SUBSCRIBEs matching this pattern on the plain listener (repeatable)",
    )
    srv.add_argument(
        "--config-line", action="append", default=[], help="extra global line"
    )
    srv.add_argument(
        "--listener-config-line",
        action="append",
        default=[],
        help="extra line for every listener",
    )
    srv.add_argument("--startup-timeout", type=float, default=10.0)
    args = parser.parse_args(argv)

    if args.command == "install":
        try:
            for name, path in ensure_installed().items():
                print(f"{name}={path}")
        except BrokerError as error:
            print(f"testbroker: {error}", file=sys.stderr)
            return 1
        return 0
    try:
        broker = _broker_from_args(args)
    except (ValueError, OSError) as error:
        print(f"ERROR={_one_line(str(error))}", flush=True)
        print(f"testbroker: {error}", file=sys.stderr)
        return 1
    return serve(broker)


if __name__ == "__main__":
    sys.exit(main())
