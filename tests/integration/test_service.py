"""The daemon's lifecycle and operations: admin API, restarts on a dead provider, metrics,
secrets nowhere, SIGTERM, the status page in a real browser."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from plextuner.service import Service
from tests.conftest import free_port, require_tool
from tests.fakes.daemon import daemon_settings, running, serve_process
from tests.fakes.provider import PASSWORD, USER, FakeProvider, make_world
from tests.waiting import until, until_sync

pytestmark = pytest.mark.integration
ADMIN = "admin-token-5150-qq"


def base(service: Service) -> str:
    return f"http://127.0.0.1:{service.settings.port}"


def provider_spec(fake: FakeProvider) -> list[dict[str, object]]:
    return [{"name": "xt", "xtream": {"url": fake.base, "username": USER, "password": PASSWORD}}]


BUCKETS = [
    {"name": "sports", "match": {"group": "Sports"}},
    {"name": "news", "match": {"group": "News"}},
]


async def test_admin_refresh_auth(tmp_path: Path) -> None:
    """POST /api/v1/refresh: 401 without or with a wrong token, 202 with the right one."""
    fake = FakeProvider(make_world(count=60)).start()
    try:
        settings = daemon_settings(
            tmp_path, provider_spec(fake), BUCKETS, devices=2, admin_token=ADMIN
        )
        async with running(settings) as service:
            async with httpx.AsyncClient() as client:
                url = base(service) + "/api/v1/refresh"
                assert (await client.post(url)).status_code == 401
                bad = await client.post(url, headers={"Authorization": "Bearer nope"})
                assert bad.status_code == 401
                before = service.runtime.refresh.finished_at
                ok = await client.post(url, headers={"Authorization": f"Bearer {ADMIN}"})
                assert ok.status_code == 202
                info = service.runtime.refresh
                await until(
                    lambda: info.finished_at is not None and info.finished_at != before,
                    "the admin-triggered refresh to finish",
                )
                assert info.ok is True
    finally:
        fake.stop()


async def test_admin_off_without_token(tmp_path: Path) -> None:
    """Without an admin_token the admin routes are off."""
    fake = FakeProvider(make_world(count=10)).start()
    try:
        settings = daemon_settings(tmp_path, provider_spec(fake), BUCKETS, devices=2)
        async with running(settings) as service, httpx.AsyncClient() as client:
            r = await client.post(
                base(service) + "/api/v1/refresh", headers={"Authorization": "Bearer x"}
            )
            assert r.status_code == 403
    finally:
        fake.stop()


async def test_restart_with_provider_down_serves_same_lineups(tmp_path: Path) -> None:
    """After a restart with the provider down, the same lineups are served and /readyz is 200."""
    fake = FakeProvider(make_world(count=60)).start()
    settings = daemon_settings(
        tmp_path, provider_spec(fake), BUCKETS, devices=2, fetch={"retries": 0, "timeout": 2}
    )
    async with running(settings) as service, httpx.AsyncClient() as client:
        before = (await client.get(base(service) + "/lineup.json")).json()
    fake.stop()
    settings = settings.model_copy(update={"refresh_interval": 1.0})
    async with running(settings) as service, httpx.AsyncClient() as client:
        await until(lambda: service.runtime.refresh.ok is False, "a failed refresh")
        assert (await client.get(base(service) + "/readyz")).status_code == 200
        assert (await client.get(base(service) + "/lineup.json")).json() == before
        assert service.runtime.refresh.ok is False


async def test_metrics_promtool_and_names(tmp_path: Path) -> None:
    """/metrics passes promtool and carries the contract's names, no credential anywhere."""
    promtool = require_tool("promtool")
    fake = FakeProvider(make_world(count=30)).start()
    try:
        settings = daemon_settings(tmp_path, provider_spec(fake), BUCKETS, devices=2)
        async with running(settings) as service, httpx.AsyncClient() as client:
            text = (await client.get(base(service) + "/metrics")).text
    finally:
        fake.stop()
    for name in (
        "plextuner_channels",
        "plextuner_refresh_duration_seconds",
        "plextuner_refresh_last_success_timestamp_seconds",
    ):
        assert name in text
    assert 'plextuner_channels{bucket="sports"}' in text
    assert PASSWORD not in text and USER not in text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_prometheus_scrapes(tmp_path: Path) -> None:
    """A real Prometheus server scrapes /metrics and sees plextuner_channels."""
    prometheus = require_tool("prometheus")
    fake = FakeProvider(make_world(count=30)).start()
    prom_port = free_port()
    try:
        settings = daemon_settings(tmp_path / "d", provider_spec(fake), BUCKETS, devices=2)
        async with running(settings) as service:
            cfg = tmp_path / "prometheus.yml"
            cfg.write_text(
                "global: {scrape_interval: 1s}\n"
                "scrape_configs:\n  - job_name: plextuner\n"
                f"    static_configs: [{{targets: ['127.0.0.1:{service.settings.port}']}}]\n"
            )
            proc = await asyncio.create_subprocess_exec(
                prometheus,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                found = False
                async with httpx.AsyncClient() as client:
                    for _ in range(60):
                        await asyncio.sleep(0.5)
                        try:
                            r = await client.get(
                                f"http://127.0.0.1:{prom_port}/api/v1/query",
                                params={"query": "plextuner_channels"},
                            )
                        except httpx.HTTPError:
                            continue
                        if r.status_code == 200 and r.json()["data"]["result"]:
                            found = True
                            break
                assert found
            finally:
                proc.terminate()
                await proc.wait()
    finally:
        fake.stop()


def test_sigterm_graceful_exit_and_no_secret_in_output(tmp_path: Path) -> None:
    """`plextuner serve` exits 0 on SIGTERM; no output line, body or metric carries a secret."""
    fake = FakeProvider(make_world(count=40)).start()
    port = free_port()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"host: 127.0.0.1\nport: {port}\ndiscovery_port: 0\ndata_dir: {tmp_path / 'data'}\n"
        f"admin_token: {ADMIN}\npostvalidate: {{enabled: false}}\n"
        f"providers:\n  - name: xt\n    xtream: {{url: '{fake.base}', username: '{USER}', "
        f"password: '{PASSWORD}'}}\n"
        "buckets:\n  - {name: sports, match: {group: Sports}}\n"
        f"epg: {{sources: ['{fake.base}/missing.xml?username={USER}&password={PASSWORD}']}}\n"
    )
    proc = serve_process(cfg, port, 20)
    bodies = []
    try:
        with httpx.Client(timeout=5) as client:
            for path in (
                "/",
                "/api/v1/status",
                "/metrics",
                "/lineup.json",
                "/discover.json",
                "/guide.xml",
                "/auto/v1000",
                "/nope",
            ):
                bodies.append(client.get(f"http://127.0.0.1:{port}{path}").text)
            bodies.append(
                client.post(
                    f"http://127.0.0.1:{port}/api/v1/refresh",
                    headers={"Authorization": "Bearer wrong"},
                ).text
            )
            fake.world.mode = "html"
            bodies.append(
                client.post(
                    f"http://127.0.0.1:{port}/api/v1/refresh",
                    headers={"Authorization": f"Bearer {ADMIN}"},
                ).text
            )

            def failed() -> bool:
                status = client.get(f"http://127.0.0.1:{port}/api/v1/status")
                bodies.append(status.text)
                refresh = status.json()["refresh"]
                return refresh["running"] is False and refresh["ok"] is False

            until_sync(failed, "the refresh against the broken provider to fail")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        fake.stop()
    output = proc.stdout.read() if proc.stdout else ""
    everything = output + "\n".join(bodies)
    for secret in (PASSWORD, ADMIN):
        assert secret not in everything, secret
    assert "stopped" in output


