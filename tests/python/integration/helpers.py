"""Helpers of the integration tests: the broker's typed face, bounded waits,
unique topics, the broker's log and freezing a broker.

Every wait here has a deadline (``TIMEOUT``); a passing test never comes near it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from zmqtt import (
    ConnectionInfo,
    Message,
    MQTTClient,
    MQTTDisconnectedError,
    ReconnectConfig,
    Subscription,
)

T = TypeVar("T")

TIMEOUT = 10.0
"""Upper bound of any single wait."""

POLL = 0.01
"""Interval of the few waits that can only poll (the broker's log, reconnects)."""

NO_RECONNECT = ReconnectConfig(enabled=False)
"""For clients whose tests need a lost connection to stay lost."""

Version = Literal["3.1.1", "5.0"]
VERSIONS: tuple[Version, ...] = ("3.1.1", "5.0")


class Broker(Protocol):
    """What the tests use of ``scripts/testbroker.py``'s ``TestBroker``."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def tls_port(self) -> int: ...
    @property
    def mtls_port(self) -> int: ...
    @property
    def password_port(self) -> int: ...
    @property
    def ca_file(self) -> Path: ...
    @property
    def client_cert(self) -> Path: ...
    @property
    def client_key(self) -> Path: ...
    @property
    def username(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def log_path(self) -> Path: ...
    @property
    def pid(self) -> int | None: ...
    def start(self) -> object: ...
    def restart(self) -> object: ...
    def kill(self) -> None: ...
    def stop(self) -> None: ...


def unique_topic(prefix: str = "zmqtt-it") -> str:
    """A topic no other test uses."""
    return f"{prefix}/{uuid.uuid4().hex}"


def unique_id(prefix: str = "zmqtt-it") -> str:
    """A client identifier no other test uses (at most 23 characters, MQTT-3.1.3-5)."""
    return f"{prefix[:6]}-{uuid.uuid4().hex[:16]}"


async def bounded(awaitable: Awaitable[T], seconds: float = TIMEOUT) -> T:
    """Awaits ``awaitable`` for at most ``seconds`` (``TimeoutError`` after)."""
    async with asyncio.timeout(seconds):
        return await awaitable


async def connected_without_reconnect(broker: Broker, version: Version) -> MQTTClient:
    """A client of ``broker``'s plain listener that never reconnects, connected
    (not disconnected after the test: the tests using it lose the connection)."""
    client = MQTTClient(
        broker.host, broker.port, version=version, reconnect=NO_RECONNECT
    )
    await bounded(client.connect())
    return client


async def next_message(sub: Subscription, seconds: float = TIMEOUT) -> Message:
    """The next message of ``sub``, within ``seconds``."""
    return await bounded(sub.get_message(), seconds)


async def payloads(
    sub: Subscription, count: int, seconds: float = TIMEOUT
) -> list[bytes]:
    """The payloads of the next ``count`` messages of ``sub``."""
    async with asyncio.timeout(seconds):
        return [(await sub.get_message()).payload for _ in range(count)]


async def wait_until(
    condition: Callable[[], bool], what: str, seconds: float = TIMEOUT
) -> None:
    """Polls ``condition`` until it holds; fails the test after ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while not condition():
                await asyncio.sleep(POLL)
    except TimeoutError:
        raise AssertionError(
            f"timed out after {seconds} s waiting for {what}"
        ) from None


def current_connection_id(client: MQTTClient) -> int | None:
    """The client's ``connection_id``, or None while it is not connected."""
    try:
        return client.connection_info.connection_id
    except MQTTDisconnectedError:
        return None


async def wait_connected(
    client: MQTTClient, connection_id: int, seconds: float = TIMEOUT
) -> ConnectionInfo:
    """Waits until ``client`` is connected with at least ``connection_id``
    (i.e. has reconnected) and returns its connection info."""

    def reached() -> bool:
        current = current_connection_id(client)
        return current is not None and current >= connection_id

    await wait_until(reached, f"connection {connection_id}", seconds)
    return client.connection_info


def log_offset(broker: Broker) -> int:
    """Where the broker's log ends now (to read only what follows)."""
    return broker.log_path.stat().st_size


def log_since(broker: Broker, offset: int) -> str:
    """The broker's log from ``offset`` on."""
    with broker.log_path.open("rb") as log:
        log.seek(offset)
        return log.read().decode("utf-8", errors="replace")


async def wait_for_log(
    broker: Broker, texts: str | Sequence[str], offset: int, seconds: float = TIMEOUT
) -> str:
    """Waits until the broker logged every one of ``texts`` after ``offset``;
    returns the log since ``offset``."""
    wanted = [texts] if isinstance(texts, str) else list(texts)
    await wait_until(
        lambda: all(text in log_since(broker, offset) for text in wanted),
        f"the broker to log {wanted!r}",
        seconds,
    )
    return log_since(broker, offset)


@contextmanager
def frozen(broker: Broker) -> Iterator[None]:
    """SIGSTOPs the broker for the block: its sockets stay open (the kernel
    still accepts and buffers) but it answers nothing. SIGCONT afterwards."""
    pid = broker.pid
    assert pid is not None, "the broker is not running"
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
