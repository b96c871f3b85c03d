"""SPEC 1.2 at run time: the 5.0-only API on a 3.1.1 client raises
``RuntimeError`` before any I/O (mypy rejects the same calls through
``MQTTClientV311``; here the concrete ``MQTTClient`` is used to make them), and
the connection stays usable. The same calls work on a 5.0 client."""

from __future__ import annotations

from typing import Any

import pytest
from zmqtt import (
    MQTTClient,
    MQTTClientV5,
    MQTTClientV311,
    PublishProperties,
    QoS,
    RetainHandling,
    create_client,
)

from integration.conftest import Clients
from integration.helpers import Broker, bounded, next_message


async def test_create_client_returns_one_concrete_class_for_both_versions(
    broker: Broker,
) -> None:
    client_v311: MQTTClientV311 = create_client(broker.host, broker.port)
    client_v5: MQTTClientV5 = create_client(broker.host, broker.port, version="5.0")
    assert type(client_v311) is MQTTClient
    assert type(client_v5) is MQTTClient


async def test_publish_properties_on_311_raise_runtime_error(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic)
    client = await clients.connected(broker, "3.1.1")
    with pytest.raises(RuntimeError, match="MQTT 5.0"):
        await client.publish(
            topic, b"never sent", properties=PublishProperties(content_type="x")
        )
    with pytest.raises(RuntimeError, match="MQTT 5.0"):
        await client.publish(
            topic,
            b"never sent",
            qos=QoS.AT_LEAST_ONCE,
            properties=PublishProperties(),
        )
    # Nothing was sent, and the connection goes on: the first message the
    # observer gets is the one published afterwards.
    await client.publish(topic, b"after", qos=QoS.AT_LEAST_ONCE)
    assert (await next_message(sub)).payload == b"after"


async def test_request_on_311_raises_runtime_error(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker, "3.1.1")
    with pytest.raises(RuntimeError, match="request\\(\\) requires MQTT 5.0"):
        await client.request(topic, b"question", timeout=1.0)
    assert await bounded(client.ping()) >= 0


async def test_auth_on_311_raises_runtime_error(
    broker: Broker, clients: Clients
) -> None:
    client = await clients.connected(broker, "3.1.1")
    with pytest.raises(RuntimeError, match="auth\\(\\) requires MQTT 5.0"):
        await client.auth("SCRAM-SHA-1", b"data")
    assert await bounded(client.ping()) >= 0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("no_local", True),
        ("retain_as_published", True),
        ("retain_handling", RetainHandling.DO_NOT_SEND),
        ("retain_handling", RetainHandling.SEND_IF_NOT_EXISTS),
        ("subscription_identifier", 7),
    ],
)
async def test_five_only_subscribe_options_on_311_raise_runtime_error(
    broker: Broker, clients: Clients, topic: str, option: str, value: Any
) -> None:
    client = await clients.connected(broker, "3.1.1")
    options: dict[str, Any] = {option: value}
    with pytest.raises(RuntimeError, match=f"^{option} requires MQTT 5.0$"):
        client.subscribe(topic, **options)


def test_several_five_only_subscribe_options_are_named_together() -> None:
    client = MQTTClient("localhost")
    with pytest.raises(
        RuntimeError, match="no_local, subscription_identifier require MQTT 5.0"
    ):
        client.subscribe("a", no_local=True, subscription_identifier=1)


def test_five_only_api_on_311_raises_even_when_not_connected() -> None:
    # Refused before any I/O: the client never connected, yet the error is
    # the version's, not MQTTDisconnectedError.
    client = MQTTClient("localhost")
    with pytest.raises(RuntimeError, match="subscription_identifier requires MQTT 5.0"):
        client.subscribe("a", subscription_identifier=1)


async def test_the_same_calls_work_on_a_50_client(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic, version="5.0")
    client = await clients.connected(broker, "5.0")
    await client.publish(
        topic,
        b"with properties",
        qos=QoS.AT_LEAST_ONCE,
        properties=PublishProperties(content_type="text/plain"),
    )
    message = await next_message(sub)
    assert message.properties is not None
    assert message.properties.content_type == "text/plain"
    own = client.subscribe(
        f"{topic}/own",
        no_local=True,
        retain_as_published=True,
        retain_handling=RetainHandling.DO_NOT_SEND,
        subscription_identifier=7,
    )
    async with own:
        pass
