"""TEST DOUBLE of the native module ``zmqtt._zmqtt`` — for the unit tests of the
pure-Python layer only (argument handling, batching, loop binding).

It speaks no MQTT and opens no socket: it records what the Python layer asks
for and lets a test script the answers (deliver messages, end a subscription,
fail the client). It follows the call shapes of ``python/zmqtt/_zmqtt.pyi``;
it is not a reference for the native module's behaviour and never part of
the product.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported lazily at run time: this module must be importable before the
    # ``zmqtt`` package, which it stands in for a part of.
    from zmqtt._options import ClientOptions
    from zmqtt._types import (
        ConnectionInfo,
        PublishProperties,
        QoS,
        UnsubscribeResult,
    )

#: Every ``NativeClient`` made since the last :func:`reset`, oldest first.
clients: list[NativeClient] = []


def reset() -> None:
    """Forgets the clients of the previous test."""
    clients.clear()


def _future(result: object = None) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future


def _failed(error: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(error)
    return future


def validate_topic_name(topic: str) -> None:
    """Refuses the empty topic and wildcards (enough for these tests)."""
    from zmqtt._errors import MQTTInvalidTopicError

    if not topic:
        raise MQTTInvalidTopicError("Topic name must not be empty")
    if "+" in topic or "#" in topic:
        raise MQTTInvalidTopicError(
            f"Wildcards not allowed in publish topic: '{topic}'"
        )


def validate_topic_filter(topic_filter: str) -> None:
    """Refuses the empty filter and a ``#`` that is not the last level."""
    from zmqtt._errors import MQTTInvalidTopicError

    if not topic_filter:
        raise MQTTInvalidTopicError("Topic filter must not be empty")
    if "#" in topic_filter[:-1] or (
        topic_filter.endswith("#")
        and topic_filter not in ("#",)
        and not topic_filter.endswith("/#")
    ):
        raise MQTTInvalidTopicError(f"Invalid topic filter '{topic_filter}'")


