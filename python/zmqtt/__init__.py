"""zmqtt: an asyncio MQTT 3.1.1 and 5.0 client whose protocol engine is written in Rust.

Start with :func:`create_client`::

    from zmqtt import create_client

    async with create_client("localhost") as client:
        await client.publish("test", "hello")

Logging goes to the standard loggers ``zmqtt.client`` (connection lifecycle,
reconnects, routing warnings) and ``zmqtt.protocol`` (packets, DEBUG).
Credentials and payloads are never logged.
"""

import logging as _logging

from zmqtt._client import MQTTClient, create_client, topic_matches
from zmqtt._errors import (
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
)
from zmqtt._protocols import MQTTClientV5, MQTTClientV311
from zmqtt._subscription import Subscription
from zmqtt._types import (
    AuthProperties,
    ConnAckProperties,
    ConnectionInfo,
    ConnectProperties,
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
from zmqtt._zmqtt import Message

__all__ = [
    "AuthProperties",
    "ConnAckProperties",
    "ConnectProperties",
    "ConnectionInfo",
    "MQTTClient",
    "MQTTClientV5",
    "MQTTClientV311",
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
    "Message",
    "PublishProperties",
    "QoS",
    "ReconnectConfig",
    "RetainHandling",
    "Subscription",
    "TLSConfig",
    "UnsubAckProperties",
    "UnsubscribeResult",
    "Will",
    "WillProperties",
    "create_client",
    "topic_matches",
]

# A library leaves handlers to the application: without this, Python's
# last-resort handler would print zmqtt's warnings to stderr.
_logging.getLogger("zmqtt").addHandler(_logging.NullHandler())
