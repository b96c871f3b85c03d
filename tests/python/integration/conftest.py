"""Fixtures of the integration tests: private mosquitto brokers started through
``scripts/testbroker.py`` and zmqtt clients disconnected after each test.

These tests use the real native module (``zmqtt._zmqtt``, built by
``maturin develop``); nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import pytest
from zmqtt import MQTTClient, QoS, ReconnectConfig, Subscription

from integration.helpers import VERSIONS, Broker, Version, unique_topic

SCRIPTS = Path(__file__).resolve().parents[3] / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

FAST_RECONNECT = ReconnectConfig(initial_delay=0.05, max_delay=0.5, max_attempts=5)
"""The reconnect policy of test clients that do not choose one: quick retries."""

BrokerFactory = Callable[..., Broker]


class Disconnectable(Protocol):
    """Any client view (``MQTTClient``, ``MQTTClientV311``, ``MQTTClientV5``)."""

    async def disconnect(self) -> None: ...


ClientT = TypeVar("ClientT", bound=Disconnectable)


def _testbroker() -> Any:
    """The ``testbroker`` module of scripts/ (imported at run time: mypy does not
    see scripts/, the ``Broker`` protocol types what the tests use)."""
    return importlib.import_module("testbroker")


def start_broker(**options: Any) -> Broker:
    """Starts a ``TestBroker`` with ``options``; the caller stops it."""
    return cast(Broker, _testbroker().TestBroker(**options).start())


@pytest.fixture(scope="session", autouse=True)
def _tools_installed() -> None:
    """mosquitto, its clients and openssl (installed here when root)."""
    _testbroker().ensure_installed()


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    """A broker with mosquitto's defaults, shared by the tests of one module.
    Modules needing other options override this fixture."""
    started = start_broker()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def make_broker() -> Iterator[BrokerFactory]:
    """Starts brokers for one test (``make_broker(persistence=True, ...)``),
    stopped after it. For tests that restart, kill or freeze their broker."""
    started: list[Broker] = []

    def make(**options: Any) -> Broker:
        new = start_broker(**options)
        started.append(new)
        return new

    try:
        yield make
    finally:
        for each in started:
            each.stop()


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> Version:
    """Both protocol versions, for tests of behaviour they share."""
    return cast(Version, request.param)


@pytest.fixture
def topic() -> str:
    """A topic (prefix) of this test alone."""
    return unique_topic()


class Clients:
    """Makes clients for one test and disconnects every one of them afterwards."""

    def __init__(self) -> None:
        self._made: list[Disconnectable] = []

    def new(
        self,
        broker: Broker,
        version: Version = "3.1.1",
        *,
        port: int | None = None,
        **options: Any,
    ) -> MQTTClient:
        """A client of ``broker`` (plain listener unless ``port``), not connected."""
        options.setdefault("reconnect", FAST_RECONNECT)
        client = MQTTClient(
            broker.host,
            broker.port if port is None else port,
            version=version,
            **options,
        )
        self._made.append(client)
        return client

    async def connected(
        self,
        broker: Broker,
        version: Version = "3.1.1",
        *,
        port: int | None = None,
        **options: Any,
    ) -> MQTTClient:
        """Like :meth:`new`, connected."""
        client = self.new(broker, version, port=port, **options)
        async with asyncio.timeout(10):
            await client.connect()
        return client

    async def subscribed(
        self,
        broker: Broker,
        *filters: str,
        version: Version = "3.1.1",
        qos: QoS = QoS.EXACTLY_ONCE,
        port: int | None = None,
        **options: Any,
    ) -> Subscription:
        """A started subscription of a new connected client (an observer)."""
        client = await self.connected(broker, version, port=port, **options)
        sub = client.subscribe(*filters, qos=qos)
        async with asyncio.timeout(10):
            await sub.start()
        return sub

    def track(self, client: ClientT) -> ClientT:
        """Disconnects ``client`` (made elsewhere) after the test too."""
        self._made.append(client)
        return client

    async def close_all(self) -> None:
        for client in reversed(self._made):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await client.disconnect()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """The client factory of one test."""
    made = Clients()
    try:
        yield made
    finally:
        await made.close_all()
