"""Fuzzing against the real daemon and the real `refresh` command.

- HTTP: generated paths, Host headers and query strings sent as raw bytes to a running `serve`;
  every answer is a well-formed HTTP response (or a closed connection for bytes that are not
  HTTP), never a 500 or a traceback in the log, and the daemon keeps serving its lineup.
- Pipeline: any generated playlist through `plextuner refresh` exits 0, 1 or 3, never with a
  traceback, and a failed refresh leaves the previous lineup exactly as it was.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plextuner.cli import main
from tests.conftest import free_port
from tests.fakes.daemon import serve_process

pytestmark = pytest.mark.integration

PLAYLIST = (
    "#EXTM3U\n"
    '#EXTINF:-1 tvg-id="news.uk" group-title="News",News One\nhttp://127.0.0.1:9/news.ts\n'
    '#EXTINF:-1 tvg-id="sport.uk" group-title="Sports",Sport One\nhttp://127.0.0.1:9/sport.ts\n'
)
BUCKETS = (
    "buckets:\n  - {name: news, match: {group: '^News$'}}\n"
    "  - {name: sport, match: {group: '^Sports$'}}\n"
)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """A `plextuner serve` process on a local playlist, its output collected."""
    tmp = tmp_path_factory.mktemp("fuzzd")
    (tmp / "list.m3u").write_text(PLAYLIST, encoding="utf-8")
    port = free_port()
    cfg = tmp / "c.yaml"
    cfg.write_text(
        f"host: 127.0.0.1\nport: {port}\ndiscovery_port: 0\ndata_dir: {tmp / 'data'}\n"
        f"postvalidate: {{enabled: false}}\nlog_format: json\n"
        f"providers:\n  - {{name: local, m3u_url: '{tmp / 'list.m3u'}'}}\n{BUCKETS}",
        encoding="utf-8",
    )
    proc = serve_process(cfg, port)
    try:
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()


def _send(port: int, raw: bytes) -> bytes:
    """Send raw bytes, read the whole answer (the daemon closes or we time out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(raw)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        chunks: list[bytes] = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if sum(map(len, chunks)) > 1 << 20:
                    break
    return b"".join(chunks)


_segment = st.one_of(
    st.sampled_from(
        [
            "lineup.json",
            "discover.json",
            "auto",
            "v1",
            "v99999999999999999999",
            "devices",
            "news",
            "..",
            "%2e%2e",
            "%00",
            "%ff",
            "guide.xml",
            "tuner0",
            "tuner99",
            "api",
            "v1",
            "status",
            "metrics",
            "lineup_status.json",
        ]
    ),
    st.text(
        st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#"), max_size=12
    ),
)
_path = st.lists(_segment, min_size=0, max_size=5).map(lambda s: "/" + "/".join(s))
_query = st.one_of(
    st.just(""),
    st.sampled_from(["?show=found", "?transcode=heavy", "?a=%zz", "?" + "x" * 5000, "?&&=&"]),
    st.text(
        st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="#"), max_size=30
    ).map(lambda q: "?" + q),
)
_host = st.one_of(
    st.none(),
    st.sampled_from(
        ["127.0.0.1", "evil.example:80", "[::1", "a" * 300, "", "h\tx", "127.0.0.1:99999"]
    ),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
)
_method = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "BREW", "G\x01T"])


