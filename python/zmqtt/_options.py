"""Validation of the client's constructor arguments (SPEC 1.1) into the plain,
frozen ``ClientOptions`` the native module is built from.

Everything here runs at construction, before any I/O: a bad value raises
``ValueError``/``TypeError``, a 5.0-only option on 3.1.1 ``RuntimeError``.
An ``ssl.SSLContext`` is translated into ``TlsOptions`` here too; whatever the
context holds that cannot be carried over to zmqtt's TLS stack (rustls) is an
error rather than silently dropped.
"""

from __future__ import annotations

import functools
import math
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from zmqtt._types import (
    MAX_STRING_BYTES,
    MAX_UINT16,
    MAX_UINT32,
    ReconnectConfig,
    TLSConfig,
    UserProperties,
    Will,
    check_bool,
    check_int,
    check_mqtt_string,
    check_optional_bool,
    check_optional_int,
    check_user_properties,
)

__all__ = ["ClientOptions", "TlsOptions", "build_client_options", "tls_options"]

DEFAULT_STRIPPED_PREFIXES: tuple[str, ...] = ("$queue", "$exclusive")

#: A value of ``tls=`` the client accepts.
TlsArgument = bool | ssl.SSLContext | TLSConfig | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsOptions:
    """TLS settings as plain data, read by the native module.

    Attributes:
        ca_file: PEM file of CA certificates to trust.
        ca_pem: PEM text of CA certificates to trust (several may be concatenated).
        cert_file: PEM file of the client certificate chain (mutual TLS).
        key_file: PEM file of the client's private key (else looked for in ``cert_file``).
        server_name: SNI / certificate name to use instead of the host.
        alpn: ALPN protocols to offer, most preferred first.
        use_system_roots: Trust the platform's roots too (always when no CA is given).
        min_version: ``"1.2"`` or ``"1.3"``.
        verify_certificates: ``False`` accepts any server certificate (explicit opt-in).
        check_hostname: ``False`` verifies the chain but not the name.
    """

    ca_file: str | None = None
    ca_pem: bytes | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    alpn: tuple[bytes, ...] = ()
    use_system_roots: bool = False
    min_version: Literal["1.2", "1.3"] = "1.2"
    verify_certificates: bool = True
    check_hostname: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOptions:
    """Every validated client option of SPEC 1.1 (host and port excepted).

    Attributes:
        version: ``"3.1.1"`` or ``"5.0"``.
        client_id: Client identifier; empty lets the broker assign one.
        keepalive: Seconds, 0..65535; 0 disables keepalive.
        clean_session: 3.1.1 Clean Session / 5.0 Clean Start.
        username: User name, or ``None``.
        password: Password bytes (a ``str`` password is UTF-8 encoded), or ``None``.
        will: The Will with ``payload`` as ``bytes`` and ``qos`` as ``QoS``; its
            ``properties`` are ``None`` on 3.1.1.
        tls: TLS settings; ``None`` for plain TCP.
        reconnect: Reconnection policy.
        mqtt_connect_timeout: Seconds to wait for CONNACK once the socket is up (> 0).
        session_expiry_interval: 5.0 Session Expiry Interval (ignored on 3.1.1).
        receive_maximum: 5.0 Receive Maximum to send, ``None`` to omit it.
        maximum_packet_size: 5.0 Maximum Packet Size to send, ``None`` to omit it.
        user_properties: 5.0 CONNECT User Properties.
        request_response_information: 5.0 flag, ``None`` to omit it.
        request_problem_information: 5.0 flag, ``None`` to omit it.
        stripped_prefixes: Group-less subscription prefixes brokers strip.
        max_pending_requests: 5.0 concurrent ``request()`` calls (>= 1).
        session_replay_buffer_size: Messages of a resumed session held until
            their subscription exists; 0 = unbounded.
        session_replay_timeout: Seconds such messages are held (> 0).
    """

    version: Literal["3.1.1", "5.0"]
    client_id: str
    keepalive: int
    clean_session: bool
    username: str | None
    password: bytes | None = field(repr=False)
    will: Will | None
    tls: TlsOptions | None
    reconnect: ReconnectConfig
    mqtt_connect_timeout: float
    session_expiry_interval: int
    receive_maximum: int | None
    maximum_packet_size: int | None
    user_properties: UserProperties
    request_response_information: bool | None
    request_problem_information: bool | None
    stripped_prefixes: tuple[str, ...]
    max_pending_requests: int
    session_replay_buffer_size: int
    session_replay_timeout: float


