"""``MQTTClient`` calls (SPEC 1.3–1.9) over the test double: the QoS 0 fast
path, payload handling, version rules at run time, loop binding and the
recovery callback."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from zmqtt import (
    MQTTClient,
    MQTTDisconnectedError,
    MQTTInvalidTopicError,
    PublishProperties,
    QoS,
    RetainHandling,
    create_client,
    topic_matches,
)

from unit_pure import fake_native


def _native() -> fake_native.NativeClient:
    return fake_native.clients[-1]


def test_async_with_connects_and_disconnects() -> None:
    async def main() -> None:
        async with create_client("h") as client:
            assert _native().calls == [("connect",)]
            assert client.connection_info.connection_id == 1
        assert _native().calls == [("connect",), ("disconnect",)]

    asyncio.run(main())


def test_connection_info_is_an_error_when_not_connected() -> None:
    async def main() -> None:
        client = MQTTClient("h")
        with pytest.raises(MQTTDisconnectedError):
            _ = client.connection_info
        await client.connect()
        assert client.connection_info.effective_client_id == "assigned"
        await client.disconnect()
        with pytest.raises(MQTTDisconnectedError):
            _ = client.connection_info

    asyncio.run(main())


def test_disconnect_is_safe_twice_and_before_connect() -> None:
    async def main() -> None:
        client = MQTTClient("h")
        await client.disconnect()
        await client.connect()
        await client.disconnect()
        await client.disconnect()

    asyncio.run(main())
    assert [call[0] for call in _native().calls] == [
        "disconnect",
        "connect",
        "disconnect",
        "disconnect",
    ]


def test_qos0_publish_takes_the_synchronous_fast_path() -> None:
    async def main() -> None:
        async with MQTTClient("h") as client:
            await client.publish("t", b"payload")
            await client.publish("t", b"again", retain=True)

    asyncio.run(main())
    assert _native().calls[1:-1] == [
        ("publish_nowait", "t", b"payload", False, None),
        ("publish_nowait", "t", b"again", True, None),
    ]


def test_qos0_publish_waits_when_the_queue_is_full() -> None:
    async def main() -> None:
        async with MQTTClient("h") as client:
            _native().nowait_accepts = False
            await client.publish("t", b"p")

    asyncio.run(main())
    assert _native().calls[1:-1] == [
        ("publish_nowait", "t", b"p", False, None),
        ("publish", "t", b"p", 0, False, None),
    ]


@pytest.mark.parametrize("qos", [QoS.AT_LEAST_ONCE, QoS.EXACTLY_ONCE, 1, 2])
def test_qos12_publish_awaits_the_native_flow(qos: QoS) -> None:
    async def main() -> None:
        async with MQTTClient("h") as client:
            await client.publish("t", b"p", qos=qos)

    asyncio.run(main())
    assert _native().calls[1:-1] == [("publish", "t", b"p", int(qos), False, None)]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"raw", b"raw"),
        ("héllo", "héllo".encode()),
        (bytearray(b"array"), b"array"),
        (memoryview(b"view"), b"view"),
    ],
)
def test_publish_accepts_bytes_like_and_str_payloads(
    payload: bytes | bytearray | memoryview | str, expected: bytes
) -> None:
    async def main() -> None:
        async with MQTTClient("h") as client:
            await client.publish("t", payload)

    asyncio.run(main())
    sent = _native().calls[1]
    assert sent[2] == expected
    assert type(sent[2]) is bytes


def test_publish_refuses_bad_arguments_before_any_native_call() -> None:
    async def main() -> None:
        async with MQTTClient("h") as client:
            with pytest.raises(TypeError, match="payload must be bytes"):
                await client.publish("t", 42)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="qos must be 0, 1 or 2"):
                await client.publish("t", b"", qos=3)  # type: ignore[arg-type]
            with pytest.raises(RuntimeError, match="properties require MQTT 5.0"):
                await client.publish("t", b"", properties=PublishProperties())
            with pytest.raises(
                MQTTInvalidTopicError,
                match="Wildcards not allowed in publish topic: 'a/\\+'",
            ):
                await client.publish("a/+", b"")

    asyncio.run(main())
    assert [call[0] for call in _native().calls] == ["connect", "disconnect"]


def test_publish_properties_pass_through_on_50() -> None:
    props = PublishProperties(message_expiry_interval=60)

    async def main() -> None:
        async with MQTTClient("h", version="5.0") as client:
            await client.publish("data", b"payload", properties=props)
            await client.publish(
                "data", b"payload", qos=QoS.AT_LEAST_ONCE, properties=props
            )
            with pytest.raises(ValueError, match="set by the broker"):
                await client.publish(
                    "data", b"", properties=PublishProperties(subscription_identifier=3)
                )

    asyncio.run(main())
    assert _native().calls[1:-1] == [
        ("publish_nowait", "data", b"payload", False, props),
        ("publish", "data", b"payload", 1, False, props),
    ]


def test_qos0_publish_while_disconnected_raises() -> None:
    async def main() -> None:
        client = MQTTClient("h")
        with pytest.raises(MQTTDisconnectedError):
            await client.publish("t", b"p")

    asyncio.run(main())


def test_request_and_auth_are_50_only_at_run_time() -> None:
    async def main() -> None:
        async with MQTTClient("h") as client:
            with pytest.raises(RuntimeError, match="request\\(\\) requires MQTT 5.0"):
                await client.request("svc", b"q")
            with pytest.raises(RuntimeError, match="auth\\(\\) requires MQTT 5.0"):
                await client.auth("SCRAM-SHA-1")

    asyncio.run(main())
    assert [call[0] for call in _native().calls] == ["connect", "disconnect"]


def test_request_and_auth_reach_the_native_client_on_50() -> None:
    async def main() -> None:
        async with MQTTClient("h", version="5.0") as client:
            reply = await client.request(
                "svc/time", "now", qos=QoS.AT_LEAST_ONCE, timeout=5
            )
            assert reply.payload == b"pong"
            await client.auth("SCRAM-SHA-1", b"\x01")
            with pytest.raises(ValueError, match="timeout must be positive"):
                await client.request("svc", b"", timeout=0)

    asyncio.run(main())
    assert _native().calls[1:-1] == [
        ("request", "svc/time", b"now", 1, 5.0, None),
        ("auth", "SCRAM-SHA-1", b"\x01"),
    ]


def test_ping_returns_seconds_and_checks_its_timeout() -> None:
    async def main() -> None:
        async with MQTTClient("h") as client:
            assert await client.ping() == 0.001
            await client.ping(timeout=2)
            with pytest.raises(ValueError, match="timeout must be positive"):
                await client.ping(timeout=0)

    asyncio.run(main())
    assert _native().calls[1:-1] == [("ping", 10.0), ("ping", 2.0)]


def test_reset_reaches_the_native_client() -> None:
    async def main() -> None:
        async with MQTTClient("h") as client:
            await client.reset()

    asyncio.run(main())
    assert ("reset",) in _native().calls


def test_client_refuses_a_second_event_loop_while_the_first_is_open() -> None:
    client = MQTTClient("h")
    first = asyncio.new_event_loop()
    second = asyncio.new_event_loop()
    try:
        first.run_until_complete(client.connect())
        with pytest.raises(
            RuntimeError, match="bound to the event loop it was first used on"
        ):
            second.run_until_complete(client.ping())
        with pytest.raises(RuntimeError, match="bound to the event loop"):
            second.run_until_complete(client.disconnect())
        with pytest.raises(RuntimeError, match="bound to the event loop"):
            second.run_until_complete(client.publish("t", b"p", qos=QoS.AT_LEAST_ONCE))
        first.run_until_complete(client.publish("t", b"p"))
    finally:
        first.close()
    # Once the first loop is closed, the next one may take over.
    second.run_until_complete(client.disconnect())
    second.close()
    assert [call[0] for call in _native().calls] == [
        "connect",
        "publish_nowait",
        "disconnect",
    ]


def test_qos0_publish_from_a_loop_in_another_thread_is_refused() -> None:
    client = MQTTClient("h")
    loop = asyncio.new_event_loop()
    errors: list[BaseException] = []

    def other_thread() -> None:
        try:
            asyncio.run(client.publish("t", b"p"))
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            errors.append(error)

    try:
        loop.run_until_complete(client.connect())
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join()
    finally:
        loop.close()
    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert "bound to the event loop" in str(errors[0])
    assert [call[0] for call in _native().calls] == ["connect"]


def test_subscriptions_share_the_client_loop_binding() -> None:
    client = MQTTClient("h")
    first = asyncio.new_event_loop()
    second = asyncio.new_event_loop()
    try:
        first.run_until_complete(client.connect())
        subscription = client.subscribe("a/#")
        with pytest.raises(RuntimeError, match="bound to the event loop"):
            second.run_until_complete(subscription.start())
    finally:
        first.close()
        second.close()


def test_recovery_callback_runs_once_when_the_connection_cannot_be_restored() -> None:
    calls: list[str] = []

    async def recovery_failed() -> None:
        calls.append("failed")

    async def main() -> None:
        client = MQTTClient("h", on_connection_recovery_failed=recovery_failed)
        await client.connect()
        _native().lose_connection(MQTTDisconnectedError("gave up after 5 attempts"))
        for _ in range(3):
            await asyncio.sleep(0)
        await client.disconnect()

    asyncio.run(main())
    assert calls == ["failed"]


def test_recovery_callback_is_not_called_on_a_clean_disconnect() -> None:
    calls: list[str] = []

    async def recovery_failed() -> None:
        calls.append("failed")

    async def main() -> None:
        async with MQTTClient("h", on_connection_recovery_failed=recovery_failed):
            pass
        for _ in range(3):
            await asyncio.sleep(0)

    asyncio.run(main())
    assert calls == []


def test_a_failing_recovery_callback_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def recovery_failed() -> None:
        raise ValueError("callback bug")

    async def main() -> None:
        client = MQTTClient("h", on_connection_recovery_failed=recovery_failed)
        await client.connect()
        _native().lose_connection(MQTTDisconnectedError("lost"))
        for _ in range(3):
            await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="zmqtt.client"):
        asyncio.run(main())
    assert "on_connection_recovery_failed raised" in caplog.text
    assert all(record.name == "zmqtt.client" for record in caplog.records)


def test_subscribe_checks_its_arguments_without_io() -> None:
    client = MQTTClient("h")
    with pytest.raises(ValueError, match="at least one topic filter"):
        client.subscribe()
    with pytest.raises(
        RuntimeError, match="^subscription_identifier requires MQTT 5.0$"
    ):
        client.subscribe("a", subscription_identifier=1)
    with pytest.raises(
        RuntimeError, match="^no_local, retain_handling require MQTT 5.0$"
    ):
        client.subscribe("a", no_local=True, retain_handling=RetainHandling.DO_NOT_SEND)
    with pytest.raises(MQTTInvalidTopicError):
        client.subscribe("a/#/b")
    with pytest.raises(ValueError, match="receive_buffer_size"):
        client.subscribe("a", receive_buffer_size=-1)
    with pytest.raises(ValueError, match="qos must be 0, 1 or 2"):
        client.subscribe("a", qos=7)  # type: ignore[arg-type]
    assert _native().calls == []


def test_subscribe_hands_every_option_to_the_native_client() -> None:
    client = MQTTClient("h", version="5.0")
    subscription = client.subscribe(
        "a/+",
        "$share/g/b",
        qos=QoS.EXACTLY_ONCE,
        auto_ack=False,
        receive_buffer_size=0,
        no_local=True,
        retain_as_published=True,
        retain_handling=RetainHandling.SEND_IF_NOT_EXISTS,
        subscription_identifier=268_435_455,
    )
    assert subscription.filters == ("a/+", "$share/g/b")
    assert _native().subscriptions[-1].args == (
        ("a/+", "$share/g/b"),
        2,
        False,
        0,
        True,
        True,
        1,
        268_435_455,
    )
    with pytest.raises(
        ValueError, match="subscription_identifier must be in 1..268435455"
    ):
        client.subscribe("a", subscription_identifier=0)


def test_topic_matches_passes_the_default_or_given_prefixes() -> None:
    assert topic_matches("a/+", "a/b") is True
    assert topic_matches("a/#", "b", stripped_prefixes=("$custom",)) is False
    assert fake_native.matched == [
        ("a/+", "a/b", ("$queue", "$exclusive")),
        ("a/#", "b", ("$custom",)),
    ]
    fake_native.matched.clear()


def test_each_run_gets_its_own_recovery_watch() -> None:
    calls: list[str] = []

    async def recovery_failed() -> None:
        calls.append("failed")

    async def main() -> None:
        client = MQTTClient("h", on_connection_recovery_failed=recovery_failed)
        await client.connect()
        await client.connect()  # already connected: still one watch
        await client.disconnect()
        await client.connect()  # at once, before the first watch has ended
        _native().lose_connection(MQTTDisconnectedError("lost"))
        for _ in range(3):
            await asyncio.sleep(0)

    asyncio.run(main())
    assert calls == ["failed"]
