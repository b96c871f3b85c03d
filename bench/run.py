#!/usr/bin/env python3
"""zmqtt's benchmark harness: one command that installs the contenders, starts
its own mosquitto and sink, runs the workloads W1-W7 of BENCH.md for every
contender (interleaved and repeated) and writes ``bench/results/REPORT.md``
and ``bench/results/ratios.png``.

    python3 bench/run.py                 # everything (takes a while)
    python3 bench/run.py --quick         # counts / 20, one trial each: < 5 min
    python3 bench/run.py --only W1,W6 --clients zmqtt,gmqtt,zmqtt-rs,rumqttc-v4
    python3 bench/run.py --callgrind     # adds callgrind instructions/msg (W6, Rust)
    python3 bench/run.py --smoke --python .venv/bin/python --out /tmp/smoke

Contenders: the Python package (built with ``maturin build --release`` and
installed into its own virtualenv), zmqtt from PyPI, gmqtt, aiomqtt and
paho-mqtt, each in its own virtualenv under bench/.venvs/; the Rust crate and
its peers, built from bench/rust (a cargo project of its own); and the C pair
``mosquitto_pub -l`` -> ``mosquitto_sub -C N``, the broker's ceiling, for W1.

``--smoke`` is ``--quick`` restricted to what is already on the machine: only
our Python package (from the interpreter given by ``--python``), tiny counts,
no virtualenvs, no build, no network. The test suite runs it.

Standard library only (it creates the environments everything else runs in);
the chart is drawn by re-running this file with the tools virtualenv's
interpreter (``--render-chart``), which has matplotlib.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import resource
import shutil
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

BENCH: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH.parent
VENVS: Final = BENCH / ".venvs"
RUST: Final = BENCH / "rust"
RUST_RELEASE: Final = RUST / "target" / "release"
PYTHON_SCRIPTS: Final = BENCH / "python"
DEFAULT_OUT: Final = BENCH / "results"

sys.path.insert(0, str(ROOT / "scripts"))
import itertools

from testbroker import (  # type: ignore[import-not-found, unused-ignore]
    BrokerError,
    TestBroker,
    ensure_tools,
    find_tool,
)

PAYLOAD_SIZE: Final = 64
PIPELINE_WINDOW: Final = 100
W5_WARMUP: Final = 100

# ---------------------------------------------------------------------------
# Workloads


@dataclass(frozen=True)
class Workload:
    """One workload of BENCH.md and how it is reported."""

    id: str
    title: str
    metric: str
    """The JSON field ratios are computed on."""
    higher_is_better: bool
    uses_sink: bool
    counts: dict[str, tuple[int, int]]
    """mode -> (Python count, Rust count); W7: connections."""
    repeats: int
    """Trials per contender in a full run."""
    extra_metrics: tuple[str, ...] = ()


def _counts(
    full: tuple[int, int], smoke: tuple[int, int]
) -> dict[str, tuple[int, int]]:
    quick = (max(smoke[0], full[0] // 20), max(smoke[1], full[1] // 20))
    return {"full": full, "quick": quick, "smoke": smoke}


WORKLOADS: Final = (
    Workload(
        id="W1",
        title="QoS 0 end to end through mosquitto",
        metric="msgs_per_s",
        higher_is_better=True,
        uses_sink=False,
        counts=_counts(full=(50_000, 200_000), smoke=(300, 1_000)),
        repeats=3,
        extra_metrics=("cpu_us_per_msg",),
    ),
    Workload(
        id="W2",
        title="QoS 1 sequential (each publish awaited to PUBACK)",
        metric="msgs_per_s",
        higher_is_better=True,
        uses_sink=False,
        counts=_counts(full=(5_000, 20_000), smoke=(50, 200)),
        repeats=3,
        extra_metrics=("cpu_us_per_msg",),
    ),
    Workload(
        id="W3",
        title="QoS 1 pipelined (<= 100 outstanding), subscriber receives all",
        metric="msgs_per_s",
        higher_is_better=True,
        uses_sink=False,
        counts=_counts(full=(20_000, 100_000), smoke=(300, 1_000)),
        repeats=3,
        extra_metrics=("cpu_us_per_msg",),
    ),
    Workload(
        id="W4",
        title="QoS 2 sequential",
        metric="msgs_per_s",
        higher_is_better=True,
        uses_sink=False,
        counts=_counts(full=(3_000, 10_000), smoke=(50, 200)),
        repeats=3,
        extra_metrics=("cpu_us_per_msg",),
    ),
    Workload(
        id="W5",
        title="round trip on the own subscription (QoS 0)",
        metric="p50_us",
        higher_is_better=False,
        uses_sink=False,
        counts=_counts(full=(2_000, 10_000), smoke=(50, 200)),
        repeats=3,
        extra_metrics=("p99_us",),
    ),
    Workload(
        id="W6",
        title="QoS 0 publishes into a sink (no broker): client cost",
        metric="msgs_per_s",
        higher_is_better=True,
        uses_sink=True,
        counts=_counts(full=(200_000, 1_000_000), smoke=(2_000, 10_000)),
        repeats=10,
        extra_metrics=("cpu_us_per_msg",),
    ),
    Workload(
        id="W7",
        title="idle connected clients in one process",
        metric="kib_per_conn",
        higher_is_better=False,
        uses_sink=False,
        counts={"full": (1_000, 1_000), "quick": (200, 200), "smoke": (20, 20)},
        repeats=3,
    ),
)
WORKLOAD_BY_ID: Final = {workload.id: workload for workload in WORKLOADS}

METRIC_LABELS: Final = {
    "msgs_per_s": "msgs/s",
    "cpu_us_per_msg": "CPU µs/msg",
    "p50_us": "median µs",
    "p99_us": "p99 µs",
    "kib_per_conn": "KiB/conn",
    "callgrind_instr_per_msg": "instructions/msg (callgrind)",
}
LOWER_IS_BETTER: Final = {
    "cpu_us_per_msg",
    "p50_us",
    "p99_us",
    "kib_per_conn",
    "callgrind_instr_per_msg",
}

TRIAL_TIMEOUT: Final = {"full": 900.0, "quick": 180.0, "smoke": 30.0}

CALLGRIND_COUNT: Final = {"full": 200_000, "quick": 20_000, "smoke": 2_000}
"""W6 messages under callgrind (callgrind.sh also runs a tenth as many and
counts the difference, so connection setup drops out)."""

# ---------------------------------------------------------------------------
# Contenders

PYTHON_PEERS: Final = {
    # name -> (virtualenv, pip requirements, script)
    "zmqtt-pypi": ("zmqtt-pypi", ["zmqtt"], "bench_zmqtt.py"),
    "gmqtt": ("gmqtt", ["gmqtt"], "bench_gmqtt.py"),
    "aiomqtt": ("aiomqtt", ["aiomqtt"], "bench_aiomqtt.py"),
    "paho-mqtt": ("paho-mqtt", ["paho-mqtt"], "bench_paho.py"),
}
OURS_PYTHON: Final = "zmqtt"
OURS_RUST: Final = "zmqtt-rs"
C_PAIR: Final = "c-pair"
TOOLS_REQUIREMENTS: Final = ["matplotlib", "maturin>=1.7,<2"]
RUST_NAMES: Final = {"zmqtt": OURS_RUST, "paho-mqtt": "paho-mqtt-rs"}
"""Rust binary bench-<name> -> contender name, where the names would clash."""


@dataclass
class Contender:
    """One client under test (or the C reference pair)."""

    name: str
    language: str
    """"python" or "rust"."""
    command: list[str]
    """argv prefix; empty for the C pair, which the harness runs itself."""
    ours: bool = False
    reference: bool = False
    workloads: frozenset[str] = frozenset(WORKLOAD_BY_ID)


@dataclass
class Trial:
    """One measurement of one contender."""

    contender: str
    language: str
    workload: str
    trial: int
    count: int
    status: str
    """"ok", "failed" or "unsupported"."""
    result: dict[str, object]
    error: str = ""
    wall_s: float = 0.0

    def to_json(self) -> str:
        """The raw record (one line of the .jsonl file)."""
        return json.dumps({"record": "trial", **self.__dict__})

    def figure(self, metric: str) -> float | None:
        """The value of ``metric`` when this trial succeeded and has it."""
        value = self.result.get(metric)
        if self.status != "ok" or not isinstance(value, int | float):
            return None
        return float(value)


def log(message: str) -> None:
    """Progress on stderr."""
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Environments: virtualenvs, our wheel, the Rust binaries


def _run(
    argv: Sequence[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> str:
    """Runs a setup command; raises RuntimeError with its output on failure."""
    completed = subprocess.run(
        list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(argv)}` failed (exit {completed.returncode}):\n"
            f"{completed.stdout[-4000:]}{completed.stderr[-4000:]}"
        )
    return completed.stdout


def venv_python(name: str) -> Path:
    """The interpreter of virtualenv bench/.venvs/<name>."""
    return VENVS / name / "bin" / "python"


def ensure_venv(name: str, requirements: Sequence[str], *, upgrade: bool) -> Path:
    """Creates bench/.venvs/<name> with ``requirements`` installed (once: a
    marker file remembers what was installed; ``upgrade`` installs again)."""
    python = venv_python(name)
    if not python.exists():
        log(f"creating virtualenv bench/.venvs/{name}")
        _run([sys.executable, "-m", "venv", str(VENVS / name)])
    marker = VENVS / name / ".bench-installed"
    wanted = "\n".join(requirements)
    if requirements and (
        upgrade or not marker.exists() or marker.read_text() != wanted
    ):
        log(f"pip install {' '.join(requirements)} into bench/.venvs/{name}")
        _run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--upgrade",
                *requirements,
            ]
        )
        marker.write_text(wanted)
    return python


def ensure_ours_python(tools_python: Path) -> Path:
    """Builds our wheel (maturin build --release) and installs it into
    bench/.venvs/zmqtt-ours when it changed."""
    python = ensure_venv("zmqtt-ours", [], upgrade=False)
    wheels = VENVS / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    log("building the zmqtt wheel (maturin build --release)")
    maturin = tools_python.parent / "maturin"
    _run(
        [
            str(maturin),
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--out",
            str(wheels),
        ]
    )
    built = sorted(wheels.glob("zmqtt-*.whl"))
    if not built:
        raise RuntimeError(f"maturin built no wheel into {wheels}")
    wheel = built[-1]
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    marker = VENVS / "zmqtt-ours" / ".bench-wheel"
    if not marker.exists() or marker.read_text() != digest:
        log(f"installing {wheel.name} into bench/.venvs/zmqtt-ours")
        _run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--force-reinstall",
                "--no-deps",
                str(wheel),
            ]
        )
        marker.write_text(digest)
    return python


def build_rust(notes: list[str]) -> set[str]:
    """cargo build --release of bench/rust; without the paho peer when that
    one does not build (it needs cmake and a C compiler). Returns the cargo
    features built."""
    manifest = str(RUST / "Cargo.toml")
    try:
        ensure_tools({"cmake": "cmake"})
    except BrokerError as error:
        notes.append(
            f"cmake unavailable ({error}); the paho-mqtt Rust peer may not build"
        )
    log("building bench/rust (cargo build --release)")
    try:
        _run(["cargo", "build", "--release", "--manifest-path", manifest])
        return set(rust_features_without(""))
    except RuntimeError as error:
        features = rust_features_without("paho")
        log("full build failed; building without the paho peer")
        notes.append(f"bench/rust built without paho-mqtt-rs: {str(error)[-600:]}")
        _run(
            [
                "cargo",
                "build",
                "--release",
                "--manifest-path",
                manifest,
                "--no-default-features",
                "--features",
                ",".join(features),
            ]
        )
        return set(features)


def rust_features_without(excluded: str) -> list[str]:
    """bench/rust's default features minus ``excluded``."""
    with (RUST / "Cargo.toml").open("rb") as manifest:
        features = tomllib.load(manifest).get("features", {})
    default = features.get("default", [])
    return [name for name in default if name != excluded]


