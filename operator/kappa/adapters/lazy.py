"""Libraries that only some features need are imported when a resource first needs them, not at start:
httpx for a Flink session cluster's REST API, psycopg for a MaterializedView served by PostgreSQL. Together
they are 15 MiB of the operator's memory (scale benchmark, benchmarks/README.md), and most installations use
one of them or neither.

`defer_kubernetes_extras` keeps out of the start what `import kubernetes` loads for two rare uses: requests,
requests-oauthlib and oauthlib.oauth2 (4.8 MiB of the start's 78), for the token refresh of an OIDC user in a
kubeconfig and for a websocket through a proxy.

`preload` imports in a worker thread: an import is 0.1 s of CPU on a quiet machine and seconds in the
operator's start under load, and the event loop must not wait for it. The module is then in sys.modules, so
the caller's own `from ... import` right after is a dictionary lookup."""

from __future__ import annotations

import asyncio
import importlib
import sys
import types
from collections.abc import Callable
from typing import Any


async def preload(module: str) -> None:
    """Import `module` (and what it imports) off the event loop, once; Python's import lock keeps two
    concurrent first uses from importing it twice."""
    if module not in sys.modules:
        await asyncio.to_thread(importlib.import_module, module)


class _Deferred(types.ModuleType):
    """Stands in sys.modules for a module until its first attribute is asked for; then the real module is
    imported in its place, and the attribute read from it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the import system's questions (`__path__`, `__spec__`) load nothing
            raise AttributeError(name)
        return getattr(_load(self.__name__), name)


def _load(module: str) -> types.ModuleType:
    """The real `module`. At the first use of any stand-in they all leave sys.modules, so that what loads
    now (requests-oauthlib imports requests, requests its submodules) imports real modules only."""
    for name, stand_in in list(sys.modules.items()):
        if isinstance(stand_in, _Deferred):
            sys.modules.pop(name, None)
    return importlib.import_module(module)


def _deferred(module: str, **names: Callable[..., Any]) -> _Deferred:
    stand_in = sys.modules[module] = _Deferred(module)
    for name, value in names.items():
        setattr(stand_in, name, value)
    return stand_in


class _OAuth2Session:
    """What `from requests_oauthlib import OAuth2Session` binds in kubernetes.config.kube_config: creating one
    imports requests-oauthlib and makes the real session."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return _load("requests_oauthlib").OAuth2Session(*args, **kwargs)


def _should_bypass_proxies(*args: Any, **kwargs: Any) -> Any:
    """What `from requests.utils import should_bypass_proxies` binds in kubernetes.stream.ws_client."""
    return _load("requests.utils").should_bypass_proxies(*args, **kwargs)


def defer_kubernetes_extras() -> None:
    """Before the first `import kubernetes`. Its package imports every subpackage, and two of them import
    requests at their top for one rare use each:
    - kubernetes.config.kube_config imports `oauthlib.oauth2` and `from requests_oauthlib import
      OAuth2Session`, and uses them only in `_refresh_oidc` (the session, and `oauthlib.oauth2.rfc6749.
      errors.InvalidClientIdError` in an except clause);
    - kubernetes.stream.ws_client imports `from requests.utils import should_bypass_proxies`, for the proxy of
      an exec or attach websocket, which the operator never opens.
    Those names get stand-ins that import the real modules on first use. The standard library's
    `importlib.util.LazyLoader` does not serve: a `from ... import` reads the attribute at once. Once
    kubernetes or requests is imported, this changes nothing."""
    if any(m in sys.modules for m in ("kubernetes", "requests", "requests_oauthlib", "oauthlib.oauth2")):
        return
    # `import oauthlib.oauth2` binds the package, the real one (a logger and a version), and reads `oauth2`
    # from it.
    setattr(importlib.import_module("oauthlib"), "oauth2", _deferred("oauthlib.oauth2"))  # noqa: B010
    _deferred("requests_oauthlib", OAuth2Session=_OAuth2Session)
    _deferred("requests")
    _deferred("requests.utils", should_bypass_proxies=_should_bypass_proxies)


__all__ = ["defer_kubernetes_extras", "preload"]
