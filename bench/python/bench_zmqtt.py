"""The benchmark workloads written against the zmqtt API (`create_client`,
`async with client.subscribe(...)`).

The SAME file runs under two packages: this repository's zmqtt (the Rust
engine) and zmqtt from PyPI (the pure-asyncio library whose API we implement);
only the virtualenv that runs it differs. Usage: see benchcommon.parse_args.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import sys
import time

import zmqtt
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
from zmqtt import QoS, Subscription

CLIENT = "zmqtt"
MODE = "mqtt-3.1.1"


def _version() -> str:
    version = importlib.metadata.version("zmqtt")
    engine = "rust engine" if hasattr(zmqtt, "TLSConfig") else "pure asyncio"
    return f"{version} ({engine})"


def _client(args: BenchArgs, role: str) -> zmqtt.MQTTClientV311:
    return zmqtt.create_client(args.host, args.port, client_id=args.client_id(role))


async def _receive(sub: Subscription, expected: int, state: list[float]) -> None:
    """Counts deliveries into state[0]; state[1] is the perf_counter reading
    when the last expected one arrived."""
    async for _message in sub:
        state[0] += 1
        if state[0] >= expected:
            state[1] = time.perf_counter()
            return


async def _publish_windowed(
    client: zmqtt.MQTTClientV311, args: BenchArgs, qos: QoS
) -> None:
    """`args.count` publishes with at most --window awaiting their ack."""
    window = asyncio.Semaphore(args.window)
    tasks: set[asyncio.Task[None]] = set()
    payload = args.payload

    async def one() -> None:
        try:
            await client.publish(args.topic, payload, qos=qos)
        finally:
            window.release()

    for _ in range(args.count):
        await window.acquire()
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*tasks)


async def fan_through_broker(args: BenchArgs, qos: QoS, pipelined: bool) -> Result:
    """W1 (QoS 0) and W3 (QoS 1, pipelined): one connection publishes, another
    receives every message; timed from the first publish to the last receipt."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    watch = Stopwatch()
    state = [0.0, 0.0]
    async with (
        _client(args, "sub") as receiver,
        _client(args, "pub") as sender,
        receiver.subscribe(args.topic, qos=qos) as sub,
    ):
        receiving = asyncio.create_task(_receive(sub, args.count, state))
        watch.start()
        if pipelined:
            await _publish_windowed(sender, args, qos)
        else:
            payload, topic = args.payload, args.topic
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


async def sequential(args: BenchArgs, qos: QoS) -> Result:
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
    async with _client(args, "rtt") as client, client.subscribe(args.topic) as sub:
        payload, topic = args.payload, args.topic
        watch = Stopwatch()
        for index in range(warmup + args.count):
            if index == warmup:
                watch.start()
            started = time.perf_counter()
            await client.publish(topic, payload)
            await sub.get_message()
            if index >= warmup:
                samples.append(time.perf_counter() - started)
        watch.stop()
    fill_latencies(result, samples)
    result.cpu_us_per_msg = watch.cpu_s * 1e6 / args.count
    return result


async def into_sink(args: BenchArgs) -> Result:
    """W6: QoS 0 publishes into the sink, then one QoS 1 fence publish whose
    PUBACK proves that all of them arrived; timed until that PUBACK."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    watch = Stopwatch()
    async with _client(args, "sink") as client:
        payload, topic = args.payload, args.topic
        watch.start()
        for _ in range(args.count):
            await client.publish(topic, payload)
        await client.publish(topic, payload, qos=QoS.AT_LEAST_ONCE)
        watch.stop()
    watch.fill(result, args.count)
    return result


async def idle_connections(args: BenchArgs) -> Result:
    """W7: RSS growth per idle connected client, after one warm-up client
    (which takes the one-time costs), clients connected one after another."""
    result = Result(CLIENT, args.workload, args.connections, _version(), MODE)
    clients = [_client(args, "warmup")]
    await clients[0].connect()
    before = rss_kib()
    for index in range(args.connections):
        client = _client(args, f"idle{index}")
        await client.connect()
        clients.append(client)
    await asyncio.sleep(IDLE_SETTLE_S)
    after = rss_kib()
    idle_result(result, before, after, args.connections)
    for client in clients:
        await client.disconnect()
    return result


async def run(args: BenchArgs) -> Result:
    """Runs the workload named by ``args``."""
    match args.workload:
        case "W1":
            return await fan_through_broker(args, QoS.AT_MOST_ONCE, pipelined=False)
        case "W2":
            return await sequential(args, QoS.AT_LEAST_ONCE)
        case "W3":
            return await fan_through_broker(args, QoS.AT_LEAST_ONCE, pipelined=True)
        case "W4":
            return await sequential(args, QoS.EXACTLY_ONCE)
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
