"""``MQTTClient`` and ``create_client`` (SPEC 1.1–1.9): argument handling and
asyncio glue over the native client; the protocol work happens in Rust."""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Literal, Self, overload

from zmqtt import _zmqtt as _native
from zmqtt._errors import MQTTDisconnectedError
from zmqtt._loop import LoopBinding
from zmqtt._options import (
    DEFAULT_STRIPPED_PREFIXES,
    ClientOptions,
    build_client_options,
)
from zmqtt._protocols import MQTTClientV5, MQTTClientV311
from zmqtt._subscription import Subscription
from zmqtt._types import (
    MAX_VARIABLE_BYTE_INTEGER,
    ConnectionInfo,
    PublishProperties,
    QoS,
    ReconnectConfig,
    RetainHandling,
    TLSConfig,
    Will,
    check_bool,
    check_int,
    check_mqtt_string,
    check_optional_binary,
    check_qos,
)

__all__ = ["MQTTClient", "create_client", "topic_matches"]

_log = logging.getLogger("zmqtt.client")

#: What ``publish()`` and ``request()`` accept as payload.
Payload = bytes | bytearray | memoryview | str
#: The ``on_connection_recovery_failed`` callback.
RecoveryFailedCallback = Callable[[], Awaitable[None]]

_get_ident = threading.get_ident


def _payload_bytes(payload: object) -> bytes:
    """A payload as ``bytes``: ``str`` is UTF-8 encoded, bytes-like objects copied."""
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    raise TypeError(
        f"payload must be bytes, bytearray, memoryview or str, got {type(payload).__name__}"
    )


def _check_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"timeout must be a number of seconds, got {type(value).__name__}"
        )
    if not value > 0:
        raise ValueError("timeout must be positive")
    return float(value)


