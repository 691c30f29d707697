"""LazyTimer: a timeout that is re-armed many times without a new timer each time.

A keep-alive connection re-arms its timeout several times per request (head, idle,
body); a pooled upstream connection on every release. Scheduling and cancelling an
event loop timer each time costs a handle allocation and a heap operation. A
``LazyTimer`` keeps at most one scheduled handle: moving the deadline later only
records it, and the handle, when it fires before the deadline, schedules itself again
for the rest. Only moving the deadline earlier replaces the handle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class LazyTimer:
    """Calls ``callback`` once the deadline set by ``set`` has passed (owned by one object)."""

    __slots__ = ("_at", "_callback", "_deadline", "_handle", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        self._loop = loop
        self._callback = callback
        self._deadline: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._at = 0.0  # when the scheduled handle fires

    @property
    def armed(self) -> bool:
        """Whether a deadline is set."""
        return self._deadline is not None

    def set(self, delay: float) -> None:
        """Fire ``delay`` seconds from now (replacing any earlier deadline)."""
        deadline = self._loop.time() + delay
        self._deadline = deadline
        if self._handle is None or self._at > deadline:
            if self._handle is not None:
                self._handle.cancel()
            self._at = deadline
            self._handle = self._loop.call_at(deadline, self._fire)

    def clear(self) -> None:
        """No deadline; a scheduled handle stays and, when it fires, does nothing."""
        self._deadline = None

    def cancel(self) -> None:
        """No deadline and nothing scheduled (the owner is done: drop the references)."""
        self._deadline = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        deadline = self._deadline
        if deadline is None:
            return
        if self._loop.time() < deadline:
            self._at = deadline
            self._handle = self._loop.call_at(deadline, self._fire)
            return
        self._deadline = None
        self._callback()
