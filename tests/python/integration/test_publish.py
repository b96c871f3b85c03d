"""SPEC 1.4: publishing at QoS 0/1/2, payload types, retain, broker refusals
(5.0 PUBACK/PUBREC codes) and the local refusals made before sending: QoS above
the broker's Maximum QoS, retain when Retain Available is 0, packets larger than
the broker's Maximum Packet Size, invalid topic names."""

from __future__ import annotations

import asyncio

import pytest
from zmqtt import (
    MQTTClient,
    MQTTDisconnectedError,
    MQTTInvalidTopicError,
    MQTTPublishError,
    MQTTQoSExceededError,
    MQTTRetainNotAvailableError,
    QoS,
)

from integration.conftest import BrokerFactory, Clients
from integration.helpers import (
    Broker,
    Version,
    bounded,
    frozen,
    next_message,
    payloads,
)

ALL_QOS = [QoS.AT_MOST_ONCE, QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE]


@pytest.mark.parametrize("qos", ALL_QOS)
async def test_publish_round_trip(
    broker: Broker, clients: Clients, version: Version, topic: str, qos: QoS
) -> None:
    sub = await clients.subscribed(broker, topic, version=version)
    client = await clients.connected(broker, version)
    await bounded(client.publish(topic, b"payload", qos=qos))
    message = await next_message(sub)
    assert message.topic == topic
    assert message.payload == b"payload"
    assert message.qos == qos
    assert isinstance(message.qos, QoS)
    assert message.retain is False


@pytest.mark.parametrize("qos", [QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE])
async def test_acknowledged_publish_has_reached_the_broker_when_it_returns(
    broker: Broker, clients: Clients, version: Version, topic: str, qos: QoS
) -> None:
    # QoS 1 returns on PUBACK, QoS 2 on PUBCOMP: by then the broker has stored
    # the retained message, so a subscription made right after finds it.
    client = await clients.connected(broker, version)
    await bounded(client.publish(topic, b"stored", qos=qos, retain=True))
    sub = await clients.subscribed(broker, topic, version=version)
    message = await next_message(sub)
    assert (message.payload, message.retain) == (b"stored", True)
    await bounded(client.publish(topic, b"", qos=qos, retain=True))


async def test_qos0_does_not_wait_for_the_network(
    make_broker: BrokerFactory, clients: Clients, version: Version, topic: str
) -> None:
    broker = make_broker()
    client = await clients.connected(broker, version)
    with frozen(broker):
        # The broker answers nothing, yet QoS 0 returns once queued ...
        for index in range(10):
            await bounded(client.publish(topic, b"%d" % index), 2)
        # ... while QoS 1 waits for its PUBACK.
        waiting = asyncio.create_task(
            client.publish(topic, b"acked", qos=QoS.AT_LEAST_ONCE)
        )
        done, _ = await asyncio.wait({waiting}, timeout=0.3)
        assert not done
    await bounded(waiting)


@pytest.mark.parametrize(
    "payload",
    [
        b"bytes",
        bytearray(b"bytearray"),
        memoryview(b"memoryview"),
        "h\u00e9llo \u2713",
        b"",
    ],
    ids=["bytes", "bytearray", "memoryview", "str", "empty"],
)
async def test_payload_types(
    broker: Broker,
    clients: Clients,
    version: Version,
    topic: str,
    payload: bytes | bytearray | memoryview | str,
) -> None:
    sub = await clients.subscribed(broker, topic, version=version)
    client = await clients.connected(broker, version)
    await bounded(client.publish(topic, payload, qos=QoS.AT_LEAST_ONCE))
    expected = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    message = await next_message(sub)
    assert message.payload == expected
    assert type(message.payload) is bytes


