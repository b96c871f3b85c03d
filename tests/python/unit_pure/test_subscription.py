"""``Subscription`` (SPEC 1.7) over the test double: batched delivery, one
wake-up per batch, cancellation safety, the ways a subscription ends, and
start/stop/detach."""

from __future__ import annotations

import asyncio
import logging

import pytest
from zmqtt import (
    MQTTClient,
    MQTTDisconnectedError,
    MQTTSubscribeError,
    Subscription,
    UnsubscribeResult,
)

from unit_pure import fake_native
from unit_pure.fake_native import Message


def _messages(count: int, start: int = 0) -> list[Message]:
    return [
        Message(f"t/{index}", str(index).encode())
        for index in range(start, start + count)
    ]


def _native_subscription() -> fake_native.NativeSubscription:
    return fake_native.clients[-1].subscriptions[-1]


async def _started(receive_buffer_size: int = 1000) -> tuple[MQTTClient, Subscription]:
    client = MQTTClient("h")
    await client.connect()
    subscription = client.subscribe("t/#", receive_buffer_size=receive_buffer_size)
    await subscription.start()
    return client, subscription


def test_one_native_batch_serves_several_get_message_calls() -> None:
    async def main() -> list[str]:
        _, subscription = await _started()
        native = _native_subscription()
        native.deliver(*_messages(5))
        topics = [(await subscription.get_message()).topic for _ in range(5)]
        assert native.batch_requests == [256]
        assert native.wait_calls == 0
        return topics

    assert asyncio.run(main()) == [f"t/{index}" for index in range(5)]


@pytest.mark.parametrize(
    ("receive_buffer_size", "batch"), [(3, 3), (1, 1), (0, 256), (100_000, 256)]
)
def test_batch_size_is_bounded_by_the_receive_buffer(
    receive_buffer_size: int, batch: int
) -> None:
    async def main() -> None:
        _, subscription = await _started(receive_buffer_size)
        native = _native_subscription()
        native.deliver(*_messages(2))
        await subscription.get_message()
        assert native.batch_requests == [batch]

    asyncio.run(main())


def test_a_waiting_consumer_is_woken_once_for_a_batch() -> None:
    async def main() -> None:
        _, subscription = await _started()
        native = _native_subscription()
        first = asyncio.ensure_future(subscription.get_message())
        await asyncio.sleep(0)
        assert native.wait_calls == 1
        assert not first.done()

        native.deliver(*_messages(3))
        assert (await first).topic == "t/0"
        assert (await subscription.get_message()).topic == "t/1"
        assert (await subscription.get_message()).topic == "t/2"
        assert native.wait_calls == 1
        assert native.batch_requests == [256, 256]

    asyncio.run(main())


def test_arrival_order_is_kept_across_batches() -> None:
    async def main() -> list[str]:
        _, subscription = await _started(receive_buffer_size=2)
        native = _native_subscription()
        native.deliver(*_messages(5))
        received = [(await subscription.get_message()).topic for _ in range(3)]
        native.deliver(*_messages(2, start=5))
        received += [(await subscription.get_message()).topic for _ in range(4)]
        return received

    assert asyncio.run(main()) == [f"t/{index}" for index in range(7)]


def test_cancelling_a_waiting_get_message_loses_no_message() -> None:
    async def main() -> None:
        _, subscription = await _started()
        native = _native_subscription()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(subscription.get_message(), timeout=0.01)
        native.deliver(*_messages(2))
        assert (await subscription.get_message()).topic == "t/0"
        assert (await subscription.get_message()).topic == "t/1"

    asyncio.run(main())


def test_concurrent_consumers_share_a_batch_without_hanging() -> None:
    async def main() -> set[str]:
        _, subscription = await _started()
        native = _native_subscription()
        consumers = [
            asyncio.ensure_future(subscription.get_message()) for _ in range(2)
        ]
        await asyncio.sleep(0)
        native.deliver(*_messages(2))
        done = await asyncio.wait_for(asyncio.gather(*consumers), timeout=1)
        return {message.topic for message in done}

    assert asyncio.run(main()) == {"t/0", "t/1"}


def test_iteration_ends_when_the_subscription_is_stopped() -> None:
    async def main() -> list[str]:
        _, subscription = await _started()
        native = _native_subscription()
        received: list[str] = []

        async def consume() -> None:
            async for message in subscription:
                received.append(message.topic)

        consumer = asyncio.ensure_future(consume())
        native.deliver(*_messages(2))
        await asyncio.sleep(0)
        await subscription.stop()
        await asyncio.wait_for(consumer, timeout=1)
        with pytest.raises(MQTTDisconnectedError, match="Subscription has ended"):
            await subscription.get_message()
        return received

    assert asyncio.run(main()) == ["t/0", "t/1"]


def test_iteration_ends_when_the_client_disconnects() -> None:
    async def main() -> None:
        client, subscription = await _started()
        consumer = asyncio.ensure_future(subscription.__anext__())
        await asyncio.sleep(0)
        await client.disconnect()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(consumer, timeout=1)

    asyncio.run(main())


