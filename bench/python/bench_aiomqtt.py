"""The benchmark workloads in aiomqtt's idiom: `async with Client(...)`,
`await client.publish(...)` (which waits for paho's on_publish, for QoS 0 too)
and `async for message in client.messages`. MQTT 3.1.1 throughout.
Usage: see benchcommon.parse_args.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import sys
import time
from typing import Any

import aiomqtt  # type: ignore[import-not-found, unused-ignore]
from benchcommon import (
    IDLE_SETTLE_S,
    BenchArgs,
    Result,
    Stopwatch,
    emit,
    fill_latencies,
    idle_result,
    lost,
    parse_args,
    rss_kib,
)

CLIENT = "aiomqtt"
MODE = "mqtt-3.1.1"


def _version() -> str:
    paho = importlib.metadata.version("paho-mqtt")
    return f"{importlib.metadata.version('aiomqtt')} (paho-mqtt {paho})"


def _client(args: BenchArgs, role: str, **options: Any) -> Any:
    return aiomqtt.Client(
        args.host,
        args.port,
        identifier=args.client_id(role),
        protocol=aiomqtt.ProtocolVersion.V311,
        **options,
    )


async def _receive(client: Any, expected: int, state: list[float]) -> None:
    """Counts deliveries into state[0]; state[1] is the perf_counter reading
    when the last expected one arrived."""
    async for _message in client.messages:
        state[0] += 1
        if state[0] >= expected:
            state[1] = time.perf_counter()
            return


async def fan_through_broker(args: BenchArgs, qos: int, pipelined: bool) -> Result:
    """W1 (QoS 0) and W3 (QoS 1, at most --window unacknowledged)."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    watch = Stopwatch()
    state = [0.0, 0.0]
    window_options = {"max_inflight_messages": args.window} if pipelined else {}
    async with (
        _client(args, "sub") as receiver,
        _client(args, "pub", **window_options) as sender,
    ):
        # aiomqtt warns above 10 pending calls; W3 keeps 100 pending by design.
        sender.pending_calls_threshold = args.window + 1
        await receiver.subscribe(args.topic, qos=qos)
        receiving = asyncio.create_task(_receive(receiver, args.count, state))
        payload, topic = args.payload, args.topic
        watch.start()
        if pipelined:
            window = asyncio.Semaphore(args.window)
            tasks: set[asyncio.Task[None]] = set()

            async def one() -> None:
                try:
                    await sender.publish(topic, payload, qos=qos)
                finally:
                    window.release()

            for _ in range(args.count):
                await window.acquire()
                task = asyncio.create_task(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            while tasks:
                await asyncio.gather(*tasks)
        else:
            for _ in range(args.count):
                await sender.publish(topic, payload, qos=qos)
        try:
            await asyncio.wait_for(receiving, args.timeout)
        except TimeoutError:
            lost(result, args.count, int(state[0]))
            return result
        watch.stop_at(state[1])
    watch.fill(result, args.count)
    return result


async def sequential(args: BenchArgs, qos: int) -> Result:
    """W2 (QoS 1) and W4 (QoS 2): each publish awaited to its last ack."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    watch = Stopwatch()
    async with _client(args, "pub") as sender:
        payload, topic = args.payload, args.topic
        watch.start()
        for _ in range(args.count):
            await sender.publish(topic, payload, qos=qos)
        watch.stop()
    watch.fill(result, args.count)
    return result


async def round_trip(args: BenchArgs) -> Result:
    """W5: publish, await the message on our own subscription, repeat."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    samples: list[float] = []
    warmup = args.warmup
    async with _client(args, "rtt") as client:
        await client.subscribe(args.topic)
        messages = aiter(client.messages)
        payload, topic = args.payload, args.topic
        watch = Stopwatch()
        for index in range(warmup + args.count):
            if index == warmup:
                watch.start()
            started = time.perf_counter()
            await client.publish(topic, payload)
            await anext(messages)
            if index >= warmup:
                samples.append(time.perf_counter() - started)
        watch.stop()
    fill_latencies(result, samples)
    result.cpu_us_per_msg = watch.cpu_s * 1e6 / args.count
    return result


async def into_sink(args: BenchArgs) -> Result:
    """W6: QoS 0 publishes into the sink (each awaited until paho wrote it),
    then one QoS 1 fence publish whose PUBACK proves that all of them arrived;
    timed until that PUBACK."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    watch = Stopwatch()
    async with _client(args, "sink") as client:
        payload, topic = args.payload, args.topic
        watch.start()
        for _ in range(args.count):
            await client.publish(topic, payload)
        await client.publish(topic, payload, qos=1)
        watch.stop()
    watch.fill(result, args.count)
    return result


async def idle_connections(args: BenchArgs) -> Result:
    """W7: RSS growth per idle connected client, after one warm-up client
    (which takes the one-time costs), clients connected one after another."""
    result = Result(CLIENT, args.workload, args.connections, _version(), MODE)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(_client(args, "warmup"))
        before = rss_kib()
        for index in range(args.connections):
            await stack.enter_async_context(_client(args, f"idle{index}"))
        await asyncio.sleep(IDLE_SETTLE_S)
        after = rss_kib()
    idle_result(result, before, after, args.connections)
    return result


async def run(args: BenchArgs) -> Result:
    """Runs the workload named by ``args``."""
    match args.workload:
        case "W1":
            return await fan_through_broker(args, 0, pipelined=False)
        case "W2":
            return await sequential(args, 1)
        case "W3":
            return await fan_through_broker(args, 1, pipelined=True)
        case "W4":
            return await sequential(args, 2)
        case "W5":
            return await round_trip(args)
        case "W6":
            return await into_sink(args)
        case _:
            return await idle_connections(args)


def main() -> int:
    """Entry point: one measurement, one JSON line."""
    args = parse_args(CLIENT)
    return emit(asyncio.run(run(args)))


if __name__ == "__main__":
    sys.exit(main())