async def test_status_page_in_chromium(tmp_path: Path) -> None:
    """The status page renders in headless Chromium with every device listed (screenshot kept)."""
    chromium = require_tool("chromium")
    fake = FakeProvider(make_world(count=30)).start()
    try:
        settings = daemon_settings(tmp_path / "d", provider_spec(fake), BUCKETS, devices=2)
        async with running(settings) as service:
            shot = tmp_path / "status.png"
            args = [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--window-size=420,900",
            ]
            dom = await asyncio.create_subprocess_exec(
                *args,
                "--dump-dom",
                base(service) + "/",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            html, _ = await asyncio.wait_for(dom.communicate(), 60)
            png = await asyncio.create_subprocess_exec(
                *args,
                f"--screenshot={shot}",
                base(service) + "/",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.wait_for(png.wait(), 60)
    finally:
        fake.stop()
    text = html.decode()
    for device in service.runtime.state.devices:  # type: ignore[union-attr]
        assert device.device_id in text
        assert f"http://127.0.0.1:{device.port}" in text
    assert shot.exists() and shot.stat().st_size > 1000
    artifacts = Path(os.environ.get("PLEXTUNER_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "status-page.png").write_bytes(shot.read_bytes())


@pytest.mark.parametrize("young", [False, True])
def test_the_heap_is_collected_before_it_is_frozen(
    monkeypatch: pytest.MonkeyPatch, young: bool
) -> None:
    """Cyclic garbage frozen with the served state is never freed: `settle_heap` collects it
    first (a refresh held by its failed guide download leaked ~50 MB a refresh that way), the
    youngest generation alone after a refresh run with the collector off (what it made)."""
    import gc
    import weakref

    from plextuner.service import settle_heap

    class Node:
        me: object = None

    frozen_garbage: list[bool] = []
    gc.collect()
    gc.disable()  # the cycle made with the collector off, as a refresh's objects are
    try:
        node = Node()
        node.me = node
        gone = weakref.ref(node)
        del node
        monkeypatch.setattr(gc, "freeze", lambda: frozen_garbage.append(gone() is not None))
        assert gone() is not None  # a cycle: only the collector frees it
        settle_heap(young=young)
    finally:
        gc.enable()
    assert frozen_garbage == [False]


def test_what_an_earlier_settle_froze_is_collected_once_it_is_garbage() -> None:
    """An object alive at a refresh (a viewer's session) is frozen with the state; a cycle it
    ends in later is freed by the next full settle, which unfreezes first; a young one (viewers
    streaming) leaves it for then."""
    import gc
    import weakref

    from plextuner.service import settle_heap

    class Node:
        me: object = None

    node = Node()
    node.me = node
    gone = weakref.ref(node)
    try:
        settle_heap()  # `node` alive: frozen with everything else
        del node  # garbage now, in a cycle, out of the collector's sight
        gc.collect()
        assert gone() is not None  # a plain collection leaves the frozen alone
        settle_heap(young=True)
        assert gone() is not None
        settle_heap()
        assert gone() is None
    finally:
        gc.unfreeze()  # the next tests' objects stay collectable


async def test_a_refresh_settles_fully_only_when_nobody_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full settle (a ~30 ms pause with 50k channels) waits for a refresh with no viewer,
    or for a day since the last."""
    import plextuner.service as service_module

    fake = FakeProvider(make_world(count=30)).start()
    settles: list[bool] = []
    real = service_module.settle_heap

    def record(*, young: bool = False) -> None:
        settles.append(young)
        real(young=young)

    monkeypatch.setattr(service_module, "settle_heap", record)
    settings = daemon_settings(tmp_path, provider_spec(fake), BUCKETS, devices=2)
    try:
        async with running(settings) as service:
            settles.clear()
            assert await service.refresh_once(quick=True)
            assert settles[-1] is False
            monkeypatch.setattr(service.engine, "streaming", lambda: True)
            assert await service.refresh_once(quick=True)
            assert settles[-1] is True
            # a daemon never without a viewer at its refreshes: a full one once a day all the same
            monkeypatch.setattr(service_module, "FULL_SETTLE_EVERY", 0.0)
            assert await service.refresh_once(quick=True)
            assert settles[-1] is False
    finally:
        fake.stop()
        import gc

        gc.unfreeze()


def test_the_daemon_limits_its_malloc_arenas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before any refresh's worker thread allocates (memtrim.limit_arenas says why)."""
    from plextuner import memtrim

    calls: list[int] = []

    def limit(count: int = memtrim.ARENAS) -> bool:
        calls.append(count)
        return True

    monkeypatch.setattr(memtrim, "limit_arenas", limit)
    Service(daemon_settings(tmp_path, [], BUCKETS, devices=1))
    assert calls == [2]


async def test_published_means_every_devices_port_is_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client told the daemon serves (`published`, what the demo announces on) reaches every
    device's port: the state is swapped in before the heap is settled and the new ports open,
    and a test's ffprobe was refused on the second device's port in that gap."""
    import socket

    import plextuner.service as service_module

    fake = FakeProvider(make_world(count=30)).start()
    gate = asyncio.Event()

    async def held_trim() -> None:  # the settling after the swap, held open here
        await gate.wait()

    monkeypatch.setattr(service_module, "trim_in_thread", held_trim)
    settings = daemon_settings(tmp_path, provider_spec(fake), BUCKETS, devices=2)
    try:
        async with running(settings, wait_published=False) as service:
            await until(lambda: service.runtime.state is not None, "the state swapped in")
            assert not service.published.is_set()
            gate.set()
            async with asyncio.timeout(10):
                await service.published.wait()
            state = service.runtime.state
            assert state is not None and len(state.devices) == 2
            for device in state.devices:
                with socket.create_connection(("127.0.0.1", device.port), timeout=5):
                    pass
    finally:
        fake.stop()
        import gc

        gc.unfreeze()
