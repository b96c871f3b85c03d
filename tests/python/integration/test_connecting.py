"""SPEC 1.1 and the seed page (seed/connecting.txt): every example of the page
run against a private mosquitto, the parameters and their defaults, validation
at construction, TLS and refused credentials."""

from __future__ import annotations

import inspect
import ssl
from typing import Any

import pytest
from zmqtt import (
    ConnAckProperties,
    MQTTClient,
    MQTTClientV5,
    MQTTConnectError,
    MQTTDisconnectedError,
    MQTTInvalidTopicError,
    PublishProperties,
    QoS,
    ReconnectConfig,
    TLSConfig,
    Will,
    WillProperties,
    create_client,
)

from integration.conftest import Clients
from integration.helpers import (
    NO_RECONNECT,
    VERSIONS,
    Broker,
    Version,
    bounded,
    log_offset,
    next_message,
    unique_id,
    wait_for_log,
)

# What mosquitto 2.0.11 answers to a wrong password or to missing credentials on
# a listener with a password file (checked on the wire): 3.1.1 return code 5
# "not authorized" and 5.0 reason code 0x87 "Not authorized" -- not 4 / 0x86
# ("bad user name or password"), which it does not use.
REFUSED_CREDENTIALS_CODE: dict[Version, int] = {"3.1.1": 5, "5.0": 0x87}

# mosquitto's log names the protocol of a connection: p2 = 3.1.1, p5 = 5.0.
PROTOCOL_IN_LOG: dict[Version, str] = {"3.1.1": "p2", "5.0": "p5"}


# --------------------------------------------------------------------------- the seed's examples


async def test_seed_create_client_example_sends_every_parameter(
    broker: Broker, clients: Clients
) -> None:
    # The page's first example; host/port point at the test broker (its plain
    # listener accepts any user name) and the id is made unique.
    app_id = unique_id("my-app")
    client = create_client(
        host=broker.host,
        port=broker.port,
        client_id=app_id,
        keepalive=60,
        clean_session=True,
        username="user",
        password="secret",
    )
    clients.track(client)
    offset = log_offset(broker)
    await bounded(client.connect())
    # mosquitto logs what the CONNECT carried: protocol, clean session, keepalive, user.
    await wait_for_log(broker, f"as {app_id} (p2, c1, k60, u'user')", offset)
    assert client.connection_info.effective_client_id == app_id
    assert client.connection_info.effective_keepalive == 60
    await client.disconnect()


async def test_seed_credentials_accepted_by_password_listener(
    broker: Broker, clients: Clients, version: Version
) -> None:
    client = create_client(
        broker.host,
        broker.password_port,
        client_id=unique_id(),
        username=broker.username,
        password=broker.password,
        version=version,
    )
    clients.track(client)
    await bounded(client.connect())
    assert client.connection_info.return_code == 0


async def test_seed_version_selection_example(broker: Broker, clients: Clients) -> None:
    offset = log_offset(broker)
    client_v311 = create_client("localhost", broker.port, version="3.1.1")
    client_v5 = create_client("localhost", broker.port, version="5.0")
    assert isinstance(client_v311, MQTTClient)
    assert isinstance(client_v5, MQTTClient)
    clients.track(client_v311)
    clients.track(client_v5)
    await bounded(client_v311.connect())
    await bounded(client_v5.connect())
    assert client_v311.connection_info.properties is None
    assert isinstance(client_v5.connection_info.properties, ConnAckProperties)
    log = await wait_for_log(broker, ["(p2, c1, k60)", "(p5, c1, k60)"], offset)
    assert log.count("New client connected") == 2


async def test_seed_tls_true_refuses_the_self_signed_broker(broker: Broker) -> None:
    # tls=True verifies against the system CA bundle, which does not hold the
    # test CA: the handshake fails (and a verification failure is not retried).
    with pytest.raises(ssl.SSLCertVerificationError):
        async with create_client("localhost", port=broker.tls_port, tls=True) as client:
            del client
            pytest.fail("connected to a broker whose certificate is not trusted")


