"""SPEC 1.7: ``Subscription`` -- ``async with``/``start()``/``stop()``/``detach()``,
``get_message()`` and ``async for``, routing to the most specific filter,
``$share``, the same filter twice, ``topic_matches``, SUBACK refusals and the
bounded queue; the 5.0 subscription options."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from zmqtt import (
    Message,
    MQTTClient,
    MQTTDisconnectedError,
    MQTTInvalidTopicError,
    MQTTSubscribeError,
    QoS,
    RetainHandling,
    Subscription,
    UnsubscribeResult,
    topic_matches,
)

from integration.conftest import Clients, start_broker
from integration.helpers import (
    Broker,
    Version,
    bounded,
    next_message,
    payloads,
    unique_id,
)

# What mosquitto's SUBACK says for a filter it refuses (dynamic security ACL).
REFUSED_SUBACK_CODE: dict[Version, int] = {"3.1.1": 0x80, "5.0": 0x87}


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    """The module's broker refuses subscriptions to ``denied/#``."""
    started = start_broker(deny_subscribe=["denied/#"])
    try:
        yield started
    finally:
        started.stop()


async def _publish(publisher: MQTTClient, *messages: tuple[str, bytes]) -> None:
    for topic, payload in messages:
        await bounded(publisher.publish(topic, payload, qos=QoS.AT_LEAST_ONCE))


# --------------------------------------------------------------------------- lifecycle


