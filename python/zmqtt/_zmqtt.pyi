"""Contract of the native extension module ``zmqtt._zmqtt`` (crates/zmqtt-py, PyO3).

The pure-Python layer (``zmqtt._client``) is the only caller. It has already
checked types, ranges and version rules (SPEC 1.1, 1.7) before calling in; the
native side does the protocol work: topic validation and matching, encoding,
flows, routing, reconnecting, timing.

Rules for the implementation:

- Threads: every function is called on the event loop's thread with the GIL
  held. Nothing blocks that thread; the GIL is released while Rust works.
  No Python code runs on a tokio thread.
- Fast paths: ``publish_nowait``, ``NativeSubscription.try_recv_batch`` and
  ``topic_matches`` finish synchronously, without a thread hop.
- Every method returning ``Future[T]`` returns an ``asyncio.Future`` of the
  loop running the call, resolved on the loop's thread: tokio threads only
  mark a call ready and wake the loop through a socket it watches
  (``loop.add_reader``), once per batch of ready calls. The command is
  handed to the driver when the method is called, so the caller may drop the
  future without awaiting it (``NativeSubscription.stop()`` is used so), and
  cancelling it only abandons the wait: the command is never half-sent and
  leaks no quota, subscription slot or pending request. Argument and
  validation errors are raised by the call itself, before any I/O; outcomes
  arrive through the future. (``Message.ack()`` returns a coroutine instead,
  see there.)
- ``qos`` and ``retain_handling`` arguments are ``int``s, possibly
  ``IntEnum`` members; ``retain`` and the other flags are real ``bool``s.
- Errors: the classes of ``zmqtt._errors`` (imported by the native module),
  built with the constructors defined there. ``zmqtt::Error`` maps as:
  ``Connect`` → ``MQTTConnectError(return_code, properties=ConnAckProperties|None,
  reason_name=str)``; ``Protocol`` → ``MQTTProtocolError(message, reason_code=)``;
  ``Disconnected``/``Closed`` → ``MQTTDisconnectedError(message, reason_code=)``
  (the message names the DISCONNECT reason code when there was one);
  ``Timeout`` → ``MQTTTimeoutError(message)``; ``Subscribe`` →
  ``MQTTSubscribeError(failures, reason_string=)``; ``Publish`` →
  ``MQTTPublishError(code, name, reason_string)``; ``PacketTooLarge`` →
  ``MQTTPublishError(0x95, "Packet too large", "<size> bytes exceeds the broker's
  maximum packet size of <max> bytes")``; ``QoSExceeded`` →
  ``MQTTQoSExceededError(requested, maximum)``; ``RetainNotAvailable`` →
  ``MQTTRetainNotAvailableError()``; ``InvalidTopic`` →
  ``MQTTInvalidTopicError(str(error))``; ``InvalidArgument`` → ``ValueError``;
  ``Io`` → the matching ``OSError`` subclass (PyO3's ``From<io::Error>``, e.g.
  ``ConnectionRefusedError``, with the address tried in the message); ``Tls`` →
  ``ssl.SSLCertVerificationError`` for certificate verification failures,
  ``ssl.SSLError`` otherwise (if the broker demanded a client certificate, say
  in the message that mutual TLS needs ``zmqtt.TLSConfig(cert_file=..., key_file=...)``).
  Nothing panics across the FFI boundary.
- Logging: through pyo3-log into the Python loggers ``zmqtt.client``
  (lifecycle, reconnects, routing warnings) and ``zmqtt.protocol`` (packets,
  DEBUG), i.e. Rust log targets ``zmqtt::client`` / ``zmqtt::protocol`` (the
  ``zmqtt`` crate logs with ``tracing``: enable its ``log`` feature or bridge).
  Never log credentials or payloads.
- Values handed to Python: ``qos`` is a member of ``zmqtt.QoS`` (cache the
  three members); ``ConnectionInfo``, ``UnsubscribeResult``,
  ``ConnAckProperties``, ``UnsubAckProperties`` and ``PublishProperties`` are the
  dataclasses of ``zmqtt._types``, built with keyword arguments; user
  properties are tuples of ``(str, str)`` tuples; binary fields are ``bytes``.
"""

from asyncio import Future
from collections.abc import Coroutine, Sequence
from typing import Any, Self, final

from zmqtt._options import ClientOptions
from zmqtt._types import ConnectionInfo, PublishProperties, QoS, UnsubscribeResult