def rust_binaries(features: set[str]) -> list[str]:
    """The ``bench-<name>`` binaries of bench/rust/Cargo.toml (sink excluded)
    that a build with ``features`` produces."""
    manifest_path = RUST / "Cargo.toml"
    if not manifest_path.exists():
        return []
    with manifest_path.open("rb") as manifest:
        bins = tomllib.load(manifest).get("bin", [])
    return [
        str(entry["name"])
        for entry in bins
        if str(entry.get("name", "")).startswith("bench-")
        and entry["name"] != "bench-sink"
        and set(entry.get("required-features", [])) <= features
    ]


def rust_contenders(features: set[str]) -> list[Contender]:
    """One contender per Rust benchmark binary built with ``features``."""
    contenders = []
    for binary in rust_binaries(features):
        path = RUST_RELEASE / binary
        if not path.exists():
            continue
        short = binary.removeprefix("bench-")
        name = RUST_NAMES.get(short, short)
        contenders.append(Contender(name, "rust", [str(path)], ours=name == OURS_RUST))
    contenders.sort(key=lambda contender: (not contender.ours, contender.name))
    return contenders


def python_contender(name: str, python: Path, script: str, ours: bool) -> Contender:
    """A Python contender: ``python bench/python/<script>``."""
    return Contender(
        name, "python", [str(python), str(PYTHON_SCRIPTS / script)], ours=ours
    )


# ---------------------------------------------------------------------------
# Servers: the broker and the sink


def start_broker() -> TestBroker:
    """A private mosquitto whose queues and in-flight windows never throttle."""
    broker = TestBroker(
        max_queued_messages=1_000_000,
        max_inflight_messages=0,  # 0: no limit
        extra_config=["max_queued_bytes 0", "max_inflight_bytes 0", "memory_limit 0"],
    )
    broker.start()
    return broker


