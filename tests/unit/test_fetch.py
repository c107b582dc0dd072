"""Downloads: size caps, gzip bombs, revalidation, bounded retries."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from plextuner.errors import FetchError
from plextuner.ingest.fetch import Fetcher, FetchOptions, gunzip_capped


class TestGunzip:
    def test_bomb_capped(self) -> None:
        """A gzip bomb stops at the cap with a clear error, never inflating it all."""
        bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))
        with pytest.raises(FetchError, match="cap"):
            gunzip_capped(bomb, 1024 * 1024, "bomb.gz")

    def test_truncated(self) -> None:
        """Truncated gzip is an error, not a partial playlist."""
        with pytest.raises(FetchError, match=r"truncated|corrupt"):
            gunzip_capped(gzip.compress(b"x" * 10000)[:-20], 10**6, "t.gz")

    def test_multi_member(self) -> None:
        """Concatenated gzip members decompress to the concatenation."""
        assert gunzip_capped(gzip.compress(b"ab") + gzip.compress(b"cd"), 100, "m") == b"abcd"


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, dict[str, int]]]:
    hits = {"flaky": 0, "etag": 0, "etag_304": 0}

    async def flaky(_: web.Request) -> web.Response:
        hits["flaky"] += 1
        return web.Response(status=503) if hits["flaky"] < 3 else web.Response(text="ok")

    async def etag(request: web.Request) -> web.Response:
        hits["etag"] += 1
        if request.headers.get("If-None-Match") == '"v1"':
            hits["etag_304"] += 1
            return web.Response(status=304)
        return web.Response(text="body-v1", headers={"ETag": '"v1"'})

    async def big(_: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x" * 200_000)

    async def gone(_: web.Request) -> web.Response:
        return web.Response(status=404)

    async def encoded_bomb(_: web.Request) -> web.Response:
        body = gzip.compress(b"\0" * (50 * 1024 * 1024))
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    app = web.Application()
    for path, handler in (
        ("/flaky", flaky),
        ("/etag", etag),
        ("/big", big),
        ("/gone", gone),
        ("/encbomb", encoded_bomb),
    ):
        app.router.add_get(path, handler)
    srv = TestServer(app, host="127.0.0.1")
    await srv.start_server()
    yield srv, hits
    await srv.close()


def fetcher(tmp_path: Path, yield_gil: bool = True, **kw: int) -> Fetcher:
    opts = FetchOptions(
        timeout=5,
        retries=int(kw.get("retries", 2)),
        max_bytes=int(kw.get("max_bytes", 10**6)),
        cache_dir=tmp_path,
        backoff=0.01,
        yield_gil=yield_gil,
    )
    return Fetcher(httpx.AsyncClient(), opts)


class TestFetcher:
    async def test_retries_transient_then_succeeds(self, server: tuple, tmp_path: Path) -> None:
        """5xx is retried a bounded number of times."""
        srv, hits = server
        f = fetcher(tmp_path)
        assert await f.fetch(str(srv.make_url("/flaky"))) == b"ok"
        assert hits["flaky"] == 3
        await (await f.http()).aclose()

    async def test_definitive_not_retried(self, server: tuple, tmp_path: Path) -> None:
        """404 fails at once with the status in the reason."""
        srv, _ = server
        f = fetcher(tmp_path)
        with pytest.raises(FetchError, match="HTTP 404"):
            await f.fetch(str(srv.make_url("/gone")))
        await (await f.http()).aclose()

    @pytest.mark.parametrize("yield_gil", [True, False], ids=["serving", "refresh-command"])
    async def test_revalidation_reuses_cache(
        self, server: tuple, tmp_path: Path, yield_gil: bool
    ) -> None:
        """A 304 answer reuses the cached body."""
        srv, hits = server
        f = fetcher(tmp_path, yield_gil)
        url = str(srv.make_url("/etag"))
        assert await f.fetch(url) == b"body-v1"
        assert hits == {**hits, "etag": 1, "etag_304": 0}
        assert await f.fetch(url) == b"body-v1"
        # The second fetch sent If-None-Match and the body came from the cache, not the wire.
        assert hits["etag"] == 2 and hits["etag_304"] == 1
        path = await f.fetch_file(url)
        assert path.read_bytes() == b"body-v1" and hits["etag_304"] == 2
        await (await f.http()).aclose()

    @pytest.mark.parametrize("yield_gil", [True, False], ids=["serving", "refresh-command"])
    async def test_size_cap(self, server: tuple, tmp_path: Path, yield_gil: bool) -> None:
        """A body over the cap is refused, on the loop or in a thread, in memory or to a file."""
        srv, _ = server
        f = fetcher(tmp_path, yield_gil, max_bytes=100_000)
        for fetch in (f.fetch, f.fetch_file):
            with pytest.raises(FetchError, match="cap"):
                await fetch(str(srv.make_url("/big")))
            with pytest.raises(FetchError, match="cap"):
                await fetch(str(srv.make_url("/encbomb")))
        assert not list(tmp_path.glob("*.part*"))  # the partial download removed
        await (await f.http()).aclose()

    async def test_a_download_whose_validators_cannot_be_kept_is_a_fetch_error(
        self, server: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The body is in place, its ETag file cannot be written (a full disk): the source's
        own error, as for the body, not a data-dir StateError from inside the download."""
        from plextuner.errors import StateError
        from plextuner.ingest import bodycache

        def full(path: Path, data: object, mode: int = 0o600) -> None:
            raise StateError(f"cannot write {path}: No space left on device")

        monkeypatch.setattr(bodycache, "write_atomic", full)
        srv, _ = server
        f = fetcher(tmp_path)
        with pytest.raises(FetchError, match=r"cannot write the download: .*No space left"):
            await f.fetch_file(str(srv.make_url("/etag")))
        await (await f.http()).aclose()

    async def test_local_file_gzip(self, tmp_path: Path) -> None:
        """A .gz file path is read and decompressed."""
        p = tmp_path / "list.m3u.gz"
        p.write_bytes(gzip.compress(b"#EXTM3U\n"))
        f = fetcher(tmp_path)
        assert await f.fetch(str(p)) == b"#EXTM3U\n"
        with pytest.raises(FetchError, match="cannot read"):
            await f.fetch(str(tmp_path / "missing.m3u"))
        await (await f.http()).aclose()

    async def test_client_built_on_the_first_download_only(
        self, server: tuple, tmp_path: Path
    ) -> None:
        """Given a factory, local files never build a client (the CA bundle is 0.1 s of a
        refresh); the first URL builds one, later ones share it, and aclose closes it."""
        srv, _ = server
        built: list[httpx.AsyncClient] = []

        def factory() -> httpx.AsyncClient:
            built.append(httpx.AsyncClient())
            return built[-1]

        p = tmp_path / "list.m3u"
        p.write_bytes(b"#EXTM3U\n")
        opts = FetchOptions(timeout=5, retries=0, max_bytes=10**6, cache_dir=tmp_path)
        f = Fetcher(None, opts, factory)
        assert await f.fetch(str(p)) == b"#EXTM3U\n"
        assert built == []
        assert await f.fetch(str(srv.make_url("/etag"))) == b"body-v1"
        await f.fetch(str(srv.make_url("/etag")))
        assert len(built) == 1 and await f.http() is built[0]
        await f.aclose()
        assert built[0].is_closed

    async def test_no_client_and_no_factory_is_a_clear_error(self, tmp_path: Path) -> None:
        """A URL with nothing to download it with fails as a fetch error, not an exception."""
        opts = FetchOptions(timeout=5, retries=0, max_bytes=10**6, cache_dir=tmp_path)
        with pytest.raises(FetchError, match="no HTTP client"):
            await Fetcher(None, opts).fetch("http://127.0.0.1:9/list.m3u")
