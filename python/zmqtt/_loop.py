"""Binds a client to the asyncio event loop it is first used on."""

from __future__ import annotations

import asyncio
from threading import get_ident

__all__ = ["LoopBinding"]


class LoopBinding:
    """Remembers the running loop of the first use and refuses any other one.

    The native module resolves its awaitables on the loop of the call and a
    connection's state belongs to one loop, so a client used from two loops
    would hang or resolve futures on the wrong one; a clear ``RuntimeError``
    is better. Once the bound loop is closed, the next loop may take over
    (e.g. consecutive ``asyncio.run()`` calls).

    Hot paths that finish without awaiting (a queued QoS 0 publish) only
    compare the thread; they need no loop, so another loop on the same
    thread is caught at its first call that awaits.
    """

    __slots__ = ("loop", "owner", "thread")

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.loop: asyncio.AbstractEventLoop | None = None
        #: Thread of the bound loop: hot paths compare ``threading.get_ident()``
        #: with it (tens of ns) instead of calling ``check()`` (hundreds on 3.11).
        self.thread: int | None = None

    def check(self) -> asyncio.AbstractEventLoop:
        """The running loop, binding to it on first use.

        Raises:
            RuntimeError: No loop is running, or another (still open) loop is bound.
        """
        loop = asyncio.get_running_loop()
        bound = self.loop
        if bound is loop:
            return loop
        if bound is None or bound.is_closed():
            self.loop = loop
            self.thread = get_ident()
            return loop
        raise RuntimeError(
            f"this {self.owner} is bound to the event loop it was first used on and cannot be used "
            "from another event loop; create one client per event loop"
        )