async def test_async_with_subscribes_and_ends(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    client = await clients.connected(broker, version)
    publisher = await clients.connected(broker, version)
    async with client.subscribe(topic, qos=QoS.AT_LEAST_ONCE) as sub:
        assert isinstance(sub, Subscription)
        assert sub.filters == (topic,)
        await _publish(publisher, (topic, b"inside"))
        assert (await next_message(sub)).payload == b"inside"
    with pytest.raises(MQTTDisconnectedError):
        await bounded(sub.get_message())


async def test_stop_unsubscribes_and_returns_the_unsuback(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    client = await clients.connected(broker, version)
    sub = client.subscribe(topic, f"{topic}/second")
    await bounded(sub.start())
    result = await bounded(sub.stop())
    assert isinstance(result, UnsubscribeResult)
    assert result.topic_filters == (topic, f"{topic}/second")
    assert result.failures == {}
    if version == "5.0":
        # 0x00 Success (not 0x11 "No subscription existed"): the broker had them.
        assert result.reason_codes == (0, 0)
        assert result.properties is not None
    else:
        assert result.reason_codes == ()
        assert result.properties is None
        assert result.user_properties == ()
    assert result.reason_string is None
    # Stopping again, or a subscription never started, sends nothing.
    assert await bounded(sub.stop()) is None
    assert await bounded(client.subscribe(f"{topic}/never").stop()) is None


async def test_stop_when_disconnected_returns_none(
    broker: Broker, version: Version, topic: str
) -> None:
    client = MQTTClient(broker.host, broker.port, version=version)
    await bounded(client.connect())
    sub = client.subscribe(topic)
    await bounded(sub.start())
    await bounded(client.disconnect())
    assert await bounded(sub.stop()) is None


async def test_start_and_stop_by_hand_and_start_again(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    client = await clients.connected(broker, version)
    publisher = await clients.connected(broker, version)
    sub = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(sub.start())
    with pytest.raises(RuntimeError, match="already started"):
        await sub.start()
    await _publish(publisher, (topic, b"first"))
    assert (await next_message(sub)).payload == b"first"
    await bounded(sub.stop())
    # A stopped subscription may be started again.
    await bounded(sub.start())
    await _publish(publisher, (topic, b"second"))
    assert (await next_message(sub)).payload == b"second"
    await bounded(sub.stop())


async def test_start_when_not_connected(broker: Broker, topic: str) -> None:
    client = MQTTClient(broker.host, broker.port)
    with pytest.raises(MQTTDisconnectedError):
        await bounded(client.subscribe(topic).start())


async def test_detach_keeps_the_broker_subscription(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    # detach() sends no UNSUBSCRIBE: the persistent session keeps the
    # subscription, so a message published while the client is away is kept
    # for it and delivered when it comes back.
    client_id = unique_id()
    session: dict[str, Any] = {"client_id": client_id, "clean_session": False}
    client = await clients.connected(
        broker, version, session_expiry_interval=600, **session
    )
    sub = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(sub.start())
    await bounded(sub.detach())
    await bounded(sub.detach())  # idempotent
    with pytest.raises(MQTTDisconnectedError, match="detached"):
        await bounded(sub.get_message())
    with pytest.raises(RuntimeError, match="detached"):
        await sub.start()
    await bounded(client.disconnect())

    publisher = await clients.connected(broker, version)
    await _publish(publisher, (topic, b"while away"))

    back = await clients.connected(
        broker, version, session_expiry_interval=600, **session
    )
    assert back.connection_info.session_present is True
    resumed = back.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(resumed.start())
    assert (await next_message(resumed)).payload == b"while away"


async def test_stop_removes_the_broker_subscription(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    # The counterpart of the test above: after stop() (UNSUBSCRIBE) nothing is
    # kept for the session.
    client_id = unique_id()
    session: dict[str, Any] = {"client_id": client_id, "clean_session": False}
    client = await clients.connected(
        broker, version, session_expiry_interval=600, **session
    )
    sub = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(sub.start())
    await bounded(sub.stop())
    await bounded(client.disconnect())

    publisher = await clients.connected(broker, version)
    await _publish(publisher, (topic, b"while away"))

    back = await clients.connected(
        broker, version, session_expiry_interval=600, **session
    )
    assert back.connection_info.session_present is True
    resumed = back.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(resumed.start())
    await _publish(publisher, (topic, b"after"))
    assert (await next_message(resumed)).payload == b"after"


# --------------------------------------------------------------------------- delivery


async def test_get_message_in_arrival_order(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    sub = await clients.subscribed(
        broker, topic, version=version, qos=QoS.AT_LEAST_ONCE
    )
    publisher = await clients.connected(broker, version)
    await _publish(publisher, *((topic, b"%d" % i) for i in range(50)))
    assert await payloads(sub, 50) == [b"%d" % i for i in range(50)]


async def test_async_for_in_arrival_order_and_ends_on_stop(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    client = await clients.connected(broker, version)
    publisher = await clients.connected(broker, version)
    sub = client.subscribe(f"{topic}/#", qos=QoS.AT_LEAST_ONCE)
    await bounded(sub.start())
    await _publish(publisher, *((f"{topic}/{i}", b"%d" % i) for i in range(10)))
    received: list[Message] = []

    async def consume() -> None:
        async for message in sub:
            received.append(message)
            if len(received) == 10:
                # Stopping from inside ends the iteration.
                await sub.stop()

    await bounded(consume())
    assert [m.payload for m in received] == [b"%d" % i for i in range(10)]
    assert [m.topic for m in received] == [f"{topic}/{i}" for i in range(10)]


async def test_async_for_ends_when_the_client_disconnects(
    broker: Broker, version: Version, topic: str
) -> None:
    client = MQTTClient(broker.host, broker.port, version=version)
    await bounded(client.connect())
    sub = client.subscribe(topic)
    await bounded(sub.start())

    async def consume() -> int:
        return len([message async for message in sub])

    consuming = asyncio.create_task(consume())
    done, _ = await asyncio.wait({consuming}, timeout=0.05)
    assert not done
    await bounded(client.disconnect())
    assert await bounded(consuming) == 0


async def test_several_waiters_on_one_subscription(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic, qos=QoS.AT_LEAST_ONCE)
    publisher = await clients.connected(broker)
    waiters = [asyncio.create_task(sub.get_message()) for _ in range(3)]
    await _publish(publisher, *((topic, b"%d" % i) for i in range(3)))
    messages = await bounded(asyncio.gather(*waiters))
    assert sorted(m.payload for m in messages) == [b"0", b"1", b"2"]


async def test_several_filters_in_one_subscription(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    sub = await clients.subscribed(
        broker, f"{topic}/a", f"{topic}/b/+", version=version, qos=QoS.AT_LEAST_ONCE
    )
    publisher = await clients.connected(broker, version)
    await _publish(publisher, (f"{topic}/a", b"a"), (f"{topic}/b/x", b"b"))
    assert await payloads(sub, 2) == [b"a", b"b"]


@pytest.mark.parametrize(
    ("subscribed", "published", "delivered"),
    [
        (QoS.AT_MOST_ONCE, QoS.EXACTLY_ONCE, QoS.AT_MOST_ONCE),
        (QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE, QoS.AT_LEAST_ONCE),
        (QoS.EXACTLY_ONCE, QoS.AT_LEAST_ONCE, QoS.AT_LEAST_ONCE),
        (QoS.EXACTLY_ONCE, QoS.EXACTLY_ONCE, QoS.EXACTLY_ONCE),
    ],
)
async def test_delivered_qos_is_the_lower_one(
    broker: Broker,
    clients: Clients,
    version: Version,
    topic: str,
    subscribed: QoS,
    published: QoS,
    delivered: QoS,
) -> None:
    sub = await clients.subscribed(broker, topic, version=version, qos=subscribed)
    publisher = await clients.connected(broker, version)
    await bounded(publisher.publish(topic, b"x", qos=published))
    assert (await next_message(sub)).qos == delivered


# --------------------------------------------------------------------------- routing


async def _until(sub: Subscription, last: bytes) -> list[bytes]:
    """Payloads of ``sub`` up to ``last`` included, consecutive copies merged:
    mosquitto may send one copy per matching subscription of the client, and
    every copy of a message goes to the same subscription."""
    seen: list[bytes] = []
    while not seen or seen[-1] != last:
        payload = (await next_message(sub)).payload
        if not seen or seen[-1] != payload:
            seen.append(payload)
    return seen


async def test_routing_to_the_most_specific_filter(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    client = await clients.connected(broker, version)
    publisher = await clients.connected(broker, version)
    everything = client.subscribe(f"{topic}/#", qos=QoS.AT_LEAST_ONCE)
    one_level = client.subscribe(f"{topic}/+/c", qos=QoS.AT_LEAST_ONCE)
    exact = client.subscribe(f"{topic}/b/c", qos=QoS.AT_LEAST_ONCE)
    for sub in (everything, one_level, exact):
        await bounded(sub.start())
    await _publish(
        publisher,
        (f"{topic}/b/c", b"exact"),
        (f"{topic}/x/c", b"one level"),
        (f"{topic}/x/y", b"everything"),
        (f"{topic}/b/c", b"exact 2"),
        (f"{topic}/q/c", b"one level 2"),
        (f"{topic}", b"everything 2"),  # "#" matches its parent level too
        (f"{topic}/b/c", b"end exact"),
        (f"{topic}/q/c", b"end one level"),
        (f"{topic}/z", b"end everything"),
    )
    assert await _until(exact, b"end exact") == [b"exact", b"exact 2", b"end exact"]
    assert await _until(one_level, b"end one level") == [
        b"one level",
        b"one level 2",
        b"end one level",
    ]
    assert await _until(everything, b"end everything") == [
        b"everything",
        b"everything 2",
        b"end everything",
    ]


async def test_literal_beats_plus_beats_hash_level_by_level(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker)
    publisher = await clients.connected(broker)
    # For <t>/b/c: level 2 decides ("b" beats "+"), whatever comes after.
    plus_then_literal = client.subscribe(f"{topic}/+/c", qos=QoS.AT_LEAST_ONCE)
    literal_then_hash = client.subscribe(f"{topic}/b/#", qos=QoS.AT_LEAST_ONCE)
    await bounded(plus_then_literal.start())
    await bounded(literal_then_hash.start())
    await _publish(
        publisher,
        (f"{topic}/b/c", b"to literal"),
        (f"{topic}/x/c", b"to plus"),
        (f"{topic}/b/end", b"end literal"),
    )
    assert await _until(literal_then_hash, b"end literal") == [
        b"to literal",
        b"end literal",
    ]
    assert (await next_message(plus_then_literal)).payload == b"to plus"


async def test_same_filter_twice_the_second_gets_nothing_and_a_warning(
    broker: Broker,
    clients: Clients,
    version: Version,
    topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="zmqtt.client")
    client = await clients.connected(broker, version)
    publisher = await clients.connected(broker, version)
    first = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    second = client.subscribe(topic, f"{topic}/only-second", qos=QoS.AT_LEAST_ONCE)
    await bounded(first.start())
    await bounded(second.start())
    await _publish(
        publisher, (topic, b"shared filter"), (f"{topic}/only-second", b"own")
    )
    assert (await next_message(first)).payload == b"shared filter"
    assert (await next_message(second)).payload == b"own"
    warnings = [
        r
        for r in caplog.records
        if r.name == "zmqtt.client" and r.levelno == logging.WARNING
    ]
    assert any(topic in r.getMessage() for r in warnings), [
        r.getMessage() for r in warnings
    ]


async def test_tie_goes_to_the_first_registered_with_a_warning(
    broker: Broker,
    clients: Clients,
    topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # "$share/g/<t>" matches on "<t>": the same specificity as "<t>" itself.
    caplog.set_level(logging.WARNING, logger="zmqtt.client")
    client = await clients.connected(broker)
    publisher = await clients.connected(broker)
    first = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    second = client.subscribe(
        f"$share/g/{topic}", f"{topic}/sentinel", qos=QoS.AT_LEAST_ONCE
    )
    await bounded(first.start())
    await bounded(second.start())
    await _publish(publisher, (topic, b"tie"), (f"{topic}/sentinel", b"sentinel"))
    assert (await next_message(first)).payload == b"tie"
    assert (await next_message(second)).payload == b"sentinel"
    assert any(
        r.name == "zmqtt.client" and r.levelno == logging.WARNING
        for r in caplog.records
    )


async def test_shared_subscription_splits_messages(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    group = f"$share/group-{unique_id()}/{topic}"
    subs = [
        await clients.subscribed(broker, group, version=version, qos=QoS.AT_LEAST_ONCE)
        for _ in range(2)
    ]
    publisher = await clients.connected(broker, version)
    count = 20
    await _publish(publisher, *((topic, b"%02d" % i) for i in range(count)))
    received = await bounded(_collect(subs, count))
    # Each message reached exactly one member of the group, with its real topic.
    assert sorted(m.payload for m in received) == [b"%02d" % i for i in range(count)]
    assert {m.topic for m in received} == {topic}


async def _collect(subs: list[Subscription], count: int) -> list[Message]:
    """The next ``count`` messages from any of ``subs``."""
    received: list[Message] = []
    pending = {asyncio.create_task(sub.get_message()): sub for sub in subs}
    try:
        while len(received) < count:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                sub = pending.pop(task)
                received.append(task.result())
                pending[asyncio.create_task(sub.get_message())] = sub
    finally:
        for task in pending:
            task.cancel()
    return received


@pytest.mark.parametrize(
    ("topic_filter", "topic", "stripped", "expected"),
    [
        ("a/b", "a/b", None, True),
        ("a/+", "a/b", None, True),
        ("a/+", "a/b/c", None, False),
        ("a/#", "a", None, True),  # "#" also matches the parent level
        ("a/#", "a/b/c", None, True),
        ("#", "a/b", None, True),
        ("+/+", "/x", None, True),
        ("a/b", "a/c", None, False),
        ("A/b", "a/b", None, False),
        ("#", "$SYS/x", None, False),  # MQTT-4.7.2-1
        ("+/x", "$SYS/x", None, False),
        ("$SYS/#", "$SYS/x", None, True),
        ("$share/g/a/+", "a/b", None, True),
        ("$share/g/#", "$SYS/x", None, False),
        ("$queue/a/b", "a/b", None, True),
        ("$exclusive/a/+", "a/b", None, True),
        ("$queue/a/b", "a/b", (), False),
        ("$custom/a", "a", ("$custom",), True),
    ],
)
def test_topic_matches(
    topic_filter: str, topic: str, stripped: tuple[str, ...] | None, expected: bool
) -> None:
    if stripped is None:
        assert topic_matches(topic_filter, topic) is expected
    else:
        assert (
            topic_matches(topic_filter, topic, stripped_prefixes=stripped) is expected
        )


@pytest.mark.parametrize(
    "bad", ["a/#/b", "a#", "a/b+", "", "$share/g", "$share//a", "a\x00"]
)
def test_topic_matches_refuses_invalid_filters(bad: str) -> None:
    with pytest.raises(MQTTInvalidTopicError):
        topic_matches(bad, "a")


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "bad",
    ["a/#/b", "a#", "a/b+", "#/a", "", "$share/g", "$share//a", "$share/g+/a", "a\x00"],
)
def test_invalid_filters_are_refused_without_io(bad: str) -> None:
    client = MQTTClient("192.0.2.1", 9)  # never connected
    with pytest.raises(MQTTInvalidTopicError):
        client.subscribe(bad)
    with pytest.raises(MQTTInvalidTopicError):
        client.subscribe("valid/filter", bad)


def test_subscribe_needs_a_filter() -> None:
    with pytest.raises(ValueError):
        MQTTClient("localhost").subscribe()


async def test_suback_refusal_raises_subscribe_error(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    client = await clients.connected(broker, version)
    denied = f"denied/{topic}"
    sub = client.subscribe(denied)
    with pytest.raises(MQTTSubscribeError) as refused:
        await bounded(sub.start())
    assert refused.value.failures == {denied: REFUSED_SUBACK_CODE[version]}
    assert f"0x{REFUSED_SUBACK_CODE[version]:02X}" in str(refused.value)
    # A failed subscription has ended.
    with pytest.raises(MQTTDisconnectedError):
        await bounded(sub.get_message())
    # The connection goes on.
    assert await bounded(client.ping()) >= 0


async def test_partial_suback_refusal(
    broker: Broker,
    clients: Clients,
    version: Version,
    topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="zmqtt.client")
    client = await clients.connected(broker, version)
    publisher = await clients.connected(broker, version)
    denied = f"denied/{topic}"
    sub = client.subscribe(topic, denied, qos=QoS.AT_LEAST_ONCE)
    with pytest.raises(MQTTSubscribeError) as refused:
        await bounded(sub.start())
    # Only the refused filter is reported.
    assert refused.value.failures == {denied: REFUSED_SUBACK_CODE[version]}
    # The accepted filter was given back: a new subscription to it is the only
    # live one for that filter (no "same filter twice" warning) and gets its messages.
    caplog.clear()
    again = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(again.start())
    await _publish(publisher, (topic, b"accepted"))
    assert (await next_message(again)).payload == b"accepted"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --------------------------------------------------------------------------- bounded queue


@pytest.mark.parametrize("buffer_size", [1, 5, 0])
async def test_bounded_queue_loses_nothing(
    broker: Broker, clients: Clients, version: Version, topic: str, buffer_size: int
) -> None:
    client = await clients.connected(broker, version)
    sub = client.subscribe(
        topic, qos=QoS.AT_LEAST_ONCE, receive_buffer_size=buffer_size
    )
    await bounded(sub.start())
    publisher = await clients.connected(broker, version)
    count = 200
    # Published without reading: the queue fills and the client pauses reading
    # the socket instead of dropping (or growing without bound).
    await _publish(publisher, *((topic, b"%d" % i) for i in range(count)))
    assert await payloads(sub, count) == [b"%d" % i for i in range(count)]
    # Reading resumed: the connection is healthy.
    assert client.connection_info.connection_id == 1
    assert await bounded(client.ping()) >= 0


async def test_full_queue_loses_nothing_of_the_other_subscriptions(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker)
    small = client.subscribe(
        f"{topic}/small", qos=QoS.AT_LEAST_ONCE, receive_buffer_size=2
    )
    other = client.subscribe(f"{topic}/other", qos=QoS.AT_LEAST_ONCE)
    await bounded(small.start())
    await bounded(other.start())
    publisher = await clients.connected(broker)
    await _publish(publisher, *((f"{topic}/small", b"%d" % i) for i in range(20)))
    await _publish(publisher, (f"{topic}/other", b"behind"))
    # Reading the small subscription lets everything through, in order.
    assert await payloads(small, 20) == [b"%d" % i for i in range(20)]
    assert (await next_message(other)).payload == b"behind"


def test_receive_buffer_size_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="receive_buffer_size"):
        MQTTClient("localhost").subscribe("a", receive_buffer_size=-1)


# --------------------------------------------------------------------------- 5.0 options


async def test_no_local(broker: Broker, clients: Clients, topic: str) -> None:
    client = await clients.connected(broker, "5.0")
    other = await clients.connected(broker, "5.0")
    sub = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE, no_local=True)
    await bounded(sub.start())
    await bounded(client.publish(topic, b"own", qos=QoS.AT_LEAST_ONCE))
    await bounded(other.publish(topic, b"other", qos=QoS.AT_LEAST_ONCE))
    assert (await next_message(sub)).payload == b"other"


@pytest.mark.parametrize("retain_as_published", [True, False])
async def test_retain_as_published(
    broker: Broker, clients: Clients, topic: str, retain_as_published: bool
) -> None:
    sub = await clients.connected(broker, "5.0")
    publisher = await clients.connected(broker, "5.0")
    live = sub.subscribe(
        topic, qos=QoS.AT_LEAST_ONCE, retain_as_published=retain_as_published
    )
    await bounded(live.start())
    await bounded(publisher.publish(topic, b"r", qos=QoS.AT_LEAST_ONCE, retain=True))
    assert (await next_message(live)).retain is retain_as_published
    await bounded(publisher.publish(topic, b"", qos=QoS.AT_LEAST_ONCE, retain=True))


async def test_retain_handling(broker: Broker, clients: Clients, topic: str) -> None:
    publisher = await clients.connected(broker, "5.0")
    await bounded(
        publisher.publish(topic, b"retained", qos=QoS.AT_LEAST_ONCE, retain=True)
    )
    client = await clients.connected(broker, "5.0")
    not_sent = client.subscribe(
        topic, f"{topic}/sentinel", retain_handling=RetainHandling.DO_NOT_SEND
    )
    await bounded(not_sent.start())
    await bounded(
        publisher.publish(f"{topic}/sentinel", b"sentinel", qos=QoS.AT_LEAST_ONCE)
    )
    assert (await next_message(not_sent)).payload == b"sentinel"
    await bounded(not_sent.stop())

    sent = client.subscribe(topic, retain_handling=RetainHandling.SEND_IF_NOT_EXISTS)
    await bounded(sent.start())
    message = await next_message(sent)
    assert (message.payload, message.retain) == (b"retained", True)
    await bounded(publisher.publish(topic, b"", qos=QoS.AT_LEAST_ONCE, retain=True))


async def test_subscription_identifier(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.connected(broker, "5.0")
    publisher = await clients.connected(broker, "5.0")
    tagged = sub.subscribe(topic, qos=QoS.AT_LEAST_ONCE, subscription_identifier=4242)
    await bounded(tagged.start())
    await bounded(publisher.publish(topic, b"x", qos=QoS.AT_LEAST_ONCE))
    message = await next_message(tagged)
    assert message.properties is not None
    assert message.properties.subscription_identifier == 4242


async def test_subscription_identifiers_decide_the_route(
    broker: Broker, clients: Clients, topic: str
) -> None:
    # mosquitto sends one copy per matching subscription, each with its own
    # identifier: each copy goes to the subscription its identifier names,
    # although the exact filter is more specific.
    client = await clients.connected(broker, "5.0")
    publisher = await clients.connected(broker, "5.0")
    broad = client.subscribe(
        f"{topic}/#", qos=QoS.AT_LEAST_ONCE, subscription_identifier=1
    )
    exact = client.subscribe(
        f"{topic}/a", qos=QoS.AT_LEAST_ONCE, subscription_identifier=2
    )
    await bounded(broad.start())
    await bounded(exact.start())
    await bounded(publisher.publish(f"{topic}/a", b"both", qos=QoS.AT_LEAST_ONCE))
    from_broad = await next_message(broad)
    from_exact = await next_message(exact)
    assert from_broad.payload == from_exact.payload == b"both"
    assert from_broad.properties is not None and from_exact.properties is not None
    assert from_broad.properties.subscription_identifier == 1
    assert from_exact.properties.subscription_identifier == 2


@pytest.mark.parametrize("identifier", [0, 268_435_456])
def test_subscription_identifier_range(identifier: int) -> None:
    client = MQTTClient("localhost", version="5.0")
    with pytest.raises(ValueError, match="subscription_identifier"):
        client.subscribe("a", subscription_identifier=identifier)
