"""``Subscription``: the asyncio face of a native subscription (SPEC 1.7).

Messages cross from Rust in batches: ``get_message()`` serves from a local
deque while it holds anything (no await, no thread hop) and refills it with
one ``try_recv_batch`` call; only when the native queue is empty does it
await ``wait()``, so one wake-up serves a whole batch. ``wait()`` takes
nothing, so cancelling a waiting ``get_message()`` loses no message.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from enum import Enum
from types import TracebackType
from typing import Self

from zmqtt import _zmqtt as _native
from zmqtt._errors import MQTTDisconnectedError
from zmqtt._loop import LoopBinding
from zmqtt._types import UnsubscribeResult

__all__ = ["Subscription"]

_log = logging.getLogger("zmqtt.client")

#: Most messages one ``try_recv_batch`` takes; bounds what waits in Python.
MAX_BATCH = 256


class _State(Enum):
    NEW = "new"
    ACTIVE = "active"
    STOPPED = "stopped"
    DETACHED = "detached"


class Subscription:
    """One or more topic filters subscribed together, and the queue of their messages.

    Made by ``client.subscribe(...)`` without any I/O. Use it as an async
    context manager (``async with client.subscribe("a/#") as sub:``) or call
    :meth:`start` / :meth:`stop`. Read messages with :meth:`get_message` or
    ``async for message in sub``; iteration ends when the subscription is
    stopped or detached or the client disconnects, and raises the error that
    stopped the client when the connection could not be kept or restored.
    After a reconnect the subscription is restored and keeps what it queued.
    """

    __slots__ = (
        "__weakref__",
        "_batch",
        "_binding",
        "_buffer",
        "_factory",
        "_filters",
        "_native",
        "_state",
    )

    def __init__(
        self,
        binding: LoopBinding,
        factory: Callable[[], _native.NativeSubscription],
        filters: tuple[str, ...],
        receive_buffer_size: int,
    ) -> None:
        """Internal: use ``client.subscribe(...)``."""
        self._binding = binding
        self._factory = factory
        self._filters = filters
        self._native = factory()
        self._buffer: deque[_native.Message] = deque()
        self._batch = (
            min(receive_buffer_size, MAX_BATCH)
            if receive_buffer_size > 0
            else MAX_BATCH
        )
        self._state = _State.NEW

    def __repr__(self) -> str:
        return f"<Subscription {list(self._filters)!r} {self._state.value}>"

    @property
    def filters(self) -> tuple[str, ...]:
        """The topic filters of this subscription, as given."""
        return self._filters

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        """Starts the subscription (see :meth:`start`)."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stops the subscription (see :meth:`stop`); a block left by
        cancellation ends local delivery without sending UNSUBSCRIBE."""
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            if self._state is _State.ACTIVE:
                self._native.detach()
                self._state = _State.STOPPED
                self._buffer.clear()
            return
        await self.stop()

    async def start(self) -> None:
        """Sends SUBSCRIBE and returns once the broker granted every filter.

        A stopped subscription may be started again.

        Raises:
            MQTTSubscribeError: The broker refused a filter (``failures`` maps each
                refused filter to its reason code); nothing is delivered then.
            MQTTDisconnectedError: The client is not connected.
            RuntimeError: Already started, or detached.
        """
        self._binding.check()
        if self._state is _State.ACTIVE:
            raise RuntimeError("this subscription is already started")
        if self._state is _State.DETACHED:
            raise RuntimeError("a detached subscription cannot be restarted")
        if self._state is _State.STOPPED:
            self._native = self._factory()
            self._buffer.clear()
        native = self._native
        try:
            await native.start()
        except asyncio.CancelledError:
            # The SUBSCRIBE is already on its way: take it back, or nobody would
            # read the queue it fills.
            native.stop()
            self._state = _State.STOPPED
            raise
        except BaseException:
            self._state = _State.STOPPED
            raise
        self._state = _State.ACTIVE

    async def stop(self) -> UnsubscribeResult | None:
        """Sends UNSUBSCRIBE and ends delivery; queued messages are dropped.

        Returns:
            The broker's UNSUBACK, or ``None`` when none was sent or received
            (not started, already stopped, not connected). Never raises.
        """
        state = self._state
        if state is _State.DETACHED or state is _State.STOPPED:
            return None
        self._state = _State.STOPPED
        self._buffer.clear()
        if state is _State.NEW:
            self._native.detach()
            return None
        try:
            return await self._native.stop()
        except Exception:  # noqa: BLE001 - stop() never raises (SPEC 1.7); the failure is logged
            _log.warning(
                "unsubscribing %s failed; stopped locally",
                list(self._filters),
                exc_info=True,
            )
            return None

    async def detach(self) -> None:
        """Ends local delivery without sending UNSUBSCRIBE.

        The broker keeps the subscription (useful for a persistent session, to
        be resumed later). Queued messages are dropped; messages received with
        ``auto_ack=False`` and not acknowledged stay unacknowledged. A detached
        subscription cannot be started again.
        """
        if self._state is _State.DETACHED:
            return
        self._native.detach()
        self._state = _State.DETACHED
        self._buffer.clear()

    # ------------------------------------------------------------------ delivery

    async def get_message(self) -> _native.Message:
        """The next message, in arrival order, waiting for one if need be.

        Raises:
            MQTTDisconnectedError: The subscription has ended (stopped, detached,
                or the client disconnected).
            MQTTError: The error that stopped the client (e.g. the connection was
                lost with reconnection disabled, or could not be restored).
        """
        buffer = self._buffer
        if buffer:
            return buffer.popleft()
        message = await self._next()
        if message is None:
            raise MQTTDisconnectedError(self._ended_reason())
        return message

    def __aiter__(self) -> Self:
        """Iterates over the messages until the subscription ends."""
        return self

    async def __anext__(self) -> _native.Message:
        """The next message; ``StopAsyncIteration`` once the subscription has ended."""
        buffer = self._buffer
        if buffer:
            return buffer.popleft()
        message = await self._next()
        if message is None:
            raise StopAsyncIteration
        return message

    async def _next(self) -> _native.Message | None:
        """Refills the buffer from the native queue, waiting while it is empty.

        ``None`` when the subscription has ended cleanly; raises the error that
        stopped the client otherwise.
        """
        self._binding.check()
        if self._state is _State.DETACHED:
            return None
        buffer = self._buffer
        native = self._native
        while True:
            if buffer:  # another consumer refilled it while this one waited
                return buffer.popleft()
            try:
                batch = native.try_recv_batch(self._batch)
            except BaseException:
                self._mark_ended(native)
                raise
            if batch is None:
                self._mark_ended(native)
                return None
            if batch:
                buffer.extend(batch)
                return buffer.popleft()
            await native.wait()

    def _mark_ended(self, native: _native.NativeSubscription) -> None:
        if native is self._native and self._state is _State.ACTIVE:
            self._state = _State.STOPPED

    def _ended_reason(self) -> str:
        if self._state is _State.DETACHED:
            return "Subscription detached"
        return "Subscription has ended (stopped, or the client disconnected)"
