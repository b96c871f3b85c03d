"""SPEC 1.9: MQTT 5.0 extras -- publish properties and user properties round
trip, request/response (concurrent requests, late and unmatched replies,
cancellation, timeout, duplicate pairs, disconnect), ``auth()``, the CONNECT
options and session expiry."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

import pytest
from zmqtt import (
    Message,
    MQTTClient,
    MQTTDisconnectedError,
    MQTTInvalidTopicError,
    PublishProperties,
    QoS,
)

from integration.conftest import Clients
from integration.helpers import (
    Broker,
    bounded,
    log_offset,
    log_since,
    next_message,
    unique_id,
    unique_topic,
    wait_until,
)

V5: Final = "5.0"


async def test_publish_properties_round_trip(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic, version=V5)
    client = await clients.connected(broker, V5)
    sent = PublishProperties(
        payload_format_indicator=1,
        message_expiry_interval=3600,
        response_topic=f"{topic}/reply",
        correlation_data=b"\x00\xffcorrelation",
        content_type="application/json; charset=utf-8",
        user_properties=(
            ("key", "v1"),
            ("other", "x"),
            ("key", "v2"),
            ("\u00e9t\u00e9", "\u2713"),
        ),
    )
    await bounded(
        client.publish(topic, b'{"a": 1}', qos=QoS.AT_LEAST_ONCE, properties=sent)
    )
    received = (await next_message(sub)).properties
    assert received is not None
    assert received.payload_format_indicator == 1
    assert received.message_expiry_interval is not None
    assert 3590 <= received.message_expiry_interval <= 3600
    assert received.response_topic == f"{topic}/reply"
    assert received.correlation_data == b"\x00\xffcorrelation"
    assert received.content_type == "application/json; charset=utf-8"
    # Unaltered and in order, names repeated (MQTT-3.3.2-17, MQTT-3.3.2-18).
    assert received.user_properties == sent.user_properties
    assert received.topic_alias is None


async def test_message_without_properties_has_empty_properties(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic, version=V5)
    client = await clients.connected(broker, V5)
    await bounded(client.publish(topic, b"plain", qos=QoS.AT_LEAST_ONCE))
    properties = (await next_message(sub)).properties
    assert properties == PublishProperties()


async def test_outgoing_topic_alias(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic, version=V5)
    client = await clients.connected(broker, V5)
    for payload in (b"first", b"second"):
        await bounded(
            client.publish(
                topic,
                payload,
                qos=QoS.AT_LEAST_ONCE,
                properties=PublishProperties(topic_alias=1),
            )
        )
    for payload in (b"first", b"second"):
        message = await next_message(sub)
        assert (message.topic, message.payload) == (topic, payload)
    assert client.connection_info.connection_id == 1


async def test_subscription_identifier_cannot_be_sent(
    broker: Broker, clients: Clients
) -> None:
    client = await clients.connected(broker, V5)
    with pytest.raises(ValueError, match="subscription_identifier"):
        await client.publish(
            "t", b"x", properties=PublishProperties(subscription_identifier=1)
        )


async def test_connect_options_are_accepted_by_the_broker(
    broker: Broker, clients: Clients
) -> None:
    client = await clients.connected(
        broker,
        V5,
        receive_maximum=100,
        maximum_packet_size=1_000_000,
        user_properties=[("app", "tests"), ("app", "again")],
        request_response_information=True,
        request_problem_information=False,
        session_expiry_interval=0xFFFFFFFF,
    )
    assert client.connection_info.return_code == 0
    assert client.connection_info.effective_session_expiry_interval == 0xFFFFFFFF


async def test_session_expiry_zero_ends_the_session_at_disconnect(
    broker: Broker,
) -> None:
    client_id = unique_id()

    def persistent(expiry: int) -> MQTTClient:
        return MQTTClient(
            broker.host,
            broker.port,
            client_id=client_id,
            clean_session=False,
            session_expiry_interval=expiry,
            version=V5,
        )

    for expiry, present_next_time in ((0, False), (600, True)):
        async with persistent(expiry):
            pass
        async with persistent(600) as again:
            assert again.connection_info.session_present is present_next_time
        async with MQTTClient(
            broker.host, broker.port, client_id=client_id, version=V5
        ):
            pass  # clean start: forget the session


async def test_maximum_packet_size_of_the_client_is_honoured(
    broker: Broker, clients: Clients, topic: str
) -> None:
    # The broker must not send us a packet above our Maximum Packet Size; it
    # drops such messages for us (MQTT-3.1.2-25).
    sub = await clients.subscribed(broker, topic, version=V5, maximum_packet_size=256)
    publisher = await clients.connected(broker, V5)
    await bounded(publisher.publish(topic, b"x" * 1000, qos=QoS.AT_LEAST_ONCE))
    await bounded(publisher.publish(topic, b"small", qos=QoS.AT_LEAST_ONCE))
    assert (await next_message(sub)).payload == b"small"


# --------------------------------------------------------------------------- request / response


async def _reply(
    responder: MQTTClient, request: Message, prefix: bytes = b"re:"
) -> None:
    properties = request.properties
    assert properties is not None and properties.response_topic is not None
    await responder.publish(
        properties.response_topic,
        prefix + request.payload,
        qos=QoS.AT_LEAST_ONCE,
        properties=PublishProperties(correlation_data=properties.correlation_data),
    )


@contextlib.asynccontextmanager
async def responding(
    responder: MQTTClient, request_topic: str, *, batch: int = 1, answer: bool = True
) -> AsyncIterator[list[Message]]:
    """Answers requests on ``request_topic``; the yielded list holds every request
    seen. With ``batch`` > 1 it waits for that many and answers them in reverse
    order; with ``answer=False`` it answers none."""
    sub = responder.subscribe(request_topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(sub.start())
    seen: list[Message] = []

    async def serve() -> None:
        pending: list[Message] = []
        async for request in sub:
            seen.append(request)
            if not answer:
                continue
            pending.append(request)
            if len(pending) >= batch:
                for each in reversed(pending):
                    await _reply(responder, each)
                pending.clear()

    task = asyncio.create_task(serve())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sub.stop()


async def test_request_returns_the_reply(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker, V5)
    responder = await clients.connected(broker, V5)
    async with responding(responder, topic) as seen:
        reply = await bounded(
            client.request(topic, b"question", qos=QoS.AT_LEAST_ONCE, timeout=5)
        )
    assert reply.payload == b"re:question"
    assert len(seen) == 1
    request = seen[0].properties
    assert request is not None
    assert request.response_topic
    assert "+" not in request.response_topic and "#" not in request.response_topic
    # 16 random bytes of correlation data unless given.
    assert request.correlation_data is not None and len(request.correlation_data) == 16
    assert reply.properties is not None
    assert reply.properties.correlation_data == request.correlation_data
    assert reply.topic == request.response_topic


async def test_request_with_str_payload_and_qos0(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker, V5)
    responder = await clients.connected(broker, V5)
    async with responding(responder, topic):
        reply = await bounded(client.request(topic, "h\u00e9", timeout=5))
    assert reply.payload == "re:h\u00e9".encode()


async def test_request_uses_given_response_topic_and_correlation_data(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker, V5)
    responder = await clients.connected(broker, V5)
    response_topic = unique_topic("replies")
    async with responding(responder, topic) as seen:
        reply = await bounded(
            client.request(
                topic,
                b"q",
                timeout=5,
                properties=PublishProperties(
                    response_topic=response_topic,
                    correlation_data=b"given",
                    content_type="text/plain",
                    user_properties=(("k", "v"),),
                ),
            )
        )
    assert reply.payload == b"re:q"
    assert reply.topic == response_topic
    request = seen[0].properties
    assert request is not None
    assert request.response_topic == response_topic
    assert request.correlation_data == b"given"
    assert request.content_type == "text/plain"
    assert request.user_properties == (("k", "v"),)


async def test_concurrent_requests_get_their_own_replies(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker, V5)
    responder = await clients.connected(broker, V5)
    count = 10
    # Answered in reverse order, all at once.
    async with responding(responder, topic, batch=count):
        replies = await bounded(
            asyncio.gather(
                *(
                    client.request(topic, b"%d" % i, qos=QoS.AT_LEAST_ONCE, timeout=5)
                    for i in range(count)
                )
            )
        )
    assert [reply.payload for reply in replies] == [b"re:%d" % i for i in range(count)]


async def test_request_timeout(broker: Broker, clients: Clients, topic: str) -> None:
    client = await clients.connected(broker, V5)
    responder = await clients.connected(broker, V5)
    async with responding(responder, topic, answer=False) as seen:
        with pytest.raises(asyncio.TimeoutError):
            await bounded(client.request(topic, b"unanswered", timeout=0.3), 5)
    assert len(seen) == 1


async def test_late_and_unmatched_replies_fall_through(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker, V5)
    other = await clients.connected(broker, V5)
    response_topic = unique_topic("replies")
    fallthrough = client.subscribe(response_topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(fallthrough.start())

    async def reply(correlation: bytes, payload: bytes) -> None:
        await bounded(
            other.publish(
                response_topic,
                payload,
                qos=QoS.AT_LEAST_ONCE,
                properties=PublishProperties(correlation_data=correlation),
            )
        )

    def properties(correlation: bytes) -> PublishProperties:
        return PublishProperties(
            response_topic=response_topic, correlation_data=correlation
        )

    async with responding(other, topic, answer=False) as seen:
        pending = asyncio.create_task(
            client.request(topic, b"q", timeout=5, properties=properties(b"mine"))
        )
        await wait_until(lambda: len(seen) == 1, "the request")
        # A reply for someone else goes to normal routing ...
        await reply(b"someone else", b"unmatched")
        assert (await next_message(fallthrough)).payload == b"unmatched"
        # ... the matching one to the request only ...
        await reply(b"mine", b"matched")
        assert (await bounded(pending)).payload == b"matched"
        # ... and once the request is over, a late reply falls through too.
        await reply(b"mine", b"late")
        assert (await next_message(fallthrough)).payload == b"late"

        with pytest.raises(asyncio.TimeoutError):
            await bounded(
                client.request(topic, b"q", timeout=0.2, properties=properties(b"t/o"))
            )
        await reply(b"t/o", b"after timeout")
        assert (await next_message(fallthrough)).payload == b"after timeout"


async def test_same_pair_pending_is_refused(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker, V5)
    responder = await clients.connected(broker, V5)
    properties = PublishProperties(
        response_topic=unique_topic("replies"), correlation_data=b"pair"
    )
    async with responding(responder, topic, answer=False) as seen:
        first = asyncio.create_task(
            client.request(topic, b"1", timeout=5, properties=properties)
        )
        await wait_until(lambda: len(seen) == 1, "the first request")
        with pytest.raises(ValueError):
            await bounded(client.request(topic, b"2", timeout=5, properties=properties))
        # Another correlation on the same response topic is fine meanwhile.
        second = asyncio.create_task(
            client.request(
                topic,
                b"3",
                timeout=5,
                properties=PublishProperties(
                    response_topic=properties.response_topic, correlation_data=b"other"
                ),
            )
        )
        await wait_until(lambda: len(seen) == 2, "the second request")
        for request in seen:
            await _reply(responder, request)
        assert (await bounded(first)).payload == b"re:1"
        assert (await bounded(second)).payload == b"re:3"
    # Over: the pair may be used again.
    async with responding(responder, topic):
        reply = await bounded(
            client.request(topic, b"4", timeout=5, properties=properties)
        )
    assert reply.payload == b"re:4"


async def test_cancelled_request_is_cleaned_up(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker, V5, max_pending_requests=1)
    responder = await clients.connected(broker, V5)
    response_topic = unique_topic("replies")
    properties = PublishProperties(response_topic=response_topic, correlation_data=b"c")
    fallthrough = client.subscribe(response_topic, qos=QoS.AT_LEAST_ONCE)
    await bounded(fallthrough.start())
    async with responding(responder, topic, answer=False) as seen:
        task = asyncio.create_task(
            client.request(topic, b"1", timeout=30, properties=properties)
        )
        await wait_until(lambda: len(seen) == 1, "the request")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Its reply now falls through to normal routing.
        await _reply(responder, seen[0])
        assert (await next_message(fallthrough)).payload == b"re:1"
    # The pair and the only request slot are free again.
    async with responding(responder, topic):
        reply = await bounded(
            client.request(topic, b"2", timeout=5, properties=properties)
        )
    assert reply.payload == b"re:2"


async def test_max_pending_requests_makes_further_calls_wait(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = await clients.connected(broker, V5, max_pending_requests=1)
    responder = await clients.connected(broker, V5)
    async with responding(responder, topic, answer=False) as seen:
        first = asyncio.create_task(client.request(topic, b"1", timeout=10))
        second = asyncio.create_task(client.request(topic, b"2", timeout=10))
        await wait_until(lambda: len(seen) >= 1, "the first request")
        # Only one is out while the first is pending.
        done, _ = await asyncio.wait({second}, timeout=0.3)
        assert not done and len(seen) == 1
        await _reply(responder, seen[0])
        await wait_until(lambda: len(seen) == 2, "the second request")
        await _reply(responder, seen[1])
        replies = await bounded(asyncio.gather(first, second))
    assert sorted(reply.payload for reply in replies) == [b"re:1", b"re:2"]


async def test_disconnect_ends_pending_requests(
    broker: Broker, clients: Clients, topic: str
) -> None:
    client = MQTTClient(broker.host, broker.port, version=V5)
    await bounded(client.connect())
    responder = await clients.connected(broker, V5)
    async with responding(responder, topic, answer=False) as seen:
        pending = asyncio.create_task(client.request(topic, b"q", timeout=30))
        await wait_until(lambda: len(seen) == 1, "the request")
        await bounded(client.disconnect())
        with pytest.raises(MQTTDisconnectedError):
            await bounded(pending)


@pytest.mark.parametrize(
    ("request_topic", "response_topic"),
    [("a/+", None), ("", None), ("ok", "replies/+"), ("ok", "replies/#"), ("ok", "")],
)
async def test_request_invalid_topics(
    broker: Broker, clients: Clients, request_topic: str, response_topic: str | None
) -> None:
    client = await clients.connected(broker, V5)
    with pytest.raises(MQTTInvalidTopicError):
        await bounded(
            client.request(
                request_topic,
                b"q",
                timeout=1,
                properties=PublishProperties(response_topic=response_topic),
            )
        )
    assert await bounded(client.ping()) >= 0


@pytest.mark.parametrize("timeout", [0, -1])
async def test_request_timeout_must_be_positive(
    broker: Broker, clients: Clients, timeout: float
) -> None:
    client = await clients.connected(broker, V5)
    with pytest.raises(ValueError, match="timeout"):
        await client.request("t", b"q", timeout=timeout)


# --------------------------------------------------------------------------- auth


async def test_auth_without_an_authentication_method_is_refused_locally(
    broker: Broker, clients: Clients
) -> None:
    # An AUTH packet on a connection whose CONNECT had no Authentication Method
    # is a Protocol Error (MQTT 5.0 section 4.12). The API has no way to put one
    # in the CONNECT, so auth() is refused before sending, and the connection
    # is untouched (mosquitto would have dropped it).
    client_id = unique_id()
    client = await clients.connected(broker, V5, client_id=client_id)
    offset = log_offset(broker)
    with pytest.raises(ValueError, match="authentication method"):
        await bounded(client.auth("SCRAM-SHA-256", b"client-first"))
    assert await bounded(client.ping()) >= 0
    assert client.connection_info.connection_id == 1
    assert f"Client {client_id} disconnected" not in log_since(broker, offset)


async def test_auth_arguments(broker: Broker, clients: Clients) -> None:
    client = await clients.connected(broker, V5)
    with pytest.raises(TypeError):
        await client.auth(b"method", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await client.auth("method", "data")  # type: ignore[arg-type]
    assert client.connection_info.connection_id == 1


async def test_auth_when_not_connected() -> None:
    client = MQTTClient("localhost", version=V5)
    with pytest.raises(MQTTDisconnectedError):
        await bounded(client.auth("method"))
