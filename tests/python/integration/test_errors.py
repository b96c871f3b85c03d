"""SPEC 1.10: the error hierarchy, attributes and messages, and how the client
fails when the broker misbehaves (a scripted fake broker stands in for what
mosquitto cannot be made to do): closed before CONNACK, something else than
CONNACK first, silence, a DISCONNECT with a reason code, malformed packets."""

from __future__ import annotations

import asyncio
import socket
from typing import Final

import pytest
from zmqtt import (
    ConnAckProperties,
    MQTTClient,
    MQTTConnectError,
    MQTTDisconnectedError,
    MQTTError,
    MQTTInvalidTopicError,
    MQTTProtocolError,
    MQTTPublishError,
    MQTTQoSExceededError,
    MQTTRetainNotAvailableError,
    MQTTSubscribeError,
    MQTTTimeoutError,
    QoS,
    ReconnectConfig,
    Subscription,
)

from integration.fakebroker import DISCONNECT, FakeBroker, connack, disconnect, running
from integration.helpers import NO_RECONNECT, Version, bounded


def _client_of(fake: FakeBroker, version: Version) -> MQTTClient:
    """A client of ``fake`` that never reconnects (each test scripts one
    connection)."""
    return MQTTClient("127.0.0.1", fake.port, version=version, reconnect=NO_RECONNECT)


async def _subscribed_client_of(
    fake: FakeBroker, version: Version
) -> tuple[MQTTClient, Subscription]:
    """A connected :func:`_client_of` with a started subscription to ``a/b``."""
    client = _client_of(fake, version)
    await bounded(client.connect())
    sub = client.subscribe("a/b")
    await bounded(sub.start())
    return client, sub


ERRORS: Final = [
    MQTTConnectError,
    MQTTProtocolError,
    MQTTDisconnectedError,
    MQTTTimeoutError,
    MQTTSubscribeError,
    MQTTPublishError,
    MQTTQoSExceededError,
    MQTTRetainNotAvailableError,
    MQTTInvalidTopicError,
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda error: error.__name__)
def test_hierarchy(error: type[MQTTError]) -> None:
    assert issubclass(error, MQTTError)
    assert error.__bases__ == (MQTTError,)
    assert issubclass(MQTTError, Exception)


def test_attributes() -> None:
    properties = ConnAckProperties(
        reason_string="go away",
        user_properties=(("k", "v"),),
        server_reference="other.example",
    )
    connect = MQTTConnectError(
        0x9C, properties=properties, reason_name="Use another server"
    )
    assert connect.return_code == 0x9C
    assert connect.properties is properties
    assert connect.reason_string == "go away"
    assert connect.user_properties == (("k", "v"),)
    assert connect.server_reference == "other.example"
    assert "0x9C" in str(connect) and "go away" in str(connect)
    plain = MQTTConnectError(5)
    assert (plain.properties, plain.reason_string, plain.user_properties) == (
        None,
        None,
        (),
    )
    assert plain.server_reference is None

    subscribe = MQTTSubscribeError({"a/b": 0x80})
    assert subscribe.failures == {"a/b": 0x80}
    publish = MQTTPublishError(0x87, "Not authorized", "ACL")
    assert (publish.reason_code, publish.reason_name, publish.reason_string) == (
        0x87,
        "Not authorized",
        "ACL",
    )
    exceeded = MQTTQoSExceededError(2, 1)
    assert (exceeded.requested_qos, exceeded.maximum_qos) == (2, 1)
    assert MQTTDisconnectedError().reason_code is None
    assert MQTTDisconnectedError("lost", reason_code=0x8E).reason_code == 0x8E
    assert MQTTProtocolError("bad", reason_code=0x81).reason_code == 0x81


def test_enums() -> None:
    from zmqtt import RetainHandling

    assert [int(q) for q in QoS] == [0, 1, 2]
    assert [q.name for q in QoS] == ["AT_MOST_ONCE", "AT_LEAST_ONCE", "EXACTLY_ONCE"]
    assert [int(r) for r in RetainHandling] == [0, 1, 2]
    assert [r.name for r in RetainHandling] == [
        "SEND_ON_SUBSCRIBE",
        "SEND_IF_NOT_EXISTS",
        "DO_NOT_SEND",
    ]


async def test_messages_in_the_words_of_the_api() -> None:
    with pytest.raises(RuntimeError) as error:
        MQTTClient("localhost").subscribe("a", subscription_identifier=1)
    assert str(error.value) == "subscription_identifier requires MQTT 5.0"
    from zmqtt import Will, WillProperties

    with pytest.raises(RuntimeError) as error:
        MQTTClient("localhost", will=Will("t", b"", properties=WillProperties()))
    assert str(error.value) == "will properties require MQTT 5.0"
    with pytest.raises(ValueError) as value_error:
        MQTTClient("localhost", mqtt_connect_timeout=0)
    assert str(value_error.value) == "mqtt_connect_timeout must be positive"
    with pytest.raises(ValueError) as value_error:
        MQTTClient("localhost", max_pending_requests=0)
    assert str(value_error.value) == "max_pending_requests must be positive"


