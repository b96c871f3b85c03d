"""SPEC 1.5: reconnection. A restarted or killed broker is reconnected to and
every subscription restored; a persistent session loses no QoS 1 message;
unacknowledged publishes complete after a resumed session and fail after a clean
one; with reconnection disabled the next calls raise ``MQTTDisconnectedError``
and a waiting ``get_message()`` wakes; a refusal is never retried;
``on_connection_recovery_failed`` is called once."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from zmqtt import (
    MQTTClient,
    MQTTConnectError,
    MQTTDisconnectedError,
    MQTTError,
    PublishProperties,
    QoS,
    ReconnectConfig,
    Subscription,
)

from integration.conftest import BrokerFactory, Clients
from integration.helpers import (
    NO_RECONNECT,
    Broker,
    Version,
    bounded,
    connected_without_reconnect,
    current_connection_id,
    frozen,
    log_offset,
    log_since,
    next_message,
    payloads,
    unique_id,
    unique_topic,
    wait_connected,
    wait_until,
)

QUICK = ReconnectConfig(initial_delay=0.05, max_delay=0.2, max_attempts=None)


def test_reconnect_config_defaults() -> None:
    config = ReconnectConfig()
    assert config.enabled is True
    assert config.initial_delay == 1.0
    assert config.max_delay == 60.0
    assert config.backoff_factor == 2.0
    assert config.max_attempts == 5
    with pytest.raises(AttributeError):
        config.enabled = False  # type: ignore[misc]


async def _publish_until_received(
    publisher: MQTTClient, topic: str, sub: Subscription, payload: bytes
) -> None:
    """Publishes ``payload`` every 50 ms until ``sub`` receives it: the only way
    to see that a restored subscription is live again at the broker."""

    async def keep_publishing() -> None:
        while True:
            with contextlib.suppress(MQTTDisconnectedError):
                await publisher.publish(topic, payload)
            await asyncio.sleep(0.05)

    task = asyncio.create_task(keep_publishing())
    try:
        message = await next_message(sub)
        assert message.payload == payload
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("loss", ["restart", "kill"])
async def test_reconnects_and_resubscribes(
    make_broker: BrokerFactory, clients: Clients, version: Version, loss: str
) -> None:
    broker = make_broker()
    topic = unique_topic()
    client = await clients.connected(broker, version, reconnect=QUICK)
    sub = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(sub.start())
    # Messages queued before the loss stay queued.
    publisher = await clients.connected(broker, version, reconnect=QUICK)
    for index in range(3):
        await bounded(
            publisher.publish(topic, b"before %d" % index, qos=QoS.AT_LEAST_ONCE)
        )
    await _wait_queued(client, topic)

    if loss == "restart":
        await asyncio.to_thread(broker.restart)
    else:
        broker.kill()
        await asyncio.to_thread(broker.start)
    info = await wait_connected(client, 2)
    assert info.session_present is False

    assert await payloads(sub, 3) == [b"before 0", b"before 1", b"before 2"]
    await _publish_until_received(publisher, topic, sub, b"after")


async def _wait_queued(client: MQTTClient, topic: str) -> None:
    """Waits until the client has received what was published to ``topic`` so
    far, without taking it from the subscription under test: a QoS 1 round
    trip on a marker topic through the same connection comes after it."""
    marker = client.subscribe(f"{topic}-marker", qos=QoS.AT_LEAST_ONCE)
    async with marker:
        await client.publish(f"{topic}-marker", b"m", qos=QoS.AT_LEAST_ONCE)
        await next_message(marker)


async def test_persistent_session_loses_no_qos1_message(
    make_broker: BrokerFactory, clients: Clients, version: Version
) -> None:
    broker = make_broker(persistence=True)
    topic = unique_topic()
    client = await clients.connected(
        broker,
        version,
        client_id=unique_id(),
        clean_session=False,
        session_expiry_interval=600,
        # Slow enough that the messages below are published while it is away.
        reconnect=ReconnectConfig(initial_delay=1.0, max_delay=1.0, max_attempts=None),
    )
    sub = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(sub.start())
    # A graceful restart saves the sessions (persistence) before stopping.
    await asyncio.to_thread(broker.restart)
    async with MQTTClient(broker.host, broker.port, version=version) as publisher:
        for index in range(10):
            await bounded(
                publisher.publish(topic, b"%d" % index, qos=QoS.AT_LEAST_ONCE)
            )
    info = await wait_connected(client, 2)
    assert info.session_present is True
    assert await payloads(sub, 10) == [b"%d" % i for i in range(10)]


@pytest.mark.parametrize("qos", [QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE])
async def test_unacknowledged_publish_completes_after_a_resumed_session(
    make_broker: BrokerFactory, clients: Clients, version: Version, qos: QoS
) -> None:
    broker = make_broker()
    topic = unique_topic()
    sub = await clients.subscribed(broker, topic, version=version, qos=QoS.EXACTLY_ONCE)
    client = await clients.connected(
        broker,
        version,
        client_id=unique_id(),
        clean_session=False,
        session_expiry_interval=600,
        reconnect=QUICK,
    )
    with frozen(broker):
        waiting = asyncio.create_task(client.publish(topic, b"resent", qos=qos))
        done, _ = await asyncio.wait({waiting}, timeout=0.2)
        assert not done, "a QoS 1/2 publish returned without its acknowledgement"
        # The connection drops while the publish waits for its acknowledgement.
        await bounded(client.reset())
    info = await wait_connected(client, 2)
    assert info.session_present is True
    # Resent (DUP) on the resumed session: the waiting call completes.
    await bounded(waiting)
    message = await next_message(sub)
    assert message.payload == b"resent"


@pytest.mark.parametrize("qos", [QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE])
async def test_unacknowledged_publish_fails_after_a_clean_session(
    make_broker: BrokerFactory, clients: Clients, version: Version, qos: QoS
) -> None:
    broker = make_broker()
    client = await clients.connected(broker, version, reconnect=QUICK)
    with frozen(broker):
        waiting = asyncio.create_task(client.publish(unique_topic(), b"lost", qos=qos))
        done, _ = await asyncio.wait({waiting}, timeout=0.2)
        assert not done
        await bounded(client.reset())
    await wait_connected(client, 2)
    with pytest.raises(MQTTDisconnectedError):
        await bounded(waiting)
    # The client goes on.
    await bounded(client.publish(unique_topic(), b"next", qos=qos))


async def test_first_connect_is_retried_until_the_broker_is_up(
    make_broker: BrokerFactory, clients: Clients, version: Version
) -> None:
    broker = make_broker()
    broker.kill()
    client = clients.new(
        broker,
        version,
        reconnect=ReconnectConfig(initial_delay=0.2, max_delay=0.2, max_attempts=None),
    )
    connecting = asyncio.create_task(client.connect())
    done, _ = await asyncio.wait({connecting}, timeout=0.3)
    assert not done, "connect() gave up although reconnection is enabled"
    await asyncio.to_thread(broker.start)
    await bounded(connecting)
    assert client.connection_info.connection_id == 1


async def test_network_errors_exhaust_the_attempts(
    make_broker: BrokerFactory, version: Version
) -> None:
    broker = make_broker()
    broker.kill()
    offset = log_offset(broker)
    client = MQTTClient(
        broker.host,
        broker.port,
        version=version,
        reconnect=ReconnectConfig(initial_delay=0.01, max_delay=0.01, max_attempts=3),
    )
    with pytest.raises(ConnectionRefusedError):
        await bounded(client.connect())
    assert log_since(broker, offset) == ""


async def test_connect_without_reconnect_fails_at_once(
    make_broker: BrokerFactory, version: Version
) -> None:
    broker = make_broker()
    broker.kill()
    client = MQTTClient(
        broker.host, broker.port, version=version, reconnect=NO_RECONNECT
    )
    # Well under the default first retry delay of 1 s.
    with pytest.raises(ConnectionRefusedError):
        await bounded(client.connect(), 0.9)


async def test_reconnect_disabled_a_loss_stops_the_client(
    make_broker: BrokerFactory, version: Version
) -> None:
    broker = make_broker()
    client = await connected_without_reconnect(broker, version)
    topic = unique_topic()
    sub = client.subscribe(topic)
    await bounded(sub.start())
    waiting = asyncio.create_task(sub.get_message())
    done, _ = await asyncio.wait({waiting}, timeout=0.05)
    assert not done
    broker.kill()
    # The waiting get_message() wakes with the error that stopped the client.
    with pytest.raises(MQTTDisconnectedError):
        await bounded(waiting)
    # The next calls raise MQTTDisconnectedError rather than hang.
    with pytest.raises(MQTTDisconnectedError):
        await bounded(client.publish(topic, b"x"))
    with pytest.raises(MQTTDisconnectedError):
        await bounded(client.publish(topic, b"x", qos=QoS.AT_LEAST_ONCE))
    with pytest.raises(MQTTDisconnectedError):
        await bounded(client.ping())
    with pytest.raises(MQTTDisconnectedError):
        await bounded(client.subscribe(f"{topic}/other").start())
    with pytest.raises(MQTTDisconnectedError):
        client.connection_info  # noqa: B018
    # The broker is back: the client does not reconnect by itself, but a new
    # connect() works.
    await asyncio.to_thread(broker.start)
    await bounded(client.connect())
    assert client.connection_info.connection_id == 2
    await bounded(client.disconnect())


async def test_reconnect_disabled_async_for_raises(
    make_broker: BrokerFactory, version: Version
) -> None:
    broker = make_broker()
    client = await connected_without_reconnect(broker, version)
    sub = client.subscribe(unique_topic())
    await bounded(sub.start())

    async def consume() -> list[bytes]:
        return [message.payload async for message in sub]

    consuming = asyncio.create_task(consume())
    done, _ = await asyncio.wait({consuming}, timeout=0.05)
    assert not done
    broker.kill()
    # Not a silent end of iteration: the error that stopped the client.
    with pytest.raises(MQTTDisconnectedError):
        await bounded(consuming)
    await bounded(client.disconnect())


async def test_refusal_is_not_retried(broker: Broker, version: Version) -> None:
    offset = log_offset(broker)
    client = MQTTClient(
        broker.host,
        broker.password_port,
        version=version,
        username=broker.username,
        password="wrong",
        reconnect=QUICK,  # would retry forever, every 50 to 200 ms
    )
    with pytest.raises(MQTTConnectError):
        await bounded(client.connect(), 5)
    # A retry would come within 0.2 s: give it twice that to show up.
    await asyncio.sleep(0.4)
    assert log_since(broker, offset).count("disconnected, not authorised") == 1


async def test_refusal_while_reconnecting_stops_the_client(
    make_broker: BrokerFactory, version: Version
) -> None:
    # Connected with credentials the broker later refuses (it is restarted with
    # another password file): the reconnect gets a refusal and gives up at once.
    broker = make_broker()
    calls: list[str] = []
    called = asyncio.Event()

    async def recovery_failed() -> None:
        calls.append("called")
        called.set()

    client = MQTTClient(
        broker.host,
        broker.password_port,
        version=version,
        username=broker.username,
        password=broker.password,
        reconnect=QUICK,
        on_connection_recovery_failed=recovery_failed,
    )
    await bounded(client.connect())
    sub = client.subscribe(unique_topic())
    await bounded(sub.start())
    # An empty password file: mosquitto refuses every user from now on.
    (broker.log_path.parent / "passwd").write_text("")
    await asyncio.to_thread(broker.restart)
    with pytest.raises(MQTTConnectError):
        await bounded(sub.get_message())
    await bounded(called.wait())
    assert calls == ["called"]
    await bounded(client.disconnect())


async def test_recovery_failed_callback_is_called_once(
    make_broker: BrokerFactory, version: Version
) -> None:
    broker = make_broker()
    called = asyncio.Event()
    calls: list[int] = []

    async def recovery_failed() -> None:
        calls.append(1)
        called.set()

    client = MQTTClient(
        broker.host,
        broker.port,
        version=version,
        reconnect=ReconnectConfig(initial_delay=0.01, max_delay=0.01, max_attempts=2),
        on_connection_recovery_failed=recovery_failed,
    )
    await bounded(client.connect())
    sub = client.subscribe(unique_topic())
    await bounded(sub.start())
    broker.kill()
    await bounded(called.wait())
    # The subscription reports the error that stopped the client ...
    with pytest.raises((MQTTError, OSError)):
        await bounded(sub.get_message())
    # ... and after a clean disconnect the callback was still called only once.
    await bounded(client.disconnect())
    assert calls == [1]


async def test_recovery_failed_callback_not_called_on_disconnect(
    broker: Broker, version: Version
) -> None:
    calls: list[int] = []

    async def recovery_failed() -> None:
        calls.append(1)

    client = MQTTClient(
        broker.host,
        broker.port,
        version=version,
        on_connection_recovery_failed=recovery_failed,
    )
    await bounded(client.connect())
    sub = client.subscribe(unique_topic())
    await bounded(sub.start())
    await bounded(client.disconnect())
    # The subscription ends cleanly, and the watcher has seen the clean stop.
    with pytest.raises(MQTTDisconnectedError):
        await bounded(sub.get_message())
    for _ in range(10):
        await asyncio.sleep(0)
    assert calls == []


async def test_recovery_failed_callback_with_reconnect_disabled(
    make_broker: BrokerFactory, version: Version
) -> None:
    broker = make_broker()
    called = asyncio.Event()

    async def recovery_failed() -> None:
        called.set()

    client = MQTTClient(
        broker.host,
        broker.port,
        version=version,
        reconnect=NO_RECONNECT,
        on_connection_recovery_failed=recovery_failed,
    )
    await bounded(client.connect())
    broker.kill()
    await bounded(called.wait())
    await bounded(client.disconnect())


async def test_publish_made_while_reconnecting_waits_for_the_connection(
    make_broker: BrokerFactory, clients: Clients, version: Version
) -> None:
    broker = make_broker()
    topic = unique_topic()
    client = await clients.connected(broker, version, reconnect=QUICK)
    broker.kill()
    await wait_until(lambda: current_connection_id(client) is None, "the loss")
    # Made while the client is reconnecting: a QoS 1 publish waits for it.
    waiting = asyncio.create_task(
        client.publish(topic, b"waited", qos=QoS.AT_LEAST_ONCE, retain=True)
    )
    done, _ = await asyncio.wait({waiting}, timeout=0.2)
    assert not done
    await asyncio.to_thread(broker.start)
    await bounded(waiting)
    sub = await clients.subscribed(broker, topic, version=version)
    assert (await next_message(sub)).payload == b"waited"


async def test_pending_request_survives_a_reconnect(
    broker: Broker, clients: Clients
) -> None:
    # The requester's persistent session keeps its response-topic subscription
    # at the broker while it reconnects; the request keeps waiting and gets the
    # reply sent meanwhile.
    client = await clients.connected(
        broker,
        "5.0",
        client_id=unique_id(),
        clean_session=False,
        session_expiry_interval=600,
        reconnect=QUICK,
    )
    responder = await clients.connected(broker, "5.0")
    topic = unique_topic()
    requests = responder.subscribe(topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(requests.start())
    pending = asyncio.create_task(
        client.request(topic, b"question", qos=QoS.AT_LEAST_ONCE, timeout=10)
    )
    request = await next_message(requests)
    await bounded(client.reset())
    await wait_connected(client, 2)
    properties = request.properties
    assert properties is not None and properties.response_topic is not None
    await bounded(
        responder.publish(
            properties.response_topic,
            b"answer",
            qos=QoS.AT_LEAST_ONCE,
            properties=PublishProperties(correlation_data=properties.correlation_data),
        )
    )
    assert (await bounded(pending)).payload == b"answer"
