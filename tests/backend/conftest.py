"""Fixtures for the test backend: an in-process backend on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import uvloop

from seaway.backend.server import BackendServer


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test here runs on asyncio's own loop and on uvloop (seaway's default):
    their transports differ (uvloop's do not inherit asyncio's classes)."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
async def backend() -> AsyncIterator[BackendServer]:
    """A backend named ``pod-a`` on 127.0.0.1, TCP and UDP on one kernel-picked port."""
    server = BackendServer("pod-a")
    await server.start("127.0.0.1:0")
    try:
        yield server
    finally:
        await server.close(grace=0.5)
