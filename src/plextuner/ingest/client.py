"""The provider HTTP client (`make_client`) and its TLS context: what httpx builds by
default (certifi's CA bundle, the host name checked, a certificate required), except that the
bundle is loaded when a download first needs it. Loading it is ~20-30 ms of CPU that a refresh
of `http://` providers (most IPTV panels) never used: a tenth of a 50k-stream refresh's fixed
cost.

Fail-closed: until the bundle is loaded the context trusts nothing, so a TLS connection made
before it (which `wrap_bio`/`wrap_socket` prevent anyway) could only fail, never go unverified.
The fetcher loads it in a worker thread before an `https://` download (`load_pending`); a
redirect from `http://` to `https://` inside httpx loads it at the handshake instead.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a download starts: a local refresh never loads it (50 ms)
    import httpx

_PENDING: weakref.WeakSet[CaOnFirstUse] = weakref.WeakSet()


class CaOnFirstUse(ssl.SSLContext):
    """`ssl.create_default_context(cafile=certifi.where())`, with the load deferred."""

    _lock: threading.Lock
    _loaded: bool

    def arm(self) -> CaOnFirstUse:
        self._lock = threading.Lock()
        self._loaded = False
        _PENDING.add(self)
        return self

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        """The CA bundle loaded, once (callers in several threads wait for the first)."""
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                import certifi

                self.load_verify_locations(cafile=certifi.where())
                self._loaded = True
                _PENDING.discard(self)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.load()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.load()
        return super().wrap_bio(*args, **kwargs)


def client_context() -> CaOnFirstUse:
    """A new context, verifying as `ssl.create_default_context` does for a server."""
    ctx = CaOnFirstUse(ssl.PROTOCOL_TLS_CLIENT)  # hostname checked, certificate required
    keylog = os.environ.get("SSLKEYLOGFILE")  # as create_default_context honours it
    if keylog and not sys.flags.ignore_environment:
        ctx.keylog_filename = keylog
    return ctx.arm()


def load_pending() -> None:
    """Load the bundle of every context still waiting for it (in a worker thread: CPU)."""
    for ctx in list(_PENDING):
        ctx.load()


def make_client(timeout: float, user_agent: str) -> httpx.AsyncClient:
    """The process-wide provider client: bounded pool, connect/read timeouts, redirects followed."""
    import httpx  # lazily: see the imports

    return httpx.AsyncClient(
        verify=client_context(),  # its CA bundle loaded by the first https download
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=True,
        max_redirects=5,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        headers={"User-Agent": user_agent},
        trust_env=False,
    )
