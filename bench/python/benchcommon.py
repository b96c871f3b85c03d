"""What every Python contender script shares: the command line, the clock, the
result line, percentiles and the resident set size.

Each contender script (``bench_<family>.py``) runs ONE measurement per process
and prints ONE JSON line on stdout, the same line the Rust binaries print::

    {"client", "workload", "count", "msgs_per_s", "cpu_us_per_msg",
     "p50_us", "p99_us", "kib_per_conn", "version", "mode", ...}

Figures that a workload does not produce are ``null``. A workload a client
cannot run carries ``"not_applicable": "<reason>"`` and ``"error":
"unsupported: <reason>"`` (exit status 3); a run that did not finish carries
``"error"`` (and ``"received"`` when messages were lost; exit status 1).
W6 ends with one QoS 1 "fence" publish: the sink acknowledges it, and its
PUBACK proves every earlier QoS 0 publish reached the sink (one TCP stream).

Standard library only: this file runs in every contender's virtualenv.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Final

WORKLOADS: Final = ("W1", "W2", "W3", "W4", "W5", "W6", "W7")
"""The workloads of BENCH.md."""

PIPELINE_WINDOW: Final = 100
"""W3: at most this many QoS 1 publishes outstanding (default of --window)."""

IDLE_SETTLE_S: Final = 0.5
"""W7: pause between the last connection and the second RSS reading."""

W5_WARMUP: Final = 100
"""W5: untimed round trips before the timed ones (default of --warmup)."""

EXIT_UNSUPPORTED: Final = 3
"""Exit status of a run whose client cannot do the workload (as the Rust binaries)."""

EXIT_FAILED: Final = 1
"""Exit status of a run that produced no measurement."""


@dataclass(frozen=True)
class BenchArgs:
    """One measurement's parameters, from the command line."""

    workload: str
    host: str
    port: int
    count: int
    payload_size: int
    connections: int
    window: int
    warmup: int
    timeout: float
    topic: str

    @property
    def payload(self) -> bytes:
        """The payload every publish sends (printable, so any client accepts it)."""
        return (b"0123456789abcdef" * (self.payload_size // 16 + 1))[
            : self.payload_size
        ]

    def client_id(self, role: str) -> str:
        """A client id unique to this process and role."""
        return f"bench-{os.getpid()}-{role}"


def parse_args(client: str, argv: list[str] | None = None) -> BenchArgs:
    """The shared command line (the Rust binaries take the same options)."""
    parser = argparse.ArgumentParser(
        description=f"One benchmark measurement of {client} (prints one JSON line)."
    )
    parser.add_argument("--workload", required=True, choices=WORKLOADS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--count", type=int, required=True, help="messages (W7: connections)"
    )
    parser.add_argument("--payload-size", type=int, default=64)
    parser.add_argument(
        "--connections", type=int, default=0, help="W7 (default --count)"
    )
    parser.add_argument(
        "--window", type=int, default=PIPELINE_WINDOW, help="W3: most QoS 1 outstanding"
    )
    parser.add_argument(
        "--warmup", type=int, default=W5_WARMUP, help="W5: untimed round trips first"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="give up after this many seconds and report an error",
    )
    parser.add_argument("--mode", default="", help="accepted for the Rust CLI; unused")
    parser.add_argument("--topic", default="", help="topic (default bench/<W>/<pid>)")
    args = parser.parse_args(argv)
    if args.count <= 0:
        parser.error("--count must be positive")
    if args.window <= 0:
        parser.error("--window must be positive")
    topic = args.topic or f"bench/{args.workload.lower()}/{os.getpid()}"
    connections = args.connections or args.count
    return BenchArgs(
        workload=args.workload,
        host=args.host,
        port=args.port,
        count=args.count,
        payload_size=args.payload_size,
        connections=connections,
        window=args.window,
        warmup=max(0, args.warmup),
        timeout=args.timeout,
        topic=topic,
    )


@dataclass
class Result:
    """The JSON line of one measurement."""

    client: str
    workload: str
    count: int
    version: str
    mode: str
    msgs_per_s: float | None = None
    cpu_us_per_msg: float | None = None
    p50_us: float | None = None
    p99_us: float | None = None
    kib_per_conn: float | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> str:
        """The line printed on stdout."""
        record: dict[str, object] = {
            "client": self.client,
            "workload": self.workload,
            "count": self.count,
            "msgs_per_s": self.msgs_per_s,
            "cpu_us_per_msg": self.cpu_us_per_msg,
            "p50_us": self.p50_us,
            "p99_us": self.p99_us,
            "kib_per_conn": self.kib_per_conn,
            "version": self.version,
            "mode": self.mode,
        }
        record.update(self.extra)
        return json.dumps(record)


class Stopwatch:
    """Wall time (perf_counter) and CPU time of the whole process, every thread
    included (process_time), between `start` and `stop`."""

    def __init__(self) -> None:
        self._wall0 = 0.0
        self._cpu0 = 0.0
        self.wall_s = 0.0
        self.cpu_s = 0.0

    def start(self) -> None:
        """Starts (or restarts) both clocks."""
        self._cpu0 = time.process_time()
        self._wall0 = time.perf_counter()

    def stop(self) -> None:
        """Reads both clocks."""
        self.wall_s = time.perf_counter() - self._wall0
        self.cpu_s = time.process_time() - self._cpu0

    def stop_at(self, wall_end: float) -> None:
        """Like `stop`, with the wall clock ending at ``wall_end`` (a perf_counter
        reading taken when the last message arrived)."""
        self.cpu_s = time.process_time() - self._cpu0
        self.wall_s = wall_end - self._wall0

    def fill(self, result: Result, messages: int) -> None:
        """Sets msgs/s and CPU µs/msg of ``result`` for ``messages`` messages."""
        if messages <= 0 or self.wall_s <= 0:
            return
        result.msgs_per_s = messages / self.wall_s
        result.cpu_us_per_msg = self.cpu_s * 1e6 / messages


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of ``samples``, nearest-rank."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def fill_latencies(result: Result, round_trips_s: list[float]) -> None:
    """Sets p50/p99 (µs) and the round-trip rate of ``result`` (W5)."""
    if not round_trips_s:
        return
    result.p50_us = statistics.median(round_trips_s) * 1e6
    result.p99_us = percentile(round_trips_s, 0.99) * 1e6
    result.msgs_per_s = len(round_trips_s) / sum(round_trips_s)


def rss_kib() -> int:
    """The resident set size of this process in KiB (VmRSS of /proc/self/status)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS missing from /proc/self/status")


def idle_result(
    result: Result, before_kib: int, after_kib: int, connections: int
) -> None:
    """Sets W7's figure: RSS growth per connection (KiB), keeping both readings."""
    result.kib_per_conn = (after_kib - before_kib) / connections
    result.extra["rss_before_kib"] = before_kib
    result.extra["rss_after_kib"] = after_kib


def lost(result: Result, expected: int, received: int) -> None:
    """Marks ``result`` as failed because messages did not all arrive in time."""
    result.extra["received"] = received
    result.extra["error"] = (
        f"received {received} of {expected} messages before the timeout"
    )


def emit(result: Result) -> int:
    """Prints the result line (the harness reads the last line) and returns the
    exit status: 0 measured, EXIT_UNSUPPORTED, or EXIT_FAILED."""
    sys.stdout.write(result.to_json() + "\n")
    sys.stdout.flush()
    if "not_applicable" in result.extra:
        return EXIT_UNSUPPORTED
    if "error" in result.extra:
        return EXIT_FAILED
    return 0


def not_applicable(
    client: str, args: BenchArgs, version: str, mode: str, why: str
) -> int:
    """Prints a line saying this client cannot run this workload, and why;
    returns EXIT_UNSUPPORTED."""
    result = Result(client, args.workload, args.count, version, mode)
    result.extra["not_applicable"] = why
    result.extra["error"] = f"unsupported: {why}"
    return emit(result)