class MQTTClient:
    """An asyncio MQTT 3.1.1 / 5.0 client whose protocol engine runs in Rust.

    Prefer :func:`create_client`, whose return type tells the type checker
    which protocol version's API applies. Constructing the client does no I/O;
    it connects on ``async with client:`` or ``await client.connect()``.
    The client is bound to the event loop it is first used on.

    Every parameter but ``host`` and ``port`` is keyword-only; see SPEC 1.1.
    ``receive_maximum``, ``maximum_packet_size``, ``user_properties``, the two
    ``request_*_information`` flags and ``WillProperties`` need
    ``version="5.0"``; given with ``"3.1.1"`` they raise ``RuntimeError``.
    ``session_expiry_interval`` is ignored on 3.1.1.

    Raises:
        ValueError: An unknown ``version`` or a value out of range.
        TypeError: A value of the wrong type, or a ``transport_factory``.
        RuntimeError: A 5.0-only option with ``version="3.1.1"``.
        MQTTInvalidTopicError: An invalid Will topic.
    """

    def __init__(
        self,
        host: str,
        port: int = 1883,
        *,
        client_id: str = "",
        keepalive: int = 60,
        clean_session: bool = True,
        username: str | None = None,
        password: str | bytes | None = None,
        will: Will | None = None,
        tls: bool | ssl.SSLContext | TLSConfig | None = False,
        reconnect: ReconnectConfig | None = None,
        on_connection_recovery_failed: RecoveryFailedCallback | None = None,
        mqtt_connect_timeout: float = 30.0,
        session_expiry_interval: int = 0,
        receive_maximum: int | None = None,
        maximum_packet_size: int | None = None,
        user_properties: Sequence[tuple[str, str]] = (),
        request_response_information: bool | None = None,
        request_problem_information: bool | None = None,
        stripped_prefixes: Sequence[str] = DEFAULT_STRIPPED_PREFIXES,
        max_pending_requests: int = 1000,
        session_replay_buffer_size: int = 1000,
        session_replay_timeout: float = 30.0,
        transport_factory: None = None,
        version: Literal["3.1.1", "5.0"] = "3.1.1",
    ) -> None:
        options = build_client_options(
            host=host,
            port=port,
            version=version,
            client_id=client_id,
            keepalive=keepalive,
            clean_session=clean_session,
            username=username,
            password=password,
            will=will,
            tls=tls,
            reconnect=reconnect,
            mqtt_connect_timeout=mqtt_connect_timeout,
            session_expiry_interval=session_expiry_interval,
            receive_maximum=receive_maximum,
            maximum_packet_size=maximum_packet_size,
            user_properties=user_properties,
            request_response_information=request_response_information,
            request_problem_information=request_problem_information,
            stripped_prefixes=stripped_prefixes,
            max_pending_requests=max_pending_requests,
            session_replay_buffer_size=session_replay_buffer_size,
            session_replay_timeout=session_replay_timeout,
            transport_factory=transport_factory,
        )
        if on_connection_recovery_failed is not None and not callable(
            on_connection_recovery_failed
        ):
            raise TypeError(
                "on_connection_recovery_failed must be an async callable taking no arguments"
            )
        if options.will is not None:
            _native.validate_topic_name(options.will.topic)
        self._host = host
        self._port = port
        self._options = options
        self._v5 = options.version == "5.0"
        self._on_recovery_failed = on_connection_recovery_failed
        self._binding = LoopBinding("MQTTClient")
        self._watcher: asyncio.Task[None] | None = None
        self._native = _native.NativeClient(host, port, options)
        self._publish_nowait = self._native.publish_nowait

    def __repr__(self) -> str:
        return (
            f"<MQTTClient {self._host}:{self._port} version={self._options.version} "
            f"client_id={self._options.client_id!r}>"
        )

    @property
    def options(self) -> ClientOptions:
        """The validated options this client was built with."""
        return self._options

    @property
    def connection_info(self) -> ConnectionInfo:
        """What the broker agreed to in the CONNACK of the current connection.

        Raises:
            MQTTDisconnectedError: Not connected (before ``connect()``, while
                reconnecting, after ``disconnect()``).
        """
        info = self._native.connection_info
        if info is None:
            raise MQTTDisconnectedError("Not connected: no connection information")
        return info

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        """Connects (see :meth:`connect`)."""
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Disconnects (see :meth:`disconnect`)."""
        await self.disconnect()

    async def connect(self) -> None:
        """Connects and returns once the broker accepted the CONNECT.

        Network errors and CONNACK timeouts are retried as ``reconnect`` says;
        a refusal is not.

        Raises:
            MQTTConnectError: The broker refused the connection.
            MQTTTimeoutError: No CONNACK within ``mqtt_connect_timeout`` (after the last attempt).
            MQTTProtocolError: The broker sent something other than CONNACK first.
            MQTTDisconnectedError: The connection closed before CONNACK.
            OSError: The network failed (``ssl.SSLError`` for TLS) on the last attempt.
        """
        loop = self._binding.check()
        await self._native.connect()
        if self._on_recovery_failed is not None and (
            self._watcher is None or self._watcher.done()
        ):
            # Ask now, not in the task: the future must be this run's.
            stopped = self._native.stopped()
            self._watcher = loop.create_task(
                self._watch_recovery(stopped), name="zmqtt recovery watcher"
            )

    async def _watch_recovery(self, stopped: Awaitable[BaseException | None]) -> None:
        """Calls ``on_connection_recovery_failed`` once if this run ends in an error."""
        error = await stopped
        callback = self._on_recovery_failed
        if error is None or callback is None:
            return
        _log.error(
            "connection to %s:%s could not be restored: %s",
            self._host,
            self._port,
            error,
        )
        try:
            await callback()
        except Exception:  # noqa: BLE001 - a failing user callback must not end the client
            _log.exception("on_connection_recovery_failed raised")

    async def disconnect(self) -> None:
        """Sends DISCONNECT and closes the socket.

        Safe when the connection is already lost, and twice. Pending calls fail
        with ``MQTTDisconnectedError``; subscriptions end.
        """
        self._binding.check()
        # The watcher of this run sees the clean stop and ends by itself; the
        # next connect() starts a watcher of its own.
        self._watcher = None
        try:
            await self._native.disconnect()
        except MQTTDisconnectedError:
            pass

    async def reset(self) -> None:
        """Drops the current connection as if it were lost, so the client
        reconnects (per ``reconnect``) and restores its subscriptions.

        For a connection that still answers pings but delivers nothing any
        more. A no-op when not connected.
        """
        self._binding.check()
        await self._native.reset()

    # ------------------------------------------------------------------ publish

    async def publish(
        self,
        topic: str,
        payload: Payload,
        *,
        qos: QoS = QoS.AT_MOST_ONCE,
        retain: bool = False,
        properties: PublishProperties | None = None,
    ) -> None:
        """Publishes ``payload`` to ``topic``.

        QoS 0 returns once the packet is queued for the socket, QoS 1 on
        PUBACK, QoS 2 on PUBCOMP. ``str`` payloads are UTF-8 encoded.

        Raises:
            MQTTInvalidTopicError: Invalid topic name (e.g. with a wildcard).
            MQTTDisconnectedError: Not connected (QoS 0), or the connection was
                lost and the session not resumed (QoS 1/2).
            MQTTPublishError: The broker refused it (5.0), or it exceeds the
                broker's Maximum Packet Size (reason code 0x95).
            MQTTQoSExceededError: ``qos`` above the broker's Maximum QoS.
            MQTTRetainNotAvailableError: ``retain`` but the broker has no retain.
            RuntimeError: ``properties`` on an MQTT 3.1.1 client.
        """
        # The QoS 0 fast path does no more than it must: a publish costs well
        # under a microsecond of Python here (BENCH.md W6).
        binding = self._binding
        if _get_ident() != binding.thread:
            binding.check()
        data = payload if isinstance(payload, bytes) else _payload_bytes(payload)
        if properties is not None:
            self._check_publish_properties(properties)
        if retain.__class__ is not bool:
            retain = bool(retain)
        if qos == 0:
            if self._publish_nowait(topic, data, retain, properties):
                return
            binding.check()
            await self._native.publish(topic, data, 0, retain, properties)
            return
        if qos != 1 and qos != 2:
            check_qos("qos", qos)
        binding.check()
        await self._native.publish(topic, data, qos, retain, properties)

    def _check_publish_properties(self, properties: object) -> None:
        if not self._v5:
            raise RuntimeError("properties require MQTT 5.0")
        if not isinstance(properties, PublishProperties):
            raise TypeError(
                f"properties must be a zmqtt.PublishProperties, got {type(properties).__name__}"
            )
        if properties.subscription_identifier is not None:
            raise ValueError(
                "subscription_identifier is set by the broker on delivery; a client cannot send it"
            )

    # ------------------------------------------------------------------ subscribe

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
        """A :class:`Subscription` to ``filters``, made without any I/O.

        Start it with ``async with`` or ``await sub.start()``. At most
        ``receive_buffer_size`` messages wait in it (0 = unbounded); when it is
        full the client stops reading the socket rather than grow or drop.
        ``no_local``, ``retain_as_published``, ``retain_handling`` and
        ``subscription_identifier`` (1..268435455) are MQTT 5.0 options.

        Raises:
            MQTTInvalidTopicError: An invalid filter.
            RuntimeError: A 5.0 option on an MQTT 3.1.1 client.
            ValueError: No filter, or a value out of range.
        """
        if not filters:
            raise ValueError("subscribe() needs at least one topic filter")
        for topic_filter in filters:
            if not isinstance(topic_filter, str):
                raise TypeError(
                    f"topic filters must be str, got {type(topic_filter).__name__}"
                )
        checked_qos = check_qos("qos", qos)
        check_bool("auto_ack", auto_ack)
        buffer_size = check_int(
            "receive_buffer_size", receive_buffer_size, 0, 2**31 - 1
        )
        check_bool("no_local", no_local)
        check_bool("retain_as_published", retain_as_published)
        try:
            handling = RetainHandling(retain_handling)
        except ValueError:
            raise ValueError(
                f"retain_handling must be 0, 1 or 2, got {retain_handling!r}"
            ) from None
        if not self._v5:
            five_only = [
                name
                for name, used in (
                    ("no_local", no_local),
                    ("retain_as_published", retain_as_published),
                    (
                        "retain_handling",
                        handling is not RetainHandling.SEND_ON_SUBSCRIBE,
                    ),
                    ("subscription_identifier", subscription_identifier is not None),
                )
                if used
            ]
            if five_only:
                verb = "requires" if len(five_only) == 1 else "require"
                raise RuntimeError(f"{', '.join(five_only)} {verb} MQTT 5.0")
        if subscription_identifier is not None:
            check_int(
                "subscription_identifier",
                subscription_identifier,
                1,
                MAX_VARIABLE_BYTE_INTEGER,
            )
        factory = functools.partial(
            self._native.subscribe,
            tuple(filters),
            int(checked_qos),
            auto_ack,
            buffer_size,
            no_local,
            retain_as_published,
            int(handling),
            subscription_identifier,
        )
        return Subscription(self._binding, factory, tuple(filters), buffer_size)

    # ------------------------------------------------------------------ other calls

    async def ping(self, timeout: float = 10.0) -> float:
        """Sends PINGREQ and returns the round-trip time in seconds.

        Raises:
            MQTTTimeoutError: No PINGRESP within ``timeout`` seconds.
            MQTTDisconnectedError: Not connected.
        """
        seconds = _check_timeout(timeout)
        self._binding.check()
        return await self._native.ping(seconds)

    async def request(
        self,
        topic: str,
        payload: Payload,
        *,
        qos: QoS = QoS.AT_MOST_ONCE,
        timeout: float = 30.0,
        properties: PublishProperties | None = None,
    ) -> _native.Message:
        """MQTT 5.0 request/response: publishes with a Response Topic and
        Correlation Data and returns the matching reply.

        The response topic is ``properties.response_topic`` or a generated one;
        the correlation data ``properties.correlation_data`` or 16 random bytes.

        Raises:
            RuntimeError: On an MQTT 3.1.1 client.
            asyncio.TimeoutError: No reply within ``timeout`` seconds.
            ValueError: The same response topic and correlation data are pending.
            MQTTInvalidTopicError: Invalid topic or response topic.
            MQTTDisconnectedError: Not connected, or ``disconnect()`` while waiting.
        """
        if not self._v5:
            raise RuntimeError("request() requires MQTT 5.0")
        data = payload if isinstance(payload, bytes) else _payload_bytes(payload)
        checked_qos = check_qos("qos", qos)
        seconds = _check_timeout(timeout)
        if properties is not None:
            self._check_publish_properties(properties)
        self._binding.check()
        return await self._native.request(
            topic, data, int(checked_qos), seconds, properties
        )

    async def auth(self, method: str, data: bytes | None = None) -> None:
        """MQTT 5.0: sends one AUTH packet (reason 0x18, Continue authentication).

        Raises:
            RuntimeError: On an MQTT 3.1.1 client.
            MQTTDisconnectedError: Not connected.
        """
        if not self._v5:
            raise RuntimeError("auth() requires MQTT 5.0")
        check_mqtt_string("method", method)
        auth_data = check_optional_binary("data", data)
        self._binding.check()
        await self._native.auth(method, auth_data)


# --------------------------------------------------------------------------- factory


@overload
def create_client(
    host: str,
    port: int = ...,
    *,
    client_id: str = ...,
    keepalive: int = ...,
    clean_session: bool = ...,
    username: str | None = ...,
    password: str | bytes | None = ...,
    will: Will | None = ...,
    tls: bool | ssl.SSLContext | TLSConfig | None = ...,
    reconnect: ReconnectConfig | None = ...,
    on_connection_recovery_failed: RecoveryFailedCallback | None = ...,
    mqtt_connect_timeout: float = ...,
    session_expiry_interval: int = ...,
    stripped_prefixes: Sequence[str] = ...,
    max_pending_requests: int = ...,
    session_replay_buffer_size: int = ...,
    session_replay_timeout: float = ...,
    transport_factory: None = ...,
    version: Literal["3.1.1"] = ...,
) -> MQTTClientV311: ...


@overload
def create_client(
    host: str,
    port: int = ...,
    *,
    client_id: str = ...,
    keepalive: int = ...,
    clean_session: bool = ...,
    username: str | None = ...,
    password: str | bytes | None = ...,
    will: Will | None = ...,
    tls: bool | ssl.SSLContext | TLSConfig | None = ...,
    reconnect: ReconnectConfig | None = ...,
    on_connection_recovery_failed: RecoveryFailedCallback | None = ...,
    mqtt_connect_timeout: float = ...,
    session_expiry_interval: int = ...,
    receive_maximum: int | None = ...,
    maximum_packet_size: int | None = ...,
    user_properties: Sequence[tuple[str, str]] = ...,
    request_response_information: bool | None = ...,
    request_problem_information: bool | None = ...,
    stripped_prefixes: Sequence[str] = ...,
    max_pending_requests: int = ...,
    session_replay_buffer_size: int = ...,
    session_replay_timeout: float = ...,
    transport_factory: None = ...,
    version: Literal["5.0"],
) -> MQTTClientV5: ...


def create_client(
    host: str,
    port: int = 1883,
    *,
    client_id: str = "",
    keepalive: int = 60,
    clean_session: bool = True,
    username: str | None = None,
    password: str | bytes | None = None,
    will: Will | None = None,
    tls: bool | ssl.SSLContext | TLSConfig | None = False,
    reconnect: ReconnectConfig | None = None,
    on_connection_recovery_failed: RecoveryFailedCallback | None = None,
    mqtt_connect_timeout: float = 30.0,
    session_expiry_interval: int = 0,
    receive_maximum: int | None = None,
    maximum_packet_size: int | None = None,
    user_properties: Sequence[tuple[str, str]] = (),
    request_response_information: bool | None = None,
    request_problem_information: bool | None = None,
    stripped_prefixes: Sequence[str] = DEFAULT_STRIPPED_PREFIXES,
    max_pending_requests: int = 1000,
    session_replay_buffer_size: int = 1000,
    session_replay_timeout: float = 30.0,
    transport_factory: None = None,
    version: Literal["3.1.1", "5.0"] = "3.1.1",
) -> MQTTClientV311 | MQTTClientV5:
    """Builds a client without any I/O; the preferred entry point.

    The return type follows ``version``: ``MQTTClientV311`` (the default) or
    ``MQTTClientV5``, both views of one :class:`MQTTClient`, so a type checker
    rejects 5.0-only calls on a 3.1.1 client. Takes the same arguments as
    :class:`MQTTClient`; the 5.0-only CONNECT options (those that raise
    ``RuntimeError`` on 3.1.1) appear in the ``"5.0"`` overload only.
    """
    return MQTTClient(
        host,
        port,
        client_id=client_id,
        keepalive=keepalive,
        clean_session=clean_session,
        username=username,
        password=password,
        will=will,
        tls=tls,
        reconnect=reconnect,
        on_connection_recovery_failed=on_connection_recovery_failed,
        mqtt_connect_timeout=mqtt_connect_timeout,
        session_expiry_interval=session_expiry_interval,
        receive_maximum=receive_maximum,
        maximum_packet_size=maximum_packet_size,
        user_properties=user_properties,
        request_response_information=request_response_information,
        request_problem_information=request_problem_information,
        stripped_prefixes=stripped_prefixes,
        max_pending_requests=max_pending_requests,
        session_replay_buffer_size=session_replay_buffer_size,
        session_replay_timeout=session_replay_timeout,
        transport_factory=transport_factory,
        version=version,
    )


def topic_matches(
    topic_filter: str,
    topic: str,
    *,
    stripped_prefixes: Sequence[str] = DEFAULT_STRIPPED_PREFIXES,
) -> bool:
    """Whether ``topic`` matches ``topic_filter`` by the rule the client routes with.

    ``+`` matches one level, ``#`` the rest; neither matches a first level
    starting with ``$``. ``$share/<group>/f`` and ``<prefix>/f`` for each of
    ``stripped_prefixes`` match on ``f``.

    Raises:
        MQTTInvalidTopicError: ``topic_filter`` is not a valid filter.
    """
    return _native.topic_matches(topic_filter, topic, stripped_prefixes)
