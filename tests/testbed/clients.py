"""MQTT clients for the test bed's tests: mosquitto_pub / mosquitto_sub run as
processes whose output is awaited with deadlines, and a minimal raw MQTT 3.1.1
client over a socket for what those tools cannot show (acknowledgement timing).
"""

from __future__ import annotations

import queue
import re
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Self

TIMEOUT = 10.0
"""Upper bound for any single wait; a passing test never comes near it."""

_MESSAGE_PREFIX = "MSG|"
# topic | qos | retained | payload (payload last: it may contain "|").
_MESSAGE_FORMAT = _MESSAGE_PREFIX + "%t|%q|%r|%p"
_SUBSCRIBED = re.compile(r"^Subscribed \(mid: \d+\): (?P<granted>[\d, ]+)$")


def run_client(tool: str, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run ``mosquitto_pub`` or ``mosquitto_sub`` to completion (bounded)."""
    return subprocess.run(
        [tool, *args], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def publish(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run mosquitto_pub with ``args``; returns its result (callers assert)."""
    return run_client("mosquitto_pub", args)


def publish_ok(args: Sequence[str]) -> None:
    """Run mosquitto_pub and fail the test if it does not exit 0."""
    result = publish(args)
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)


@dataclass(frozen=True)
class Message:
    """One message as mosquitto_sub printed it."""

    topic: str
    qos: int
    retained: bool
    payload: str


def _parse_message(line: str) -> Message | None:
    if not line.startswith(_MESSAGE_PREFIX):
        return None
    topic, qos, retained, payload = line[len(_MESSAGE_PREFIX) :].split("|", 3)
    return Message(topic, int(qos), retained == "1", payload)


class LineReader:
    """Lines of a child's output, read by a thread so that every wait has a
    deadline."""

    def __init__(self, stream: IO[str], name: str) -> None:
        self.name = name
        self.lines_seen: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next_line(self, timeout: float = TIMEOUT) -> str:
        """The next line; fails the test at end of output or timeout."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"{self.name} printed nothing for {timeout:.1f} s; so far: {self.lines_seen}"
            ) from None
        if line is None:
            self._lines.put(None)  # stay at end of output for later calls
            raise AssertionError(f"{self.name} ended; its output: {self.lines_seen}")
        self.lines_seen.append(line)
        return line

    def join(self) -> None:
        """Wait (bounded) for the reader thread once the child has exited."""
        self._thread.join(timeout=TIMEOUT)


class Subscriber:
    """mosquitto_sub running in the background (``-d``, line-buffered through
    stdbuf); its output is read line by line with deadlines."""

    def __init__(self, args: Sequence[str]) -> None:
        command = ["stdbuf", "-oL", "mosquitto_sub", "-d", "-F", _MESSAGE_FORMAT, *args]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        self.output = LineReader(self.process.stdout, "mosquitto_sub")
        # Messages that arrived while waiting for something else (a resumed
        # session's queued messages come before the SUBACK).
        self._early_messages: list[Message] = []

    def next_line(self, timeout: float = TIMEOUT) -> str:
        """The next output line; fails the test at end of output or timeout."""
        return self.output.next_line(timeout)

    def wait_subscribed(self) -> list[int]:
        """Wait for the SUBACK; return the granted QoS / return codes."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            line = self.next_line(max(0.0, deadline - time.monotonic()))
            match = _SUBSCRIBED.match(line)
            if match is not None:
                return [int(code) for code in match["granted"].split(",")]
            message = _parse_message(line)
            if message is not None:
                self._early_messages.append(message)

    def next_message(self) -> Message:
        """Wait for the next message delivered to this subscriber."""
        if self._early_messages:
            return self._early_messages.pop(0)
        deadline = time.monotonic() + TIMEOUT
        while True:
            line = self.next_line(max(0.0, deadline - time.monotonic()))
            message = _parse_message(line)
            if message is not None:
                return message

    def messages_until(self, payload: str) -> list[Message]:
        """Messages received up to and including the first with ``payload``."""
        received: list[Message] = []
        while True:
            message = self.next_message()
            received.append(message)
            if message.payload == payload:
                return received

    def close(self) -> None:
        """Stop mosquitto_sub (if still running) and its reader."""
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=TIMEOUT)
        self.output.join()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


# ---------------------------------------------------------------------------
# A raw MQTT 3.1.1 client (hand-written packets)

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, PINGREQ, PINGRESP = 8, 9, 12, 13


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + _remaining_length(len(body)) + body


@dataclass(frozen=True)
class Packet:
    """A received control packet: type, fixed-header flags and body."""

    kind: int
    flags: int
    body: bytes

    @property
    def packet_id(self) -> int:
        """Packet identifier of a QoS > 0 PUBLISH."""
        (topic_length,) = struct.unpack_from("!H", self.body, 0)
        (packet_id,) = struct.unpack_from("!H", self.body, 2 + topic_length)
        return int(packet_id)

    @property
    def payload(self) -> bytes:
        """Application payload of a QoS > 0 PUBLISH."""
        (topic_length,) = struct.unpack_from("!H", self.body, 0)
        return self.body[2 + topic_length + 2 :]


class RawClient:
    """A blocking MQTT 3.1.1 client that sends exactly what a test tells it to."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self._buffer = b""
        variable = b"\x00\x04MQTT" + bytes([4, 0x02]) + struct.pack("!H", 60)
        self.sock.sendall(_packet(0x10, variable + _utf8(client_id)))
        connack = self.read_packet()
        assert (connack.kind, connack.body) == (CONNACK, b"\x00\x00"), connack

    def _read_exact(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("broker closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def read_packet(self) -> Packet:
        """The next packet from the broker (socket timeout: TIMEOUT)."""
        first = self._read_exact(1)[0]
        length, shift = 0, 0
        while True:
            byte = self._read_exact(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return Packet(first >> 4, first & 0x0F, self._read_exact(length))

    def subscribe(self, topic_filter: str, qos: int, packet_id: int = 1) -> int:
        """Subscribe and return the granted QoS from the SUBACK."""
        body = struct.pack("!H", packet_id) + _utf8(topic_filter) + bytes([qos])
        self.sock.sendall(_packet(0x82, body))
        suback = self.read_packet()
        assert suback.kind == SUBACK, suback
        return suback.body[2]

    def puback(self, packet_id: int) -> None:
        """Acknowledge a QoS 1 PUBLISH."""
        self.sock.sendall(_packet(0x40, struct.pack("!H", packet_id)))

    def pingreq(self) -> None:
        """Send PINGREQ; the broker's PINGRESP follows whatever it sent before."""
        self.sock.sendall(_packet(0xC0, b""))

    def close(self) -> None:
        """Send DISCONNECT and close the socket."""
        try:
            self.sock.sendall(_packet(0xE0, b""))
        finally:
            self.sock.close()