def test_a_waiting_consumer_wakes_with_the_error_that_stopped_the_client() -> None:
    lost = MQTTDisconnectedError("connection lost: reconnect disabled")

    async def main() -> None:
        _, subscription = await _started()
        waiting = asyncio.ensure_future(subscription.get_message())
        iterating = asyncio.ensure_future(subscription.__anext__())
        await asyncio.sleep(0)
        fake_native.clients[-1].lose_connection(lost)
        for pending in (waiting, iterating):
            with pytest.raises(MQTTDisconnectedError) as caught:
                await asyncio.wait_for(pending, timeout=1)
            assert caught.value is lost

    asyncio.run(main())


def test_stop_returns_the_unsuback_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = UnsubscribeResult(topic_filters=("t/#",), reason_codes=(0,))

    async def main() -> None:
        _, subscription = await _started()
        _native_subscription().stop_result = result
        assert await subscription.stop() is result
        assert await subscription.stop() is None

        _, failing = await _started()
        _native_subscription().stop_error = MQTTDisconnectedError(
            "lost while unsubscribing"
        )
        with caplog.at_level(logging.WARNING, logger="zmqtt.client"):
            assert await failing.stop() is None

    asyncio.run(main())
    assert "unsubscribing ['t/#'] failed" in caplog.text


def test_stop_before_start_sends_nothing() -> None:
    async def main() -> None:
        client = MQTTClient("h")
        subscription = client.subscribe("a")
        assert await subscription.stop() is None
        native = _native_subscription()
        assert (native.stopped, native.detached) == (False, True)

    asyncio.run(main())


def test_leaving_the_block_unsubscribes() -> None:
    async def main() -> None:
        client = MQTTClient("h")
        await client.connect()
        async with client.subscribe("a") as subscription:
            assert isinstance(subscription, Subscription)
            assert _native_subscription().started
        assert _native_subscription().stopped

    asyncio.run(main())


def test_a_block_left_by_cancellation_skips_unsubscribe() -> None:
    async def main() -> None:
        client = MQTTClient("h")
        await client.connect()
        entered = asyncio.Event()

        async def body() -> None:
            async with client.subscribe("a"):
                entered.set()
                await asyncio.sleep(3600)

        task = asyncio.ensure_future(body())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        native = _native_subscription()
        assert (native.stopped, native.detached) == (False, True)

    asyncio.run(main())


def test_detach_ends_delivery_without_unsubscribe_for_good() -> None:
    async def main() -> None:
        _, subscription = await _started()
        native = _native_subscription()
        native.deliver(*_messages(1))
        await subscription.detach()
        await subscription.detach()
        assert (native.detached, native.stopped) == (True, False)
        with pytest.raises(MQTTDisconnectedError, match="Subscription detached"):
            await subscription.get_message()
        with pytest.raises(
            RuntimeError, match="detached subscription cannot be restarted"
        ):
            await subscription.start()
        assert await subscription.stop() is None

    asyncio.run(main())


def test_a_stopped_subscription_starts_again_with_a_new_native_subscription() -> None:
    async def main() -> None:
        client, subscription = await _started()
        await subscription.stop()
        await subscription.start()
        first, second = fake_native.clients[-1].subscriptions
        assert first.stopped and second.started
        assert first.args == second.args
        second.deliver(*_messages(1))
        assert (await subscription.get_message()).topic == "t/0"
        with pytest.raises(RuntimeError, match="already started"):
            await subscription.start()
        await client.disconnect()

    asyncio.run(main())


def test_a_refused_subscribe_raises_and_may_be_retried() -> None:
    async def main() -> None:
        client = MQTTClient("h")
        await client.connect()
        subscription = client.subscribe("private/#")
        _native_subscription().start_error = MQTTSubscribeError({"private/#": 0x87})
        with pytest.raises(MQTTSubscribeError) as caught:
            await subscription.start()
        assert caught.value.failures == {"private/#": 0x87}
        await subscription.start()
        assert len(fake_native.clients[-1].subscriptions) == 2

    asyncio.run(main())


def test_cancelling_start_takes_the_subscribe_back() -> None:
    async def main() -> None:
        client = MQTTClient("h")
        await client.connect()
        subscription = client.subscribe("a")
        native = _native_subscription()
        native.start_future = asyncio.get_running_loop().create_future()
        starting = asyncio.ensure_future(subscription.start())
        await asyncio.sleep(0)
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        assert native.stopped

    asyncio.run(main())


def test_get_message_before_start_waits_for_delivery() -> None:
    async def main() -> None:
        client = MQTTClient("h")
        await client.connect()
        subscription = client.subscribe("a")
        waiting = asyncio.ensure_future(subscription.get_message())
        await asyncio.sleep(0)
        assert not waiting.done()
        await subscription.start()
        _native_subscription().deliver(Message("a", b"x"))
        assert (await asyncio.wait_for(waiting, timeout=1)).payload == b"x"

    asyncio.run(main())
