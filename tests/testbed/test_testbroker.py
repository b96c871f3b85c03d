"""The broker test bed (scripts/testbroker.py) does what it claims, checked with
mosquitto_pub / mosquitto_sub (and a raw socket client where they cannot see).

Each test awaits process output with deadlines; none sleeps.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import testbroker
from testbroker import BrokerError, TestBroker, accepts_connection, make_ca

from .clients import (
    PINGRESP,
    PUBLISH,
    TIMEOUT,
    LineReader,
    RawClient,
    Subscriber,
    publish,
    publish_ok,
    run_client,
)

SCRIPT = Path(testbroker.__file__).resolve()


def plain(broker: TestBroker) -> list[str]:
    """Client arguments for the plain listener."""
    return ["-h", broker.host, "-p", str(broker.port)]


def tls(broker: TestBroker, host: str = "localhost") -> list[str]:
    """Client arguments for the TLS listener, trusting the broker's CA."""
    return ["-h", host, "-p", str(broker.tls_port), "--cafile", str(broker.ca_file)]


def mtls(broker: TestBroker, with_cert: bool) -> list[str]:
    """Client arguments for the mutual-TLS listener."""
    args = [
        "-h",
        "localhost",
        "-p",
        str(broker.mtls_port),
        "--cafile",
        str(broker.ca_file),
    ]
    if with_cert:
        args += ["--cert", str(broker.client_cert), "--key", str(broker.client_key)]
    return args


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- listeners ----------------------------------------------------------------


def test_plain_listener_round_trip(broker: TestBroker) -> None:
    with Subscriber([*plain(broker), "-q", "1", "-t", "tb/round"]) as sub:
        assert sub.wait_subscribed() == [1]
        publish_ok([*plain(broker), "-q", "1", "-t", "tb/round", "-m", "hello"])
        message = sub.next_message()
    assert (message.topic, message.qos, message.payload) == ("tb/round", 1, "hello")


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])  # both SANs
def test_tls_listener_works_with_the_broker_ca(broker: TestBroker, host: str) -> None:
    with Subscriber([*tls(broker, host), "-t", "tb/tls"]) as sub:
        assert sub.wait_subscribed() == [0]
        publish_ok([*tls(broker, host), "-t", "tb/tls", "-m", "secret"])
        assert sub.next_message().payload == "secret"


def test_tls_listener_fails_without_the_right_ca(
    broker: TestBroker, tmp_path: Path
) -> None:
    other_ca, _ = make_ca(tmp_path, common_name="some other CA")
    args = ["-h", "localhost", "-p", str(broker.tls_port), "--cafile", str(other_ca)]
    result = publish([*args, "-t", "tb/tls", "-m", "x"])
    assert result.returncode != 0
    assert "TLS" in result.stderr
    # Plain MQTT on the TLS port fails too.
    result = publish(
        ["-h", broker.host, "-p", str(broker.tls_port), "-t", "t", "-m", "x"]
    )
    assert result.returncode != 0


def test_mtls_listener_requires_the_client_certificate(broker: TestBroker) -> None:
    without = publish([*mtls(broker, with_cert=False), "-t", "tb/mtls", "-m", "x"])
    assert without.returncode != 0, without
    with Subscriber([*mtls(broker, with_cert=True), "-t", "tb/mtls"]) as sub:
        assert sub.wait_subscribed() == [0]
        publish_ok([*mtls(broker, with_cert=True), "-t", "tb/mtls", "-m", "mutual"])
        assert sub.next_message().payload == "mutual"


def test_password_listener_accepts_only_the_known_credentials(
    broker: TestBroker,
) -> None:
    base = ["-h", broker.host, "-p", str(broker.password_port), "-t", "tb/pw"]
    good = ["-u", broker.username, "-P", broker.password]
    with Subscriber([*plain(broker), "-t", "tb/pw"]) as sub:
        assert sub.wait_subscribed() == [0]
        publish_ok([*base, *good, "-m", "authenticated"])
        assert sub.next_message().payload == "authenticated"

    wrong = publish([*base, "-u", broker.username, "-P", "wrong", "-m", "x"])
    assert wrong.returncode != 0
    assert "not authorised" in wrong.stderr
    anonymous = publish([*base, "-m", "x"])
    assert anonymous.returncode != 0
    assert "not authorised" in anonymous.stderr