async def test_seed_tls_custom_ca_example(
    broker: Broker, clients: Clients, topic: str
) -> None:
    ctx = ssl.create_default_context(cafile=str(broker.ca_file))
    sub = await clients.subscribed(broker, topic)
    async with create_client("localhost", port=broker.tls_port, tls=ctx) as client:
        await client.publish(topic, "over tls", qos=QoS.AT_LEAST_ONCE)
        assert client.connection_info.return_code == 0
    message = await next_message(sub)
    assert message.payload == b"over tls"


async def test_seed_context_manager_example(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic)
    client = create_client("localhost", broker.port)
    async with client:
        # Connected -- protocol handshake complete when the body starts.
        assert client.connection_info.connection_id == 1
        await client.publish(topic, "hello")
    # Disconnected -- DISCONNECT sent, socket closed.
    with pytest.raises(MQTTDisconnectedError):
        client.connection_info  # noqa: B018
    assert (await next_message(sub)).payload == b"hello"


async def test_seed_manual_lifecycle_example(
    broker: Broker, clients: Clients, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic)
    client = create_client("localhost", broker.port)
    await bounded(client.connect())

    await client.publish(topic, "hello")

    await client.disconnect()
    assert (await next_message(sub)).payload == b"hello"
    # "disconnect() is safe to call even if the connection has already been lost"
    await client.disconnect()


async def send_with_expiry(client: MQTTClientV5) -> None:
    """The seed's typed example, verbatim."""
    props = PublishProperties(message_expiry_interval=60)
    await client.publish("data", b"payload", properties=props)


async def test_seed_send_with_expiry_example(broker: Broker, clients: Clients) -> None:
    # "data" is the seed's topic; no other test of this module's broker uses it.
    sub = await clients.subscribed(broker, "data", version="5.0")
    async with create_client(broker.host, broker.port, version="5.0") as client:
        await send_with_expiry(client)
    message = await next_message(sub)
    assert message.payload == b"payload"
    assert message.properties is not None
    expiry = message.properties.message_expiry_interval
    assert expiry is not None and 0 < expiry <= 60


# --------------------------------------------------------------------------- parameters


SEED_DEFAULTS: dict[str, Any] = {
    "port": 1883,
    "client_id": "",
    "keepalive": 60,
    "clean_session": True,
    "username": None,
    "password": None,
    "tls": False,
    "session_expiry_interval": 0,
    "version": "3.1.1",
}


@pytest.mark.parametrize(
    "factory", [create_client, MQTTClient], ids=["create_client", "MQTTClient"]
)
def test_parameters_are_keyword_only_except_host_and_port(factory: Any) -> None:
    parameters = inspect.signature(factory).parameters
    assert list(parameters)[:2] == ["host", "port"]
    assert parameters["host"].default is inspect.Parameter.empty
    for name, parameter in parameters.items():
        expected_kind = (
            inspect.Parameter.POSITIONAL_OR_KEYWORD
            if name in ("host", "port")
            else inspect.Parameter.KEYWORD_ONLY
        )
        assert parameter.kind is expected_kind, name
    for name, default in SEED_DEFAULTS.items():
        assert parameters[name].default == default, name
    with pytest.raises(TypeError):
        factory("localhost", 1883, "client-id")


def test_defaults_reach_the_options() -> None:
    options = MQTTClient("localhost").options
    assert options.client_id == ""
    assert options.keepalive == 60
    assert options.clean_session is True
    assert options.username is None
    assert options.password is None
    assert options.tls is None
    assert options.reconnect == ReconnectConfig()
    assert options.mqtt_connect_timeout == 30.0
    assert options.session_expiry_interval == 0
    assert options.stripped_prefixes == ("$queue", "$exclusive")
    assert options.max_pending_requests == 1000
    assert options.session_replay_buffer_size == 1000
    assert options.session_replay_timeout == 30.0
    assert options.version == "3.1.1"


async def test_defaults_on_the_wire(
    broker: Broker, clients: Clients, version: Version
) -> None:
    offset = log_offset(broker)
    client = clients.track(MQTTClient(broker.host, broker.port, version=version))
    await bounded(client.connect())
    info = client.connection_info
    # Defaults: clean session, keepalive 60, no user name.
    await wait_for_log(broker, f"({PROTOCOL_IN_LOG[version]}, c1, k60).", offset)
    assert info.effective_keepalive == 60
    if version == "5.0":
        # An empty client id: the broker assigns one and says which (5.0 only).
        assert info.properties is not None
        assigned = info.properties.assigned_client_identifier
        assert assigned
        assert info.effective_client_id == assigned
    else:
        assert info.effective_client_id == ""