async def test_large_payload(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    sub = await clients.subscribed(broker, topic, version=version)
    client = await clients.connected(broker, version)
    await bounded(client.publish(topic, payload, qos=QoS.AT_LEAST_ONCE))
    assert (await next_message(sub)).payload == payload


async def test_payload_of_another_type_is_refused(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker)
    with pytest.raises(TypeError, match="payload"):
        await client.publish(topic, 42)  # type: ignore[arg-type]


@pytest.mark.parametrize("qos", [3, -1])
async def test_invalid_qos_is_refused(
    broker: Broker, clients: Clients, topic: str, qos: int
) -> None:
    client = await clients.connected(broker)
    with pytest.raises(ValueError, match="qos"):
        await client.publish(topic, b"x", qos=qos)  # type: ignore[arg-type]


async def test_retain(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    client = await clients.connected(broker, version)
    await bounded(client.publish(topic, "kept", qos=QoS.AT_LEAST_ONCE, retain=True))
    sub = await clients.subscribed(broker, topic, version=version)
    retained = await next_message(sub)
    assert (retained.payload, retained.retain) == (b"kept", True)
    # A live delivery to an existing subscription is not flagged retained
    # (MQTT-3.3.1-9), and an empty retained payload clears the topic (MQTT-3.3.1-10).
    await bounded(client.publish(topic, b"", qos=QoS.AT_LEAST_ONCE, retain=True))
    cleared = await next_message(sub)
    assert (cleared.payload, cleared.retain) == (b"", False)
    later = await clients.subscribed(
        broker, topic, f"{topic}/sentinel", version=version
    )
    await bounded(
        client.publish(f"{topic}/sentinel", b"sentinel", qos=QoS.AT_LEAST_ONCE)
    )
    assert (await next_message(later)).payload == b"sentinel"


INVALID_TOPICS = [
    "",
    "a/+",
    "a/#",
    "+",
    "#",
    "a/b+",
    "a\x00b",
    "x" * 65536,
    "\u00e9" * 32768,
    "\ud800",
]


@pytest.mark.parametrize("qos", ALL_QOS)
@pytest.mark.parametrize(
    "bad_topic",
    INVALID_TOPICS,
    ids=["empty", "plus", "hash", "only-plus", "only-hash", "plus-in-level", "nul",
         "too-long", "too-long-utf8", "surrogate"],
)  # fmt: skip
async def test_invalid_topic_names_are_refused_before_sending(
    broker: Broker, clients: Clients, version: Version, bad_topic: str, qos: QoS
) -> None:
    client = await clients.connected(broker, version)
    with pytest.raises(MQTTInvalidTopicError):
        await bounded(client.publish(bad_topic, b"x", qos=qos))
    # Nothing reached the broker: the connection is intact.
    assert client.connection_info.connection_id == 1
    assert await bounded(client.ping()) >= 0


async def test_wildcard_topic_message(broker: Broker, clients: Clients) -> None:
    client = await clients.connected(broker)
    with pytest.raises(MQTTInvalidTopicError) as refused:
        await client.publish("a/+", b"x")
    assert str(refused.value) == "Wildcards not allowed in publish topic: 'a/+'"


async def test_longest_topic_is_accepted(
    broker: Broker, clients: Clients, version: Version
) -> None:
    client = await clients.connected(broker, version)
    await bounded(client.publish("t" * 65535, b"x", qos=QoS.AT_LEAST_ONCE))


@pytest.mark.parametrize("qos", ALL_QOS)
async def test_publish_when_disconnected(
    broker: Broker, version: Version, topic: str, qos: QoS
) -> None:
    client = MQTTClient(broker.host, broker.port, version=version)
    await bounded(client.connect())
    await bounded(client.disconnect())
    with pytest.raises(MQTTDisconnectedError):
        await bounded(client.publish(topic, b"x", qos=qos))


@pytest.mark.parametrize("qos", [QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE])
async def test_receive_maximum_backpressure(
    make_broker: BrokerFactory, clients: Clients, topic: str, qos: QoS
) -> None:
    # mosquitto's Receive Maximum is its max_inflight_messages: 2 here. Many
    # concurrent publishes wait their turn; all complete, in order. (5.0 only:
    # a 3.1.1 client is not told the limit, and mosquitto 2.0.11 acknowledges
    # but silently drops the QoS 2 messages of a 3.1.1 client beyond it.)
    version: Version = "5.0"
    broker = make_broker(max_inflight_messages=2)
    sub = await clients.subscribed(broker, topic, version=version)
    client = await clients.connected(broker, version)
    assert client.connection_info.properties is not None
    assert client.connection_info.properties.receive_maximum == 2
    count = 40
    await bounded(
        asyncio.gather(
            *(client.publish(topic, b"%d" % i, qos=qos) for i in range(count))
        )
    )
    assert await payloads(sub, count) == [b"%d" % i for i in range(count)]
    # The connection never broke the broker's limit.
    assert client.connection_info.connection_id == 1


# --------------------------------------------------------------------------- 5.0 refusals


@pytest.mark.parametrize("qos", [QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE])
async def test_broker_refusal_raises_publish_error(
    make_broker: BrokerFactory, clients: Clients, qos: QoS
) -> None:
    # mosquitto answers a publish its ACL denies with PUBACK/PUBREC 0x87 (5.0).
    broker = make_broker(acl="topic readwrite open/#\n")
    client = await clients.connected(broker, "5.0")
    with pytest.raises(MQTTPublishError) as refused:
        await bounded(client.publish("closed/x", b"x", qos=qos))
    assert refused.value.reason_code == 0x87
    assert refused.value.reason_name == "Not authorized"
    assert "0x87" in str(refused.value)
    # 0x10 "No matching subscribers" is a success code, not an error.
    await bounded(client.publish("open/x", b"x", qos=qos))
    assert client.connection_info.connection_id == 1


async def test_qos_above_maximum_qos_is_refused_locally(
    make_broker: BrokerFactory, clients: Clients, topic: str
) -> None:
    broker = make_broker(max_qos=1)
    sub = await clients.subscribed(broker, topic, version="5.0", qos=QoS.AT_LEAST_ONCE)
    client = await clients.connected(broker, "5.0")
    properties = client.connection_info.properties
    assert properties is not None and properties.maximum_qos == 1
    with pytest.raises(MQTTQoSExceededError) as refused:
        await client.publish(topic, b"too high", qos=QoS.EXACTLY_ONCE)
    assert refused.value.requested_qos == 2
    assert refused.value.maximum_qos == 1
    # Refused before sending: mosquitto would have disconnected us (0x9B).
    await bounded(client.publish(topic, b"ok", qos=QoS.AT_LEAST_ONCE))
    assert (await next_message(sub)).payload == b"ok"
    assert client.connection_info.connection_id == 1


async def test_maximum_qos_zero(
    make_broker: BrokerFactory, clients: Clients, topic: str
) -> None:
    broker = make_broker(max_qos=0)
    client = await clients.connected(broker, "5.0")
    for qos in (QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE):
        with pytest.raises(MQTTQoSExceededError) as refused:
            await client.publish(topic, b"x", qos=qos)
        assert (refused.value.requested_qos, refused.value.maximum_qos) == (qos, 0)
    await bounded(client.publish(topic, b"x"))
    assert await bounded(client.ping()) >= 0


@pytest.mark.parametrize("qos", ALL_QOS)
async def test_retain_unavailable_is_refused_locally(
    make_broker: BrokerFactory, clients: Clients, topic: str, qos: QoS
) -> None:
    broker = make_broker(retain_available=False)
    sub = await clients.subscribed(broker, topic, version="5.0")
    client = await clients.connected(broker, "5.0")
    properties = client.connection_info.properties
    assert properties is not None and properties.retain_available is False
    with pytest.raises(MQTTRetainNotAvailableError):
        await client.publish(topic, b"retained", qos=qos, retain=True)
    await bounded(client.publish(topic, b"plain", qos=qos))
    assert (await next_message(sub)).payload == b"plain"
    assert client.connection_info.connection_id == 1


@pytest.mark.parametrize("qos", ALL_QOS)
async def test_packet_larger_than_broker_maximum_is_refused_locally(
    make_broker: BrokerFactory, clients: Clients, topic: str, qos: QoS
) -> None:
    broker = make_broker(max_packet_size=512)
    sub = await clients.subscribed(broker, topic, version="5.0")
    client = await clients.connected(broker, "5.0")
    properties = client.connection_info.properties
    assert properties is not None and properties.maximum_packet_size == 512
    with pytest.raises(MQTTPublishError) as refused:
        await client.publish(topic, b"x" * 1000, qos=qos)
    assert refused.value.reason_code == 0x95
    assert "512" in str(refused.value)
    await bounded(client.publish(topic, b"x" * 100, qos=qos))
    assert (await next_message(sub)).payload == b"x" * 100
    assert client.connection_info.connection_id == 1
