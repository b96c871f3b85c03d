"""Smoke tests of the native module ``zmqtt._zmqtt`` against a real mosquitto:
the seed page's flow on both protocol versions and every QoS, manual
acknowledgement, a refused connection, TLS, and the stub checked by stubtest.

The thorough suite is tests/python/integration; these only show that the
native module is built, importable and wired to the Python layer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Literal

import pytest
from testbroker import TestBroker
from zmqtt import (
    MQTTConnectError,
    MQTTDisconnectedError,
    MQTTInvalidTopicError,
    PublishProperties,
    QoS,
    ReconnectConfig,
    create_client,
)
from zmqtt._zmqtt import Message

ROOT = Path(__file__).resolve().parents[3]
VERSIONS: tuple[Literal["3.1.1"], Literal["5.0"]] = ("3.1.1", "5.0")
NO_RECONNECT = ReconnectConfig(enabled=False)
#: Bound on every awaited step, so that a broken build fails instead of hanging.
STEP = 10.0


def unique_topic(prefix: str) -> str:
    return f"smoke/{prefix}/{uuid.uuid4().hex}"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", list(QoS))
async def test_seed_flow_round_trip(
    broker: TestBroker, version: Literal["3.1.1", "5.0"], qos: QoS
) -> None:
    topic = unique_topic("seed")
    client = create_client(
        broker.host, broker.port, version=version, reconnect=NO_RECONNECT
    )
    async with client:
        assert client.connection_info.connection_id == 1
        async with client.subscribe(topic, qos=qos) as sub:
            await client.publish(topic, b"hello", qos=qos)
            message = await asyncio.wait_for(sub.get_message(), STEP)
    assert isinstance(message, Message)
    assert message.topic == topic
    assert message.payload == b"hello"
    assert message.qos is qos
    assert message.retain is False
    if version == "5.0":
        assert message.properties == PublishProperties()
    else:
        assert message.properties is None
    # Disconnected: the information is gone and publishing fails clearly.
    with pytest.raises(MQTTDisconnectedError):
        client.connection_info  # noqa: B018 - the property raises
    with pytest.raises(MQTTDisconnectedError):
        await client.publish(topic, b"late")


@pytest.mark.parametrize("version", VERSIONS)
async def test_manual_ack_releases_the_next_message(
    one_in_flight_broker: TestBroker, version: Literal["3.1.1", "5.0"]
) -> None:
    broker = one_in_flight_broker
    topic = unique_topic("manual-ack")
    async with create_client(
        broker.host, broker.port, version=version, reconnect=NO_RECONNECT
    ) as client:
        sub = client.subscribe(topic, qos=QoS.AT_LEAST_ONCE, auto_ack=False)
        async with sub:
            await client.publish(topic, b"first", qos=QoS.AT_LEAST_ONCE)
            await client.publish(topic, b"second", qos=QoS.AT_LEAST_ONCE)
            first = await asyncio.wait_for(sub.get_message(), STEP)
            assert first.payload == b"first"
            # The broker sends one message at a time to this client: the second
            # waits for the PUBACK of the first, which ack() sends.
            waiting = asyncio.ensure_future(sub.get_message())
            done, _ = await asyncio.wait({waiting}, timeout=0.3)
            assert not done, "a message arrived before the first was acknowledged"
            acknowledging = first.ack()
            assert asyncio.iscoroutine(acknowledging)
            await acknowledging
            await first.ack()  # idempotent
            second = await asyncio.wait_for(waiting, STEP)
            assert second.payload == b"second"
            await asyncio.create_task(second.ack())


@pytest.mark.parametrize(
    ("version", "return_code"),
    # What mosquitto answers a wrong password: "not authorized" (3.1.1 return
    # code 5, 5.0 reason code 0x87), not "bad user name or password".
    [("3.1.1", 5), ("5.0", 0x87)],
)
async def test_wrong_password_is_refused_and_not_retried(
    broker: TestBroker, version: Literal["3.1.1", "5.0"], return_code: int
) -> None:
    client = create_client(
        broker.host,
        broker.password_port,
        version=version,
        username=broker.username,
        password="wrong",
        # Enabled: a refusal must still fail at once (never retried).
        reconnect=ReconnectConfig(initial_delay=5.0),
    )
    with pytest.raises(MQTTConnectError) as refused:
        await asyncio.wait_for(client.connect(), STEP)
    assert refused.value.return_code == return_code
    assert ("5.0" == version) == (refused.value.properties is not None)

    good = create_client(
        broker.host,
        broker.password_port,
        version=version,
        username=broker.username,
        password=broker.password,
        reconnect=NO_RECONNECT,
    )
    async with good:
        assert good.connection_info.return_code == 0


@pytest.mark.parametrize("version", VERSIONS)
async def test_tls_with_an_ssl_context(
    broker: TestBroker, version: Literal["3.1.1", "5.0"]
) -> None:
    context = ssl.create_default_context(cafile=broker.ca_file)
    topic = unique_topic("tls")
    client = create_client(
        "localhost",
        broker.tls_port,
        tls=context,
        version=version,
        reconnect=NO_RECONNECT,
    )
    async with client, client.subscribe(topic, qos=QoS.AT_LEAST_ONCE) as sub:
        await client.publish(topic, "über TLS", qos=QoS.AT_LEAST_ONCE)
        message = await asyncio.wait_for(sub.get_message(), STEP)
    assert message.payload == "über TLS".encode()


async def test_tls_without_the_ca_fails_verification(broker: TestBroker) -> None:
    client = create_client(
        "localhost", broker.tls_port, tls=True, reconnect=NO_RECONNECT
    )
    with pytest.raises(ssl.SSLCertVerificationError, match="unknown issuer"):
        await asyncio.wait_for(client.connect(), STEP)


async def test_invalid_topic_raises_before_any_io(broker: TestBroker) -> None:
    async with create_client(
        broker.host, broker.port, reconnect=NO_RECONNECT
    ) as client:
        with pytest.raises(
            MQTTInvalidTopicError,
            match=r"Wildcards not allowed in publish topic: 'a/\+'",
        ):
            await client.publish("a/+", b"x")
        with pytest.raises(MQTTInvalidTopicError):
            client.subscribe("a/#/b")


async def test_lifecycle_logs_reach_the_zmqtt_client_logger(
    broker: TestBroker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="zmqtt.client")
    async with create_client(broker.host, broker.port, reconnect=NO_RECONNECT):
        pass
    messages = [
        record.getMessage()
        for record in caplog.records
        if record.name == "zmqtt.client"
    ]
    assert any(message.startswith("connected") for message in messages), messages
    assert any(message.startswith("disconnected") for message in messages), messages


def test_stub_matches_the_native_module() -> None:
    environment = dict(os.environ, MYPYPATH=str(ROOT / "python"))
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "zmqtt._zmqtt"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
