"""The benchmark workloads in gmqtt's idiom: callbacks (`on_message`,
`on_subscribe`) and a synchronous `publish()` that writes to the transport.

gmqtt has no public way to await a PUBACK/PUBCOMP: its client only drops the
stored packet when the ack arrives (`_remove_message_from_queue`). W2-W4
therefore use a subclass that also signals there; nothing else is changed.
MQTT 3.1.1 is requested explicitly (gmqtt's default is 5.0) so that every
Python contender speaks the same protocol. Usage: see benchcommon.parse_args.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import sys
import time
from collections.abc import Callable

import gmqtt  # type: ignore[import-not-found, unused-ignore]
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
from gmqtt.mqtt.constants import MQTTv311  # type: ignore[import-not-found, unused-ignore]

CLIENT = "gmqtt"
MODE = "mqtt-3.1.1"


def _version() -> str:
    return importlib.metadata.version("gmqtt")


class AckSignallingClient(gmqtt.Client):  # type: ignore[misc, unused-ignore]
    """A gmqtt client that calls `on_ack` when an outgoing QoS 1/2 publish is
    acknowledged (PUBACK or PUBCOMP)."""

    def __init__(self, client_id: str) -> None:
        super().__init__(client_id)
        self.on_ack: Callable[[], None] = lambda: None

    def _remove_message_from_queue(self, mid: int) -> None:
        super()._remove_message_from_queue(mid)
        self.on_ack()


async def _connect(args: BenchArgs, role: str) -> AckSignallingClient:
    client = AckSignallingClient(args.client_id(role))
    await client.connect(args.host, args.port, version=MQTTv311)
    return client


async def _subscribe(
    client: AckSignallingClient, topic: str, qos: int, on_message: Callable[[], None]
) -> None:
    """Subscribes and waits for the SUBACK."""
    subscribed = asyncio.get_running_loop().create_future()

    def handle_message(*_args: object) -> int:
        on_message()
        return 0

    def handle_suback(*_args: object) -> None:
        if not subscribed.done():
            subscribed.set_result(None)

    client.on_message = handle_message
    client.on_subscribe = handle_suback
    client.subscribe(topic, qos=qos)
    await subscribed


async def fan_through_broker(args: BenchArgs, qos: int, pipelined: bool) -> Result:
    """W1 (QoS 0) and W3 (QoS 1, at most --window unacknowledged)."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    watch = Stopwatch()
    received = 0
    last_arrival = 0.0
    all_received = asyncio.Event()

    def on_message() -> None:
        nonlocal received, last_arrival
        received += 1
        if received == args.count:
            last_arrival = time.perf_counter()
            all_received.set()

    receiver = await _connect(args, "sub")
    sender = await _connect(args, "pub")
    await _subscribe(receiver, args.topic, qos, on_message)
    payload, topic = args.payload, args.topic
    watch.start()
    if pipelined:
        window = asyncio.Semaphore(args.window)
        sender.on_ack = window.release
        for _ in range(args.count):
            await window.acquire()
            sender.publish(topic, payload, qos=qos)
    else:
        for _ in range(args.count):
            sender.publish(topic, payload, qos=qos)
    try:
        await asyncio.wait_for(all_received.wait(), args.timeout)
        watch.stop_at(last_arrival)
        watch.fill(result, args.count)
    except TimeoutError:
        lost(result, args.count, received)
    await sender.disconnect()
    await receiver.disconnect()
    return result


async def sequential(args: BenchArgs, qos: int) -> Result:
    """W2 (QoS 1) and W4 (QoS 2): each publish awaited to its last ack."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    watch = Stopwatch()
    sender = await _connect(args, "pub")
    loop = asyncio.get_running_loop()
    acked: asyncio.Future[None] = loop.create_future()

    def on_ack() -> None:
        if not acked.done():
            acked.set_result(None)

    sender.on_ack = on_ack
    payload, topic = args.payload, args.topic
    watch.start()
    for _ in range(args.count):
        acked = loop.create_future()
        sender.publish(topic, payload, qos=qos)
        await acked
    watch.stop()
    watch.fill(result, args.count)
    await sender.disconnect()
    return result


async def round_trip(args: BenchArgs) -> Result:
    """W5: publish, await the message on our own subscription, repeat."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[None] = loop.create_future()

    def on_message() -> None:
        if not arrived.done():
            arrived.set_result(None)

    client = await _connect(args, "rtt")
    await _subscribe(client, args.topic, 0, on_message)
    samples: list[float] = []
    warmup = args.warmup
    payload, topic = args.payload, args.topic
    watch = Stopwatch()
    for index in range(warmup + args.count):
        if index == warmup:
            watch.start()
        arrived = loop.create_future()
        started = time.perf_counter()
        client.publish(topic, payload)
        await arrived
        if index >= warmup:
            samples.append(time.perf_counter() - started)
    watch.stop()
    await client.disconnect()
    fill_latencies(result, samples)
    result.cpu_us_per_msg = watch.cpu_s * 1e6 / args.count
    return result


async def into_sink(args: BenchArgs) -> Result:
    """W6: QoS 0 publishes into the sink, then one QoS 1 fence publish whose
    PUBACK proves that all of them arrived; timed until that PUBACK."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    watch = Stopwatch()
    client = await _connect(args, "sink")
    fence: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_ack() -> None:
        if not fence.done():
            fence.set_result(None)

    client.on_ack = on_ack
    payload, topic = args.payload, args.topic
    watch.start()
    for _ in range(args.count):
        client.publish(topic, payload)
    client.publish(topic, payload, qos=1)
    await asyncio.wait_for(fence, args.timeout)
    watch.stop()
    await client.disconnect()
    watch.fill(result, args.count)
    return result


async def idle_connections(args: BenchArgs) -> Result:
    """W7: RSS growth per idle connected client, after one warm-up client
    (which takes the one-time costs), clients connected one after another."""
    result = Result(CLIENT, args.workload, args.connections, _version(), MODE)
    clients = [await _connect(args, "warmup")]
    before = rss_kib()
    for index in range(args.connections):
        clients.append(await _connect(args, f"idle{index}"))
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
    logging.getLogger("gmqtt").setLevel(logging.ERROR)
    args = parse_args(CLIENT)
    return emit(asyncio.run(run(args)))


if __name__ == "__main__":
    sys.exit(main())
