"""A scripted fake broker, for what mosquitto cannot be made to do: close the
connection before CONNACK, answer with something else, stay silent, send a
DISCONNECT with a reason code or a malformed packet. A test tool only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

CONNECT = 1
SUBSCRIBE = 8
PINGREQ = 12
DISCONNECT = 14


def connack(v5: bool, code: int = 0) -> bytes:
    """A CONNACK (session not present) with ``code``."""
    return bytes([0x20, 3, 0, code, 0]) if v5 else bytes([0x20, 2, 0, code])


def disconnect(reason: int) -> bytes:
    """A 5.0 DISCONNECT with ``reason`` and no properties."""
    return bytes([0xE0, 2, reason, 0])


def _varint(data: bytes, start: int) -> tuple[int, int]:
    """A Variable Byte Integer at ``start``: (value, index after it)."""
    value, shift, index = 0, 0, start
    while True:
        byte = data[index]
        value |= (byte & 0x7F) << shift
        index += 1
        if not byte & 0x80:
            return value, index
        shift += 7


def _suback(body: bytes, v5: bool) -> bytes:
    """A SUBACK granting QoS 0 to every filter of the SUBSCRIBE ``body``."""
    packet_id = body[:2]
    index = 2
    if v5:
        length, index = _varint(body, index)
        index += length
    count = 0
    while index < len(body):
        size = int.from_bytes(body[index : index + 2], "big")
        index += 2 + size + 1
        count += 1
    variable = packet_id + (b"\x00" if v5 else b"")
    payload = variable + bytes(count)
    return bytes([0x90, len(payload)]) + payload


@dataclass
class FakeBroker:
    """Listens on a free loopback port; answers as its fields say.

    ``on_connect``: bytes sent after a CONNECT (``None``: say nothing, b"":
    close the connection). ``on_ping``: bytes sent after a PINGREQ instead of
    PINGRESP (``None``: a PINGRESP). SUBSCRIBEs are granted QoS 0.
    ``received`` collects (packet type, body) of every packet read.
    """

    v5: bool = False
    on_connect: bytes | None = None
    on_ping: bytes | None = None
    received: list[tuple[int, bytes]] = field(default_factory=list)
    port: int = 0
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def _packet(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        first = (await reader.readexactly(1))[0]
        length, shift = 0, 0
        while True:
            byte = (await reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return first >> 4, await reader.readexactly(length)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                kind, body = await self._packet(reader)
                self.received.append((kind, body))
                if kind == CONNECT:
                    if self.on_connect is None:
                        continue
                    if not self.on_connect:
                        break
                    writer.write(self.on_connect)
                elif kind == SUBSCRIBE:
                    writer.write(_suback(body, self.v5))
                elif kind == PINGREQ:
                    writer.write(
                        bytes([0xD0, 0]) if self.on_ping is None else self.on_ping
                    )
                elif kind == DISCONNECT:
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            # Cancelled at the end of the test: end quietly, nothing to report.
            pass
        finally:
            writer.close()
            self.closed.set()

    def packets(self, kind: int) -> list[bytes]:
        """Bodies of the received packets of type ``kind``."""
        return [body for each, body in self.received if each == kind]


@contextlib.asynccontextmanager
async def running(fake: FakeBroker) -> AsyncIterator[FakeBroker]:
    """Serves ``fake`` on 127.0.0.1 for the block; ``fake.port`` is set."""
    server = await asyncio.start_server(fake._serve, "127.0.0.1", 0)
    fake.port = int(server.sockets[0].getsockname()[1])
    try:
        yield fake
    finally:
        server.close()
