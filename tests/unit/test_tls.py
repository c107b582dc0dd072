"""The provider client's TLS: verified against the CA bundle, which is loaded only when an
https download first needs it (a refresh of http:// providers never pays for it)."""

from __future__ import annotations

import functools
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from plextuner.errors import FetchError
from plextuner.ingest import client as tls
from plextuner.ingest.client import make_client
from plextuner.ingest.fetch import Fetcher, FetchOptions
from tests.conftest import free_port, require_tool

BODY = b"#EXTM3U\n#EXTINF:-1,A\nhttp://cdn.invalid/a.ts\n"


def _run(*args: str, cwd: Path) -> None:
    subprocess.run([require_tool("openssl"), *args], cwd=cwd, check=True, capture_output=True)


def _ca(directory: Path, name: str) -> Path:
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
         cwd=directory)  # fmt: skip
    return directory / f"{name}.pem"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate it signed for 127.0.0.1, and an unrelated CA."""
    d = tmp_path_factory.mktemp("pki")
    ca, other = _ca(d, "ca"), _ca(d, "other")
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-out",
         "server.pem", "-CAcreateserial", "-days", "2", "-extfile", "san.ext", cwd=d)  # fmt: skip
    return {"ca": ca, "other": other, "cert": d / "server.pem", "key": d / "server.key"}


@pytest.fixture
async def https_url(pki: dict[str, Path]) -> AsyncIterator[str]:
    async def playlist(_: web.Request) -> web.Response:
        return web.Response(body=BODY)

    app = web.Application()
    app.router.add_get("/get.php", playlist)
    runner = web.AppRunner(app)
    await runner.setup()
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(pki["cert"], pki["key"])
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=served)
    await site.start()
    try:
        yield f"https://127.0.0.1:{port}/get.php"
    finally:
        await runner.cleanup()


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    """A refresh's fetcher: its client (make_client's) built at the first download."""
    built = Fetcher(None, FetchOptions(retries=0), functools.partial(make_client, 5.0, "t/1"))
    try:
        yield built
    finally:
        await built.aclose()


async def test_https_is_verified_against_the_bundle_loaded_at_first_use(
    https_url: str, pki: dict[str, Path], fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("certifi.where", lambda: str(pki["ca"]))
    client = await fetcher.http()
    contexts = list(tls._PENDING)
    assert contexts and not any(c.loaded for c in contexts)  # nothing loaded yet
    assert await fetcher.fetch(https_url) == BODY
    assert all(c.loaded for c in contexts) and not tls._PENDING
    assert client is await fetcher.http()


async def test_a_server_the_bundle_does_not_vouch_for_is_refused(
    https_url: str, pki: dict[str, Path], fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deferred load never means unverified: another CA's bundle refuses the server."""
    monkeypatch.setattr("certifi.where", lambda: str(pki["other"]))
    with pytest.raises(FetchError, match="connection failed"):
        await fetcher.fetch(https_url)


def test_an_unloaded_context_trusts_nothing_and_checks_host_names() -> None:
    ctx = tls.client_context()
    assert ctx.cert_store_stats()["x509_ca"] == 0
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    ctx.load()
    assert ctx.cert_store_stats()["x509_ca"] > 0 and ctx.loaded


def test_a_handshake_loads_the_bundle_itself() -> None:
    """A TLS connection httpx opens on its own (a redirect to https) loads it first."""
    ctx = tls.client_context()
    ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.invalid")
    assert ctx.loaded
