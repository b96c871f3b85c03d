"""Value types of the zmqtt API: enums, MQTT 5.0 property sets, ``Will``,
``ReconnectConfig``, ``TLSConfig``, ``ConnectionInfo`` and ``UnsubscribeResult``.

All of them are frozen dataclasses. The ones a caller builds check their
ranges at construction (``ValueError``/``TypeError``), so a mistake surfaces
where it was made rather than at the first packet. The native module builds
``ConnectionInfo``, ``UnsubscribeResult``, ``ConnAckProperties``,
``UnsubAckProperties`` and ``PublishProperties`` (for received messages) by
calling these classes with keyword arguments.
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

__all__ = [
    "AuthProperties",
    "ConnAckProperties",
    "ConnectProperties",
    "ConnectionInfo",
    "PublishProperties",
    "QoS",
    "ReconnectConfig",
    "RetainHandling",
    "TLSConfig",
    "UnsubAckProperties",
    "UnsubscribeResult",
    "UserProperties",
    "Will",
    "WillProperties",
]

#: MQTT 5.0 User Properties: ``(name, value)`` pairs, order kept, names may repeat.
UserProperties = tuple[tuple[str, str], ...]

MAX_UINT16 = 0xFFFF
MAX_UINT32 = 0xFFFF_FFFF
#: Largest Variable Byte Integer (MQTT 5.0 §1.5.5), the range of a Subscription Identifier.
MAX_VARIABLE_BYTE_INTEGER = 268_435_455
#: Longest UTF-8 string or binary field (two-byte length prefix).
MAX_STRING_BYTES = 0xFFFF
#: Reason codes from this value up are failures.
FAILURE_THRESHOLD = 0x80


class QoS(IntEnum):
    """Quality of service of a publish or subscription."""

    AT_MOST_ONCE = 0
    AT_LEAST_ONCE = 1
    EXACTLY_ONCE = 2


class RetainHandling(IntEnum):
    """MQTT 5.0 subscription option: when the broker sends retained messages."""

    SEND_ON_SUBSCRIBE = 0
    SEND_IF_NOT_EXISTS = 1
    DO_NOT_SEND = 2


# --------------------------------------------------------------------------- checks


def check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an int in ``low..high`` (bool is refused), else TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return int(value)


def check_optional_int(name: str, value: object, low: int, high: int) -> int | None:
    """Like :func:`check_int`, letting ``None`` through."""
    return None if value is None else check_int(name, value, low, high)


def check_mqtt_string(name: str, value: object) -> str:
    """A str that fits an MQTT UTF-8 string: encodable, no U+0000, at most 65535 bytes."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise ValueError(f"{name} is not valid UTF-8: {value!r}") from error
    if size > MAX_STRING_BYTES:
        raise ValueError(
            f"{name} is {size} bytes long in UTF-8; the maximum is {MAX_STRING_BYTES}"
        )
    if "\x00" in value:
        raise ValueError(f"{name} must not contain U+0000: {value!r}")
    return value


def check_optional_string(name: str, value: object) -> str | None:
    """Like :func:`check_mqtt_string`, letting ``None`` through."""
    return None if value is None else check_mqtt_string(name, value)


def check_binary(name: str, value: object) -> bytes:
    """Bytes-like ``value`` as ``bytes`` of at most 65535 bytes."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes, got {type(value).__name__}")
    data = bytes(value)
    if len(data) > MAX_STRING_BYTES:
        raise ValueError(
            f"{name} is {len(data)} bytes long; the maximum is {MAX_STRING_BYTES}"
        )
    return data


def check_optional_binary(name: str, value: object) -> bytes | None:
    """Like :func:`check_binary`, letting ``None`` through."""
    return None if value is None else check_binary(name, value)


def check_user_properties(name: str, value: object) -> UserProperties:
    """A sequence of ``(name, value)`` string pairs as a tuple of tuples."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a sequence of (name, value) string pairs")
    pairs: list[tuple[str, str]] = []
    for pair in value:
        if (
            not isinstance(pair, Sequence)
            or isinstance(pair, str | bytes)
            or len(pair) != 2
        ):
            raise TypeError(
                f"{name} must contain (name, value) string pairs, got {pair!r}"
            )
        key, text = pair
        pairs.append(
            (
                check_mqtt_string(f"{name} name", key),
                check_mqtt_string(f"{name} value", text),
            )
        )
    return tuple(pairs)


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool, else TypeError."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_optional_bool(name: str, value: object) -> bool | None:
    """Like :func:`check_bool`, letting ``None`` through."""
    return None if value is None else check_bool(name, value)


