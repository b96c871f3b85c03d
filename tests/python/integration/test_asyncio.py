"""asyncio behaviour: cancelling a task that awaits ``publish()``,
``get_message()``, ``request()``, ``ping()`` or a subscription's ``start()``
cleans up (no leaked subscription, quota or pending request: later calls work);
calls never block the loop; a client used from another event loop raises a
clear ``RuntimeError``; consecutive ``asyncio.run()`` calls may share a client
and leave no descriptor behind; a batch of completions settles every future;
uvloop works when installed."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import os
from typing import Any

import pytest
from zmqtt import MQTTClient, QoS

from integration.conftest import BrokerFactory, Clients
from integration.helpers import (
    VERSIONS,
    Broker,
    Version,
    bounded,
    frozen,
    next_message,
    payloads,
    unique_id,
    unique_topic,
)


async def _started(task: asyncio.Task[Any]) -> None:
    """Lets ``task`` run up to its first real wait (the native future)."""
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done(), "the call completed although the broker is frozen"


async def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_publishes_leak_no_quota(
    make_broker: BrokerFactory, clients: Clients, version: Version
) -> None:
    # Receive Maximum 1 (5.0): one QoS 1 publish in flight, the next ones wait
    # for the quota. Cancelling all of them while the broker answers nothing
    # must give the quota back once the PUBACK arrives.
    broker = make_broker(max_inflight_messages=1)
    topic = unique_topic()
    client = await clients.connected(broker, version)
    with frozen(broker):
        tasks = [
            asyncio.create_task(client.publish(topic, b"%d" % i, qos=QoS.AT_LEAST_ONCE))
            for i in range(3)
        ]
        for task in tasks:
            await _started(task)
        for task in tasks:
            await _cancel(task)
    # The cancelled publishes were handed to the client before the cancel, so
    # they still reach the broker once it answers again; the publishes after
    # go to a topic of their own so that they are told apart.
    after = f"{topic}/after"
    sub = await clients.subscribed(broker, after, version=version)
    for index in range(5):
        await bounded(client.publish(after, b"after %d" % index, qos=QoS.AT_LEAST_ONCE))
    assert await payloads(sub, 5) == [b"after %d" % i for i in range(5)]


async def test_cancelled_get_message_loses_no_message(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    sub = await clients.subscribed(
        broker, topic, version=version, qos=QoS.AT_LEAST_ONCE
    )
    publisher = await clients.connected(broker, version)
    for _ in range(3):
        waiting = asyncio.create_task(sub.get_message())
        await asyncio.sleep(0)
        await _cancel(waiting)
    await bounded(publisher.publish(topic, b"kept", qos=QoS.AT_LEAST_ONCE))
    assert (await next_message(sub)).payload == b"kept"


async def test_wait_for_timeout_around_get_message(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic, qos=QoS.AT_LEAST_ONCE)
    publisher = await clients.connected(broker)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sub.get_message(), 0.05)
    await bounded(publisher.publish(topic, b"after timeout", qos=QoS.AT_LEAST_ONCE))
    assert (await next_message(sub)).payload == b"after timeout"


async def test_cancelled_ping(make_broker: BrokerFactory, clients: Clients) -> None:
    broker = make_broker()
    client = await clients.connected(broker)
    with frozen(broker):
        task = asyncio.create_task(client.ping(timeout=30))
        await _started(task)
        await _cancel(task)
    assert await bounded(client.ping()) >= 0


async def test_cancelled_subscription_start_leaks_no_subscription(
    make_broker: BrokerFactory,
    clients: Clients,
    version: Version,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="zmqtt.client")
    broker = make_broker()
    topic = unique_topic()
    client = await clients.connected(broker, version)
    cancelled = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    with frozen(broker):
        task = asyncio.create_task(cancelled.start())
        await _started(task)
        await _cancel(task)
    # The cancelled subscription is not live: a new one of the same filter is
    # the only one (no "same filter twice" warning) and gets the messages.
    fresh = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(fresh.start())
    publisher = await clients.connected(broker, version)
    await bounded(publisher.publish(topic, b"to the new one", qos=QoS.AT_LEAST_ONCE))
    assert (await next_message(fresh)).payload == b"to the new one"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # The cancelled one may be started again.
    await bounded(cancelled.start())
    await bounded(cancelled.stop())


async def test_block_left_by_cancellation_skips_unsubscribe(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    # Proof through a persistent session: the broker still has the
    # subscription after the cancelled block, so a message published while
    # the client is away is kept for it.
    session: dict[str, Any] = {
        "client_id": unique_id(),
        "clean_session": False,
        "session_expiry_interval": 600,
    }
    client = await clients.connected(broker, version, **session)
    entered = asyncio.Event()

    async def consume() -> None:
        async with client.subscribe(topic, qos=QoS.AT_LEAST_ONCE) as sub:
            entered.set()
            await sub.get_message()

    task = asyncio.create_task(consume())
    await bounded(entered.wait())
    await _cancel(task)
    await bounded(client.disconnect())
    publisher = await clients.connected(broker, version)
    await bounded(
        publisher.publish(topic, b"kept for the session", qos=QoS.AT_LEAST_ONCE)
    )
    back = await clients.connected(broker, version, **session)
    resumed = back.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(resumed.start())
    assert (await next_message(resumed)).payload == b"kept for the session"


async def test_cancelled_request_frees_its_slot(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker, "5.0", max_pending_requests=1)
    responder = await clients.connected(broker, "5.0")
    requests = responder.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(requests.start())
    task = asyncio.create_task(client.request(topic, b"never answered", timeout=30))
    assert (await next_message(requests)).payload == b"never answered"
    await _cancel(task)

    async def answer() -> None:
        request = await next_message(requests)
        properties = request.properties
        assert properties is not None and properties.response_topic is not None
        await responder.publish(
            properties.response_topic,
            b"answer",
            qos=QoS.AT_LEAST_ONCE,
            properties=type(properties)(correlation_data=properties.correlation_data),
        )

    answering = asyncio.create_task(answer())
    reply = await bounded(client.request(topic, b"answered", timeout=5))
    await bounded(answering)
    assert reply.payload == b"answer"


async def test_waiting_calls_do_not_block_the_loop(make_broker: BrokerFactory) -> None:
    broker = make_broker()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    client = MQTTClient(broker.host, broker.port, mqtt_connect_timeout=5)
    ticking = asyncio.create_task(ticker())
    try:
        with frozen(broker):
            # The CONNACK does not come while frozen: the loop keeps running.
            connecting = asyncio.create_task(client.connect())
            await asyncio.sleep(0.3)
            assert not connecting.done()
            assert ticks >= 10
        await bounded(connecting)
    finally:
        ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticking
        await client.disconnect()


# --------------------------------------------------------------------------- event loops


async def test_client_used_from_another_event_loop(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker)
    sub = client.subscribe(topic)
    await bounded(sub.start())

    def in_another_loop() -> list[str]:
        errors: list[str] = []
        calls = [
            lambda: client.publish(topic, b"x"),
            lambda: client.publish(topic, b"x", qos=QoS.AT_LEAST_ONCE),
            lambda: client.ping(),
            lambda: sub.get_message(),
            lambda: client.subscribe(f"{topic}/2").start(),
            lambda: client.disconnect(),
        ]
        for call in calls:
            try:
                asyncio.run(_await(call))
            except RuntimeError as error:
                errors.append(str(error))
        return errors

    errors = await bounded(asyncio.to_thread(in_another_loop))
    assert len(errors) == 6
    assert all("event loop" in error for error in errors), errors
    # The client still works on its own loop.
    await bounded(client.publish(topic, b"home", qos=QoS.AT_LEAST_ONCE))
    assert (await next_message(sub)).payload == b"home"


async def _await(call: Any) -> Any:
    return await call()


async def test_consecutive_asyncio_runs_share_a_client(
    broker: Broker, topic: str
) -> None:
    client = MQTTClient(broker.host, broker.port, client_id=unique_id())

    async def session(payload: bytes) -> bytes:
        async with client:
            sub = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
            async with sub:
                await client.publish(topic, payload, qos=QoS.AT_LEAST_ONCE)
                message = await asyncio.wait_for(sub.get_message(), 10)
                return message.payload

    def two_runs() -> list[bytes]:
        return [asyncio.run(session(b"first")), asyncio.run(session(b"second"))]

    assert await bounded(asyncio.to_thread(two_runs)) == [b"first", b"second"]


async def test_completions_in_one_batch_settle_every_future(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    # Hundreds of acknowledgements arrive while the loop is busy elsewhere:
    # they wake the loop once or a few times, and every future still gets
    # its outcome.
    client = await clients.connected(broker, version)
    sub = await clients.subscribed(
        broker, topic, version=version, qos=QoS.AT_LEAST_ONCE
    )
    publishes = [
        client.publish(topic, b"%d" % index, qos=QoS.AT_LEAST_ONCE)
        for index in range(300)
    ]
    outcomes = await bounded(asyncio.gather(*publishes, return_exceptions=True))
    assert outcomes == [None] * 300
    assert sorted(await payloads(sub, 300), key=int) == [b"%d" % i for i in range(300)]


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="needs /proc to count descriptors"
)
async def test_event_loops_that_are_gone_leave_no_descriptors(
    broker: Broker, topic: str
) -> None:
    # Each event loop that awaited a call gets a wake-up socket pair; it must
    # be released with the loop, or a program that runs many short loops
    # (one asyncio.run() per job) runs out of descriptors.
    client = MQTTClient(broker.host, broker.port, client_id=unique_id())

    async def job(index: int) -> None:
        async with client:
            await client.publish(topic, b"%d" % index, qos=QoS.AT_LEAST_ONCE)

    def runs(count: int) -> None:
        for index in range(count):
            asyncio.run(job(index))
        gc.collect()

    await bounded(asyncio.to_thread(runs, 2))
    before = _open_descriptors()
    await bounded(asyncio.to_thread(runs, 20))
    # 20 loops leaking a pair each would add 40.
    assert _open_descriptors() - before <= 2


@pytest.mark.skipif(
    importlib.util.find_spec("uvloop") is None,
    reason="uvloop is not installed (pip install uvloop)",
)
async def test_uvloop(broker: Broker, topic: str) -> None:
    uvloop: Any = importlib.import_module("uvloop")

    async def scenario(version: Version) -> list[bytes]:
        received: list[bytes] = []
        async with MQTTClient(broker.host, broker.port, version=version) as client:
            async with client.subscribe(topic, qos=QoS.EXACTLY_ONCE) as sub:
                for qos in QoS:
                    await client.publish(topic, b"%d" % qos, qos=qos)
                for _ in QoS:
                    received.append(
                        (await asyncio.wait_for(sub.get_message(), 10)).payload
                    )
            assert await client.ping() >= 0
            if version == "5.0":
                with pytest.raises(TimeoutError):
                    await client.request(f"{topic}/nobody", b"q", timeout=0.1)
        return received

    def run_on_uvloop() -> list[list[bytes]]:
        return [uvloop.run(scenario(version)) for version in VERSIONS]

    results = await bounded(asyncio.to_thread(run_on_uvloop), 30)
    assert results == [[b"0", b"1", b"2"]] * 2
