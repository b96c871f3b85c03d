"""Constructing a client (SPEC 1.1): defaults, keyword-only rules and every
validation error, all raised before anything reaches the native layer."""

from __future__ import annotations

from typing import Any

import pytest
import zmqtt
from zmqtt import (
    MQTTClient,
    MQTTInvalidTopicError,
    QoS,
    ReconnectConfig,
    Will,
    WillProperties,
    create_client,
)

from unit_pure import fake_native


def test_defaults_reach_the_native_client_as_plain_options() -> None:
    client = MQTTClient("broker.local")

    native = fake_native.clients[-1]
    assert (native.host, native.port) == ("broker.local", 1883)
    options = native.options
    assert options is client.options
    assert options.version == "3.1.1"
    assert options.client_id == ""
    assert options.keepalive == 60
    assert options.clean_session is True
    assert options.username is None and options.password is None
    assert options.will is None
    assert options.tls is None
    assert options.reconnect == ReconnectConfig()
    assert options.mqtt_connect_timeout == 30.0
    assert options.session_expiry_interval == 0
    assert options.receive_maximum is None and options.maximum_packet_size is None
    assert options.user_properties == ()
    assert options.request_response_information is None
    assert options.request_problem_information is None
    assert options.stripped_prefixes == ("$queue", "$exclusive")
    assert options.max_pending_requests == 1000
    assert options.session_replay_buffer_size == 1000
    assert options.session_replay_timeout == 30.0


def test_seed_connecting_example_builds_a_client_with_its_arguments() -> None:
    client = create_client(
        host="localhost",
        port=1883,
        client_id="my-app",
        keepalive=60,
        clean_session=True,
        username="user",
        password="secret",
    )

    assert isinstance(client, MQTTClient)
    options = fake_native.clients[-1].options
    assert options.client_id == "my-app"
    assert options.username == "user"
    assert options.password == b"secret"


def test_create_client_and_mqtt_client_take_the_same_arguments() -> None:
    kwargs: dict[str, Any] = {
        "client_id": "c",
        "keepalive": 5,
        "session_expiry_interval": 3600,
        "receive_maximum": 10,
        "maximum_packet_size": 4096,
        "user_properties": [("k", "v"), ("k", "w")],
        "request_response_information": True,
        "request_problem_information": False,
        "stripped_prefixes": ["$queue"],
        "max_pending_requests": 3,
        "session_replay_buffer_size": 0,
        "session_replay_timeout": 1.5,
        "version": "5.0",
    }
    create_client("h", 1884, **kwargs)
    MQTTClient("h", 1884, **kwargs)

    made, direct = fake_native.clients
    assert made.options == direct.options
    assert made.options.user_properties == (("k", "v"), ("k", "w"))
    assert made.options.stripped_prefixes == ("$queue",)
    assert made.port == 1884


def test_only_host_and_port_are_positional() -> None:
    with pytest.raises(TypeError):
        MQTTClient("h", 1883, "client-id")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        create_client("h", 1883, "client-id")  # type: ignore[call-overload]


def test_unknown_version_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="version must be '3.1.1' or '5.0'"):
        MQTTClient("h", version="3.1")  # type: ignore[arg-type]
    assert fake_native.clients == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("receive_maximum", 10),
        ("maximum_packet_size", 1024),
        ("user_properties", [("a", "b")]),
        ("request_response_information", True),
        ("request_problem_information", False),
    ],
)
def test_five_only_options_on_311_are_a_runtime_error(option: str, value: Any) -> None:
    with pytest.raises(RuntimeError, match=f"^{option} requires MQTT 5.0$"):
        MQTTClient("h", **{option: value})
    assert fake_native.clients == []

    MQTTClient("h", version="5.0", **{option: value})


def test_several_five_only_options_are_named_together() -> None:
    with pytest.raises(
        RuntimeError, match="^receive_maximum, maximum_packet_size require MQTT 5.0$"
    ):
        MQTTClient("h", receive_maximum=1, maximum_packet_size=2)


def test_will_properties_on_311_are_a_runtime_error() -> None:
    will = Will("status", b"offline", properties=WillProperties(will_delay_interval=5))
    with pytest.raises(RuntimeError, match="will properties require MQTT 5.0"):
        MQTTClient("h", will=will)

    MQTTClient("h", will=will, version="5.0")
    assert fake_native.clients[-1].options.will == will


def test_will_topic_is_validated_at_construction() -> None:
    with pytest.raises(
        MQTTInvalidTopicError, match="Wildcards not allowed in publish topic: 'a/\\+'"
    ):
        MQTTClient("h", will=Will("a/+", "gone"))
    assert fake_native.clients == []