def check_qos(name: str, value: object) -> QoS:
    """``value`` as a :class:`QoS` member (0, 1 or 2)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a QoS (0, 1 or 2), got {type(value).__name__}")
    try:
        return QoS(value)
    except ValueError:
        raise ValueError(f"{name} must be 0, 1 or 2, got {value}") from None


def _set(instance: object, name: str, value: object) -> None:
    """Assigns to a field of a frozen dataclass while it normalises itself."""
    object.__setattr__(instance, name, value)


def _normalise_binary(instance: object, name: str) -> None:
    """Checks the optional bytes-like field ``name`` and stores it as ``bytes``."""
    value = getattr(instance, name)
    if value is not None:
        _set(instance, name, check_binary(name, value))


def _normalise_user_properties(instance: object, value: object) -> None:
    """Checks ``value``, if non-empty, as the ``user_properties`` field and stores
    it as a tuple of tuples."""
    if value:
        _set(
            instance, "user_properties", check_user_properties("user_properties", value)
        )


# --------------------------------------------------------------------------- 5.0 properties


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishProperties:
    """MQTT 5.0 properties of a PUBLISH, sent with ``publish()`` or received on a ``Message``.

    Attributes:
        payload_format_indicator: ``0`` unspecified bytes, ``1`` UTF-8 text.
        message_expiry_interval: Seconds the broker keeps the message for subscribers.
        topic_alias: Topic Alias (1..65535).
        response_topic: Topic a responder should publish its reply to.
        correlation_data: Bytes that tie a reply to its request.
        subscription_identifier: Set by the broker on delivery: the identifier of
            the subscription that matched. Never sent by a client.
        content_type: MIME type of the payload.
        user_properties: ``(name, value)`` pairs, order kept, names may repeat.
    """

    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    topic_alias: int | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    subscription_identifier: int | None = None
    content_type: str | None = None
    user_properties: UserProperties = ()

    def __post_init__(self) -> None:
        check_optional_int(
            "payload_format_indicator", self.payload_format_indicator, 0, 1
        )
        check_optional_int(
            "message_expiry_interval", self.message_expiry_interval, 0, MAX_UINT32
        )
        check_optional_int("topic_alias", self.topic_alias, 1, MAX_UINT16)
        check_optional_string("response_topic", self.response_topic)
        _normalise_binary(self, "correlation_data")
        check_optional_int(
            "subscription_identifier",
            self.subscription_identifier,
            1,
            MAX_VARIABLE_BYTE_INTEGER,
        )
        check_optional_string("content_type", self.content_type)
        _normalise_user_properties(self, self.user_properties)


@dataclass(frozen=True, slots=True, kw_only=True)
class WillProperties:
    """MQTT 5.0 properties of the Will message (``Will.properties``).

    Attributes:
        will_delay_interval: Seconds the broker waits before publishing the Will.
        payload_format_indicator: ``0`` unspecified bytes, ``1`` UTF-8 text.
        message_expiry_interval: Seconds the Will message lives at the broker.
        content_type: MIME type of the payload.
        response_topic: Response Topic of the Will message.
        correlation_data: Correlation Data of the Will message.
        user_properties: ``(name, value)`` pairs, order kept, names may repeat.
    """

    will_delay_interval: int | None = None
    payload_format_indicator: int | None = None
    message_expiry_interval: int | None = None
    content_type: str | None = None
    response_topic: str | None = None
    correlation_data: bytes | None = None
    user_properties: UserProperties = ()

    def __post_init__(self) -> None:
        check_optional_int(
            "will_delay_interval", self.will_delay_interval, 0, MAX_UINT32
        )
        check_optional_int(
            "payload_format_indicator", self.payload_format_indicator, 0, 1
        )
        check_optional_int(
            "message_expiry_interval", self.message_expiry_interval, 0, MAX_UINT32
        )
        check_optional_string("content_type", self.content_type)
        check_optional_string("response_topic", self.response_topic)
        _normalise_binary(self, "correlation_data")
        _normalise_user_properties(self, self.user_properties)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectProperties:
    """MQTT 5.0 properties of a CONNECT packet.

    The client builds these from its constructor arguments; the class is
    exported for completeness and for code that inspects them.
    """

    session_expiry_interval: int | None = None
    receive_maximum: int | None = None
    maximum_packet_size: int | None = None
    topic_alias_maximum: int | None = None
    request_response_information: bool | None = None
    request_problem_information: bool | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    user_properties: UserProperties = ()

    def __post_init__(self) -> None:
        check_optional_int(
            "session_expiry_interval", self.session_expiry_interval, 0, MAX_UINT32
        )
        check_optional_int("receive_maximum", self.receive_maximum, 1, MAX_UINT16)
        check_optional_int(
            "maximum_packet_size", self.maximum_packet_size, 1, MAX_UINT32
        )
        check_optional_int(
            "topic_alias_maximum", self.topic_alias_maximum, 0, MAX_UINT16
        )
        check_optional_bool(
            "request_response_information", self.request_response_information
        )
        check_optional_bool(
            "request_problem_information", self.request_problem_information
        )
        check_optional_string("authentication_method", self.authentication_method)
        _normalise_binary(self, "authentication_data")
        _normalise_user_properties(self, self.user_properties)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnAckProperties:
    """MQTT 5.0 properties of the broker's CONNACK, as received (no defaults filled in)."""

    session_expiry_interval: int | None = None
    receive_maximum: int | None = None
    maximum_qos: int | None = None
    retain_available: bool | None = None
    maximum_packet_size: int | None = None
    assigned_client_identifier: str | None = None
    topic_alias_maximum: int | None = None
    reason_string: str | None = None
    wildcard_subscription_available: bool | None = None
    subscription_identifier_available: bool | None = None
    shared_subscription_available: bool | None = None
    server_keep_alive: int | None = None
    response_information: str | None = None
    server_reference: str | None = None
    authentication_method: str | None = None
    authentication_data: bytes | None = None
    user_properties: UserProperties = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthProperties:
    """MQTT 5.0 properties of an AUTH packet."""

    authentication_method: str | None = None
    authentication_data: bytes | None = None
    reason_string: str | None = None
    user_properties: UserProperties = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubAckProperties:
    """MQTT 5.0 properties of the broker's UNSUBACK."""

    reason_string: str | None = None
    user_properties: UserProperties = ()


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class Will:
    """The Last Will the broker publishes when the connection ends unexpectedly.

    Sent again in every CONNECT, reconnects included. ``payload`` may be given
    as ``str`` (UTF-8) or any bytes-like object; it is stored as ``bytes``.
    ``properties`` (``WillProperties``) need MQTT 5.0.
    """

    topic: str
    payload: bytes | str = field(repr=False)
    qos: QoS = QoS.AT_MOST_ONCE
    retain: bool = False
    properties: WillProperties | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.topic, str):
            raise TypeError(
                f"Will topic must be a str, got {type(self.topic).__name__}"
            )
        payload: object = self.payload
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        _set(self, "payload", check_binary("Will payload", payload))
        _set(self, "qos", check_qos("Will qos", self.qos))
        check_bool("Will retain", self.retain)
        if self.properties is not None and not isinstance(
            self.properties, WillProperties
        ):
            raise TypeError("Will properties must be a WillProperties")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectConfig:
    """How the client reconnects after a failed connect or a lost connection (SPEC 1.5).

    Network errors and CONNACK timeouts are retried after ``initial_delay``,
    then the delay is multiplied by ``backoff_factor`` up to ``max_delay``
    (1, 2, 4, 8 s with the defaults). A broker refusal is never retried.

    Attributes:
        enabled: ``False`` makes the first failure final.
        initial_delay: Seconds before the first retry.
        max_delay: Upper bound of the delay, in seconds.
        backoff_factor: Multiplier applied after each failed attempt (>= 1).
        max_attempts: Connection attempts before giving up; ``None`` retries forever.
    """

    enabled: bool = True
    initial_delay: float = 1.0
    max_delay: float = 60.0
    backoff_factor: float = 2.0
    max_attempts: int | None = 5

    def __post_init__(self) -> None:
        check_bool("enabled", self.enabled)
        for name in ("initial_delay", "max_delay", "backoff_factor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite")
        if self.initial_delay < 0:
            raise ValueError("initial_delay must not be negative")
        if self.max_delay < 0:
            raise ValueError("max_delay must not be negative")
        if self.backoff_factor < 1:
            raise ValueError("backoff_factor must be at least 1")
        if self.max_attempts is not None:
            check_int("max_attempts", self.max_attempts, 1, 2**31 - 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSConfig:
    """TLS settings given as plain data, for what an ``ssl.SSLContext`` cannot carry.

    Pass it as ``tls=TLSConfig(...)``. Use it for mutual TLS (a client
    certificate loaded into an ``SSLContext`` cannot be read back), for an SNI
    override or for ALPN.

    Trust: the CA certificates of ``ca_file`` and ``ca_pem``; the platform's
    roots when ``use_system_roots`` is set or when neither CA is given.

    Attributes:
        ca_file: PEM file with the CA certificate(s) to trust.
        ca_pem: PEM text with CA certificate(s) to trust.
        cert_file: PEM file with the client certificate chain, leaf first.
        key_file: PEM file with the client's unencrypted private key; when
            omitted, the key is looked for in ``cert_file``.
        server_name: Name sent as SNI and checked against the broker's
            certificate instead of the host connected to.
        alpn: ALPN protocol names to offer, most preferred first.
        use_system_roots: Also trust the platform's roots when a CA is given.
        min_version: Lowest TLS version accepted: ``ssl.TLSVersion.TLSv1_2``
            (also ``MINIMUM_SUPPORTED``) or ``ssl.TLSVersion.TLSv1_3``.
        check_hostname: ``False`` skips checking that the certificate names the
            server (the chain is still verified).
        insecure_skip_verify: ``True`` accepts any server certificate at all.
            Opens the connection to interception; for tests only.
    """

    ca_file: str | os.PathLike[str] | None = None
    ca_pem: str | bytes | None = None
    cert_file: str | os.PathLike[str] | None = None
    key_file: str | os.PathLike[str] | None = None
    server_name: str | None = None
    alpn: Sequence[str] = ()
    use_system_roots: bool = False
    min_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    check_hostname: bool = True
    insecure_skip_verify: bool = False

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str | os.PathLike):
                raise TypeError(f"{name} must be a path, got {type(value).__name__}")
        if self.ca_pem is not None and not isinstance(self.ca_pem, str | bytes):
            raise TypeError("ca_pem must be PEM text (str or bytes)")
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file requires cert_file")
        if self.server_name is not None and (
            not isinstance(self.server_name, str) or not self.server_name
        ):
            raise ValueError("server_name must be a non-empty str")
        if isinstance(self.alpn, str | bytes) or not isinstance(self.alpn, Sequence):
            raise TypeError("alpn must be a sequence of protocol names, e.g. ('mqtt',)")
        protocols = tuple(self.alpn)
        for protocol in protocols:
            if not isinstance(protocol, str):
                raise TypeError(
                    f"alpn entries must be str, got {type(protocol).__name__}"
                )
            if not 1 <= len(protocol.encode("utf-8")) <= 255:
                raise ValueError(
                    f"ALPN protocol names must be 1 to 255 bytes long: {protocol!r}"
                )
        _set(self, "alpn", protocols)
        for name in ("use_system_roots", "check_hostname", "insecure_skip_verify"):
            check_bool(name, getattr(self, name))
        if not isinstance(self.min_version, ssl.TLSVersion):
            raise TypeError("min_version must be an ssl.TLSVersion")
        if self.min_version not in (
            ssl.TLSVersion.MINIMUM_SUPPORTED,
            ssl.TLSVersion.TLSv1_2,
            ssl.TLSVersion.TLSv1_3,
        ):
            raise ValueError(
                f"min_version {self.min_version.name} is not supported: zmqtt speaks TLS 1.2 and 1.3"
            )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionInfo:
    """What the broker agreed to in the CONNACK of the current connection (SPEC 1.3).

    Attributes:
        connection_id: 1, 2, … per successful connection of this client
            (reconnects count; a resumed session still gets a new number).
        session_present: The broker resumed an existing session.
        return_code: The CONNACK return/reason code (0 on success).
        properties: The 5.0 CONNACK properties; ``None`` on 3.1.1.
        effective_client_id: The id sent, or the one the broker assigned.
        effective_keepalive: The broker's Server Keep Alive if given, else ours.
        effective_session_expiry_interval: The session expiry in force
            (CONNACK's value, else ours); ``None`` on 3.1.1.
    """

    connection_id: int
    session_present: bool
    return_code: int
    properties: ConnAckProperties | None
    effective_client_id: str
    effective_keepalive: int
    effective_session_expiry_interval: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeResult:
    """The broker's UNSUBACK for the filters of one ``Subscription.stop()``.

    Attributes:
        topic_filters: The filters unsubscribed, in request order.
        reason_codes: One code per filter; empty on 3.1.1 (its UNSUBACK has none).
        properties: The 5.0 UNSUBACK properties; ``None`` on 3.1.1.
    """

    topic_filters: tuple[str, ...]
    reason_codes: tuple[int, ...]
    properties: UnsubAckProperties | None = field(default=None)

    @property
    def failures(self) -> dict[str, int]:
        """The filters the broker refused to unsubscribe, with their codes (>= 0x80)."""
        return {
            topic_filter: code
            for topic_filter, code in zip(
                self.topic_filters, self.reason_codes, strict=False
            )
            if code >= FAILURE_THRESHOLD
        }

    @property
    def reason_string(self) -> str | None:
        """The broker's Reason String, if any."""
        return self.properties.reason_string if self.properties is not None else None

    @property
    def user_properties(self) -> UserProperties:
        """The broker's User Properties (empty on 3.1.1)."""
        return self.properties.user_properties if self.properties is not None else ()