def _request(method: str, path: str, query: str, host: str | None) -> bytes:
    lines = [f"{method} {path}{query} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(method=_method, path=_path, query=_query, host=_host)
def test_http_requests_never_crash(
    daemon: tuple[int, subprocess.Popen[str]], method: str, path: str, query: str, host: str | None
) -> None:
    """Every generated request gets a well-formed answer below 500, and no stream is opened
    for a channel that does not exist."""
    port, proc = daemon
    if "/v" in path and method in ("GET",) and path.rsplit("/", 1)[-1] in ("v1",):
        return  # a real tune of channel 1 reaches the (closed) upstream: covered elsewhere
    answer = _send(port, _request(method, path, query, host))
    assert proc.poll() is None, "the daemon exited"
    if not answer:
        return  # aiohttp may close on a request line it cannot parse
    assert answer.startswith(b"HTTP/1."), answer[:80]
    status = int(answer.split(b" ", 2)[1])
    assert status < 500 or status == 503, answer[:200]


def test_junk_bytes_and_daemon_still_serves(daemon: tuple[int, subprocess.Popen[str]]) -> None:
    """Garbage, a 100 KB header and a request without Host: the lineup is still served after,
    and the log holds no traceback."""
    port, proc = daemon
    for raw in (
        b"\x00\x01\x02\xff" * 100,
        b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        b"GET /lineup.json HTTP/1.1\r\n\r\n",
        b"GET /lineup.json HTTP/1.0\r\n\r\n",
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        _send(port, raw)
    r = httpx.get(f"http://127.0.0.1:{port}/lineup.json", timeout=5)
    assert r.status_code == 200 and [c["GuideName"] for c in r.json()] == ["News One"]
    assert proc.poll() is None


def test_daemon_log_has_no_traceback(daemon: tuple[int, subprocess.Popen[str]]) -> None:
    """After the fuzzing above (module order), the daemon stops cleanly and logged no traceback."""
    port, proc = daemon
    _send(port, b"GET / HTTP/1.1\r\n\r\n")
    proc.terminate()
    assert proc.wait(15) == 0
    output = proc.stdout.read() if proc.stdout else ""
    assert "Traceback" not in output, output[-3000:]
    assert "request_crashed" not in output


# --- the whole pipeline ------------------------------------------------------------------------

_url = st.one_of(
    st.sampled_from(
        [
            "http://cdn.example/a.ts",
            "http://cdn.example:80a/2.ts",
            "http:///x.ts",
            "http://cdn.example:99999/x",
            "https://[::1/x",
            "http://h x/y",
            "rtmp://x/y",
        ]
    ),
    st.text(max_size=30),
)
_name = st.one_of(st.text(max_size=20), st.sampled_from(["News One", "Sport One", ""]))
_group = st.sampled_from(["News", "Sports", "", "News;Sports", "Ünï"])
_entry = st.builds(
    lambda n, g, u, tid: f'#EXTINF:-1 tvg-id="{tid}" group-title="{g}",{n}\n{u}',
    _name,
    _group,
    _url,
    st.sampled_from(["news.uk", "sport.uk", "", 'x"y']),
)
_list = st.one_of(
    st.lists(_entry, max_size=15).map(lambda es: "#EXTM3U\n" + "\n".join(es)),
    st.binary(max_size=500).map(lambda b: b.decode("latin-1")),
)


@settings(
    max_examples=max(25, int(os.environ.get("FUZZ_EXAMPLES", "25")) // 20),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(text=_list)
def test_refresh_any_playlist(
    text: str, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 0, 1 or 3 and no traceback; a failed refresh keeps the previous lineup intact."""
    tmp = tmp_path_factory.mktemp("pipe")
    playlist = tmp / "list.m3u"
    cfg = tmp / "c.yaml"
    cfg.write_text(
        f"data_dir: {tmp / 'data'}\npostvalidate: {{enabled: false}}\n"
        "fetch: {retries: 0, timeout: 5, max_shrink: 1}\n"
        f"providers:\n  - {{name: local, m3u_url: '{playlist}'}}\n{BUCKETS}",
        encoding="utf-8",
    )
    playlist.write_text(PLAYLIST, encoding="utf-8")
    assert main(["refresh", "--config", str(cfg)]) == 0
    before = (tmp / "data" / "lineups.json").read_bytes()
    playlist.write_text(text, encoding="utf-8", errors="surrogateescape")
    capsys.readouterr()
    code = main(["refresh", "--config", str(cfg)])
    out = capsys.readouterr()
    assert code in (0, 1, 3), code
    assert "Traceback" not in out.out + out.err
    if code == 1:
        assert (tmp / "data" / "lineups.json").read_bytes() == before
        assert "nothing published" in out.err
    assert Path(tmp / "data" / "lineups.json").exists()