def topic_matches(
    topic_filter: str, topic: str, stripped_prefixes: Sequence[str]
) -> bool:
    """Plain level-by-level matching; records its arguments in ``matched``."""
    validate_topic_filter(topic_filter)
    matched.append((topic_filter, topic, tuple(stripped_prefixes)))
    filter_levels, topic_levels = topic_filter.split("/"), topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels) or level not in ("+", topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


matched: list[tuple[str, str, tuple[str, ...]]] = []


class Message:
    """A received message; counts its ``ack()`` calls."""

    __slots__ = ("acks", "payload", "properties", "qos", "retain", "topic")

    def __init__(
        self,
        topic: str,
        payload: bytes,
        qos: QoS | int = 0,
        retain: bool = False,
        properties: PublishProperties | None = None,
    ) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.properties = properties
        self.acks = 0

    async def ack(self) -> None:
        self.acks += 1

    def __repr__(self) -> str:
        return f"<Message {self.topic!r} {len(self.payload)} bytes>"


@dataclass
class NativeSubscription:
    """A scripted subscription: a queue the test fills and an end it decides."""

    args: tuple[Any, ...]
    queue: deque[Message] = field(default_factory=deque)
    started: bool = False
    detached: bool = False
    stopped: bool = False
    ended: bool = False
    error: BaseException | None = None
    start_error: BaseException | None = None
    stop_result: UnsubscribeResult | None = None
    stop_error: BaseException | None = None
    batch_requests: list[int] = field(default_factory=list)
    wait_calls: int = 0
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    start_future: asyncio.Future[None] | None = None

    # -- the contract --------------------------------------------------------

    def start(self) -> asyncio.Future[None]:
        if self.start_error is not None:
            return _failed(self.start_error)
        self.started = True
        if self.start_future is not None:
            return self.start_future
        return _future()

    def stop(self) -> asyncio.Future[UnsubscribeResult | None]:
        self.stopped = True
        self._end()
        if self.stop_error is not None:
            return _failed(self.stop_error)
        return _future(self.stop_result)

    def detach(self) -> None:
        self.detached = True
        self._end()

    def try_recv_batch(self, max_messages: int) -> list[Message] | None:
        self.batch_requests.append(max_messages)
        if self.queue:
            count = min(max_messages, len(self.queue))
            return [self.queue.popleft() for _ in range(count)]
        if self.ended:
            if self.error is not None:
                raise self.error
            return None
        return []

    def wait(self) -> asyncio.Future[None]:
        self.wait_calls += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.queue or self.ended:
            future.set_result(None)
        else:
            self.waiters.append(future)
        return future

    # -- test controls -------------------------------------------------------

    def deliver(self, *messages: Message) -> None:
        """Queues messages and wakes the waiters, as the driver would."""
        self.queue.extend(messages)
        self._wake()

    def fail(self, error: BaseException) -> None:
        """Ends the subscription with the error that stopped the client."""
        self.error = error
        self.ended = True
        self._wake()

    def _end(self) -> None:
        self.queue.clear()
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class NativeClient:
    """A scripted client: records calls, answers at once unless told otherwise."""

    def __init__(self, host: str, port: int, options: ClientOptions) -> None:
        self.host = host
        self.port = port
        self.options = options
        self.connection_info: ConnectionInfo | None = None
        self.connected = False
        self.calls: list[tuple[Any, ...]] = []
        self.subscriptions: list[NativeSubscription] = []
        self.nowait_accepts = True
        self.connect_error: BaseException | None = None
        self.stopped_future: asyncio.Future[BaseException | None] | None = None
        self.reply: Message | None = None
        self.connections = 0
        clients.append(self)

    # -- the contract --------------------------------------------------------

    def connect(self) -> asyncio.Future[ConnectionInfo]:
        from zmqtt._types import ConnectionInfo

        self.calls.append(("connect",))
        if self.connect_error is not None:
            return _failed(self.connect_error)
        if self.connected and self.connection_info is not None:
            return _future(self.connection_info)
        self.connections += 1
        self.connected = True
        self.stopped_future = asyncio.get_running_loop().create_future()
        self.connection_info = ConnectionInfo(
            connection_id=self.connections,
            session_present=False,
            return_code=0,
            properties=None,
            effective_client_id=self.options.client_id or "assigned",
            effective_keepalive=self.options.keepalive,
            effective_session_expiry_interval=None,
        )
        return _future(self.connection_info)

    def disconnect(self) -> asyncio.Future[None]:
        self.calls.append(("disconnect",))
        self._stop(None)
        return _future()

    def reset(self) -> asyncio.Future[None]:
        self.calls.append(("reset",))
        return _future()

    def stopped(self) -> asyncio.Future[BaseException | None]:
        if self.stopped_future is None:
            return _future(None)
        return self.stopped_future

    def publish_nowait(
        self,
        topic: str,
        payload: bytes,
        retain: bool,
        properties: PublishProperties | None,
    ) -> bool:
        from zmqtt._errors import MQTTDisconnectedError

        validate_topic_name(topic)
        if not self.connected:
            raise MQTTDisconnectedError("Not connected")
        self.calls.append(("publish_nowait", topic, payload, retain, properties))
        return self.nowait_accepts

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        properties: PublishProperties | None,
    ) -> asyncio.Future[None]:
        validate_topic_name(topic)
        self.calls.append(("publish", topic, payload, qos, retain, properties))
        return _future()

    def ping(self, timeout: float) -> asyncio.Future[float]:
        self.calls.append(("ping", timeout))
        return _future(0.001)

    def subscribe(
        self,
        filters: tuple[str, ...],
        qos: int,
        auto_ack: bool,
        receive_buffer_size: int,
        no_local: bool,
        retain_as_published: bool,
        retain_handling: int,
        subscription_identifier: int | None,
    ) -> NativeSubscription:
        for topic_filter in filters:
            validate_topic_filter(topic_filter)
        args = (
            filters,
            qos,
            auto_ack,
            receive_buffer_size,
            no_local,
            retain_as_published,
            retain_handling,
            subscription_identifier,
        )
        subscription = NativeSubscription(args)
        self.subscriptions.append(subscription)
        return subscription

    def request(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        timeout: float,
        properties: PublishProperties | None,
    ) -> asyncio.Future[Message]:
        self.calls.append(("request", topic, payload, qos, timeout, properties))
        return _future(self.reply or Message("reply", b"pong"))

    def auth(self, method: str, data: bytes | None) -> asyncio.Future[None]:
        self.calls.append(("auth", method, data))
        return _future()

    # -- test controls -------------------------------------------------------

    def lose_connection(self, error: BaseException) -> None:
        """The run ends with ``error`` (e.g. reconnecting gave up)."""
        self._stop(error)
        for subscription in self.subscriptions:
            subscription.fail(error)

    def _stop(self, error: BaseException | None) -> None:
        self.connected = False
        self.connection_info = None
        if self.stopped_future is not None and not self.stopped_future.done():
            self.stopped_future.set_result(error)
        for subscription in self.subscriptions:
            if error is None and not subscription.ended:
                subscription._end()
