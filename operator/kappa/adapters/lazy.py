"""Libraries that only some features need are imported when a resource first needs them, not at start:
httpx for a Flink session cluster's REST API, psycopg for a MaterializedView served by PostgreSQL. Together
they are 15 MiB of the operator's memory (scale benchmark, benchmarks/README.md), and most installations use
one of them or neither.

`import_kubernetes` keeps out of the start what `import kubernetes` loads for two rare uses: requests,
requests-oauthlib and oauthlib.oauth2 (4.8 MiB of the start's 78), for the token refresh of an OIDC user in a
kubeconfig and for a websocket through a proxy.

`preload` imports in a worker thread: an import is 0.1 s of CPU on a quiet machine and seconds in the
operator's start under load, and the event loop must not wait for it. The module is then in sys.modules, so
the caller's own `from ... import` right after is a dictionary lookup."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
import types
from typing import Any


async def preload(module: str) -> None:
    """Import `module` (and what it imports) off the event loop, once; Python's import lock keeps two
    concurrent first uses from importing it twice."""
    if module not in sys.modules:
        await asyncio.to_thread(importlib.import_module, module)


class _Deferred(types.ModuleType):
    """What `import kubernetes` binds in place of a module it imports for a rare use: the real module is
    imported on the first attribute asked for, and the attribute read from it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the import system's questions (`__path__`, `__spec__`) load nothing
            raise AttributeError(name)
        return getattr(importlib.import_module(self.__name__), name)


class _OAuth2Session:
    """What `from requests_oauthlib import OAuth2Session` binds in kubernetes.config.kube_config: creating one
    imports requests-oauthlib and makes the real session."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return importlib.import_module("requests_oauthlib").OAuth2Session(*args, **kwargs)


def _should_bypass_proxies(*args: Any, **kwargs: Any) -> Any:
    """What `from requests.utils import should_bypass_proxies` binds in kubernetes.stream.ws_client."""
    return importlib.import_module("requests.utils").should_bypass_proxies(*args, **kwargs)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is not installed
        return False


def import_kubernetes() -> None:
    """Import the kubernetes package without what two of its subpackages import at their top for one rare
    use each:
    - kubernetes.config.kube_config imports `oauthlib.oauth2` and `from requests_oauthlib import
      OAuth2Session`, and uses them only in `_refresh_oidc` (the session, and `oauthlib.oauth2.rfc6749.
      errors.InvalidClientIdError` in an except clause);
    - kubernetes.stream.ws_client imports `from requests.utils import should_bypass_proxies`, for the proxy of
      an exec or attach websocket, which the operator never opens.
    While kubernetes is imported, those modules are stand-ins in sys.modules; after it, sys.modules holds none
    of them, so whatever imports them later gets the real ones. The names kubernetes bound stay stand-ins that
    import the real modules on first use. The standard library's `importlib.util.LazyLoader` does not serve:
    a `from ... import` reads the attribute at once.

    Not done when kubernetes or requests is already imported, or when google-auth is installed: kube_config
    then imports `google.auth.transport.requests`, which imports requests' submodules, and it would take
    google-auth for missing."""
    deferred = ("requests", "requests.utils", "requests_oauthlib", "oauthlib.oauth2")
    if any(module in sys.modules for module in ("kubernetes", *deferred)) or _installed("google.auth"):
        importlib.import_module("kubernetes")
        return
    stand_ins = {name: _Deferred(name) for name in deferred}
    stand_ins["requests_oauthlib"].OAuth2Session = _OAuth2Session  # type: ignore[attr-defined]
    stand_ins["requests.utils"].should_bypass_proxies = _should_bypass_proxies  # type: ignore[attr-defined]
    # `import oauthlib.oauth2` binds the package, the real one (a logger and a version), and later reads
    # `oauth2` from it; importing the real oauthlib.oauth2 sets that attribute to the real module.
    setattr(importlib.import_module("oauthlib"), "oauth2", stand_ins["oauthlib.oauth2"])  # noqa: B010
    sys.modules.update(stand_ins)
    try:
        importlib.import_module("kubernetes")
    finally:
        for name, stand_in in stand_ins.items():
            if sys.modules.get(name) is stand_in:
                del sys.modules[name]


__all__ = ["import_kubernetes", "preload"]
