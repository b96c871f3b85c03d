"""SPEC 1.3: ``async with``, ``connect()``/``disconnect()`` (twice, after a
loss), ``connection_info`` and its fields, keepalive and ``ping()``."""

from __future__ import annotations

import asyncio

import pytest
from zmqtt import (
    ConnAckProperties,
    ConnectionInfo,
    MQTTClient,
    MQTTDisconnectedError,
    MQTTError,
    MQTTTimeoutError,
    QoS,
)

from integration.conftest import BrokerFactory, Clients
from integration.helpers import (
    NO_RECONNECT,
    Broker,
    Version,
    bounded,
    connected_without_reconnect,
    frozen,
    log_offset,
    log_since,
    unique_id,
    wait_connected,
    wait_for_log,
    wait_until,
)


async def test_async_with_connects_and_sends_disconnect(
    broker: Broker, version: Version
) -> None:
    client_id = unique_id()
    client = MQTTClient(broker.host, broker.port, client_id=client_id, version=version)
    offset = log_offset(broker)
    async with client as entered:
        assert entered is client
        # The handshake is complete when the body starts.
        assert client.connection_info.connection_id == 1
        await wait_for_log(broker, f"as {client_id} ", offset)
    with pytest.raises(MQTTDisconnectedError):
        client.connection_info  # noqa: B018
    # mosquitto says "disconnected." only for a DISCONNECT packet ("closed its
    # connection" for a socket closed without one).
    log = await wait_for_log(broker, f"Client {client_id} disconnected.", offset)
    assert f"Client {client_id} closed its connection" not in log


async def test_async_with_disconnects_when_the_body_raises(broker: Broker) -> None:
    client_id = unique_id()
    client = MQTTClient(broker.host, broker.port, client_id=client_id)
    offset = log_offset(broker)
    with pytest.raises(ZeroDivisionError):
        async with client:
            _ = 1 / 0
    await wait_for_log(broker, f"Client {client_id} disconnected.", offset)


async def test_connect_and_disconnect_twice(broker: Broker, version: Version) -> None:
    client = MQTTClient(
        broker.host, broker.port, client_id=unique_id(), version=version
    )
    await bounded(client.connect())
    first = client.connection_info
    # connect() while connected resolves with the same connection.
    await bounded(client.connect())
    assert client.connection_info.connection_id == first.connection_id == 1
    await bounded(client.disconnect())
    await bounded(client.disconnect())
    with pytest.raises(MQTTDisconnectedError):
        client.connection_info  # noqa: B018
    # The same client connects again; the connection id keeps counting.
    await bounded(client.connect())
    assert client.connection_info.connection_id == 2
    assert await bounded(client.ping()) >= 0
    await bounded(client.disconnect())
    await bounded(client.disconnect())


async def test_disconnect_before_connect_is_safe() -> None:
    client = MQTTClient("localhost", 1)
    await bounded(client.disconnect())
    await bounded(client.disconnect())


async def test_disconnect_after_the_connection_was_lost(
    make_broker: BrokerFactory, version: Version
) -> None:
    broker = make_broker()
    client = await connected_without_reconnect(broker, version)
    sub = client.subscribe("lost/#")
    await bounded(sub.start())
    broker.kill()
    with pytest.raises(MQTTError):
        await bounded(sub.get_message())
    await bounded(client.disconnect())
    await bounded(client.disconnect())


async def test_operations_before_connect_raise_disconnected(broker: Broker) -> None:
    client = MQTTClient(broker.host, broker.port)
    with pytest.raises(MQTTDisconnectedError):
        client.connection_info  # noqa: B018
    with pytest.raises(MQTTDisconnectedError):
        await bounded(client.publish("a", b"x"))
    with pytest.raises(MQTTDisconnectedError):
        await bounded(client.ping())
    with pytest.raises(MQTTDisconnectedError):
        await bounded(client.subscribe("a").start())


async def test_connection_info_fields_on_311(broker: Broker, clients: Clients) -> None:
    client_id = unique_id()
    client = await clients.connected(
        broker, "3.1.1", client_id=client_id, keepalive=45, session_expiry_interval=99
    )
    info = client.connection_info
    assert isinstance(info, ConnectionInfo)
    assert info.connection_id == 1
    assert info.session_present is False
    assert info.return_code == 0
    assert info.properties is None
    assert info.effective_client_id == client_id
    assert info.effective_keepalive == 45
    # session_expiry_interval is ignored on 3.1.1.
    assert info.effective_session_expiry_interval is None
    with pytest.raises(AttributeError):
        info.connection_id = 5  # type: ignore[misc]


async def test_connection_info_fields_on_50(broker: Broker, clients: Clients) -> None:
    client_id = unique_id()
    client = await clients.connected(
        broker, "5.0", client_id=client_id, keepalive=45, session_expiry_interval=120
    )
    info = client.connection_info
    assert info.connection_id == 1
    assert info.session_present is False
    assert info.return_code == 0
    assert isinstance(info.properties, ConnAckProperties)
    # mosquitto's defaults: max_inflight_messages 20, 10 topic aliases.
    assert info.properties.receive_maximum == 20
    assert info.properties.topic_alias_maximum == 10
    assert info.properties.assigned_client_identifier is None
    assert info.effective_client_id == client_id
    assert info.effective_keepalive == 45
    assert info.effective_session_expiry_interval == 120