async def test_password_as_bytes_is_accepted(broker: Broker, clients: Clients) -> None:
    client = await clients.connected(
        broker,
        port=broker.password_port,
        username=broker.username,
        password=broker.password.encode(),
    )
    assert client.connection_info.return_code == 0


def test_construction_does_no_io() -> None:
    # Nothing listens on port 9 of 192.0.2.1 (TEST-NET-1): building clients,
    # even with TLS, does not touch the network.
    for version in VERSIONS:
        client = MQTTClient("192.0.2.1", 9, version=version, tls=True)
        with pytest.raises(MQTTDisconnectedError):
            client.connection_info  # noqa: B018


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"version": "4.0"}, ValueError, "version"),
        ({"version": "3.1"}, ValueError, "version"),
        (
            {"mqtt_connect_timeout": 0},
            ValueError,
            "mqtt_connect_timeout must be positive",
        ),
        (
            {"mqtt_connect_timeout": -1.0},
            ValueError,
            "mqtt_connect_timeout must be positive",
        ),
        (
            {"max_pending_requests": 0},
            ValueError,
            "max_pending_requests must be positive",
        ),
        ({"transport_factory": object()}, TypeError, "transport_factory"),
        ({"keepalive": -1}, ValueError, "keepalive"),
        ({"keepalive": 65536}, ValueError, "keepalive"),
        ({"port": 0}, ValueError, "port"),
        ({"port": 65536}, ValueError, "port"),
        ({"session_expiry_interval": -1}, ValueError, "session_expiry_interval"),
        ({"session_expiry_interval": 2**32}, ValueError, "session_expiry_interval"),
        ({"client_id": "", "clean_session": False}, ValueError, "clean_session"),
        ({"password": "secret"}, ValueError, "username"),
        ({"tls": "yes"}, TypeError, "tls"),
        ({"reconnect": {"enabled": False}}, TypeError, "reconnect"),
        ({"session_replay_buffer_size": -1}, ValueError, "session_replay_buffer_size"),
        ({"session_replay_timeout": 0}, ValueError, "session_replay_timeout"),
        ({"version": "5.0", "receive_maximum": 0}, ValueError, "receive_maximum"),
        (
            {"version": "5.0", "maximum_packet_size": 0},
            ValueError,
            "maximum_packet_size",
        ),
        ({"version": "5.0", "user_properties": [("a",)]}, TypeError, "user_properties"),
    ],
)
def test_invalid_arguments_are_refused_at_construction(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    arguments: dict[str, Any] = {"port": 1883, **options}
    with pytest.raises(error, match=message):
        MQTTClient("localhost", **arguments)
    with pytest.raises(error, match=message):
        create_client("localhost", **arguments)


@pytest.mark.parametrize("will_topic", ["a/#", "a/+/b", "", "a\x00b"])
def test_invalid_will_topic_is_refused_at_construction(will_topic: str) -> None:
    with pytest.raises(MQTTInvalidTopicError):
        MQTTClient("localhost", will=Will(will_topic, b"gone"))


def test_five_only_options_are_refused_on_311_at_construction() -> None:
    with pytest.raises(RuntimeError, match="will properties require MQTT 5.0"):
        MQTTClient(
            "localhost",
            will=Will("t", b"x", properties=WillProperties(content_type="a")),
        )
    for option, value in (
        ("receive_maximum", 10),
        ("maximum_packet_size", 1000),
        ("user_properties", [("k", "v")]),
        ("request_response_information", True),
        ("request_problem_information", False),
    ):
        options: dict[str, Any] = {option: value}
        with pytest.raises(RuntimeError, match=f"{option} requires MQTT 5.0"):
            MQTTClient("localhost", **options)


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "credentials",
    [{"username": "zmqtt-user", "password": "wrong"}, {}, {"username": "nobody"}],
    ids=["wrong-password", "anonymous", "unknown-user"],
)
async def test_refused_credentials_raise_connect_error(
    broker: Broker, version: Version, credentials: dict[str, Any]
) -> None:
    client = MQTTClient(
        broker.host,
        broker.password_port,
        client_id=unique_id(),
        version=version,
        **credentials,
    )
    with pytest.raises(MQTTConnectError) as refused:
        await bounded(client.connect())
    assert refused.value.return_code == REFUSED_CREDENTIALS_CODE[version]
    assert f"return code {REFUSED_CREDENTIALS_CODE[version]}" in str(refused.value)
    if version == "3.1.1":
        assert refused.value.properties is None
        assert refused.value.user_properties == ()
    assert refused.value.reason_string is None
    assert refused.value.server_reference is None
    with pytest.raises(MQTTDisconnectedError):
        client.connection_info  # noqa: B018
    await client.disconnect()  # safe after a refusal


