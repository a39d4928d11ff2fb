"""The controller tier: no test bed. Each test gets a `World` of in-memory fakes (tests/fakes/) and runs the
reconcilers' real code against it, in milliseconds. Tests are `async def`: they run here on one event loop
for the whole tier (the operator keeps one event recorder, with its asyncio lock, for the process)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator

import pytest

from kappa.adapters.kube import use_api_client
from tests.fakes.core_api import ROUTE, fake_api_client
from tests.fakes.world import World

TIMEOUT = 30.0
_loop: list[asyncio.AbstractEventLoop] = []


def _the_loop() -> asyncio.AbstractEventLoop:
    if not _loop:
        _loop.append(asyncio.new_event_loop())
    return _loop[0]


@pytest.fixture(scope="session", autouse=True)
def _close_the_loop() -> Iterator[None]:
    yield
    if _loop:
        _loop.pop().close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an `async def` test to its end on the tier's loop."""
    if "/controllers/" not in str(pyfuncitem.fspath) or not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def bounded() -> None:
        async with asyncio.timeout(TIMEOUT):
            await pyfuncitem.obj(**args)

    _the_loop().run_until_complete(bounded())
    return True


@pytest.fixture
def world() -> Iterator[World]:
    """A fresh world; the operator's Kubernetes clients (events, ConfigMap alias) served from its store."""
    made = World()
    ROUTE.store = made.kube.store
    use_api_client(fake_api_client)
    try:
        yield made
    finally:
        use_api_client(None)
        ROUTE.store = None
