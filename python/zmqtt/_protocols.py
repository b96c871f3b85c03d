"""``MQTTClientV311`` and ``MQTTClientV5``: version-typed views of ``MQTTClient`` (SPEC 1.2).

``create_client()`` returns one of these ``typing.Protocol`` types depending on
its ``version`` argument. The object is always the one concrete ``MQTTClient``;
the views only tell a type checker which calls the protocol version allows:
``auth()``, ``request()``, ``publish(..., properties=...)`` and the 5.0
subscription options exist on ``MQTTClientV5`` only. At run time the same
misuse raises ``RuntimeError``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from zmqtt._subscription import Subscription
from zmqtt._types import ConnectionInfo, PublishProperties, QoS, RetainHandling
from zmqtt._zmqtt import Message

__all__ = ["MQTTClientV5", "MQTTClientV311"]


class MQTTClientV311(Protocol):
    """An MQTT 3.1.1 client: what ``create_client(host)`` returns."""

    async def __aenter__(self) -> Self:
        """Connects; the handshake is complete when the block starts."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Sends DISCONNECT and closes the socket."""
        ...

    @property
    def connection_info(self) -> ConnectionInfo:
        """The CONNACK summary of the current connection (``MQTTDisconnectedError`` when not connected)."""
        ...

    async def connect(self) -> None:
        """Connects (retrying as ``reconnect`` says); returns when CONNACK accepted it."""
        ...

    async def disconnect(self) -> None:
        """Sends DISCONNECT and closes the socket; safe when already disconnected."""
        ...

    async def reset(self) -> None:
        """Drops the connection so that the client reconnects."""
        ...

    async def publish(
        self,
        topic: str,
        payload: bytes | bytearray | memoryview | str,
        *,
        qos: QoS = QoS.AT_MOST_ONCE,
        retain: bool = False,
    ) -> None:
        """Publishes; QoS 0 returns once queued, QoS 1 on PUBACK, QoS 2 on PUBCOMP."""
        ...

    def subscribe(
        self,
        *filters: str,
        qos: QoS = QoS.AT_MOST_ONCE,
        auto_ack: bool = True,
        receive_buffer_size: int = 1000,
    ) -> Subscription:
        """A subscription to ``filters``, started with ``async with`` or ``start()``."""
        ...

    async def ping(self, timeout: float = 10.0) -> float:
        """Round-trip time of a PINGREQ/PINGRESP, in seconds."""
        ...


class MQTTClientV5(Protocol):
    """An MQTT 5.0 client: what ``create_client(host, version="5.0")`` returns."""

    async def __aenter__(self) -> Self:
        """Connects; the handshake is complete when the block starts."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Sends DISCONNECT and closes the socket."""
        ...

    @property
    def connection_info(self) -> ConnectionInfo:
        """The CONNACK summary of the current connection (``MQTTDisconnectedError`` when not connected)."""
        ...

    async def connect(self) -> None:
        """Connects (retrying as ``reconnect`` says); returns when CONNACK accepted it."""
        ...

    async def disconnect(self) -> None:
        """Sends DISCONNECT and closes the socket; safe when already disconnected."""
        ...

    async def reset(self) -> None:
        """Drops the connection so that the client reconnects."""
        ...

    async def publish(
        self,
        topic: str,
        payload: bytes | bytearray | memoryview | str,
        *,
        qos: QoS = QoS.AT_MOST_ONCE,
        retain: bool = False,
        properties: PublishProperties | None = None,
    ) -> None:
        """Publishes; QoS 0 returns once queued, QoS 1 on PUBACK, QoS 2 on PUBCOMP."""
        ...

    def subscribe(
        self,
        *filters: str,
        qos: QoS = QoS.AT_MOST_ONCE,
        auto_ack: bool = True,
        receive_buffer_size: int = 1000,
        no_local: bool = False,
        retain_as_published: bool = False,
        retain_handling: RetainHandling = RetainHandling.SEND_ON_SUBSCRIBE,
        subscription_identifier: int | None = None,
    ) -> Subscription:
        """A subscription to ``filters``, started with ``async with`` or ``start()``."""
        ...

    async def ping(self, timeout: float = 10.0) -> float:
        """Round-trip time of a PINGREQ/PINGRESP, in seconds."""
        ...

    async def request(
        self,
        topic: str,
        payload: bytes | bytearray | memoryview | str,
        *,
        qos: QoS = QoS.AT_MOST_ONCE,
        timeout: float = 30.0,
        properties: PublishProperties | None = None,
    ) -> Message:
        """Publishes a request and returns the reply with the matching correlation data."""
        ...

    async def auth(self, method: str, data: bytes | None = None) -> None:
        """Sends one AUTH packet (reason 0x18)."""
        ...