# --------------------------------------------------------------------------- TLS


async def test_tls_context_checks_the_ip_address(
    broker: Broker, clients: Clients, version: Version
) -> None:
    ctx = ssl.create_default_context(cafile=str(broker.ca_file))
    client = await clients.connected(broker, version, port=broker.tls_port, tls=ctx)
    assert await bounded(client.ping()) >= 0


async def test_tls_context_without_the_ca_fails_verification(broker: Broker) -> None:
    client = MQTTClient(
        broker.host,
        broker.tls_port,
        tls=ssl.create_default_context(),
        reconnect=NO_RECONNECT,
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        await bounded(client.connect())


async def test_tls_context_cert_none_is_an_explicit_opt_out(
    broker: Broker, clients: Clients
) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    client = await clients.connected(broker, port=broker.tls_port, tls=ctx)
    assert client.connection_info.return_code == 0


async def test_tls_config_ca_file(broker: Broker, clients: Clients, topic: str) -> None:
    sub = await clients.subscribed(broker, topic)
    client = await clients.connected(
        broker, port=broker.tls_port, tls=TLSConfig(ca_file=broker.ca_file)
    )
    await client.publish(topic, b"via TLSConfig", qos=QoS.AT_LEAST_ONCE)
    assert (await next_message(sub)).payload == b"via TLSConfig"


async def test_tls_config_server_name_override(
    broker: Broker, clients: Clients
) -> None:
    good = await clients.connected(
        broker,
        port=broker.tls_port,
        tls=TLSConfig(ca_file=broker.ca_file, server_name="localhost"),
    )
    assert good.connection_info.return_code == 0
    wrong = MQTTClient(
        broker.host,
        broker.tls_port,
        tls=TLSConfig(ca_file=broker.ca_file, server_name="not-the-broker.example"),
        reconnect=NO_RECONNECT,
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        await bounded(wrong.connect())


async def test_tls_config_insecure_skip_verify(
    broker: Broker, clients: Clients
) -> None:
    client = await clients.connected(
        broker, port=broker.tls_port, tls=TLSConfig(insecure_skip_verify=True)
    )
    assert client.connection_info.return_code == 0


async def test_mutual_tls_with_client_certificate(
    broker: Broker, clients: Clients, version: Version, topic: str
) -> None:
    sub = await clients.subscribed(broker, topic)
    client = await clients.connected(
        broker,
        version,
        port=broker.mtls_port,
        tls=TLSConfig(
            ca_file=broker.ca_file,
            cert_file=broker.client_cert,
            key_file=broker.client_key,
        ),
    )
    await client.publish(topic, b"mutual", qos=QoS.AT_LEAST_ONCE)
    assert (await next_message(sub)).payload == b"mutual"


async def test_mutual_tls_listener_refuses_a_client_without_certificate(
    broker: Broker,
) -> None:
    client = MQTTClient(
        broker.host,
        broker.mtls_port,
        tls=ssl.create_default_context(cafile=str(broker.ca_file)),
        reconnect=NO_RECONNECT,
    )
    # The contract: ssl.SSLError, whose message says how to do mutual TLS.
    with pytest.raises(ssl.SSLError, match="TLSConfig"):
        await bounded(client.connect())
    with pytest.raises(MQTTDisconnectedError):
        client.connection_info  # noqa: B018


async def test_tls_to_a_plain_listener_fails_cleanly(broker: Broker) -> None:
    client = MQTTClient(
        broker.host,
        broker.port,
        tls=ssl.create_default_context(cafile=str(broker.ca_file)),
        reconnect=NO_RECONNECT,
    )
    # mosquitto resets the connection on the TLS ClientHello.
    with pytest.raises(OSError):
        await bounded(client.connect())
