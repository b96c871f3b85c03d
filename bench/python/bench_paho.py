"""The benchmark workloads in paho-mqtt's idiom (2.x, threaded): `loop_start()`
runs each client's network thread, callbacks count deliveries, `publish()`
returns an `MQTTMessageInfo` whose `wait_for_publish()` waits for the ack (for
QoS 0: until the packet was written). W3 uses paho's own in-flight limit
(`max_inflight_messages_set`). MQTT 3.1.1 throughout.
Usage: see benchcommon.parse_args.
"""

from __future__ import annotations

import importlib.metadata
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt  # type: ignore[import-not-found, import-untyped, unused-ignore]
from benchcommon import (
    BenchArgs,
    Result,
    Stopwatch,
    emit,
    fill_latencies,
    lost,
    not_applicable,
    parse_args,
)

CLIENT = "paho-mqtt"
MODE = "mqtt-3.1.1"

W7_NOT_APPLICABLE = (
    "paho-mqtt's network loop uses select(), which fails on descriptors >= "
    "FD_SETSIZE (1024); 1,000 clients need about 3,000 (socket + wake-up pair each)"
)


def _version() -> str:
    return importlib.metadata.version("paho-mqtt")


def _connect(args: BenchArgs, role: str, max_inflight: int | None = None) -> Any:
    """A connected client whose network thread runs (loop_start)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=args.client_id(role),
        protocol=mqtt.MQTTv311,
    )
    if max_inflight is not None:
        client.max_inflight_messages_set(max_inflight)
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.connect(args.host, args.port)
    client.loop_start()
    if not connected.wait(args.timeout):
        raise TimeoutError(f"no CONNACK within {args.timeout} s")
    return client


def _subscribe(client: Any, args: BenchArgs, qos: int) -> None:
    """Subscribes and waits for the SUBACK."""
    subscribed = threading.Event()
    client.on_subscribe = lambda *_args: subscribed.set()
    client.subscribe(args.topic, qos)
    if not subscribed.wait(args.timeout):
        raise TimeoutError(f"no SUBACK within {args.timeout} s")


def _close(client: Any) -> None:
    client.disconnect()
    client.loop_stop()


def fan_through_broker(args: BenchArgs, qos: int, pipelined: bool) -> Result:
    """W1 (QoS 0) and W3 (QoS 1, at most --window unacknowledged)."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    watch = Stopwatch()
    all_received = threading.Event()
    state = [0, 0.0]

    def on_message(*_args: object) -> None:
        state[0] += 1
        if state[0] == args.count:
            state[1] = time.perf_counter()
            all_received.set()

    receiver = _connect(args, "sub")
    receiver.on_message = on_message
    _subscribe(receiver, args, qos)
    sender = _connect(args, "pub", args.window if pipelined else None)
    payload, topic = args.payload, args.topic
    watch.start()
    info = None
    for _ in range(args.count):
        info = sender.publish(topic, payload, qos)
    if info is not None:
        info.wait_for_publish(args.timeout)
    if all_received.wait(args.timeout):
        watch.stop_at(float(state[1]))
        watch.fill(result, args.count)
    else:
        lost(result, args.count, int(state[0]))
    _close(sender)
    _close(receiver)
    return result


def sequential(args: BenchArgs, qos: int) -> Result:
    """W2 (QoS 1) and W4 (QoS 2): each publish awaited to its last ack."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    watch = Stopwatch()
    sender = _connect(args, "pub")
    payload, topic = args.payload, args.topic
    watch.start()
    for _ in range(args.count):
        sender.publish(topic, payload, qos).wait_for_publish(args.timeout)
    watch.stop()
    watch.fill(result, args.count)
    _close(sender)
    return result


def round_trip(args: BenchArgs) -> Result:
    """W5: publish, await the message on our own subscription, repeat."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    arrived = threading.Event()
    client = _connect(args, "rtt")
    client.on_message = lambda *_args: arrived.set()
    _subscribe(client, args, 0)
    samples: list[float] = []
    warmup = args.warmup
    payload, topic = args.payload, args.topic
    watch = Stopwatch()
    for index in range(warmup + args.count):
        if index == warmup:
            watch.start()
        arrived.clear()
        started = time.perf_counter()
        client.publish(topic, payload)
        if not arrived.wait(args.timeout):
            raise TimeoutError(f"round trip {index} took over {args.timeout} s")
        if index >= warmup:
            samples.append(time.perf_counter() - started)
    watch.stop()
    _close(client)
    fill_latencies(result, samples)
    result.cpu_us_per_msg = watch.cpu_s * 1e6 / args.count
    return result


def into_sink(args: BenchArgs) -> Result:
    """W6: QoS 0 publishes into the sink, then one QoS 1 fence publish whose
    PUBACK proves that all of them arrived; timed until that PUBACK."""
    result = Result(CLIENT, args.workload, args.count, _version(), MODE)
    watch = Stopwatch()
    client = _connect(args, "sink")
    payload, topic = args.payload, args.topic
    watch.start()
    for _ in range(args.count):
        client.publish(topic, payload)
    client.publish(topic, payload, 1).wait_for_publish(args.timeout)
    watch.stop()
    _close(client)
    watch.fill(result, args.count)
    return result


def main() -> int:
    """Entry point: one measurement, one JSON line."""
    args = parse_args(CLIENT)
    match args.workload:
        case "W1":
            result = fan_through_broker(args, 0, pipelined=False)
        case "W2":
            result = sequential(args, 1)
        case "W3":
            result = fan_through_broker(args, 1, pipelined=True)
        case "W4":
            result = sequential(args, 2)
        case "W5":
            result = round_trip(args)
        case "W6":
            result = into_sink(args)
        case _:
            return not_applicable(CLIENT, args, _version(), MODE, W7_NOT_APPLICABLE)
    return emit(result)


if __name__ == "__main__":
    sys.exit(main())
