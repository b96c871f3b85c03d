"""SPEC 1.8: ``Message`` and acknowledgement. With ``auto_ack=False`` the
PUBACK/PUBREC is withheld until ``ack()``: an unacknowledged message is
redelivered through a persistent session, an acknowledged one is not; ``ack()``
is idempotent; unacknowledged messages count against the receive window."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from zmqtt import (
    Message,
    MQTTClient,
    MQTTDisconnectedError,
    PublishProperties,
    QoS,
    Subscription,
)

from integration.conftest import BrokerFactory, Clients
from integration.helpers import (
    Broker,
    Version,
    bounded,
    log_offset,
    log_since,
    next_message,
    unique_id,
    wait_connected,
)

ACKED_QOS = [QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE]


def _session(version: Version) -> dict[str, Any]:
    """Options of a persistent session (kept 10 minutes on 5.0)."""
    return {
        "client_id": unique_id(),
        "clean_session": False,
        "session_expiry_interval": 600,
        "version": version,
    }


async def test_message_fields(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic, version=version)
    publisher = await clients.connected(broker, version)
    await bounded(publisher.publish(topic, b"secret payload", qos=QoS.EXACTLY_ONCE))
    message = await next_message(sub)
    assert isinstance(message, Message)
    assert message.topic == topic
    assert message.payload == b"secret payload"
    assert message.qos is QoS.EXACTLY_ONCE
    assert message.retain is False
    if version == "5.0":
        assert isinstance(message.properties, PublishProperties)
    else:
        assert message.properties is None
    with pytest.raises(AttributeError):
        message.payload = b"changed"  # type: ignore[misc]
    assert "secret payload" not in repr(message)
    assert topic in repr(message)


async def test_application_made_message_ack_does_nothing() -> None:
    message = Message("a/b", b"x", QoS.AT_LEAST_ONCE, True)
    assert (message.topic, message.payload, message.qos, message.retain) == (
        "a/b",
        b"x",
        QoS.AT_LEAST_ONCE,
        True,
    )
    await bounded(message.ack())
    await bounded(message.ack())
    defaults = Message("t", b"")
    assert (defaults.qos, defaults.retain, defaults.properties) == (
        QoS.AT_MOST_ONCE,
        False,
        None,
    )


async def test_ack_returns_a_coroutine(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic, qos=QoS.AT_LEAST_ONCE)
    publisher = await clients.connected(broker)
    await bounded(publisher.publish(topic, b"x", qos=QoS.AT_LEAST_ONCE))
    message = await next_message(sub)
    # Usable with create_task like an ``async def``.
    await bounded(asyncio.create_task(message.ack()))


@pytest.mark.parametrize("qos", ACKED_QOS)
async def test_unacknowledged_message_is_redelivered(
    broker: Broker, clients: Clients, version: Version, topic: str, qos: QoS
) -> None:
    session = _session(version)
    client = await clients.connected(broker, **session)
    sub = client.subscribe(topic, qos=qos, auto_ack=False)
    await bounded(sub.start())
    publisher = await clients.connected(broker, version)
    await bounded(publisher.publish(topic, b"unacked", qos=qos))
    assert (await next_message(sub)).payload == b"unacked"
    # Not acknowledged: the broker still holds the delivery for the session.
    await bounded(client.disconnect())

    back = await clients.connected(broker, **session)
    assert back.connection_info.session_present is True
    again = back.subscribe(topic, qos=qos, auto_ack=False)
    await bounded(again.start())
    redelivered = await next_message(again)
    assert redelivered.payload == b"unacked"
    await bounded(redelivered.ack())


@pytest.mark.parametrize("qos", ACKED_QOS)
@pytest.mark.parametrize("auto_ack", [False, True])
async def test_acknowledged_message_is_not_redelivered(
    broker: Broker,
    clients: Clients,
    version: Version,
    topic: str,
    qos: QoS,
    auto_ack: bool,
) -> None:
    session = _session(version)
    client = await clients.connected(broker, **session)
    sub = client.subscribe(topic, qos=qos, auto_ack=auto_ack)
    await bounded(sub.start())
    publisher = await clients.connected(broker, version)
    await bounded(publisher.publish(topic, b"acked", qos=qos))
    message = await next_message(sub)
    if not auto_ack:
        await bounded(message.ack())
    await bounded(client.disconnect())

    back = await clients.connected(broker, **session)
    assert back.connection_info.session_present is True
    again = back.subscribe(topic, qos=qos)
    await bounded(again.start())
    await bounded(publisher.publish(topic, b"sentinel", qos=qos))
    assert (await next_message(again)).payload == b"sentinel"


@pytest.mark.parametrize("qos", ACKED_QOS)
async def test_ack_is_idempotent(
    broker: Broker, clients: Clients, version: Version, topic: str, qos: QoS
) -> None:
    client_id = unique_id()
    client = await clients.connected(broker, version, client_id=client_id)
    sub = client.subscribe(topic, qos=qos, auto_ack=False)
    await bounded(sub.start())
    publisher = await clients.connected(broker, version)
    offset = log_offset(broker)
    await bounded(publisher.publish(topic, b"once", qos=qos))
    message = await next_message(sub)
    for _ in range(3):
        await bounded(message.ack())
    # One acknowledgement reached the broker: a second PUBACK/PUBREC for the
    # same packet id would be a protocol error to mosquitto.
    await bounded(publisher.publish(topic, b"next", qos=qos))
    next_one = await next_message(sub)
    assert next_one.payload == b"next"
    await bounded(next_one.ack())
    assert await bounded(client.ping()) >= 0
    assert client.connection_info.connection_id == 1
    assert "protocol error" not in log_since(broker, offset)


async def test_ack_with_auto_ack_and_qos0_does_nothing(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    auto = await clients.subscribed(
        broker, f"{topic}/auto", version=version, qos=QoS.AT_LEAST_ONCE
    )
    manual_client = await clients.connected(broker, version)
    qos0 = manual_client.subscribe(
        f"{topic}/qos0", qos=QoS.AT_MOST_ONCE, auto_ack=False
    )
    await bounded(qos0.start())
    publisher = await clients.connected(broker, version)
    await bounded(publisher.publish(f"{topic}/auto", b"a", qos=QoS.AT_LEAST_ONCE))
    await bounded(publisher.publish(f"{topic}/qos0", b"b"))
    for message in (await next_message(auto), await next_message(qos0)):
        await bounded(message.ack())
        await bounded(message.ack())
    assert await bounded(manual_client.ping()) >= 0


async def _window_of_two(
    sub_client: MQTTClient, publisher: MQTTClient, topic: str
) -> tuple[Subscription, Message, Message]:
    """Publishes 5 QoS 1 messages to a manual-ack subscription whose window
    is 2: the first two arrive, the third is held back while none is acked."""
    sub = sub_client.subscribe(topic, qos=QoS.AT_LEAST_ONCE, auto_ack=False)
    await bounded(sub.start())
    for index in range(5):
        await bounded(publisher.publish(topic, b"%d" % index, qos=QoS.AT_LEAST_ONCE))
    first = await next_message(sub)
    second = await next_message(sub)
    assert (first.payload, second.payload) == (b"0", b"1")
    third = asyncio.create_task(sub.get_message())
    done, _ = await asyncio.wait({third}, timeout=0.3)
    assert not done, "the broker sent more than the window while none was acknowledged"
    third.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await third
    return sub, first, second


async def test_unacknowledged_messages_fill_the_receive_window_311(
    make_broker: BrokerFactory, clients: Clients, topic: str
) -> None:
    # 3.1.1: mosquitto's max_inflight_messages (2) is the window. Withheld
    # acknowledgements hold it; each ack lets the next message through.
    broker = make_broker(max_inflight_messages=2)
    client = await clients.connected(broker)
    publisher = await clients.connected(broker)
    sub, first, second = await _window_of_two(client, publisher, topic)
    await bounded(first.ack())
    third = await next_message(sub)
    assert third.payload == b"2"
    await bounded(second.ack())
    await bounded(third.ack())
    for expected in (b"3", b"4"):
        message = await next_message(sub)
        assert message.payload == expected
        await bounded(message.ack())
    assert client.connection_info.connection_id == 1


async def test_unacknowledged_messages_fill_the_receive_window_50(
    broker: Broker, clients: Clients, topic: str
) -> None:
    # 5.0: our Receive Maximum (2) is the window; manual-ack messages count.
    # (Only the first window is checked: after a PUBACK, mosquitto 2.0.11 sends
    # two more messages where one fits -- seen on the wire -- which the client
    # rightly treats as a Receive Maximum violation; test_errors checks that
    # reaction with a scripted broker.)
    client = await clients.connected(broker, "5.0", receive_maximum=2)
    publisher = await clients.connected(broker, "5.0")
    await _window_of_two(client, publisher, topic)
    assert client.connection_info.connection_id == 1


async def test_acknowledging_out_of_order(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    session = _session(version)
    client = await clients.connected(broker, **session)
    sub = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE, auto_ack=False)
    await bounded(sub.start())
    publisher = await clients.connected(broker, version)
    for payload in (b"m1", b"m2", b"m3"):
        await bounded(publisher.publish(topic, payload, qos=QoS.AT_LEAST_ONCE))
    m1 = await next_message(sub)
    m2 = await next_message(sub)
    m3 = await next_message(sub)
    assert (m1.payload, m2.payload, m3.payload) == (b"m1", b"m2", b"m3")
    # Acknowledged in another order than received: all end up acknowledged.
    await bounded(m3.ack())
    await bounded(m1.ack())
    await bounded(m2.ack())
    await bounded(client.disconnect())
    back = await clients.connected(broker, **session)
    again = back.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(again.start())
    await bounded(publisher.publish(topic, b"sentinel", qos=QoS.AT_LEAST_ONCE))
    assert (await next_message(again)).payload == b"sentinel"


async def test_ack_after_the_connection_was_lost_and_redelivery(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    client = await clients.connected(broker, **_session(version))
    sub = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE, auto_ack=False)
    await bounded(sub.start())
    publisher = await clients.connected(broker, version)
    await bounded(publisher.publish(topic, b"pending", qos=QoS.AT_LEAST_ONCE))
    old = await next_message(sub)
    await bounded(client.reset())
    await wait_connected(client, 2)
    # The delivery belonged to the lost connection ...
    with pytest.raises(MQTTDisconnectedError):
        await bounded(old.ack())
    # ... and the resumed session delivers it again.
    redelivered = await next_message(sub)
    assert redelivered.payload == b"pending"
    await bounded(redelivered.ack())