# --------------------------------------------------------------------------- connection failures


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_connection_refused_is_an_os_error() -> None:
    port = _closed_port()
    client = MQTTClient("127.0.0.1", port, reconnect=NO_RECONNECT)
    with pytest.raises(ConnectionRefusedError) as refused:
        await bounded(client.connect())
    assert str(port) in str(refused.value)


async def test_unknown_host_is_an_os_error() -> None:
    client = MQTTClient("no-such-host.invalid", 1883, reconnect=NO_RECONNECT)
    with pytest.raises(OSError):
        await bounded(client.connect())


async def test_closed_before_connack(version: Version) -> None:
    async with running(FakeBroker(v5=version == "5.0", on_connect=b"")) as fake:
        client = _client_of(fake, version)
        with pytest.raises(MQTTDisconnectedError):
            await bounded(client.connect())


async def test_disconnect_instead_of_connack_is_a_protocol_error() -> None:
    async with running(FakeBroker(v5=True, on_connect=disconnect(0x87))) as fake:
        client = _client_of(fake, "5.0")
        with pytest.raises(MQTTProtocolError):
            await bounded(client.connect())


@pytest.mark.parametrize(
    "answer",
    [bytes([0xD0, 0]), b"\xff\xff\xff\xff\xff", bytes([0x00, 0])],
    ids=["pingresp", "garbage", "reserved-type"],
)
async def test_anything_but_connack_first_is_a_protocol_error(
    version: Version, answer: bytes
) -> None:
    async with running(FakeBroker(v5=version == "5.0", on_connect=answer)) as fake:
        client = _client_of(fake, version)
        with pytest.raises(MQTTProtocolError):
            await bounded(client.connect())


async def test_refusal_code_from_connack(version: Version) -> None:
    code = 0x8C if version == "5.0" else 2
    async with running(
        FakeBroker(v5=version == "5.0", on_connect=connack(version == "5.0", code))
    ) as fake:
        client = MQTTClient("127.0.0.1", fake.port, version=version)
        with pytest.raises(MQTTConnectError) as refused:
            await bounded(client.connect())
        assert refused.value.return_code == code
        assert len(fake.packets(1)) == 1  # never retried


async def test_silent_broker_connack_timeout(version: Version) -> None:
    async with running(FakeBroker(v5=version == "5.0", on_connect=None)) as fake:
        client = MQTTClient(
            "127.0.0.1",
            fake.port,
            version=version,
            mqtt_connect_timeout=0.3,
            reconnect=NO_RECONNECT,
        )
        with pytest.raises(MQTTTimeoutError):
            await bounded(client.connect(), 5)


async def test_connack_timeout_is_retried(version: Version) -> None:
    async with running(FakeBroker(v5=version == "5.0", on_connect=None)) as fake:
        client = MQTTClient(
            "127.0.0.1",
            fake.port,
            version=version,
            mqtt_connect_timeout=0.2,
            reconnect=ReconnectConfig(
                initial_delay=0.01, max_delay=0.01, max_attempts=3
            ),
        )
        with pytest.raises(MQTTTimeoutError):
            await bounded(client.connect(), 5)
        assert len(fake.packets(1)) == 3


# --------------------------------------------------------------------------- after CONNACK


async def test_broker_disconnect_reason_surfaces() -> None:
    fake = FakeBroker(v5=True, on_connect=connack(True), on_ping=disconnect(0x8E))
    async with running(fake):
        client, sub = await _subscribed_client_of(fake, "5.0")
        with pytest.raises(MQTTDisconnectedError):
            await bounded(client.ping())
        # The error that stopped the client names the broker's reason.
        with pytest.raises(MQTTDisconnectedError) as lost:
            await bounded(sub.get_message())
        assert lost.value.reason_code == 0x8E
        assert "0x8E" in str(lost.value)
        await bounded(client.disconnect())


async def test_pending_call_sees_the_disconnect_reason() -> None:
    # The ping that was waiting when the broker's DISCONNECT came fails with
    # that DISCONNECT's reason too.
    fake = FakeBroker(v5=True, on_connect=connack(True), on_ping=disconnect(0x8E))
    async with running(fake):
        client = _client_of(fake, "5.0")
        await bounded(client.connect())
        with pytest.raises(MQTTDisconnectedError) as ping_error:
            await bounded(client.ping())
        assert ping_error.value.reason_code == 0x8E
        assert "0x8E" in str(ping_error.value)
        await bounded(client.disconnect())


