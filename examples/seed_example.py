"""The seed page's example, end to end: connect, subscribe, publish, receive.

Runs against the broker named by ZMQTT_HOST / ZMQTT_PORT (default
localhost:1883); ``scripts/demo`` starts a private mosquitto and points it there.
"""

import asyncio
import os

from zmqtt import QoS, create_client

HOST = os.environ.get("ZMQTT_HOST", "localhost")
PORT = int(os.environ.get("ZMQTT_PORT", "1883"))


async def main() -> None:
    for version in ("3.1.1", "5.0"):
        client = create_client(
            host=HOST,
            port=PORT,
            client_id=f"my-app-{version}",
            keepalive=60,
            clean_session=True,
            version=version,
        )
        async with client:
            info = client.connection_info
            print(f"MQTT {version}: connected as {info.effective_client_id!r}")
            async with client.subscribe("demo/#", qos=QoS.AT_LEAST_ONCE) as sub:
                await client.publish("demo/test", "hello")
                await client.publish(
                    "demo/qos1", b"reading 21.5", qos=QoS.AT_LEAST_ONCE
                )
                await client.publish("demo/qos2", b"exactly once", qos=QoS.EXACTLY_ONCE)
                for _ in range(3):
                    msg = await sub.get_message()
                    print(
                        f"  received {msg.topic}: {msg.payload!r} (QoS {int(msg.qos)})"
                    )
        print(f"MQTT {version}: disconnected")


if __name__ == "__main__":
    asyncio.run(main())
