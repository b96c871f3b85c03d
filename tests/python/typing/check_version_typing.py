"""Static checks of SPEC 1.2 (checked by ``mypy --strict``, never executed):
``create_client`` returns the version's Protocol view, and the concrete
``MQTTClient`` satisfies both views."""

from __future__ import annotations

from typing import assert_type

from zmqtt import (
    Message,
    MQTTClient,
    MQTTClientV5,
    MQTTClientV311,
    QoS,
    RetainHandling,
    Subscription,
    UnsubscribeResult,
    create_client,
)


def return_types_follow_the_version() -> None:
    assert_type(create_client("h"), MQTTClientV311)
    assert_type(create_client("h", version="3.1.1"), MQTTClientV311)
    assert_type(create_client("h", version="5.0"), MQTTClientV5)
    assert_type(
        create_client("h", 1883, version="5.0", receive_maximum=10), MQTTClientV5
    )


def the_concrete_client_is_both_views(client: MQTTClient) -> None:
    v311: MQTTClientV311 = client
    v5: MQTTClientV5 = client
    del v311, v5


async def v311_api(client: MQTTClientV311) -> None:
    async with client as connected:
        assert_type(connected, MQTTClientV311)
        await connected.publish("t", b"x", qos=QoS.AT_LEAST_ONCE, retain=True)
        rtt: float = await connected.ping()
        del rtt
        async with connected.subscribe(
            "a/#", qos=QoS.EXACTLY_ONCE, auto_ack=False
        ) as sub:
            assert_type(sub, Subscription)
            message = await sub.get_message()
            assert_type(message, Message)
            assert_type(message.qos, QoS)
            await message.ack()
            async for received in sub:
                assert_type(received, Message)
        result = await sub.stop()
        assert_type(result, UnsubscribeResult | None)


async def v5_api(client: MQTTClientV5) -> None:
    async with client as connected:
        assert_type(connected, MQTTClientV5)
        reply = await connected.request("svc", "ping", timeout=5.0)
        assert_type(reply, Message)
        await connected.auth("SCRAM-SHA-256", b"\x00")
        connected.subscribe(
            "a",
            no_local=True,
            retain_as_published=True,
            retain_handling=RetainHandling.DO_NOT_SEND,
            subscription_identifier=7,
        )
        assert_type(connected.connection_info.effective_keepalive, int)