async def test_server_keep_alive_wins(
    make_broker: BrokerFactory, clients: Clients
) -> None:
    broker = make_broker(extra_config=["max_keepalive 20"])
    client = await clients.connected(broker, "5.0", keepalive=60)
    info = client.connection_info
    assert info.properties is not None
    assert info.properties.server_keep_alive == 20
    assert info.effective_keepalive == 20


def _persistent(broker: Broker, client_id: str, version: Version) -> MQTTClient:
    return MQTTClient(
        broker.host,
        broker.port,
        client_id=client_id,
        clean_session=False,
        session_expiry_interval=300,
        version=version,
    )


async def test_session_present_when_a_persistent_session_is_resumed(
    broker: Broker, version: Version
) -> None:
    client_id = unique_id()
    first = _persistent(broker, client_id, version)
    async with first:
        assert first.connection_info.session_present is False
    second = _persistent(broker, client_id, version)
    async with second:
        assert second.connection_info.session_present is True
        assert second.connection_info.connection_id == 1
    # A clean session discards it.
    third = MQTTClient(broker.host, broker.port, client_id=client_id, version=version)
    async with third:
        assert third.connection_info.session_present is False


async def test_connection_id_counts_reconnects(
    broker: Broker, clients: Clients, version: Version
) -> None:
    client = await clients.connected(broker, version)
    assert client.connection_info.connection_id == 1
    await bounded(client.reset())
    info = await wait_connected(client, 2)
    assert info.connection_id == 2
    await bounded(client.reset())
    assert (await wait_connected(client, 3)).connection_id == 3


async def test_keepalive_pings_keep_an_idle_connection_alive(
    broker: Broker, clients: Clients, version: Version
) -> None:
    # mosquitto drops a client that sends nothing for 1.5 x keepalive. With
    # keepalive=1 the client must send PINGREQs on its own to survive 2.5 s of
    # silence (time passing is what is tested here, so the test lets it pass).
    client_id = unique_id()
    offset = log_offset(broker)
    client = await clients.connected(broker, version, client_id=client_id, keepalive=1)
    await asyncio.sleep(2.5)
    assert client.connection_info.connection_id == 1
    assert "exceeded timeout" not in log_since(broker, offset)
    await bounded(client.publish("keepalive/check", b"x", qos=QoS.AT_LEAST_ONCE))


async def test_keepalive_zero_disables_keepalive(
    broker: Broker, clients: Clients
) -> None:
    client_id = unique_id()
    offset = log_offset(broker)
    await clients.connected(broker, client_id=client_id, keepalive=0)
    await wait_for_log(broker, f"as {client_id} (p2, c1, k0)", offset)


async def test_missing_pingresp_is_a_lost_connection(
    make_broker: BrokerFactory, version: Version
) -> None:
    broker = make_broker()
    client = MQTTClient(
        broker.host, broker.port, version=version, keepalive=1, reconnect=NO_RECONNECT
    )
    await bounded(client.connect())
    sub = client.subscribe("silent/#")
    await bounded(sub.start())
    with frozen(broker):
        # The broker answers nothing: the PINGREQ sent after 1 s of silence goes
        # unanswered and the client gives the connection up within a bound.
        with pytest.raises(MQTTError):
            await bounded(sub.get_message(), 10)
        await wait_until(
            lambda: _not_connected(client), "the client to drop the connection"
        )
    await bounded(client.disconnect())


def _not_connected(client: MQTTClient) -> bool:
    try:
        client.connection_info  # noqa: B018
    except MQTTDisconnectedError:
        return True
    return False


async def test_ping_returns_the_round_trip(
    broker: Broker, clients: Clients, version: Version
) -> None:
    client = await clients.connected(broker, version)
    seconds = await bounded(client.ping())
    assert isinstance(seconds, float)
    assert 0 <= seconds < 10


async def test_concurrent_pings(
    broker: Broker, clients: Clients, version: Version
) -> None:
    client = await clients.connected(broker, version)
    results = await bounded(
        asyncio.gather(*(client.ping(timeout=5.0) for _ in range(20)))
    )
    assert len(results) == 20
    assert all(isinstance(value, float) and 0 <= value < 5 for value in results)


async def test_ping_timeout(make_broker: BrokerFactory, clients: Clients) -> None:
    broker = make_broker()
    client = await clients.connected(broker)
    with frozen(broker), pytest.raises(MQTTTimeoutError):
        await bounded(client.ping(timeout=0.3), 5)
    # The broker answers again once thawed.
    assert await bounded(client.ping()) >= 0


@pytest.mark.parametrize("timeout", [0, -1.0])
async def test_ping_timeout_must_be_positive(
    broker: Broker, clients: Clients, timeout: float
) -> None:
    client = await clients.connected(broker)
    with pytest.raises(ValueError, match="timeout must be positive"):
        await client.ping(timeout=timeout)