def test_session_expiry_interval_is_accepted_and_ignored_on_311() -> None:
    MQTTClient("h", session_expiry_interval=0xFFFFFFFF)
    assert fake_native.clients[-1].options.version == "3.1.1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mqtt_connect_timeout": 0}, "mqtt_connect_timeout must be positive"),
        ({"mqtt_connect_timeout": -1.0}, "mqtt_connect_timeout must be positive"),
        ({"max_pending_requests": 0}, "max_pending_requests must be positive"),
        (
            {"session_replay_buffer_size": -1},
            "session_replay_buffer_size must not be negative",
        ),
        ({"session_replay_timeout": 0}, "session_replay_timeout must be positive"),
        ({"keepalive": 65536}, "keepalive must be in 0..65535"),
        ({"keepalive": -1}, "keepalive must be in 0..65535"),
        ({"port": 0}, "port must be in 1..65535"),
        ({"port": 65536}, "port must be in 1..65535"),
        (
            {"session_expiry_interval": -1},
            "session_expiry_interval must be in 0..4294967295",
        ),
        (
            {"session_expiry_interval": 2**32},
            "session_expiry_interval must be in 0..4294967295",
        ),
        (
            {"receive_maximum": 0, "version": "5.0"},
            "receive_maximum must be in 1..65535",
        ),
        (
            {"receive_maximum": 65536, "version": "5.0"},
            "receive_maximum must be in 1..65535",
        ),
        (
            {"maximum_packet_size": 0, "version": "5.0"},
            "maximum_packet_size must be in 1..4294967295",
        ),
        ({"client_id": "a\x00b"}, "client_id must not contain U\\+0000"),
        ({"client_id": "x" * 65536}, "client_id is 65536 bytes long"),
        (
            {"stripped_prefixes": ("$queue/",)},
            "stripped_prefixes entries must be non-empty",
        ),
        (
            {"stripped_prefixes": ("a/+",)},
            "stripped_prefixes entries must be non-empty",
        ),
        (
            {"user_properties": [("a", "\x00")], "version": "5.0"},
            "must not contain U\\+0000",
        ),
    ],
)
def test_out_of_range_values_are_value_errors(
    kwargs: dict[str, Any], message: str
) -> None:
    host = kwargs.pop("host", "h")
    with pytest.raises(ValueError, match=message):
        MQTTClient(host, **kwargs)
    assert fake_native.clients == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"keepalive": "60"},
        {"clean_session": 1},
        {"user_properties": [("a",)], "version": "5.0"},
        {"user_properties": "ab", "version": "5.0"},
        {"stripped_prefixes": "$queue"},
        {"reconnect": {"enabled": False}},
        {"will": ("t", b"p")},
        {"password": 1234},
        {"tls": "yes"},
        {"on_connection_recovery_failed": "not callable"},
    ],
)
def test_values_of_the_wrong_type_are_type_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        MQTTClient("h", **kwargs)
    assert fake_native.clients == []


def test_transport_factory_is_refused_with_a_clear_type_error() -> None:
    async def factory(host: str, port: int, tls: object) -> object:
        return object()

    with pytest.raises(TypeError, match="transport_factory is not supported"):
        MQTTClient("h", transport_factory=factory)  # type: ignore[arg-type]
    assert fake_native.clients == []


def test_empty_host_is_refused() -> None:
    with pytest.raises(ValueError, match="host must be a non-empty str"):
        MQTTClient("")


def test_empty_client_id_needs_clean_session_on_311() -> None:
    # MQTT-3.1.3-7: a zero-byte ClientId requires CleanSession set to 1.
    with pytest.raises(ValueError, match="empty client_id requires clean_session=True"):
        MQTTClient("h", clean_session=False)

    MQTTClient("h", client_id="fixed", clean_session=False)
    MQTTClient("h", clean_session=False, version="5.0")
    assert len(fake_native.clients) == 2


def test_password_without_username_is_refused_on_311_only() -> None:
    # MQTT-3.1.2-22: no password flag without the user name flag in 3.1.1.
    with pytest.raises(ValueError, match="password requires a username"):
        MQTTClient("h", password="secret")

    MQTTClient("h", password=b"\x00\x01", version="5.0")
    assert fake_native.clients[-1].options.password == b"\x00\x01"


def test_reconnect_none_means_the_default_policy() -> None:
    MQTTClient("h", reconnect=None)
    MQTTClient("h", reconnect=ReconnectConfig(enabled=False))

    default, disabled = fake_native.clients
    assert default.options.reconnect == ReconnectConfig()
    assert disabled.options.reconnect.enabled is False


def test_will_reaches_the_native_client_with_bytes_payload() -> None:
    MQTTClient("h", will=Will("status", "offline", qos=1, retain=True))  # type: ignore[arg-type]

    will = fake_native.clients[-1].options.will
    assert will is not None
    assert will.payload == b"offline"
    assert will.qos is QoS.AT_LEAST_ONCE
    assert will.retain is True


def test_repr_names_the_endpoint_but_not_the_password() -> None:
    client = MQTTClient("h", client_id="me", username="u", password="hunter2")
    assert "h:1883" in repr(client)
    assert "hunter2" not in repr(client)


def test_every_spec_name_is_exported() -> None:
    spec_names = {
        "create_client",
        "MQTTClient",
        "MQTTClientV311",
        "MQTTClientV5",
        "Subscription",
        "Message",
        "ConnectionInfo",
        "UnsubscribeResult",
        "ReconnectConfig",
        "Will",
        "QoS",
        "RetainHandling",
        "PublishProperties",
        "ConnectProperties",
        "ConnAckProperties",
        "AuthProperties",
        "UnsubAckProperties",
        "WillProperties",
        "TLSConfig",
        "topic_matches",
        "MQTTError",
        "MQTTConnectError",
        "MQTTProtocolError",
        "MQTTDisconnectedError",
        "MQTTTimeoutError",
        "MQTTSubscribeError",
        "MQTTPublishError",
        "MQTTQoSExceededError",
        "MQTTRetainNotAvailableError",
        "MQTTInvalidTopicError",
    }
    assert set(zmqtt.__all__) == spec_names
    for name in spec_names:
        assert getattr(zmqtt, name) is not None


def test_options_repr_leaves_the_password_out() -> None:
    client = MQTTClient("h", username="u", password="hunter2")
    assert "hunter2" not in repr(client.options)
    assert "username='u'" in repr(client.options)