class _SinkHandler(socketserver.BaseRequestHandler):
    """The fallback sink's connection: CONNACK for CONNECT, PINGRESP for
    PINGREQ, PUBACK / PUBREC / PUBCOMP for QoS 1/2, everything else dropped."""

    def handle(self) -> None:
        connection: socket.socket = self.request
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        version = 4
        while True:
            chunk = connection.recv(262_144)
            if not chunk:
                return
            pending += chunk
            answers = bytearray()
            while True:
                parsed = _frame(pending)
                if parsed is None:
                    break
                header, body, rest = parsed
                pending = rest
                kind, qos = header >> 4, (header >> 1) & 3
                if kind == 1:  # CONNECT
                    name_length = int.from_bytes(body[0:2], "big")
                    version = (
                        body[2 + name_length] if len(body) > 2 + name_length else 4
                    )
                    answers += (
                        b"\x20\x03\x00\x00\x00" if version == 5 else b"\x20\x02\x00\x00"
                    )
                elif kind == 3 and qos > 0:  # PUBLISH: acknowledge QoS 1/2
                    topic_length = int.from_bytes(body[0:2], "big")
                    packet_id = body[2 + topic_length : 4 + topic_length]
                    answers += (b"\x40\x02" if qos == 1 else b"\x50\x02") + packet_id
                elif kind == 6:  # PUBREL
                    answers += b"\x70\x02" + body[0:2]
                elif kind == 12:  # PINGREQ
                    answers += b"\xd0\x00"
                elif kind == 14:  # DISCONNECT
                    return
            if answers:
                connection.sendall(answers)


def _frame(data: bytes) -> tuple[int, bytes, bytes] | None:
    """(first byte, body, rest) of the first whole MQTT packet of ``data``."""
    remaining, multiplier = 0, 1
    for index in range(1, 5):
        if index >= len(data):
            return None
        byte = data[index]
        remaining += (byte & 0x7F) * multiplier
        multiplier *= 128
        if byte & 0x80 == 0:
            end = index + 1 + remaining
            if len(data) < end:
                return None
            return data[0], data[index + 1 : end], data[end:]
    raise ValueError("malformed remaining length")


