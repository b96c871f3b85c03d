"""Value types and errors (SPEC 1.5, 1.6, 1.8–1.10): enum values, frozenness,
range checks at construction, and the error hierarchy and attributes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from zmqtt import (
    AuthProperties,
    ConnAckProperties,
    ConnectionInfo,
    ConnectProperties,
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
    PublishProperties,
    QoS,
    ReconnectConfig,
    RetainHandling,
    TLSConfig,
    UnsubAckProperties,
    UnsubscribeResult,
    Will,
    WillProperties,
)


def test_enum_values_are_the_wire_values() -> None:
    assert [
        int(q) for q in (QoS.AT_MOST_ONCE, QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE)
    ] == [0, 1, 2]
    assert [
        int(r)
        for r in (
            RetainHandling.SEND_ON_SUBSCRIBE,
            RetainHandling.SEND_IF_NOT_EXISTS,
            RetainHandling.DO_NOT_SEND,
        )
    ] == [0, 1, 2]
    assert QoS(1) is QoS.AT_LEAST_ONCE
    assert isinstance(QoS.EXACTLY_ONCE, int)


@pytest.mark.parametrize(
    "value",
    [
        PublishProperties(),
        WillProperties(),
        ConnectProperties(),
        ConnAckProperties(),
        AuthProperties(),
        UnsubAckProperties(),
        Will("t", b"p"),
        ReconnectConfig(),
        TLSConfig(),
        UnsubscribeResult(topic_filters=("a",), reason_codes=(0,)),
        ConnectionInfo(
            connection_id=1,
            session_present=False,
            return_code=0,
            properties=None,
            effective_client_id="c",
            effective_keepalive=60,
            effective_session_expiry_interval=None,
        ),
    ],
)
def test_value_types_are_frozen(value: Any) -> None:
    first_field = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, first_field, None)


def test_reconnect_config_defaults_follow_the_spec() -> None:
    config = ReconnectConfig()
    assert (
        config.enabled,
        config.initial_delay,
        config.max_delay,
        config.backoff_factor,
        config.max_attempts,
    ) == (
        True,
        1.0,
        60.0,
        2.0,
        5,
    )
    assert ReconnectConfig(max_attempts=None, initial_delay=0.0).max_attempts is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_delay": -1.0}, "initial_delay must not be negative"),
        ({"max_delay": -1.0}, "max_delay must not be negative"),
        ({"backoff_factor": 0.5}, "backoff_factor must be at least 1"),
        ({"max_attempts": 0}, "max_attempts must be in 1.."),
        ({"initial_delay": float("nan")}, "initial_delay must be finite"),
    ],
)
def test_reconnect_config_refuses_out_of_range_values(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ReconnectConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"payload_format_indicator": 2}, "payload_format_indicator must be in 0..1"),
        (
            {"message_expiry_interval": 2**32},
            "message_expiry_interval must be in 0..4294967295",
        ),
        ({"topic_alias": 0}, "topic_alias must be in 1..65535"),
        (
            {"subscription_identifier": 268_435_456},
            "subscription_identifier must be in 1..268435455",
        ),
        ({"content_type": "a\x00"}, "content_type must not contain U\\+0000"),
        ({"response_topic": "\ud800"}, "response_topic is not valid UTF-8"),
        ({"correlation_data": b"x" * 65536}, "correlation_data is 65536 bytes long"),
    ],
)
def test_publish_properties_refuse_out_of_range_values(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PublishProperties(**kwargs)


def test_publish_properties_normalise_sequences_and_bytes() -> None:
    props = PublishProperties(
        user_properties=[("a", "1"), ("a", "2")],  # type: ignore[arg-type]
        correlation_data=bytearray(b"id"),  # type: ignore[arg-type]
    )
    assert props.user_properties == (("a", "1"), ("a", "2"))
    assert type(props.correlation_data) is bytes
    with pytest.raises(TypeError, match="string pairs"):
        PublishProperties(user_properties=(("only-name",),))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be an int"):
        PublishProperties(message_expiry_interval="60")  # type: ignore[arg-type]


def test_will_and_connect_properties_check_their_ranges() -> None:
    with pytest.raises(ValueError, match="will_delay_interval"):
        WillProperties(will_delay_interval=-1)
    with pytest.raises(ValueError, match="receive_maximum must be in 1..65535"):
        ConnectProperties(receive_maximum=0)
    assert (
        WillProperties(will_delay_interval=10, content_type="text/plain").content_type
        == "text/plain"
    )


def test_will_takes_positional_topic_and_payload_and_stores_bytes() -> None:
    will = Will("status", "offline")
    assert will.payload == b"offline"
    assert will.qos is QoS.AT_MOST_ONCE
    assert will.retain is False
    gone = memoryview(b"gone")
    assert Will("s", gone, QoS.EXACTLY_ONCE, True).payload == b"gone"  # type: ignore[arg-type]
    assert Will(topic="s", payload=b"x", qos=1).qos is QoS.AT_LEAST_ONCE  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Will qos must be 0, 1 or 2"):
        Will("s", b"x", qos=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Will payload must be bytes"):
        Will("s", 5)  # type: ignore[arg-type]


def test_unsubscribe_result_exposes_failures_and_properties() -> None:
    result = UnsubscribeResult(
        topic_filters=("a", "b", "c"),
        reason_codes=(0x00, 0x11, 0x87),
        properties=UnsubAckProperties(
            reason_string="no", user_properties=(("k", "v"),)
        ),
    )
    assert result.failures == {"c": 0x87}
    assert result.reason_string == "no"
    assert result.user_properties == (("k", "v"),)

    v311 = UnsubscribeResult(topic_filters=("a",), reason_codes=())
    assert (v311.failures, v311.reason_string, v311.user_properties) == ({}, None, ())


@pytest.mark.parametrize(
    "error",
    [
        MQTTConnectError(5),
        MQTTProtocolError("bad"),
        MQTTDisconnectedError(),
        MQTTTimeoutError("late"),
        MQTTSubscribeError({"a": 0x80}),
        MQTTPublishError(0x87, "Not authorized", None),
        MQTTQoSExceededError(2, 1),
        MQTTRetainNotAvailableError(),
        MQTTInvalidTopicError("bad topic"),
    ],
)
def test_every_error_is_an_mqtt_error(error: MQTTError) -> None:
    assert isinstance(error, MQTTError)
    assert type(error).__mro__[1] is MQTTError
    assert str(error)


def test_connect_error_carries_the_connack_details() -> None:
    props = ConnAckProperties(
        reason_string="bad credentials",
        user_properties=(("k", "v"),),
        server_reference="other:1883",
    )
    error = MQTTConnectError(
        0x86, properties=props, reason_name="Bad User Name or Password"
    )
    assert error.return_code == 0x86
    assert error.properties is props
    assert error.reason_string == "bad credentials"
    assert error.user_properties == (("k", "v"),)
    assert error.server_reference == "other:1883"
    assert "0x86 Bad User Name or Password" in str(error)

    plain = MQTTConnectError(4)
    assert (
        plain.properties,
        plain.reason_string,
        plain.user_properties,
        plain.server_reference,
    ) == (
        None,
        None,
        (),
        None,
    )


def test_other_errors_carry_their_attributes() -> None:
    subscribe = MQTTSubscribeError({"private/#": 0x87})
    assert subscribe.failures == {"private/#": 0x87}
    assert "'private/#' (0x87)" in str(subscribe)

    publish = MQTTPublishError(0x97, "Quota exceeded", "slow down")
    assert (publish.reason_code, publish.reason_name, publish.reason_string) == (
        0x97,
        "Quota exceeded",
        "slow down",
    )
    assert str(publish) == "Broker refused publish (0x97 Quota exceeded): slow down"

    qos = MQTTQoSExceededError(QoS.EXACTLY_ONCE, QoS.AT_LEAST_ONCE)
    assert (qos.requested_qos, qos.maximum_qos) == (2, 1)

    lost = MQTTDisconnectedError(
        "broker sent DISCONNECT 0x8B Server shutting down", reason_code=0x8B
    )
    assert lost.reason_code == 0x8B
    assert str(MQTTDisconnectedError()) == "Not connected"
    assert MQTTProtocolError("x", reason_code=0x81).reason_code == 0x81
