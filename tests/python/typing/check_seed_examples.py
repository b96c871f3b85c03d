"""The examples of the seed page (seed/connecting.txt), as written there.

Checked by ``mypy --strict`` (never executed): statements the page shows at
top level are wrapped in functions, and ``del`` keeps unused names lint-clean;
nothing else is changed.
"""

from __future__ import annotations

import ssl

from zmqtt import MQTTClientV5, PublishProperties, create_client


def create_client_example() -> None:
    client = create_client(
        host="localhost",
        port=1883,
        client_id="my-app",
        keepalive=60,
        clean_session=True,
        username="user",
        password="secret",
    )
    del client


def version_selection_example() -> None:
    client_v311 = create_client("localhost", version="3.1.1")
    client_v5 = create_client("localhost", version="5.0")
    del client_v311, client_v5


async def tls_example() -> None:
    # System CA — validates the broker's certificate automatically
    async with create_client("broker.example.com", port=8883, tls=True) as client:
        ...

    # Custom CA (self-signed broker)
    ctx = ssl.create_default_context(cafile="/path/to/ca.pem")
    async with create_client("broker.example.com", port=8883, tls=ctx) as client:  # noqa: F841
        ...


async def context_manager_example() -> None:
    async with create_client("localhost") as client:
        # Connected — protocol handshake complete
        await client.publish("test", "hello")
    # Disconnected — DISCONNECT sent, socket closed


async def manual_lifecycle_example() -> None:
    client = create_client("localhost")
    await client.connect()

    await client.publish("test", "hello")

    await client.disconnect()


async def send_with_expiry(client: MQTTClientV5) -> None:
    props = PublishProperties(message_expiry_interval=60)
    await client.publish("data", b"payload", properties=props)