class _ThreadingSink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextmanager
def sink_server(notes: list[str]) -> Iterator[tuple[str, int]]:
    """The W6 sink: bench/rust's bench-sink when built, else a Python one
    (fine for a smoke test; it costs CPU that the client then lacks)."""
    binary = RUST_RELEASE / "bench-sink"
    if binary.exists():
        process = subprocess.Popen(
            [str(binary), "--port", "0"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline().strip()
            if not line.startswith("PORT="):
                raise RuntimeError(f"bench-sink printed {line!r} instead of PORT=<n>")
            yield "127.0.0.1", int(line.removeprefix("PORT="))
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return
    note = "W6 sink: Python fallback (bench/rust's bench-sink not built)"
    if note not in notes:
        notes.append(note)
    server = _ThreadingSink(("127.0.0.1", 0), _SinkHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------
# Running one trial


def run_client(
    contender: Contender,
    workload: Workload,
    count: int,
    host: str,
    port: int,
    timeout: float,
) -> tuple[str, dict[str, object], str]:
    """Runs one contender process; returns (status, JSON line, error)."""
    argv = [
        *contender.command,
        "--workload",
        workload.id,
        "--host",
        host,
        "--port",
        str(port),
        "--count",
        str(count),
        "--payload-size",
        str(PAYLOAD_SIZE),
        "--window",
        str(PIPELINE_WINDOW),
        "--warmup",
        str(min(W5_WARMUP, count)),
        "--timeout",
        str(math.ceil(timeout)),
    ]
    if workload.id == "W7":
        argv += ["--connections", str(count)]
    try:
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout + 30, check=False
        )
    except subprocess.TimeoutExpired:
        return "failed", {}, f"killed after {timeout + 30:.0f} s"
    record = _last_json_line(completed.stdout)
    error = str(record.get("error") or "")
    if (
        completed.returncode == 3
        or "not_applicable" in record
        or error.startswith("unsupported")
    ):
        reason = str(
            record.get("not_applicable") or error.removeprefix("unsupported: ")
        )
        return "unsupported", record, reason or "unsupported"
    if completed.returncode != 0 or not record or error:
        detail = (
            error or completed.stderr.strip()[-1500:] or f"exit {completed.returncode}"
        )
        return "failed", record, detail
    return "ok", record, ""


def _wait_rusage(process: subprocess.Popen[bytes]) -> tuple[float, float]:
    """Waits for ``process``; returns (perf_counter at exit, CPU seconds)."""
    _, status, usage = os.wait4(process.pid, 0)
    ended = time.perf_counter()
    process.returncode = os.waitstatus_to_exitcode(status)
    return ended, usage.ru_utime + usage.ru_stime


def run_c_pair(
    host: str, port: int, count: int, timeout: float, scratch: Path
) -> tuple[str, dict[str, object], str]:
    """W1's ceiling: ``mosquitto_pub -l`` fed ``count`` lines from a file,
    received by ``mosquitto_sub -C``. Timed from the first message's arrival
    (seen in the subscriber's output, which it flushes per message) to the
    subscriber's exit after the last, so that neither process start nor
    connection setup counts, as for the clients. The subscriber is known to be
    subscribed once an (untimed) probe message reaches it."""
    tools = ensure_tools(
        {"mosquitto_pub": "mosquitto-clients", "mosquitto_sub": "mosquitto-clients"}
    )
    topic = f"bench/cpair/{os.getpid()}/{time.monotonic_ns()}"
    lines = scratch / f"lines-{count}.txt"
    if not lines.exists():
        lines.write_bytes((b"c" * PAYLOAD_SIZE + b"\n") * count)
    received = scratch / "cpair-received.txt"
    common = ["-h", host, "-p", str(port), "-t", topic, "-q", "0"]
    wait_s = str(math.ceil(timeout))
    with received.open("wb") as output:
        subscriber = subprocess.Popen(
            [tools["mosquitto_sub"], *common, "-C", str(count + 1), "-N", "-W", wait_s],
            stdout=output,
            stderr=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + 10
    while received.stat().st_size == 0:
        if time.monotonic() > deadline or subscriber.poll() is not None:
            subscriber.kill()
            subscriber.wait()
            return "failed", {}, "mosquitto_sub never received a probe"
        subprocess.run(
            [tools["mosquitto_pub"], *common, "-m", "p"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.1)
    time.sleep(0.2)  # a second probe still in flight is counted here too
    probe_bytes = received.read_bytes().count(b"p")
    expected = count + 1 - probe_bytes  # timed messages the subscriber waits for
    with lines.open("rb") as feed:
        publisher = subprocess.Popen(
            [tools["mosquitto_pub"], *common, "-l"],
            stdin=feed,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    outcome: dict[str, tuple[float, float]] = {}
    waiter = threading.Thread(
        target=lambda: outcome.update(sub=_wait_rusage(subscriber)), daemon=True
    )
    waiter.start()
    first_seen, already = 0.0, 0
    give_up = time.monotonic() + timeout
    while waiter.is_alive() and time.monotonic() < give_up:
        size = received.stat().st_size
        if size > probe_bytes:
            first_seen = time.perf_counter()
            already = (size - probe_bytes) // PAYLOAD_SIZE
            break
        time.sleep(0.0002)
    _, publisher_cpu = _wait_rusage(publisher)
    waiter.join(max(1.0, give_up - time.monotonic()))
    if waiter.is_alive():
        subscriber.kill()
        waiter.join()
    if "sub" not in outcome or subscriber.returncode != 0 or not first_seen:
        got = max(0, received.stat().st_size - probe_bytes) // PAYLOAD_SIZE
        return "failed", {}, f"mosquitto_sub received {got} of {expected} messages"
    ended, subscriber_cpu = outcome["sub"]
    elapsed = ended - first_seen
    timed = expected - max(1, already)
    record: dict[str, object] = {
        "client": "mosquitto_pub -l | mosquitto_sub -C",
        "workload": "W1",
        "count": expected,
        "msgs_per_s": timed / elapsed,
        "cpu_us_per_msg": (publisher_cpu + subscriber_cpu) * 1e6 / expected,
        "p50_us": None,
        "p99_us": None,
        "kib_per_conn": None,
        "version": _tool_version([tools["mosquitto_pub"], "--help"]),
        "mode": "C reference pair",
        "elapsed_s": elapsed,
    }
    return "ok", record, ""


def _tool_version(argv: Sequence[str]) -> str:
    """The word after "version" in the output of ``argv``, or "unknown"."""
    try:
        completed = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = (completed.stdout + " " + completed.stderr).split()
    for before, after in itertools.pairwise(words):
        if before == "version":
            return after.rstrip(".,")
    return "unknown"


def _first_line(argv: Sequence[str]) -> str:
    """The first non-empty output line of ``argv`` (stdout then stderr), or ''."""
    try:
        completed = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for line in (completed.stdout + "\n" + completed.stderr).splitlines():
        if line.strip():
            return line.strip()
    return ""


# ---------------------------------------------------------------------------
# The run


@dataclass
class RunMeta:
    """What the report says about the run besides the measurements."""

    mode: str
    started: str
    git: str
    machine: dict[str, str]
    versions: dict[str, str]
    repeats: dict[str, int]
    counts: dict[str, dict[str, int]]
    contenders: list[dict[str, object]]
    notes: list[str] = field(default_factory=list)
    load_after: str = ""
    finished: str = ""
    callgrind: dict[str, dict[str, object]] = field(default_factory=dict)

    def to_json(self) -> str:
        """The first (and, updated, last) line of the raw file."""
        return json.dumps({"record": "run", **self.__dict__})


def machine_facts() -> dict[str, str]:
    """nproc, CPU model, memory, kernel, load average."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": memory,
        "kernel": f"{platform.system()} {platform.release()}",
        "load_before": _load_average(),
    }


def _load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def git_description() -> str:
    """Short commit of the repository, with "+dirty" when it has changes."""
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{commit}{'+dirty' if dirty else ''}" if commit else "unknown"


def raise_fd_limit() -> None:
    """W7 opens a thousand sockets in one process (and the broker as many)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass(frozen=True)
class Endpoint:
    """Where one trial's contender connects, and where the C pair keeps files."""

    host: str
    port: int
    timeout: float
    scratch: Path


def run_trial(
    contender: Contender, workload: Workload, count: int, index: int, at: Endpoint
) -> Trial:
    """One measurement of ``contender`` (a client process, or the C pair)."""
    started = time.perf_counter()
    if contender.reference:
        outcome = run_c_pair(at.host, at.port, count, at.timeout, at.scratch)
    else:
        outcome = run_client(contender, workload, count, at.host, at.port, at.timeout)
    status, record, error = outcome
    return Trial(
        contender=contender.name,
        language=contender.language,
        workload=workload.id,
        trial=index,
        count=count,
        status=status,
        result=record,
        error=error,
        wall_s=time.perf_counter() - started,
    )


def run_workloads(
    contenders: list[Contender],
    workloads: list[Workload],
    mode: str,
    repeats_override: int | None,
    raw: Path,
    meta: RunMeta,
) -> list[Trial]:
    """Runs every workload: per trial, each contender once, in turn (A B C A B C…);
    appends each trial to ``raw`` as it finishes."""
    trials: list[Trial] = []
    languages = sorted({c.language for c in contenders if not c.reference})
    pair = [contender for contender in contenders if contender.reference]
    scratch = Path(tempfile.mkdtemp(prefix="zmqtt-bench-"))
    try:
        with raw.open("a") as raw_file:
            for workload in workloads:
                lineup = [
                    contender
                    for contender in contenders
                    if workload.id in contender.workloads and not contender.reference
                ]
                if not lineup:
                    continue
                repeats = repeats_override or (
                    workload.repeats if mode == "full" else 1
                )
                meta.repeats[workload.id] = repeats
                counts = dict(
                    zip(("python", "rust"), workload.counts[mode], strict=True)
                )
                meta.counts[workload.id] = {lang: counts[lang] for lang in languages}
                with _server_for(workload, meta.notes) as (host, port):
                    at = Endpoint(host, port, TRIAL_TIMEOUT[mode], scratch)
                    for index in range(1, repeats + 1):
                        for contender in _with_pairs(lineup, pair, workload):
                            count = counts[contender.language]
                            trial = run_trial(contender, workload, count, index, at)
                            trials.append(trial)
                            raw_file.write(trial.to_json() + "\n")
                            raw_file.flush()
                            log(
                                f"[{workload.id} {index}/{repeats}] "
                                f"{contender.language:6} {contender.name:18} "
                                f"{_describe(trial, workload)}"
                            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return trials


def _with_pairs(
    lineup: list[Contender], pair: list[Contender], workload: Workload
) -> list[Contender]:
    """The lineup of one trial: each language's contenders followed by the C
    pair at that language's count (W1 only)."""
    if workload.id != "W1" or not pair:
        return lineup
    ordered: list[Contender] = []
    for language in ("python", "rust"):
        members = [contender for contender in lineup if contender.language == language]
        if members:
            ordered += members
            ordered.append(Contender(C_PAIR, language, [], reference=True))
    return ordered


@contextmanager
def _server_for(workload: Workload, notes: list[str]) -> Iterator[tuple[str, int]]:
    """A fresh broker per workload (or the sink for W6)."""
    if workload.uses_sink:
        with sink_server(notes) as endpoint:
            yield endpoint
        return
    broker = start_broker()
    try:
        yield broker.host, broker.port
    finally:
        broker.stop()


def _describe(trial: Trial, workload: Workload) -> str:
    if trial.status != "ok":
        return f"{trial.status}: {trial.error[:200]}"
    parts = []
    for metric in (workload.metric, *workload.extra_metrics):
        value = trial.figure(metric)
        if value is not None:
            parts.append(f"{_fmt(metric, value)} {METRIC_LABELS[metric]}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------
# callgrind (W6, Rust)


def run_callgrind(
    contenders: list[Contender], count: int, notes: list[str]
) -> dict[str, dict[str, object]]:
    """Runs bench/rust/callgrind.sh (W6 under callgrind, with its own sink) per
    Rust contender; returns contender -> its JSON line with "instr_per_msg"
    added, or {"error": ...}."""
    script = RUST / "callgrind.sh"
    results: dict[str, dict[str, object]] = {}
    if not script.exists():
        notes.append("callgrind: bench/rust/callgrind.sh is missing")
        return results
    try:
        ensure_tools({"valgrind": "valgrind"})
    except BrokerError as error:
        notes.append(f"callgrind: {error}")
        return results
    for contender in contenders:
        if contender.language != "rust" or contender.reference:
            continue
        log(f"[callgrind W6] {contender.name} ({count:,} messages)")
        binary = Path(contender.command[0]).name.removeprefix("bench-")
        completed = subprocess.run(
            ["bash", str(script), binary, str(count)],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        record = _last_json_line(completed.stdout)
        value = _callgrind_value(record)
        if completed.returncode != 0 or value is None:
            detail = str(record.get("error") or completed.stderr.strip()[-800:])
            results[contender.name] = {
                "error": detail or f"exit {completed.returncode}"
            }
        else:
            results[contender.name] = {**record, "instr_per_msg": value}
            log(f"[callgrind W6] {contender.name}: {value:,.0f} instructions/msg")
    return results


def _last_json_line(output: str) -> dict[str, object]:
    """The last line of ``output`` that parses as a JSON object, or {}."""
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            try:
                parsed = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(parsed, dict):
                return parsed
    return {}


def _callgrind_value(record: dict[str, object]) -> float | None:
    for key in ("instr_per_msg", "instructions_per_msg", "ir_per_msg"):
        value = record.get(key)
        if isinstance(value, int | float):
            return float(value)
    return None


# ---------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class Summary:
    """Median and range of one figure over a contender's successful trials."""

    median: float
    low: float
    high: float
    trials: int


def summarize(
    trials: list[Trial], language: str, workload: str, contender: str, metric: str
) -> Summary | None:
    """The summary of ``metric`` for one contender, or None without data."""
    values = [
        value
        for trial in trials
        if trial.language == language
        and trial.workload == workload
        and trial.contender == contender
        and (value := trial.figure(metric)) is not None
    ]
    if not values:
        return None
    return Summary(statistics.median(values), min(values), max(values), len(values))


def _fmt(metric: str, value: float) -> str:
    if metric == "msgs_per_s":
        if value >= 1e6:
            return f"{value / 1e6:.2f}M"
        if value >= 1e3:
            return f"{value / 1e3:.1f}k"
        return f"{value:.0f}"
    if metric == "callgrind_instr_per_msg":
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cell(summary: Summary | None, metric: str) -> str:
    if summary is None:
        return "–"
    if summary.trials == 1:
        return _fmt(metric, summary.median)
    return (
        f"{_fmt(metric, summary.median)} "
        f"({_fmt(metric, summary.low)}–{_fmt(metric, summary.high)})"
    )


@dataclass(frozen=True)
class Comparison:
    """Our median against the best peer's (same language, same run)."""

    ours: float
    best: float
    best_name: str

    @property
    def ratio(self) -> float:
        """ours ÷ best peer."""
        return self.ours / self.best if self.best else math.inf


def compare(
    trials: list[Trial],
    language: str,
    workload: str,
    metric: str,
    contenders: list[str],
) -> Comparison | None:
    """Ours vs the best peer of ``language`` on ``metric`` (medians)."""
    ours_name = OURS_PYTHON if language == "python" else OURS_RUST
    ours = summarize(trials, language, workload, ours_name, metric)
    peers = [
        (summary.median, name)
        for name in contenders
        if name not in (ours_name, C_PAIR)
        and (summary := summarize(trials, language, workload, name, metric)) is not None
    ]
    if ours is None or not peers:
        return None
    pick = min if metric in LOWER_IS_BETTER else max
    best, best_name = pick(peers)
    return Comparison(ours.median, best, best_name)


@dataclass(frozen=True)
class Target:
    """A target of BENCH.md, checked against a run."""

    language: str
    workload: str
    text: str
    metric: str
    kind: str
    """"ratio>=", "ratio>", "ratio<=" (vs the best peer), "pair>=" (vs the C
    pair), "peer<=" (vs ``peer``), "abs>=", "abs<=" (absolute)."""
    threshold: float
    peer: str = ""


TARGETS: Final = (
    Target(
        "python", "W6", "W6 ≥ 10× the best Python peer", "msgs_per_s", "ratio>=", 10
    ),
    Target("python", "W6", "W6 ≥ 1M msgs/s", "msgs_per_s", "abs>=", 1e6),
    Target(
        "python",
        "W6",
        "W6 CPU/msg ≤ 0.1× gmqtt's",
        "cpu_us_per_msg",
        "peer<=",
        0.1,
        "gmqtt",
    ),
    Target("python", "W1", "W1 ≥ 0.95× the C pair", "msgs_per_s", "pair>=", 0.95),
    Target(
        "python", "W1", "W1 above the best Python peer", "msgs_per_s", "ratio>", 1.0
    ),
    Target(
        "python", "W3", "W3 ≥ 2× the best Python peer", "msgs_per_s", "ratio>=", 2.0
    ),
    Target(
        "python", "W2", "W2 ≥ 2.5× the best Python peer", "msgs_per_s", "ratio>=", 2.5
    ),
    Target(
        "python", "W4", "W4 ≥ 2× the best Python peer", "msgs_per_s", "ratio>=", 2.0
    ),
    Target(
        "python", "W5", "W5 median ≤ 0.6× the best peer's", "p50_us", "ratio<=", 0.6
    ),
    Target("python", "W7", "W7 ≤ the best Python peer", "kib_per_conn", "ratio<=", 1.0),
    Target("rust", "W6", "W6 ≥ 5× the best Rust peer", "msgs_per_s", "ratio>=", 5.0),
    Target("rust", "W6", "W6 ≥ 2M msgs/s", "msgs_per_s", "abs>=", 2e6),
    Target("rust", "W6", "W6 CPU ≤ 0.5 µs/msg", "cpu_us_per_msg", "abs<=", 0.5),
    Target(
        "rust",
        "W6",
        "W6 callgrind ≤ 1,000 instructions/msg",
        "callgrind_instr_per_msg",
        "abs<=",
        1000,
    ),
    Target("rust", "W1", "W1 ≥ 0.95× the C pair", "msgs_per_s", "pair>=", 0.95),
    Target("rust", "W1", "W1 above the best Rust peer", "msgs_per_s", "ratio>", 1.0),
    Target("rust", "W3", "W3 ≥ 1.3× the best Rust peer", "msgs_per_s", "ratio>=", 1.3),
    Target("rust", "W2", "W2 ≥ 1.2× the best Rust peer", "msgs_per_s", "ratio>=", 1.2),
    Target("rust", "W4", "W4 ≥ 1.2× the best Rust peer", "msgs_per_s", "ratio>=", 1.2),
    Target("rust", "W5", "W5 median ≤ the best Rust peer's", "p50_us", "ratio<=", 1.0),
    Target(
        "rust", "W7", "W7 ≤ 3 KiB per idle connection", "kib_per_conn", "abs<=", 3.0
    ),
)

RATIO_TARGETS: Final = {
    (target.language, target.workload): target
    for target in TARGETS
    if target.kind in ("ratio>=", "ratio>", "ratio<=")
}
"""The ratio target of each (language, workload), for the table and the chart."""


def _target_text(target: Target) -> str:
    if target.kind in ("ratio>=", "ratio>"):
        return f"{'>' if target.kind == 'ratio>' else '≥'} {target.threshold:g}×"
    return f"≤ {target.threshold:g}×"


def check_target(
    target: Target, trials: list[Trial], names: list[str], meta: RunMeta
) -> tuple[str, bool | None]:
    """(measured value as text, met?) — None when the run lacks the data."""
    ours_name = OURS_PYTHON if target.language == "python" else OURS_RUST
    if target.metric == "callgrind_instr_per_msg":
        value = meta.callgrind.get(ours_name, {}).get("instr_per_msg")
        if not isinstance(value, int | float):
            return "not measured (run with --callgrind)", None
        return f"{value:,.0f} instructions/msg", value <= target.threshold
    ours = summarize(trials, target.language, target.workload, ours_name, target.metric)
    if ours is None:
        return "no data", None
    label = METRIC_LABELS[target.metric]
    if target.kind in ("abs>=", "abs<="):
        met = (
            ours.median >= target.threshold
            if target.kind == "abs>="
            else ours.median <= target.threshold
        )
        return f"{_fmt(target.metric, ours.median)} {label}", met
    if target.kind in ("pair>=", "peer<="):
        other_name = C_PAIR if target.kind == "pair>=" else target.peer
        other = summarize(
            trials, target.language, target.workload, other_name, target.metric
        )
        if other is None:
            return f"{other_name} not measured", None
        ratio = ours.median / other.median
        met = (
            ratio >= target.threshold
            if target.kind == "pair>="
            else ratio <= target.threshold
        )
        return (
            f"{ratio:.2f}× {other_name} ({_fmt(target.metric, ours.median)} vs {_fmt(target.metric, other.median)} {label})",
            met,
        )
    comparison = compare(trials, target.language, target.workload, target.metric, names)
    if comparison is None:
        return "no peer measured", None
    ratio = comparison.ratio
    met = {
        "ratio>=": ratio >= target.threshold,
        "ratio>": ratio > target.threshold,
        "ratio<=": ratio <= target.threshold,
    }[target.kind]
    return f"{ratio:.2f}× {comparison.best_name}", met


def _mark(met: bool | None) -> str:
    return {True: "✅", False: "❌", None: "–"}[met]


def render_report(meta: RunMeta, trials: list[Trial], chart: str | None) -> str:
    """REPORT.md."""
    lines = [
        "# zmqtt benchmark report",
        "",
        (
            f"Generated by `bench/run.py` ({meta.mode} mode) on {meta.started} "
            f"(finished {meta.finished}), repository at `{meta.git}`. "
            "See bench/README.md for what each workload measures."
        ),
        "",
        (
            "Every figure is the **median** of the trials with the **min–max** in "
            "brackets; contenders ran interleaved (A B C A B C …) against the same "
            "private mosquitto. A **ratio** divides our median by the best *peer's* "
            "median in the same run and language (never another run's figure; the "
            "C pair and zmqtt itself are not peers). For msgs/s higher is better; "
            "for µs, KiB and CPU lower is better."
        ),
        "",
    ]
    if meta.mode != "full":
        lines += [
            (
                f"> **{meta.mode} run**: reduced counts and one trial per contender "
                "— a sanity check, not a measurement to quote."
            ),
            "",
        ]
    lines += ["## Machine", "", "| | |", "|---|---|"]
    machine = meta.machine
    for key, label in (
        ("nproc", "cores (nproc)"),
        ("cpu", "CPU"),
        ("memory", "memory"),
        ("kernel", "kernel"),
    ):
        lines.append(f"| {label} | {machine.get(key, '')} |")
    lines.append(
        f"| load average (1/5/15 min) before | {machine.get('load_before', '')} |"
    )
    lines.append(f"| load average after | {meta.load_after} |")
    lines += [
        "",
        "## Versions",
        "",
        "| contender | language | version |",
        "|---|---|---|",
    ]
    for name, version in meta.versions.items():
        lines.append(f"| {name} | | {version} |")
    for contender in meta.contenders:
        name = str(contender["name"])
        version = _version_of(trials, name, str(contender["language"]))
        lines.append(f"| {name} | {contender['language']} | {version} |")
    names_by_language: dict[str, list[str]] = {}
    for contender in meta.contenders:
        names_by_language.setdefault(str(contender["language"]), []).append(
            str(contender["name"])
        )
    for language in ("python", "rust"):
        names = names_by_language.get(language)
        if not names:
            continue
        if any(
            trial.contender == C_PAIR and trial.language == language for trial in trials
        ):
            names = [*names, C_PAIR]
        lines += _language_section(language, names, trials, meta)
    problems = [trial for trial in trials if trial.status != "ok"]
    if problems or meta.notes:
        lines += ["", "## Notes, failures and workloads not applicable", ""]
        lines += [f"- {note}" for note in meta.notes]
        seen: set[tuple[str, str, str, str]] = set()
        for trial in problems:
            identity = (trial.language, trial.workload, trial.contender, trial.error)
            if identity in seen:
                continue
            seen.add(identity)
            repeated = sum(
                1
                for other in problems
                if (other.language, other.workload, other.contender, other.error)
                == identity
            )
            times = f" ({repeated} trials)" if repeated > 1 else ""
            word = "not applicable" if trial.status == "unsupported" else "failed"
            error = " ".join(trial.error.split())[:400]
            lines.append(
                f"- {trial.language} {trial.workload} {trial.contender}: {word}{times} — {error}"
            )
    if chart:
        lines += [
            "",
            "## Chart",
            "",
            f"![our ratio to the best peer per workload]({chart})",
            "",
        ]
        lines.append(
            "Bars: how many times better than the best peer we are (throughput: ours ÷ best; "
            "latency and memory: best ÷ ours), log scale; the line at 1 is parity, the "
            "markers are the targets."
        )
    return "\n".join(lines) + "\n"


def _version_of(trials: list[Trial], name: str, language: str) -> str:
    for trial in trials:
        if trial.contender == name and trial.language == language:
            version = trial.result.get("version")
            if version:
                return str(version)
    return "unknown"


def _language_section(
    language: str, names: list[str], trials: list[Trial], meta: RunMeta
) -> list[str]:
    ours = OURS_PYTHON if language == "python" else OURS_RUST
    heading = "Python package" if language == "python" else "Rust crate"
    lines = ["", f"## {heading} (ours: `{ours}`)", ""]
    header = [
        "workload",
        "figure",
        *[f"**{n}**" if n == ours else n for n in names],
        "ours ÷ best peer",
        "target",
        "met",
    ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    workloads_run = [
        w
        for w in WORKLOADS
        if any(t.workload == w.id and t.language == language for t in trials)
    ]
    for workload in workloads_run:
        count = meta.counts.get(workload.id, {}).get(language)
        count_text = (
            f"{count:,} {'connections' if workload.id == 'W7' else 'msgs'}"
            if count
            else ""
        )
        repeats = meta.repeats.get(workload.id, 0)
        for index, metric in enumerate((workload.metric, *workload.extra_metrics)):
            arrow = "↓" if metric in LOWER_IS_BETTER else "↑"
            first = (
                f"{workload.id} {workload.title} ({count_text}, {repeats}×)"
                if index == 0
                else workload.id
            )
            cells = [
                _cell(summarize(trials, language, workload.id, name, metric), metric)
                for name in names
            ]
            comparison = compare(trials, language, workload.id, metric, names)
            ratio = (
                f"{comparison.ratio:.2f}× ({comparison.best_name})"
                if comparison
                else "–"
            )
            target_text, met_text = "", ""
            target = RATIO_TARGETS.get((language, workload.id))
            if index == 0 and target is not None and comparison is not None:
                target_text = _target_text(target)
                _, met = check_target(target, trials, names, meta)
                met_text = _mark(met)
            lines.append(
                "| "
                + " | ".join(
                    [
                        first,
                        f"{METRIC_LABELS[metric]} {arrow}",
                        *cells,
                        ratio,
                        target_text,
                        met_text,
                    ]
                )
                + " |"
            )
    if language == "rust" and meta.callgrind:
        lines += [
            "",
            (
                "callgrind, W6 (instructions per message, every thread of the client "
                "process; the sink is not counted):"
            ),
            "",
        ]
        lines += ["| contender | instructions/msg |", "|---|---|"]
        for name, data in meta.callgrind.items():
            value = data.get("instr_per_msg")
            text = (
                f"{value:,.0f}"
                if isinstance(value, int | float)
                else f"failed: {data.get('error', '')}"
            )
            lines.append(f"| {name} | {text} |")
        peers = {
            name: float(value)
            for name, data in meta.callgrind.items()
            if name != OURS_RUST
            and isinstance(value := data.get("instr_per_msg"), int | float)
        }
        ours_instr = meta.callgrind.get(OURS_RUST, {}).get("instr_per_msg")
        if peers and isinstance(ours_instr, int | float):
            best = min(peers, key=peers.__getitem__)
            instr_ratio = ours_instr / peers[best]
            lines.append(f"| ours ÷ best peer | {instr_ratio:.2f}× ({best}) |")
    lines += [
        "",
        f"Targets ({heading}, BENCH.md):",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for target in TARGETS:
        if target.language != language:
            continue
        if not any(
            t.workload == target.workload and t.language == language for t in trials
        ):
            continue
        measured, met = check_target(target, trials, names, meta)
        lines.append(f"| {target.text} | {measured} | {_mark(met)} |")
    if any(t.workload == "W5" and t.language == language for t in trials):
        load_before = meta.machine.get("load_before", "")
        lines += [
            "",
            (
                f"W5 is quoted with the machine's load: {load_before} before the run, "
                f"{meta.load_after} after (1/5/15-minute averages)."
            ),
        ]
    return lines


def chart_data(trials: list[Trial], meta: RunMeta) -> dict[str, object]:
    """What the chart shows: per language and workload, our advantage over
    the best peer (>1 = better) and the target's."""
    series: dict[str, list[dict[str, object]]] = {}
    names_by_language: dict[str, list[str]] = {}
    for contender in meta.contenders:
        names_by_language.setdefault(str(contender["language"]), []).append(
            str(contender["name"])
        )
    for language, names in names_by_language.items():
        points: list[dict[str, object]] = []
        for workload in WORKLOADS:
            comparison = compare(trials, language, workload.id, workload.metric, names)
            if comparison is None or comparison.ratio in (0, math.inf):
                continue
            advantage = (
                comparison.ratio if workload.higher_is_better else 1 / comparison.ratio
            )
            target = RATIO_TARGETS.get((language, workload.id))
            target_advantage = None
            if target is not None:
                target_advantage = (
                    target.threshold
                    if workload.higher_is_better
                    else 1 / target.threshold
                )
            points.append(
                {
                    "workload": workload.id,
                    "advantage": advantage,
                    "target": target_advantage,
                    "best": comparison.best_name,
                }
            )
        if points:
            series[language] = points
    return {
        "series": series,
        "title": f"zmqtt vs the best peer ({meta.mode} run, {meta.started[:10]})",
    }


CHART_LABELS: Final = {
    "W1": "W1\nQoS 0 e2e",
    "W2": "W2\nQoS 1 seq.",
    "W3": "W3\nQoS 1 pipelined",
    "W4": "W4\nQoS 2 seq.",
    "W5": "W5\nround trip",
    "W6": "W6\nsink (client cost)",
    "W7": "W7\nKiB/idle conn.",
}


def render_chart(data_path: Path, png: Path) -> None:
    """Draws the ratio chart (run with the tools virtualenv, which has matplotlib):
    bars from parity (1) up or down to our advantage, log scale, target marks."""
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    from matplotlib.ticker import (  # type: ignore[import-not-found, unused-ignore]
        FuncFormatter,
    )

    data = json.loads(data_path.read_text())
    series: dict[str, list[dict[str, object]]] = data["series"]
    workloads = [
        w.id
        for w in WORKLOADS
        if any(p["workload"] == w.id for s in series.values() for p in s)
    ]
    languages = [language for language in ("python", "rust") if language in series]
    figure, axes = plt.subplots(figsize=(11, 5.5))
    width = 0.8 / max(1, len(languages))
    colours = {"python": "#3572A5", "rust": "#CE7E3A"}
    values: list[float] = [1.0]
    target_labelled = False
    for offset, language in enumerate(languages):
        points = {str(p["workload"]): p for p in series[language]}
        xs: list[float] = []
        heights: list[float] = []
        for index, workload in enumerate(workloads):
            point = points.get(workload)
            if point is None:
                continue
            x = index - 0.4 + width * (offset + 0.5)
            advantage = float(str(point["advantage"]))
            xs.append(x)
            heights.append(advantage)
            values.append(advantage)
            if point["target"] is not None:
                target = float(str(point["target"]))
                values.append(target)
                axes.hlines(
                    target,
                    x - width * 0.5,
                    x + width * 0.5,
                    colors="#B22222",
                    linewidth=2.5,
                    zorder=3,
                    label=None if target_labelled else "target",
                )
                target_labelled = True
            axes.annotate(
                f"{advantage:.2f}×",
                (x, advantage),
                xytext=(0, 3 if advantage >= 1 else -11),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
        label = "Python package" if language == "python" else "Rust crate"
        axes.bar(
            xs,
            [height - 1.0 for height in heights],
            width * 0.9,
            bottom=1.0,
            label=label,
            color=colours[language],
        )
    axes.axhline(1.0, color="black", linewidth=1, label="parity with the best peer")
    axes.set_yscale("log")
    axes.set_ylim(min(values) / 1.6, max(values) * 1.6)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}×"))
    axes.set_xticks(range(len(workloads)))
    axes.set_xticklabels([CHART_LABELS[w] for w in workloads], fontsize=9)
    axes.set_ylabel("our advantage over the best peer (log scale, above 1 = better)")
    axes.set_title(str(data["title"]))
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(axis="y", which="major", alpha=0.3)
    figure.tight_layout()
    figure.savefig(png, dpi=120)


# ---------------------------------------------------------------------------
# Entry point


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="zmqtt's benchmark harness (see bench/README.md).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--quick",
        action="store_true",
        help="counts / 20 and one trial per contender (< 5 minutes)",
    )
    modes.add_argument(
        "--smoke",
        action="store_true",
        help="only our Python package from --python, tiny counts, no installs",
    )
    parser.add_argument(
        "--only", default="", help="workloads, e.g. W1,W3 (default all)"
    )
    parser.add_argument(
        "--clients",
        default="",
        help="contenders, e.g. zmqtt,gmqtt,zmqtt-rs,rumqttc-v4,c-pair "
        "(default all; c-pair is W1's C reference)",
    )
    parser.add_argument(
        "--no-python", action="store_true", help="skip the Python contenders"
    )
    parser.add_argument(
        "--no-rust", action="store_true", help="skip the Rust contenders"
    )
    parser.add_argument(
        "--python",
        type=Path,
        help="run our Python package with this interpreter instead of "
        "building a wheel into bench/.venvs/zmqtt-ours",
    )
    parser.add_argument("--repeat", type=int, help="trials per contender and workload")
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="also run W6 under callgrind for each Rust contender",
    )
    parser.add_argument(
        "--upgrade-peers",
        action="store_true",
        help="pip install --upgrade the peers even if installed",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where REPORT.md, ratios.png and raw/ go (default bench/results)",
    )
    parser.add_argument(
        "--report-from",
        type=Path,
        metavar="RAW.jsonl",
        help="only rewrite the report from a raw file of an earlier run",
    )
    parser.add_argument(
        "--render-chart",
        nargs=2,
        type=Path,
        metavar=("DATA", "PNG"),
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    unknown = [w for w in _split(args.only) if w.upper() not in WORKLOAD_BY_ID]
    if unknown:
        parser.error(f"unknown workloads: {', '.join(unknown)}")
    return args


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def select_contenders(
    args: argparse.Namespace, mode: str, notes: list[str]
) -> list[Contender]:
    """Installs / builds what the selected contenders need and returns them."""
    wanted = set(_split(args.clients))

    def included(name: str, language: str) -> bool:
        if language == "python" and args.no_python:
            return False
        if language == "rust" and args.no_rust:
            return False
        return not wanted or name in wanted

    if mode == "smoke":
        python = args.python or Path(sys.executable)
        return [python_contender(OURS_PYTHON, python, "bench_zmqtt.py", ours=True)]
    contenders: list[Contender] = []
    python_needed = any(
        included(name, "python") for name in [OURS_PYTHON, *PYTHON_PEERS]
    )
    tools_python: Path | None = None
    if python_needed or not args.python:
        tools_python = ensure_venv("tools", TOOLS_REQUIREMENTS, upgrade=False)
    if included(OURS_PYTHON, "python"):
        if args.python:
            python = Path(args.python)
        else:
            assert tools_python is not None
            python = ensure_ours_python(tools_python)
        contenders.append(
            python_contender(OURS_PYTHON, python, "bench_zmqtt.py", ours=True)
        )
    for name, (venv, requirements, script) in PYTHON_PEERS.items():
        if included(name, "python"):
            python = ensure_venv(venv, requirements, upgrade=args.upgrade_peers)
            contenders.append(python_contender(name, python, script, ours=False))
    if not args.no_rust and (
        not wanted or wanted - {OURS_PYTHON, *PYTHON_PEERS, C_PAIR}
    ):
        try:
            features = build_rust(notes)
        except RuntimeError as error:
            features = set()
            notes.append(
                f"bench/rust did not build; no Rust contenders: {str(error)[-800:]}"
            )
        if features:
            built = rust_contenders(features)
            contenders += [c for c in built if included(c.name, "rust")]
    if not wanted or C_PAIR in wanted:
        contenders.append(
            Contender(C_PAIR, "both", [], reference=True, workloads=frozenset({"W1"}))
        )
    return contenders


def mosquitto_version() -> str:
    """The version line of the mosquitto binary."""
    mosquitto = find_tool("mosquitto")
    if mosquitto is None:
        return "not installed"
    return _tool_version([mosquitto, "-h"])


def write_outputs(
    meta: RunMeta, trials: list[Trial], out: Path, raw_dir: Path, stamp: str
) -> Path:
    """REPORT.md and, when the tools virtualenv exists, ratios.png."""
    out.mkdir(parents=True, exist_ok=True)
    chart: str | None = None
    tools = venv_python("tools")
    if tools.exists():
        data_path = raw_dir / f"{stamp}-chart.json"
        data_path.write_text(json.dumps(chart_data(trials, meta)))
        png = out / "ratios.png"
        completed = subprocess.run(
            [str(tools), __file__, "--render-chart", str(data_path), str(png)],
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode == 0:
            chart = png.name
        else:
            meta.notes.append(f"chart not drawn: {completed.stderr.strip()[-400:]}")
    else:
        meta.notes.append(
            "chart not drawn: bench/.venvs/tools (matplotlib) is not installed"
        )
    report = out / "REPORT.md"
    report.write_text(render_report(meta, trials, chart))
    return report


def load_raw(path: Path) -> tuple[RunMeta, list[Trial]]:
    """The meta and trials of a raw .jsonl file (the last run record wins)."""
    meta: RunMeta | None = None
    trials: list[Trial] = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        kind = record.pop("record", None)
        if kind == "run":
            meta = RunMeta(**record)
        elif kind == "trial":
            trials.append(Trial(**record))
    if meta is None:
        raise SystemExit(f"{path}: no run record")
    return meta, trials


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    if args.render_chart:
        render_chart(args.render_chart[0], args.render_chart[1])
        return 0
    out: Path = args.out.resolve()
    raw_dir = out / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    if args.report_from:
        meta, trials = load_raw(args.report_from)
        report = write_outputs(meta, trials, out, raw_dir, args.report_from.stem)
        print(report)
        return 0
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    raise_fd_limit()
    ensure_tools(
        {
            "mosquitto": "mosquitto",
            "mosquitto_pub": "mosquitto-clients",
            "mosquitto_sub": "mosquitto-clients",
            "openssl": "openssl",
        }
    )
    notes: list[str] = []
    contenders = select_contenders(args, mode, notes)
    if not [c for c in contenders if not c.reference]:
        log("no contender selected")
        return 2
    only = {w.upper() for w in _split(args.only)}
    workloads = [w for w in WORKLOADS if not only or w.id in only]
    now = datetime.datetime.now(datetime.UTC)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    meta = RunMeta(
        mode=mode,
        started=now.strftime("%Y-%m-%d %H:%M:%S UTC"),
        git=git_description(),
        machine=machine_facts(),
        versions={
            "mosquitto (broker)": mosquitto_version(),
            "Python (harness)": platform.python_version(),
            "rustc": _first_line(["rustc", "--version"]).removeprefix("rustc ")
            or "not installed",
        },
        repeats={},
        counts={},
        contenders=[
            {
                "name": c.name,
                "language": c.language,
                "ours": c.ours,
                "command": c.command,
            }
            for c in contenders
            if not c.reference
        ],
        notes=notes,
    )
    raw = raw_dir / f"{stamp}.jsonl"
    raw.write_text(meta.to_json() + "\n")
    log(f"{mode} run: {', '.join(c.name for c in contenders)}; raw data in {raw}")
    trials = run_workloads(contenders, workloads, mode, args.repeat, raw, meta)
    if args.callgrind:
        meta.callgrind = run_callgrind(contenders, CALLGRIND_COUNT[mode], notes)
    meta.load_after = _load_average()
    meta.finished = datetime.datetime.now(datetime.UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC"
    )
    report = write_outputs(meta, trials, out, raw_dir, stamp)
    with raw.open("a") as raw_file:
        raw_file.write(meta.to_json() + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