@final
class NativeClient:
    """One client: its options, its connection driver (a tokio task while
    connected), its subscriptions and pending calls. Built without any I/O,
    once per ``MQTTClient``; it may be connected again after ``disconnect()``
    (``ConnectionInfo.connection_id`` keeps counting)."""

    def __new__(cls, host: str, port: int, options: ClientOptions) -> Self:
        """Keeps host, port and options (already validated; ``ValueError`` for
        anything the engine still refuses). Starts nothing."""

    @property
    def connection_info(self) -> ConnectionInfo | None:
        """The CONNACK summary of the current connection; ``None`` when not
        connected (before ``connect()``, while reconnecting, after a stop)."""

    def connect(self) -> Future[ConnectionInfo]:
        """Opens the connection (each resolved address in turn, TLS, CONNECT)
        and resolves once CONNACK accepted it, retrying network errors and
        CONNACK timeouts as ``options.reconnect`` says. Raises
        ``MQTTConnectError`` (refusal, never retried), ``MQTTTimeoutError``,
        ``MQTTProtocolError`` (anything but CONNACK first),
        ``MQTTDisconnectedError`` (closed before CONNACK), ``OSError`` /
        ``ssl.SSLError`` once the attempts are exhausted. While connected it
        resolves at once with the current info; while connecting it waits for
        that attempt."""

    def disconnect(self) -> Future[None]:
        """Sends DISCONNECT and closes the socket. Never raises: safe when the
        connection is already lost and twice. Pending publishes, pings and
        requests fail with ``MQTTDisconnectedError``; every subscription ends
        cleanly (``try_recv_batch`` returns ``None`` once drained); ``stopped()``
        resolves with ``None``."""

    def reset(self) -> Future[None]:
        """Drops the current connection as if it had been lost, so the client
        reconnects per ``options.reconnect`` (and re-subscribes). Resolves once
        the old connection is closed; a no-op when not connected."""

    def stopped(self) -> Future[BaseException | None]:
        """Resolves when the run current at the call (from a successful
        ``connect()`` to the end) stops for good: with ``None`` after
        ``disconnect()``, with the error that ended it otherwise (connection lost
        with reconnect disabled, attempts exhausted, a refusal while
        reconnecting). Resolves at once when the client is not running. Never
        raises. A later ``connect()`` starts a new run."""

    def publish_nowait(
        self,
        topic: str,
        payload: bytes,
        retain: bool,
        properties: PublishProperties | None,
    ) -> bool:
        """QoS 0 fast path: validates the topic (``MQTTInvalidTopicError``) and the
        broker's limits (``MQTTRetainNotAvailableError``, ``MQTTPublishError``
        0x95), then queues the PUBLISH for the socket without waiting. ``True``
        when queued; ``False`` when it cannot be queued without waiting (the
        command queue is full): the caller then awaits ``publish(..., qos=0, ...)``.
        Raises ``MQTTDisconnectedError`` when not connected (also while
        reconnecting)."""

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        properties: PublishProperties | None,
    ) -> Future[None]:
        """Publishes at ``qos`` (0, 1 or 2). Validation errors are raised by the
        call itself, before any I/O (as for ``publish_nowait``, plus
        ``MQTTQoSExceededError``). The awaitable resolves: QoS 0 once queued
        (waiting for room in the queue), QoS 1 on PUBACK, QoS 2 on PUBCOMP; at
        most the broker's Receive Maximum are in flight, the rest wait their
        turn. 5.0 failure codes raise ``MQTTPublishError``. QoS 1/2 publishes
        made while reconnecting wait for the connection; unacknowledged ones
        are resent on a resumed session, or fail with ``MQTTDisconnectedError``
        on a clean one. QoS 0 while not connected raises
        ``MQTTDisconnectedError``."""

    def ping(self, timeout: float) -> Future[float]:
        """Sends PINGREQ; resolves with the round trip in seconds once PINGRESP
        arrives. ``MQTTTimeoutError`` after ``timeout`` seconds (> 0),
        ``MQTTDisconnectedError`` when not connected. Concurrent pings are fine."""

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
        """Makes a subscription without any I/O; validates every filter now
        (``MQTTInvalidTopicError``). ``filters`` is non-empty; the 5.0 options
        are at their defaults on 3.1.1 (checked by the caller);
        ``receive_buffer_size`` 0 means unbounded."""

    def request(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        timeout: float,
        properties: PublishProperties | None,
    ) -> Future[Message]:
        """5.0 request/response (SPEC 1.9): subscribes to the response topic
        (``properties.response_topic`` or a generated unique one; wildcards →
        ``MQTTInvalidTopicError``), publishes with Response Topic and
        Correlation Data (``properties.correlation_data`` or 16 random bytes),
        resolves with the first reply matching both. At most
        ``options.max_pending_requests`` run at once, the rest wait. Raises
        ``ValueError`` when the same (response topic, correlation data) pair is
        pending, builtin ``TimeoutError`` (= ``asyncio.TimeoutError``) after
        ``timeout`` seconds, ``MQTTDisconnectedError`` on ``disconnect()``.
        Pending requests survive a reconnect (their timeout runs on). Cancelling
        removes the pending entry."""

    def auth(self, method: str, data: bytes | None) -> Future[None]:
        """5.0: sends one AUTH packet (reason 0x18, Continue authentication)
        with this Authentication Method and Data; resolves once it is queued.
        ``MQTTDisconnectedError`` when not connected."""

