"""The exception hierarchy of zmqtt (SPEC 1.10).

The native module raises these classes too (it imports this module), so every
constructor below is part of the contract with ``zmqtt._zmqtt``: keep the
signatures stable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zmqtt._types import ConnAckProperties

__all__ = [
    "MQTTConnectError",
    "MQTTDisconnectedError",
    "MQTTError",
    "MQTTInvalidTopicError",
    "MQTTProtocolError",
    "MQTTPublishError",
    "MQTTQoSExceededError",
    "MQTTRetainNotAvailableError",
    "MQTTSubscribeError",
    "MQTTTimeoutError",
]


class MQTTError(Exception):
    """Base class of every error zmqtt raises about MQTT itself."""


class MQTTConnectError(MQTTError):
    """The broker refused the connection (CONNACK with a failure code).

    A refusal is never retried by the reconnect logic.

    Attributes:
        return_code: The 3.1.1 return code (1..5) or the 5.0 reason code (>= 0x80).
        properties: The 5.0 CONNACK properties, ``None`` on 3.1.1.
        reason_string: The broker's 5.0 Reason String, if any.
        user_properties: The broker's 5.0 User Properties (empty on 3.1.1).
        server_reference: The 5.0 Server Reference (another broker to use), if any.
    """

    def __init__(
        self,
        return_code: int,
        *,
        properties: ConnAckProperties | None = None,
        reason_name: str | None = None,
    ) -> None:
        self.return_code = return_code
        self.properties = properties
        self.reason_string = (
            properties.reason_string if properties is not None else None
        )
        self.user_properties = (
            properties.user_properties if properties is not None else ()
        )
        self.server_reference = (
            properties.server_reference if properties is not None else None
        )
        text = f"Connection refused by the broker: return code {return_code}"
        if reason_name:
            text += f" (0x{return_code:02X} {reason_name})"
        if self.reason_string:
            text += f": {self.reason_string}"
        super().__init__(text)


class MQTTProtocolError(MQTTError):
    """The broker sent a malformed or unexpected packet; that connection was closed.

    Attributes:
        reason_code: The reason code zmqtt sent in its 5.0 DISCONNECT, if it sent one.
    """

    def __init__(self, message: str, *, reason_code: int | None = None) -> None:
        self.reason_code = reason_code
        super().__init__(message)


class MQTTDisconnectedError(MQTTError):
    """Not connected, or the connection was lost while the call waited.

    Attributes:
        reason_code: The broker's 5.0 DISCONNECT reason code, when it sent one.
    """

    def __init__(
        self, message: str = "Not connected", *, reason_code: int | None = None
    ) -> None:
        self.reason_code = reason_code
        super().__init__(message)


class MQTTTimeoutError(MQTTError):
    """A PINGRESP or CONNACK did not arrive in time."""


class MQTTSubscribeError(MQTTError):
    """The broker refused one or more filters of a SUBSCRIBE (reason code >= 0x80).

    Attributes:
        failures: Each refused filter mapped to its reason code.
        reason_string: The broker's 5.0 Reason String, if any.
    """

    def __init__(
        self, failures: dict[str, int], *, reason_string: str | None = None
    ) -> None:
        self.failures = dict(failures)
        self.reason_string = reason_string
        rendered = ", ".join(
            f"{name!r} (0x{code:02X})" for name, code in self.failures.items()
        )
        text = f"Broker refused subscription: {rendered}"
        if reason_string:
            text += f": {reason_string}"
        super().__init__(text)


class MQTTPublishError(MQTTError):
    """The broker refused a QoS 1/2 publish (5.0 PUBACK/PUBREC reason code >= 0x80).

    Also raised locally, with reason code 0x95 (Packet too large), for a
    publish larger than the broker's Maximum Packet Size.

    Attributes:
        reason_code: The PUBACK/PUBREC reason code.
        reason_name: The MQTT specification's name of ``reason_code``, if known.
        reason_string: The broker's Reason String, if any.
    """

    def __init__(
        self, reason_code: int, reason_name: str | None, reason_string: str | None
    ) -> None:
        self.reason_code = reason_code
        self.reason_name = reason_name
        self.reason_string = reason_string
        named = (
            f"0x{reason_code:02X} {reason_name}"
            if reason_name
            else f"0x{reason_code:02X}"
        )
        detail = f": {reason_string}" if reason_string else ""
        super().__init__(f"Broker refused publish ({named}){detail}")


class MQTTQoSExceededError(MQTTError):
    """The requested QoS is above the broker's Maximum QoS (refused before sending).

    Attributes:
        requested_qos: The QoS the caller asked for.
        maximum_qos: The broker's Maximum QoS from CONNACK.
    """

    def __init__(self, requested: int, maximum: int) -> None:
        self.requested_qos = requested
        self.maximum_qos = maximum
        super().__init__(
            f"Requested QoS {int(requested)} exceeds the broker's Maximum QoS {int(maximum)}"
        )


class MQTTRetainNotAvailableError(MQTTError):
    """``retain=True`` but the broker said Retain Available = 0 (refused before sending)."""

    def __init__(
        self,
        message: str = "The broker does not support retained messages (Retain Available is 0)",
    ) -> None:
        super().__init__(message)


class MQTTInvalidTopicError(MQTTError):
    """A topic name or filter broke the MQTT rules (raised before any I/O)."""
