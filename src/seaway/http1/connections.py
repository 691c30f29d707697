"""The live connections of a server, so that closing the server closes them too."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol


class Connection(Protocol):
    """What a server needs from a connection to close it."""

    def shutdown(self) -> None:
        """Finish the work in progress (the current response), then close."""
        ...

    def abort(self) -> None:
        """Close now, dropping whatever is unsent."""
        ...

    async def wait_closed(self) -> None:
        """Return once the connection is closed and its tasks have ended."""
        ...


class ConnectionSet:
    """The connections a server accepted that are still open (owned by that server).

    Protocols add themselves when the connection is made and discard themselves when
    it is lost; the server calls :meth:`close_all` when it stops.
    """

    def __init__(self) -> None:
        self._live: set[Connection] = set()

    def add(self, connection: Connection) -> None:
        self._live.add(connection)

    def discard(self, connection: Connection) -> None:
        self._live.discard(connection)

    def __len__(self) -> int:
        return len(self._live)

    async def close_all(self, grace: float = 1.0) -> None:
        """Let every connection finish its current response within ``grace`` s, then abort."""
        live = list(self._live)
        for connection in live:
            connection.shutdown()
        waits = [asyncio.ensure_future(c.wait_closed()) for c in live]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=grace)
        for connection in list(self._live):
            connection.abort()
        if pending:
            # abort() makes connection_lost run on the next loop iteration; this is short.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.gather(*pending, return_exceptions=True)
            for task in pending:
                task.cancel()