@final
class NativeSubscription:
    """One subscription of a ``NativeClient``: its SUBSCRIBE options and its
    bounded queue of delivered messages."""

    def start(self) -> Future[None]:
        """Sends SUBSCRIBE and resolves on SUBACK; from then on matching
        messages are queued here (and re-subscribed after every reconnect).
        Raises ``MQTTSubscribeError`` when any filter was refused: the
        subscription then delivers nothing, and the filters the broker did
        accept are unsubscribed again (best effort) before the error is raised,
        so that no queue fills unread. Raises ``MQTTDisconnectedError`` when not
        connected. After a failed ``start()`` the subscription has ended
        (``try_recv_batch`` returns ``None``). ``RuntimeError`` when called a
        second time (the Python layer makes a new ``NativeSubscription`` to
        start again)."""

    def stop(self) -> Future[UnsubscribeResult | None]:
        """Ends local delivery at once and, when started and connected, sends
        UNSUBSCRIBE; resolves with the UNSUBACK as ``UnsubscribeResult``, or
        ``None`` when nothing was sent or no UNSUBACK came. Never raises
        (failures are logged on ``zmqtt.client``). Queued messages are dropped."""

    def detach(self) -> None:
        """Ends local delivery at once without UNSUBSCRIBE (the broker keeps the
        subscription, e.g. of a persistent session). Queued messages are
        dropped; unacknowledged ones stay unacknowledged. Idempotent."""

    def try_recv_batch(self, max_messages: int) -> list[Message] | None:
        """Takes up to ``max_messages`` (>= 1) queued messages, oldest first,
        without waiting. ``[]`` when none is queued and the subscription is live
        (also before ``start()``). Once none is queued and the subscription has
        ended: ``None`` when it ended cleanly (``stop()``, ``detach()``, the
        client's ``disconnect()``), or raises the error that stopped the client
        (e.g. ``MQTTDisconnectedError`` after a loss with reconnect disabled,
        the last connect error when reconnecting gave up). Taking messages frees
        queue room, which resumes reading the socket if it was paused."""

    def wait(self) -> Future[None]:
        """Resolves as soon as a message is queued or the subscription has
        ended (at once if so already). Takes nothing, so cancelling it loses
        nothing; several waiters may wait at once. Never raises."""

@final
class Message:
    """A received PUBLISH (immutable). Also constructible by applications
    (e.g. in tests); such a message's ``ack()`` does nothing. ``repr`` shows the
    topic, QoS, retain flag and payload size, never the payload."""

    def __new__(
        cls,
        topic: str,
        payload: bytes,
        qos: QoS = ...,
        retain: bool = ...,
        properties: PublishProperties | None = ...,
    ) -> Self:
        """Defaults: ``qos=QoS.AT_MOST_ONCE``, ``retain=False``, ``properties=None``."""

    @property
    def topic(self) -> str:
        """The topic it was published to (aliases resolved)."""

    @property
    def payload(self) -> bytes:
        """The payload."""

    @property
    def qos(self) -> QoS:
        """The QoS it was delivered with."""

    @property
    def retain(self) -> bool:
        """The retain flag as delivered."""

    @property
    def properties(self) -> PublishProperties | None:
        """5.0 properties (a ``PublishProperties`` for every 5.0 message, possibly
        empty; ``subscription_identifier`` is the identifier that routed it);
        ``None`` on 3.1.1."""

    def ack(self) -> Coroutine[Any, Any, None]:
        """Acknowledges it (PUBACK for QoS 1, PUBREC for QoS 2; the broker's
        PUBREL is answered by the client itself), in the order the spec requires.
        Idempotent; does nothing with ``auto_ack=True``, for QoS 0 and for
        messages made by applications. Returns a coroutine object (e.g. a PyO3
        ``async fn``), so ``asyncio.create_task(msg.ack())`` works as with an
        ``async def``. Resolves once the acknowledgement is queued;
        ``MQTTDisconnectedError`` if its connection is gone (the broker
        redelivers on a resumed session)."""

def topic_matches(
    topic_filter: str, topic: str, stripped_prefixes: Sequence[str]
) -> bool:
    """Whether ``topic`` matches ``topic_filter`` by the client's routing rule
    (SPEC 1.7): ``$share/<group>/f`` and ``<prefix>/f`` for each stripped
    prefix match on ``f``; ``+``/``#`` never match a first level starting with
    ``$``. Raises ``MQTTInvalidTopicError`` for an invalid filter."""

def validate_topic_name(topic: str) -> None:
    """Raises ``MQTTInvalidTopicError`` unless ``topic`` is a valid topic name
    (non-empty, no ``+``/``#``, no U+0000, at most 65535 UTF-8 bytes)."""

def validate_topic_filter(topic_filter: str) -> None:
    """Raises ``MQTTInvalidTopicError`` unless ``topic_filter`` is a valid
    topic filter (wildcard and ``$share`` rules included)."""