@pytest.mark.parametrize(
    "malformed",
    [
        bytes([0x00, 0]),  # reserved packet type
        bytes([0x30, 2, 0, 9]),  # PUBLISH whose topic length runs past the packet
        bytes([0x36, 5, 0, 1, 0x61, 0, 1]),  # PUBLISH with QoS 3 (MQTT-3.3.1-4)
        bytes([0x20, 2, 0, 0]),  # a second CONNACK
    ],
    ids=["reserved-type", "truncated-topic", "qos3", "second-connack"],
)
async def test_malformed_packet_is_a_protocol_error(
    version: Version, malformed: bytes
) -> None:
    v5 = version == "5.0"
    fake = FakeBroker(v5=v5, on_connect=connack(v5), on_ping=malformed)
    async with running(fake):
        client, sub = await _subscribed_client_of(fake, version)
        with pytest.raises(MQTTError):
            await bounded(client.ping())
        with pytest.raises(MQTTProtocolError):
            await bounded(sub.get_message())
        # That connection is closed (5.0: after a DISCONNECT with a failure code).
        await bounded(fake.closed.wait())
        if v5:
            reasons = fake.packets(DISCONNECT)
            assert len(reasons) == 1
            assert reasons[0][:1] and reasons[0][0] >= 0x80
        with pytest.raises(MQTTDisconnectedError):
            client.connection_info  # noqa: B018
        await bounded(client.disconnect())


async def test_protocol_error_reconnects_when_enabled() -> None:
    fake = FakeBroker(v5=False, on_connect=connack(False), on_ping=bytes([0x00, 0]))
    async with running(fake):
        client = MQTTClient(
            "127.0.0.1",
            fake.port,
            reconnect=ReconnectConfig(initial_delay=0.01, max_delay=0.01),
        )
        await bounded(client.connect())
        with pytest.raises(MQTTError):
            await bounded(client.ping())
        # The client comes back on a new connection.
        async with asyncio.timeout(5):
            while len(fake.packets(1)) < 2:
                await asyncio.sleep(0.01)
        await bounded(client.disconnect())


@pytest.mark.parametrize(
    "publish",
    [
        # PUBLISH "a/b" with Topic Alias 1, and an alias-only PUBLISH (empty
        # topic) naming alias 1: we announce no Topic Alias Maximum (0), so any
        # alias is invalid.
        bytes([0x30, 10, 0, 3, 0x61, 0x2F, 0x62, 3, 0x23, 0, 1, 0x78]),
        bytes([0x30, 7, 0, 0, 3, 0x23, 0, 1, 0x78]),
    ],
    ids=["with-topic", "alias-only"],
)
async def test_invalid_topic_alias_from_the_broker(publish: bytes) -> None:
    # MQTT-3.1.2-27 / MQTT-3.3.2-11: the broker must not send a Topic Alias
    # above the Topic Alias Maximum we sent (none: 0). Receiving one closes the
    # connection with DISCONNECT 0x94 "Topic Alias invalid".
    fake = FakeBroker(v5=True, on_connect=connack(True), on_ping=publish)
    async with running(fake):
        client, sub = await _subscribed_client_of(fake, "5.0")
        with pytest.raises(MQTTError):
            await bounded(client.ping())
        with pytest.raises(MQTTProtocolError):
            await bounded(sub.get_message())
        await bounded(fake.closed.wait())
        assert [body[:1] for body in fake.packets(DISCONNECT)] == [b"\x94"]
        await bounded(client.disconnect())


async def test_broker_exceeding_our_receive_maximum_is_disconnected() -> None:
    # Two unacknowledged QoS 1 PUBLISHes where our Receive Maximum is 1: the
    # client closes the connection with DISCONNECT 0x93 (Receive Maximum exceeded).
    two_publishes = bytes([0x32, 9, 0, 3, 0x61, 0x2F, 0x62, 0, 1, 0, 0x31]) + bytes(
        [0x32, 9, 0, 3, 0x61, 0x2F, 0x62, 0, 2, 0, 0x32]
    )
    fake = FakeBroker(v5=True, on_connect=connack(True), on_ping=two_publishes)
    async with running(fake):
        client = MQTTClient(
            "127.0.0.1",
            fake.port,
            version="5.0",
            receive_maximum=1,
            reconnect=NO_RECONNECT,
        )
        await bounded(client.connect())
        sub = client.subscribe("a/b", qos=QoS.AT_LEAST_ONCE, auto_ack=False)
        await bounded(sub.start())
        with pytest.raises(MQTTError):
            await bounded(client.ping())
        await bounded(fake.closed.wait())
        assert [body[:1] for body in fake.packets(DISCONNECT)] == [b"\x93"]
        await bounded(client.disconnect())