def _positive_seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{name} must be a number of seconds, got {type(value).__name__}"
        )
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be positive")
    return float(value)


def _stripped_prefixes(value: object) -> tuple[str, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(
            "stripped_prefixes must be a sequence of str, e.g. ('$queue', '$exclusive')"
        )
    prefixes: list[str] = []
    for prefix in value:
        check_mqtt_string("stripped_prefixes entry", prefix)
        if not prefix or "+" in prefix or "#" in prefix or prefix.endswith("/"):
            raise ValueError(
                f"stripped_prefixes entries must be non-empty, without wildcards or a trailing '/': {prefix!r}"
            )
        prefixes.append(prefix)
    return tuple(prefixes)


def build_client_options(
    *,
    host: object,
    port: object,
    version: object,
    client_id: object,
    keepalive: object,
    clean_session: object,
    username: object,
    password: object,
    will: object,
    tls: object,
    reconnect: object,
    mqtt_connect_timeout: object,
    session_expiry_interval: object,
    receive_maximum: object,
    maximum_packet_size: object,
    user_properties: object,
    request_response_information: object,
    request_problem_information: object,
    stripped_prefixes: object,
    max_pending_requests: object,
    session_replay_buffer_size: object,
    session_replay_timeout: object,
    transport_factory: object,
) -> ClientOptions:
    """Checks every constructor argument of ``MQTTClient`` (SPEC 1.1) and returns them as plain data.

    Raises:
        ValueError: An unknown version or a value out of range.
        TypeError: A value of the wrong type, or a ``transport_factory``.
        RuntimeError: A 5.0-only option given with ``version="3.1.1"``.
    """
    if version not in ("3.1.1", "5.0"):
        raise ValueError(f"version must be '3.1.1' or '5.0', got {version!r}")
    v5 = version == "5.0"
    if transport_factory is not None:
        raise TypeError(
            "transport_factory is not supported: zmqtt's transport lives in Rust; leave it as None"
        )
    if not isinstance(host, str) or not host:
        raise ValueError("host must be a non-empty str")
    check_int("port", port, 1, MAX_UINT16)
    checked_client_id = check_mqtt_string("client_id", client_id)
    checked_keepalive = check_int("keepalive", keepalive, 0, MAX_UINT16)
    checked_clean = check_bool("clean_session", clean_session)

    five_only = [
        name
        for name, given in (
            ("receive_maximum", receive_maximum is not None),
            ("maximum_packet_size", maximum_packet_size is not None),
            ("user_properties", bool(user_properties)),
            ("request_response_information", request_response_information is not None),
            ("request_problem_information", request_problem_information is not None),
        )
        if given
    ]
    if five_only and not v5:
        verb = "requires" if len(five_only) == 1 else "require"
        raise RuntimeError(f"{', '.join(five_only)} {verb} MQTT 5.0")
    if will is not None:
        if not isinstance(will, Will):
            raise TypeError(f"will must be a zmqtt.Will, got {type(will).__name__}")
        if will.properties is not None and not v5:
            raise RuntimeError("will properties require MQTT 5.0")
    if not v5 and not checked_client_id and not checked_clean:
        raise ValueError(
            "an empty client_id requires clean_session=True on MQTT 3.1.1 (MQTT-3.1.3-7)"
        )

    checked_username = (
        None if username is None else check_mqtt_string("username", username)
    )
    checked_password: bytes | None
    if password is None:
        checked_password = None
    elif isinstance(password, str):
        checked_password = check_mqtt_string("password", password).encode("utf-8")
    elif isinstance(password, bytes | bytearray | memoryview):
        checked_password = bytes(password)
        if len(checked_password) > MAX_STRING_BYTES:
            raise ValueError(f"password is longer than {MAX_STRING_BYTES} bytes")
    else:
        raise TypeError(f"password must be str or bytes, got {type(password).__name__}")
    if checked_password is not None and checked_username is None and not v5:
        raise ValueError("a password requires a username on MQTT 3.1.1 (MQTT-3.1.2-22)")

    if reconnect is None:
        reconnect = ReconnectConfig()
    elif not isinstance(reconnect, ReconnectConfig):
        raise TypeError(
            f"reconnect must be a zmqtt.ReconnectConfig, got {type(reconnect).__name__}"
        )

    checked_max_pending = check_int(
        "max_pending_requests", max_pending_requests, -(2**63), 2**31 - 1
    )
    if checked_max_pending < 1:
        raise ValueError("max_pending_requests must be positive")
    checked_replay_size = check_int(
        "session_replay_buffer_size", session_replay_buffer_size, -(2**63), 2**31 - 1
    )
    if checked_replay_size < 0:
        raise ValueError("session_replay_buffer_size must not be negative")

    return ClientOptions(
        version="5.0" if v5 else "3.1.1",
        client_id=checked_client_id,
        keepalive=checked_keepalive,
        clean_session=checked_clean,
        username=checked_username,
        password=checked_password,
        will=will if will is None or v5 else replace(will, properties=None),
        tls=tls_options(tls),
        reconnect=reconnect,
        mqtt_connect_timeout=_positive_seconds(
            "mqtt_connect_timeout", mqtt_connect_timeout
        ),
        session_expiry_interval=check_int(
            "session_expiry_interval", session_expiry_interval, 0, MAX_UINT32
        ),
        receive_maximum=check_optional_int(
            "receive_maximum", receive_maximum, 1, MAX_UINT16
        ),
        maximum_packet_size=check_optional_int(
            "maximum_packet_size", maximum_packet_size, 1, MAX_UINT32
        ),
        user_properties=check_user_properties("user_properties", user_properties),
        request_response_information=check_optional_bool(
            "request_response_information", request_response_information
        ),
        request_problem_information=check_optional_bool(
            "request_problem_information", request_problem_information
        ),
        stripped_prefixes=_stripped_prefixes(stripped_prefixes),
        max_pending_requests=checked_max_pending,
        session_replay_buffer_size=checked_replay_size,
        session_replay_timeout=_positive_seconds(
            "session_replay_timeout", session_replay_timeout
        ),
    )


# --------------------------------------------------------------------------- TLS


def tls_options(tls: object) -> TlsOptions | None:
    """Translates the ``tls=`` argument: ``False``/``None`` → plain TCP, ``True`` →
    system roots, a ``TLSConfig`` or an ``ssl.SSLContext`` → their settings."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return TlsOptions(use_system_roots=True)
    if isinstance(tls, TLSConfig):
        return _from_tls_config(tls)
    if isinstance(tls, ssl.SSLContext):
        return _from_ssl_context(tls)
    raise TypeError(
        f"tls must be a bool, an ssl.SSLContext or a zmqtt.TLSConfig, got {type(tls).__name__}"
    )


def _min_version(version: ssl.TLSVersion, source: str) -> Literal["1.2", "1.3"]:
    if version in (ssl.TLSVersion.MAXIMUM_SUPPORTED, ssl.TLSVersion.TLSv1_3):
        return "1.3"
    if version in (ssl.TLSVersion.MINIMUM_SUPPORTED, ssl.TLSVersion.TLSv1_2):
        return "1.2"
    raise ValueError(
        f"{source} {version.name} cannot be honoured: zmqtt speaks TLS 1.2 and 1.3 only"
    )


def _from_tls_config(config: TLSConfig) -> TlsOptions:
    ca_pem = (
        config.ca_pem.encode("ascii")
        if isinstance(config.ca_pem, str)
        else config.ca_pem
    )
    return TlsOptions(
        ca_file=None if config.ca_file is None else os.fspath(config.ca_file),
        ca_pem=ca_pem,
        cert_file=None if config.cert_file is None else os.fspath(config.cert_file),
        key_file=None if config.key_file is None else os.fspath(config.key_file),
        server_name=config.server_name,
        alpn=tuple(protocol.encode("utf-8") for protocol in config.alpn),
        use_system_roots=config.use_system_roots,
        min_version=_min_version(config.min_version, "TLSConfig.min_version"),
        verify_certificates=not config.insecure_skip_verify,
        check_hostname=config.check_hostname and not config.insecure_skip_verify,
    )


@functools.cache
def _system_ca_certificates() -> frozenset[bytes]:
    """DER of the CA certificates a default ``ssl`` context loads on this machine
    (empty where the platform loads them lazily, e.g. from a hashed directory)."""
    return frozenset(ssl.create_default_context().get_ca_certs(binary_form=True))


_UNSUPPORTED_VERIFY_FLAGS = {
    ssl.VERIFY_CRL_CHECK_LEAF: "VERIFY_CRL_CHECK_LEAF",
    ssl.VERIFY_CRL_CHECK_CHAIN: "VERIFY_CRL_CHECK_CHAIN",
}


def _from_ssl_context(context: ssl.SSLContext) -> TlsOptions:
    """Reads what an ``ssl.SSLContext`` says and zmqtt's TLS can honour.

    Carried over: the loaded CA certificates, ``verify_mode``,
    ``check_hostname`` and ``minimum_version``. A context without loaded CA
    certificates (or holding the platform's default set) trusts the platform's
    roots. Refused with ``ValueError``: a server-side or legacy protocol
    context, CRL checking, and a ``maximum_version`` below TLS 1.3.

    Not readable from an ``SSLContext`` at all, hence not carried over: a client
    certificate (``load_cert_chain``), ALPN protocols, cipher choices and
    ``capath`` directories. Use ``zmqtt.TLSConfig`` for those.
    """
    if context.protocol not in (ssl.PROTOCOL_TLS_CLIENT, ssl.PROTOCOL_TLS):
        raise ValueError(
            f"tls=ssl.SSLContext({context.protocol.name}) cannot be used: create a client context "
            "(ssl.create_default_context() or ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))"
        )
    for flag, name in _UNSUPPORTED_VERIFY_FLAGS.items():
        if context.verify_flags & flag == flag:
            raise ValueError(
                f"ssl.{name} (certificate revocation lists) cannot be honoured by zmqtt's TLS"
            )
    if context.maximum_version not in (
        ssl.TLSVersion.MAXIMUM_SUPPORTED,
        ssl.TLSVersion.TLSv1_3,
    ):
        raise ValueError(
            f"SSLContext.maximum_version {context.maximum_version.name} cannot be honoured: "
            "zmqtt limits only the minimum TLS version"
        )
    min_version = _min_version(context.minimum_version, "SSLContext.minimum_version")
    if context.verify_mode == ssl.CERT_NONE:
        return TlsOptions(
            min_version=min_version, verify_certificates=False, check_hostname=False
        )

    loaded = context.get_ca_certs(binary_form=True)
    system = _system_ca_certificates()
    use_system_roots = not loaded or (bool(system) and system.issubset(loaded))
    extra = [der for der in loaded if not use_system_roots or der not in system]
    ca_pem = (
        "".join(ssl.DER_cert_to_PEM_cert(der) for der in extra).encode("ascii")
        if extra
        else None
    )
    return TlsOptions(
        ca_pem=ca_pem,
        use_system_roots=use_system_roots,
        min_version=min_version,
        verify_certificates=True,
        check_hostname=context.check_hostname,
    )
