"""SPEC 1.11: records on the standard loggers ``zmqtt.client`` and
``zmqtt.protocol``; no password, user name or payload in any of them; nothing
deadlocks with DEBUG logging on under load."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import uuid
from collections.abc import Iterator

import pytest
from zmqtt import QoS

from integration.conftest import Clients
from integration.helpers import (
    Broker,
    Version,
    bounded,
    next_message,
    payloads,
    wait_connected,
)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """DEBUG records of the ``zmqtt`` loggers, enabled before any client connects
    (the native bridge reads the levels when a client connects)."""
    caplog.set_level(logging.DEBUG, logger="zmqtt")
    yield caplog


def _text_of(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), record.exc_text or ""]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


async def test_records_on_both_loggers_without_secrets(
    broker: Broker,
    clients: Clients,
    version: Version,
    topic: str,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    marker = f"PAYLOAD-{uuid.uuid4().hex}"
    client = await clients.connected(
        broker,
        version,
        port=broker.password_port,
        username=broker.username,
        password=broker.password,
    )
    sub = client.subscribe(topic, qos=QoS.EXACTLY_ONCE)
    await bounded(sub.start())
    for qos in QoS:
        await bounded(client.publish(topic, marker, qos=qos))
    await payloads(sub, 3)
    await bounded(client.reset())
    await wait_connected(client, 2)
    await bounded(client.disconnect())

    records = debug_logs.records
    names = {record.name for record in records}
    assert "zmqtt.client" in names, names
    assert "zmqtt.protocol" in names, names
    assert any(
        r.name == "zmqtt.protocol" and r.levelno == logging.DEBUG for r in records
    )
    secrets = [
        broker.password,
        broker.password.encode().hex(),
        broker.username,
        marker,
        marker.encode().hex(),
    ]
    for record in records:
        text = _text_of(record)
        for secret in secrets:
            assert secret not in text, f"{secret!r} logged by {record.name}: {text}"


async def test_routing_warning_on_zmqtt_client(
    broker: Broker, clients: Clients, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="zmqtt")
    client = await clients.connected(broker)
    first = client.subscribe(topic)
    second = client.subscribe(topic)
    await bounded(first.start())
    await bounded(second.start())
    await bounded(client.publish(topic, b"x"))
    await next_message(first)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings
    assert all(r.name == "zmqtt.client" for r in warnings)


async def test_no_deadlock_with_debug_logging_under_load(
    broker: Broker,
    clients: Clients,
    version: Version,
    topic: str,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    # A deadlock would freeze the event loop itself, so no asyncio timeout
    # could fire: a watchdog thread ends the process with every thread's
    # stack instead of letting the suite hang.
    faulthandler.dump_traceback_later(60, exit=True)
    try:
        receiver = await clients.connected(broker, version)
        sub = receiver.subscribe(
            f"{topic}/#", qos=QoS.AT_LEAST_ONCE, receive_buffer_size=50
        )
        await bounded(sub.start())
        senders = [await clients.connected(broker, version) for _ in range(3)]
        count = 300

        async def send(index: int) -> None:
            sender = senders[index]
            for number in range(count):
                qos = QoS(number % 3)
                await sender.publish(f"{topic}/{index}", b"%d" % number, qos=qos)
                if number % 50 == 0:
                    await sender.ping()

        async def receive() -> int:
            return len(await payloads(sub, count * len(senders), 60))

        async with asyncio.timeout(60):
            results = await asyncio.gather(
                receive(), *(send(i) for i in range(len(senders)))
            )
        assert results[0] == count * len(senders)
        assert any(r.name == "zmqtt.protocol" for r in debug_logs.records)
    finally:
        faulthandler.cancel_dump_traceback_later()


async def test_a_handler_that_logs_again_does_not_deadlock(
    broker: Broker, clients: Clients, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A handler doing more logging (and formatting) on whatever thread it is
    # called from.
    echo = logging.getLogger("tests.echo")

    class Echo(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            echo.debug("seen: %s", self.format(record))

    handler = Echo(level=logging.DEBUG)
    logging.getLogger("zmqtt").addHandler(handler)
    caplog.set_level(logging.DEBUG)
    faulthandler.dump_traceback_later(60, exit=True)
    try:
        sub = await clients.subscribed(broker, topic, qos=QoS.AT_LEAST_ONCE)
        client = await clients.connected(broker)
        for number in range(100):
            await bounded(client.publish(topic, b"%d" % number, qos=QoS.AT_LEAST_ONCE))
        assert await payloads(sub, 100) == [b"%d" % n for n in range(100)]
        assert any(r.name == "tests.echo" for r in caplog.records)
    finally:
        faulthandler.cancel_dump_traceback_later()
        logging.getLogger("zmqtt").removeHandler(handler)
