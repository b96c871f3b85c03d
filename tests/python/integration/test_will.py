"""SPEC 1.6: the Will. Published by the broker when the connection ends without
DISCONNECT, not after a clean ``disconnect()``; sent again in every CONNECT
(reconnects included); QoS, retain and the 5.0 Will properties are honoured."""

from __future__ import annotations

import pytest
from zmqtt import MQTTInvalidTopicError, QoS, Will, WillProperties

from integration.conftest import Clients
from integration.helpers import (
    Broker,
    Version,
    bounded,
    log_offset,
    next_message,
    unique_id,
    wait_connected,
    wait_for_log,
)


def test_will_defaults_and_payload_types() -> None:
    will = Will("t", "gone")
    assert will.payload == b"gone"
    assert will.qos == QoS.AT_MOST_ONCE
    assert will.retain is False
    assert will.properties is None
    # Documented to take any bytes-like payload (typed ``bytes | str``).
    assert Will("t", bytearray(b"x")).payload == b"x"  # type: ignore[arg-type]
    assert Will("t", memoryview(b"y")).payload == b"y"  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Will("t", b"x", qos=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("qos", [QoS.AT_MOST_ONCE, QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE])
async def test_will_published_when_the_connection_is_lost(
    broker: Broker, clients: Clients, version: Version, topic: str, qos: QoS
) -> None:
    sub = await clients.subscribed(broker, topic, version=version)
    client = await clients.connected(broker, version, will=Will(topic, "gone", qos=qos))
    # reset() drops the socket without DISCONNECT, as a network failure would.
    await bounded(client.reset())
    message = await next_message(sub)
    assert message.topic == topic
    assert message.payload == b"gone"
    assert message.qos == qos
    assert message.retain is False


async def test_will_not_published_after_disconnect(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic, version=version)
    client_id = unique_id()
    client = await clients.connected(
        broker, version, client_id=client_id, will=Will(topic, b"gone")
    )
    offset = log_offset(broker)
    await bounded(client.disconnect())
    await wait_for_log(broker, f"Client {client_id} disconnected.", offset)
    # The broker has dealt with the DISCONNECT: had it published the Will, it
    # would come before this message.
    publisher = await clients.connected(broker, version)
    await bounded(publisher.publish(topic, b"sentinel", qos=QoS.AT_LEAST_ONCE))
    assert (await next_message(sub)).payload == b"sentinel"


async def test_will_sent_again_on_every_reconnect(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic, version=version)
    client = await clients.connected(broker, version, will=Will(topic, b"gone"))
    for connection in (1, 2, 3):
        await wait_connected(client, connection)
        await bounded(client.reset())
        assert (await next_message(sub)).payload == b"gone"


async def test_retained_will(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    live = await clients.subscribed(broker, topic, version=version)
    client = await clients.connected(
        broker, version, will=Will(topic, b"last", qos=QoS.AT_LEAST_ONCE, retain=True)
    )
    await bounded(client.reset())
    # Delivered live first (not flagged retained to an existing subscription) ...
    assert (await next_message(live)).payload == b"last"
    # ... and kept: a new subscription gets it as a retained message.
    later = await clients.subscribed(broker, topic, version=version)
    retained = await next_message(later)
    assert (retained.payload, retained.retain, retained.qos) == (
        b"last",
        True,
        QoS.AT_LEAST_ONCE,
    )
    await wait_connected(client, 2)
    await bounded(client.publish(topic, b"", qos=QoS.AT_LEAST_ONCE, retain=True))


async def test_will_properties_on_50(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic, version="5.0")
    properties = WillProperties(
        will_delay_interval=0,
        payload_format_indicator=1,
        message_expiry_interval=300,
        content_type="text/plain",
        response_topic=f"{topic}/response",
        correlation_data=b"\x00\x01corr",
        user_properties=(("who", "client"), ("who", "again"), ("why", "test")),
    )
    client = await clients.connected(
        broker,
        "5.0",
        will=Will(topic, "gone", qos=QoS.AT_LEAST_ONCE, properties=properties),
    )
    await bounded(client.reset())
    message = await next_message(sub)
    assert message.payload == b"gone"
    received = message.properties
    assert received is not None
    assert received.payload_format_indicator == 1
    assert received.message_expiry_interval is not None
    assert 0 < received.message_expiry_interval <= 300
    assert received.content_type == "text/plain"
    assert received.response_topic == f"{topic}/response"
    assert received.correlation_data == b"\x00\x01corr"
    assert received.user_properties == (
        ("who", "client"),
        ("who", "again"),
        ("why", "test"),
    )


async def test_will_delay_interval_cancelled_by_a_quick_reconnect(
    broker: Broker, clients: Clients, topic: str
) -> None:
    # 5.0: with a Will Delay, a reconnect within the delay (same session)
    # cancels the Will.
    sub = await clients.subscribed(broker, topic, version="5.0")
    client = await clients.connected(
        broker,
        "5.0",
        client_id=unique_id(),
        clean_session=False,
        session_expiry_interval=600,
        will=Will(topic, b"delayed", properties=WillProperties(will_delay_interval=30)),
    )
    await bounded(client.reset())
    await wait_connected(client, 2)
    assert client.connection_info.session_present is True
    publisher = await clients.connected(broker, "5.0")
    await bounded(publisher.publish(topic, b"sentinel", qos=QoS.AT_LEAST_ONCE))
    assert (await next_message(sub)).payload == b"sentinel"


def test_will_properties_need_50() -> None:
    from zmqtt import MQTTClient

    with pytest.raises(RuntimeError, match="^will properties require MQTT 5.0$"):
        MQTTClient(
            "localhost",
            will=Will("t", b"x", properties=WillProperties(will_delay_interval=1)),
        )


@pytest.mark.parametrize("will_topic", ["a/+", "#", ""])
def test_invalid_will_topic(will_topic: str) -> None:
    from zmqtt import MQTTClient

    with pytest.raises(MQTTInvalidTopicError):
        MQTTClient("localhost", will=Will(will_topic, b"x"), version="5.0")