def test_generated_certificates_verify_against_the_ca(broker: TestBroker) -> None:
    def openssl(*args: str) -> str:
        result = subprocess.run(
            ["openssl", *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=True,
        )
        return result.stdout

    ca = str(broker.ca_file)
    assert "OK" in openssl(
        "verify", "-purpose", "sslserver", "-CAfile", ca, str(broker.server_cert)
    )
    assert "OK" in openssl(
        "verify", "-purpose", "sslclient", "-CAfile", ca, str(broker.client_cert)
    )
    san = openssl(
        "x509", "-in", str(broker.server_cert), "-noout", "-ext", "subjectAltName"
    )
    assert "DNS:localhost" in san
    assert "IP Address:127.0.0.1" in san


@pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop happens only as root")
def test_as_root_mosquitto_runs_as_its_own_user_and_reads_its_files(
    broker: TestBroker,
) -> None:
    pid = broker.pid
    assert pid is not None
    status = Path(f"/proc/{pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    effective_uid = int(uid_line.split()[2])
    account = testbroker._run_as_user()
    assert effective_uid == account.pw_uid != 0
    for path in (broker.dir, broker.server_key, broker.dir / "passwd"):
        assert path.stat().st_uid == account.pw_uid


# -- options --------------------------------------------------------------------


def test_max_qos_1_downgrades_qos_2_subscribe_and_disconnects_qos_2_publish() -> None:
    with (
        TestBroker(max_qos=1) as broker,
        Subscriber([*plain(broker), "-q", "2", "-t", "tb/q"]) as sub,
    ):
        assert sub.wait_subscribed() == [1]  # granted QoS 1, not 2
        refused = publish([*plain(broker), "-q", "2", "-t", "tb/q", "-m", "qos2"])
        assert refused.returncode != 0
        assert "connection was lost" in refused.stderr
        publish_ok([*plain(broker), "-q", "1", "-t", "tb/q", "-m", "qos1"])
        received = sub.messages_until("qos1")
    # The QoS 2 message was never delivered; the QoS 1 one was, at QoS 1.
    assert [(m.payload, m.qos) for m in received] == [("qos1", 1)]


@pytest.mark.parametrize("retain_available", [True, False])
def test_retain_available(retain_available: bool) -> None:
    with TestBroker(retain_available=retain_available) as broker:
        retained = publish(
            [*plain(broker), "-q", "1", "-r", "-t", "tb/r", "-m", "kept"]
        )
        assert (retained.returncode == 0) is retain_available, retained
        with Subscriber([*plain(broker), "-t", "tb/r"]) as sub:
            assert sub.wait_subscribed() == [0]
            publish_ok([*plain(broker), "-t", "tb/r", "-m", "marker"])
            received = sub.messages_until("marker")
    expected = (
        [("kept", True), ("marker", False)] if retain_available else [("marker", False)]
    )
    assert [(m.payload, m.retained) for m in received] == expected


def test_max_packet_size_disconnects_a_larger_publish() -> None:
    with (
        TestBroker(max_packet_size=200) as broker,
        Subscriber([*plain(broker), "-t", "tb/big"]) as sub,
    ):
        assert sub.wait_subscribed() == [0]
        # QoS 1: mosquitto_pub waits for the PUBACK, so it sees the disconnect.
        too_big = publish([*plain(broker), "-q", "1", "-t", "tb/big", "-m", "x" * 300])
        assert too_big.returncode != 0
        assert "connection was lost" in too_big.stderr
        publish_ok([*plain(broker), "-t", "tb/big", "-m", "y" * 100])
        received = sub.messages_until("y" * 100)
    assert [len(m.payload) for m in received] == [100]


def test_max_queued_messages_caps_an_offline_session() -> None:
    with TestBroker(max_queued_messages=2) as broker:
        session = [*plain(broker), "-c", "-i", "tb-queue", "-q", "1", "-t", "tb/queue"]
        subscribed = run_client("mosquitto_sub", [*session, "-E"])
        assert subscribed.returncode == 0, subscribed
        for n in range(5):
            publish_ok([*plain(broker), "-q", "1", "-t", "tb/queue", "-m", f"m{n}"])
        with Subscriber(session) as sub:
            sub.wait_subscribed()
            publish_ok([*plain(broker), "-q", "1", "-t", "tb/queue", "-m", "marker"])
            received = sub.messages_until("marker")
    assert [m.payload for m in received] == ["m0", "m1", "marker"]


@pytest.mark.parametrize(("max_inflight", "sent_before_ack"), [(1, 1), (None, 3)])
def test_max_inflight_messages_limits_unacknowledged_deliveries(
    max_inflight: int | None, sent_before_ack: int
) -> None:
    with TestBroker(max_inflight_messages=max_inflight) as broker:
        client = RawClient(broker.host, broker.port, "tb-inflight")
        try:
            assert client.subscribe("tb/inflight", qos=1) == 1
            for n in range(3):  # mosquitto_pub waits for PUBACK: all three are in
                publish_ok(
                    [*plain(broker), "-q", "1", "-t", "tb/inflight", "-m", f"m{n}"]
                )
            # The broker writes its PINGRESP after whatever it already sent us.
            client.pingreq()
            before_ack = []
            while (packet := client.read_packet()).kind != PINGRESP:
                assert packet.kind == PUBLISH
                before_ack.append(packet)
            assert [p.payload for p in before_ack] == [b"m0", b"m1", b"m2"][
                :sent_before_ack
            ]
            client.puback(before_ack[0].packet_id)
            if sent_before_ack == 1:
                following = client.read_packet()
                assert (following.kind, following.payload) == (PUBLISH, b"m1")
        finally:
            client.close()


@pytest.mark.parametrize(("allow", "copies"), [(True, 2), (False, 1)])
def test_allow_duplicate_messages(allow: bool, copies: int) -> None:
    with TestBroker(allow_duplicate_messages=allow) as broker:
        overlapping = [*plain(broker), "-t", "tb/dup/#", "-t", "tb/+/x"]
        with Subscriber(overlapping) as sub:
            assert sub.wait_subscribed() == [0, 0]
            publish_ok([*plain(broker), "-t", "tb/dup/x", "-m", "both"])
            publish_ok([*plain(broker), "-t", "tb/dup/end", "-m", "marker"])
            received = sub.messages_until("marker")
    assert [m.payload for m in received] == ["both"] * copies + ["marker"]


def test_acl_filters_deliveries_but_never_refuses_a_subscription() -> None:
    acl = "topic readwrite tb/open/#\n"
    with (
        TestBroker(acl=acl) as broker,
        Subscriber([*plain(broker), "-t", "tb/#"]) as sub,
    ):
        assert sub.wait_subscribed() == [
            0
        ]  # granted although tb/secret is not readable
        publish_ok([*plain(broker), "-q", "1", "-t", "tb/secret/x", "-m", "hidden"])
        publish_ok([*plain(broker), "-t", "tb/open/x", "-m", "marker"])
        received = sub.messages_until("marker")
    assert [m.topic for m in received] == ["tb/open/x"]


@pytest.mark.parametrize(("version", "refused"), [("mqttv311", 0x80), ("mqttv5", 0x87)])
def test_deny_subscribe_refuses_matching_filters_on_the_plain_listener(
    version: str, refused: int
) -> None:
    with TestBroker(deny_subscribe=["tb/denied/#"]) as broker:
        args = ["-V", version, "-t", "tb/allowed", "-t", "tb/denied/x"]
        with Subscriber([*plain(broker), *args]) as sub:
            assert sub.wait_subscribed() == [0, refused]
        # The TLS listener does not load the plugin: the same filter is granted.
        with Subscriber([*tls(broker), *args]) as sub:
            assert sub.wait_subscribed() == [0, 0]


def test_extra_and_listener_config_lines_reach_mosquitto() -> None:
    with (
        TestBroker(
            extra_config=["message_size_limit 10"], listener_config=["max_qos 0"]
        ) as broker,
        Subscriber([*plain(broker), "-q", "1", "-t", "tb/x"]) as sub,
    ):
        assert sub.wait_subscribed() == [0]  # listener max_qos 0
        publish_ok([*plain(broker), "-t", "tb/x", "-m", "longer than ten bytes"])
        publish_ok([*plain(broker), "-t", "tb/x", "-m", "marker"])
        assert [m.payload for m in sub.messages_until("marker")] == ["marker"]


def test_invalid_options_are_refused_before_starting() -> None:
    with pytest.raises(ValueError, match="max_qos"):
        TestBroker(max_qos=3)
    with pytest.raises(ValueError, match="max_packet_size"):
        TestBroker(max_packet_size=19)
    with pytest.raises(ValueError, match="newline"):
        TestBroker(extra_config=["a\nb"])


# -- life cycle -----------------------------------------------------------------


@pytest.mark.parametrize("persistence", [True, False])
def test_restart_keeps_ports_and_with_persistence_a_queued_message(
    persistence: bool,
) -> None:
    with TestBroker(persistence=persistence) as broker:
        session = [
            *plain(broker),
            "-c",
            "-i",
            "tb-persist",
            "-q",
            "1",
            "-t",
            "tb/persist",
        ]
        subscribed = run_client("mosquitto_sub", [*session, "-E"])
        assert subscribed.returncode == 0, subscribed
        publish_ok([*plain(broker), "-q", "1", "-t", "tb/persist", "-m", "queued"])
        before = broker.info
        old_pid = broker.pid

        broker.restart()

        assert broker.info == before  # same ports, files and directory
        assert broker.pid not in (None, old_pid)
        with Subscriber(session) as sub:
            sub.wait_subscribed()
            publish_ok([*plain(broker), "-q", "1", "-t", "tb/persist", "-m", "marker"])
            received = sub.messages_until("marker")
    expected = ["queued", "marker"] if persistence else ["marker"]
    assert [m.payload for m in received] == expected


def test_kill_then_start_comes_back_on_the_same_ports(broker: TestBroker) -> None:
    before = broker.info
    broker.kill()
    assert not broker.running
    assert not accepts_connection(broker.host, broker.port)
    broker.start()
    assert broker.running
    assert broker.info == before
    with Subscriber([*plain(broker), "-t", "tb/again"]) as sub:
        assert sub.wait_subscribed() == [0]
        publish_ok([*plain(broker), "-t", "tb/again", "-m", "back"])
        assert sub.next_message().payload == "back"


def test_stop_removes_the_directory_and_the_process() -> None:
    broker = TestBroker().start()
    pid, directory, port = broker.pid, broker.dir, broker.port
    assert pid is not None and process_exists(pid) and directory.is_dir()
    broker.stop()
    assert not process_exists(pid)
    assert not directory.exists()
    assert not accepts_connection("127.0.0.1", port)
    broker.stop()  # a second stop is harmless
    with pytest.raises(BrokerError):
        _ = broker.port


def test_start_retries_with_new_ports_when_one_was_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    taken_port = int(taken.getsockname()[1])
    real_free_ports = testbroker.free_ports
    calls: list[list[int]] = []

    def first_one_taken(count: int) -> list[int]:
        ports = real_free_ports(count)
        if not calls:
            ports[2] = taken_port  # mosquitto will fail to bind its third listener
        calls.append(ports)
        return ports

    monkeypatch.setattr(testbroker, "free_ports", first_one_taken)
    try:
        with TestBroker() as broker:
            assert len(calls) == 2
            assert taken_port not in (broker.port, broker.tls_port, broker.mtls_port)
            assert broker.mtls_port == calls[1][2]
            assert "Address already in use" in broker.log_path.read_text()
    finally:
        taken.close()


# -- tools ----------------------------------------------------------------------


def test_missing_tool_without_root_names_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(testbroker, "_is_root", lambda: False)
    with pytest.raises(BrokerError, match="apt-get install -y no-such-package"):
        testbroker.ensure_tools({"no-such-tool-zmqtt": "no-such-package"})


def test_missing_mosquitto_as_root_installs_broker_and_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    installed: list[list[str]] = []
    monkeypatch.setattr(testbroker, "_is_root", lambda: True)
    monkeypatch.setattr(
        testbroker, "_apt_install", lambda packages: installed.append(list(packages))
    )
    monkeypatch.setattr(testbroker, "find_tool", lambda name: None)
    with pytest.raises(BrokerError, match="still missing"):
        testbroker.ensure_tools({"mosquitto": "mosquitto"})
    assert installed == [["mosquitto", "mosquitto-clients"]]


def test_find_tool_looks_in_sbin_when_path_lacks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not Path("/usr/sbin/mosquitto").is_file():
        pytest.skip("mosquitto is not in /usr/sbin here")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert testbroker.find_tool("mosquitto") == "/usr/sbin/mosquitto"


# -- command line -----------------------------------------------------------------


@dataclass
class Served:
    """`testbroker.py serve --max-qos 1` as a child process."""

    process: subprocess.Popen[str]
    output: LineReader

    def send(self, command: str) -> None:
        """Write one command line to the script's stdin."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def read_fields(self) -> dict[str, str]:
        """KEY=VALUE lines up to READY."""
        fields: dict[str, str] = {}
        while (line := self.output.next_line()) != "READY":
            assert line and not line.startswith("ERROR="), (line, fields)
            key, _, value = line.partition("=")
            fields[key] = value
        return fields


@pytest.fixture
def served() -> Iterator[Served]:
    """A `serve` child, stopped after the test if it is still running."""
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "serve", "--max-qos", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    yield Served(process, LineReader(process.stdout, "testbroker.py serve"))
    # Closing stdin is the graceful stop; SIGKILL would leave mosquitto behind.
    if process.stdin is not None and not process.stdin.closed:
        process.stdin.close()
    try:
        process.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=TIMEOUT)


EXPECTED_FIELDS = {
    "host", "port", "tls_port", "mtls_port", "password_port", "ca_file", "server_cert",
    "server_key", "client_cert", "client_key", "username", "password", "log_path", "dir", "pid",
}  # fmt: skip


def test_serve_prints_fields_then_ready_and_stops_when_stdin_closes(
    served: Served,
) -> None:
    fields = served.read_fields()
    assert set(fields) == EXPECTED_FIELDS
    assert fields["host"] == "127.0.0.1"
    with Subscriber(
        ["-h", fields["host"], "-p", fields["port"], "-q", "2", "-t", "t"]
    ) as sub:
        assert sub.wait_subscribed() == [1]  # --max-qos 1 reached mosquitto

    served.send("restart")
    after = served.read_fields()
    assert after["port"] == fields["port"] and after["dir"] == fields["dir"]
    assert after["pid"] != fields["pid"]

    assert served.process.stdin is not None
    served.process.stdin.close()
    assert served.process.wait(timeout=TIMEOUT) == 0
    assert not Path(fields["dir"]).exists()
    assert not process_exists(int(after["pid"]))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_serve_stops_on_a_signal(served: Served, signum: signal.Signals) -> None:
    fields = served.read_fields()
    served.process.send_signal(signum)
    assert served.process.wait(timeout=TIMEOUT) == 0
    assert not Path(fields["dir"]).exists()
    assert not process_exists(int(fields["pid"]))


def test_serve_kill_and_start_commands(served: Served) -> None:
    fields = served.read_fields()
    served.send("kill")
    assert served.output.next_line() == "KILLED"
    assert not accepts_connection(fields["host"], int(fields["port"]))
    served.send("start")
    again = served.read_fields()
    assert again["port"] == fields["port"]
    assert again["pid"] != fields["pid"]
    assert accepts_connection(again["host"], int(again["port"]))
    served.send("bogus")
    assert served.output.next_line().startswith("ERROR=unknown command")


def test_serve_reports_a_bad_option_as_error_line() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "serve", "--max-packet-size", "5"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout.startswith("ERROR=")
    assert "max_packet_size" in result.stdout
