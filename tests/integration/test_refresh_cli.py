"""`plextuner refresh` and `lineup` against a fake provider on loopback."""

from __future__ import annotations

import functools
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from plextuner.cli import main
from tests.fakes.provider import PASSWORD, USER, FakeChannel, FakeProvider, make_world

pytestmark = pytest.mark.integration
GROUPS = ["Sports", "News", "Movies", "Kids", "Ünïcode Wörld", "Music"]


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider(make_world()).start()
    yield fake
    fake.stop()


def write_config(tmp_path: Path, providers: str) -> Path:
    cfg = tmp_path / "config.yaml"
    buckets = "".join(
        f"  - {{name: b{i}, friendly_name: '{g}', match: {{group: '^{g}$'}}}}\n"
        for i, g in enumerate(GROUPS)
    )
    cfg.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "postvalidate: {enabled: false}\n"
        "fetch: {retries: 0, timeout: 5}\n"
        f"providers:\n{providers}buckets:\n{buckets}",
        encoding="utf-8",
    )
    return cfg


def m3u_provider(fake: FakeProvider) -> str:
    return f"  - name: main\n    m3u_url: '{fake.m3u_url}'\n"


def xtream_provider(fake: FakeProvider, password: str = PASSWORD) -> str:
    return (
        f"  - name: xt\n    xtream: {{url: '{fake.base}', username: '{USER}', "
        f"password: '{password}'}}\n"
    )


def lineup(cfg: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["lineup", "--config", str(cfg), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def numbers_by_tvg(data: dict) -> dict[str, str]:
    return {c["tvg_id"] or c["name"]: c["number"] for d in data["devices"] for c in d["channels"]}


@pytest.mark.parametrize("kind", ["m3u", "xtream"])
def test_every_channel_in_its_bucket_and_numbers_stable(
    kind: str, provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """~900 channels land in the bucket of their group; numbers survive reorder and additions."""
    spec = m3u_provider(provider) if kind == "m3u" else xtream_provider(provider)
    cfg = write_config(tmp_path, spec)
    assert main(["refresh", "--config", str(cfg)]) == 0
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err
    first = lineup(cfg, capsys)
    assert len(first["devices"]) == 6
    for i, device in enumerate(first["devices"]):
        assert device["name"] == f"b{i}"
        assert {c["group"] for c in device["channels"]} == {GROUPS[i]}
    total = sum(len(d["channels"]) for d in first["devices"])
    assert total == 900  # 911 entries, 11 duplicates merged as backup sources
    assert any(c["sources"] == 2 for d in first["devices"] for c in d["channels"])
    before = numbers_by_tvg(first)

    random.Random(7).shuffle(provider.world.channels)
    provider.world.channels.extend(
        FakeChannel(
            stream_id=20000 + i, name=f"New Channel {i}", group=GROUPS[i % 6], tvg_id=f"new{i}"
        )
        for i in range(12)
    )
    assert main(["refresh", "--config", str(cfg)]) == 0
    after = numbers_by_tvg(lineup(cfg, capsys))
    assert all(after[name] == number for name, number in before.items())
    new_numbers = {after[f"new{i}"] for i in range(12)}
    assert not new_numbers & set(before.values())


@pytest.mark.parametrize(
    "mode", ["html", "empty", "garbage", "truncated", "huge_line", "http500", "bomb", "hls"]
)
def test_hostile_playlist_keeps_last_lineup(
    mode: str, provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each hostile playlist exits 1 with one clear line; the published lineups are untouched."""
    cfg = write_config(tmp_path, m3u_provider(provider))
    cfg.write_text(
        cfg.read_text().replace(
            "fetch: {retries: 0, timeout: 5}",
            "fetch: {retries: 0, timeout: 5, max_bytes: 50000000}",
        )
    )
    assert main(["refresh", "--config", str(cfg)]) == 0
    published = (tmp_path / "data" / "lineups.json").read_bytes()
    capsys.readouterr()
    provider.world.mode = mode
    assert main(["refresh", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    line = [x for x in err.splitlines() if x.startswith("plextuner: error:")]
    assert len(line) == 1 and "127.0.0.1" in line[0], err
    assert "Traceback" not in err and PASSWORD not in err and USER not in err
    assert (tmp_path / "data" / "lineups.json").read_bytes() == published


def test_wrong_credentials(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong Xtream password is a clear error naming the panel, password redacted."""
    cfg = write_config(tmp_path, xtream_provider(provider, password="wrong-pass-123"))
    assert main(["refresh", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "authentication failed" in err and "wrong-pass-123" not in err


def test_one_provider_down_keeps_its_channels(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A provider that fails while another works: publish, say what failed, lose nothing."""
    second = FakeProvider(make_world(count=60)).start()
    try:
        spec = m3u_provider(provider) + f"  - name: other\n    m3u_url: '{second.m3u_url}'\n"
        spec = spec.replace("  - name: other", "  - name: other")
        cfg = write_config(tmp_path, spec)
        assert main(["refresh", "--config", str(cfg)]) == 0
        before = lineup(cfg, capsys)
        provider.world.mode = "html"
        assert main(["refresh", "--config", str(cfg)]) == 0
        out = capsys.readouterr().out
        assert "provider main: FAILED" in out
        after = lineup(cfg, capsys)
        assert numbers_by_tvg(after) == numbers_by_tvg(before)
    finally:
        second.stop()


def test_lineup_without_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`lineup` with nothing published exits 1 with a hint."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path}\n")
    assert main(["lineup", "--config", str(cfg)]) == 1
    assert "refresh" in capsys.readouterr().err


def test_bad_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad config prints each problem with its key path and exits 2."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("port: nope\nbuckets: [{name: x, tuners: 0}]\n")
    assert main(["check-config", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "port:" in err and "buckets.0.tuners:" in err


def test_well_formed_but_truncated_list_is_refused(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A list cut at an entry boundary (valid, but most channels gone) keeps the last lineup."""
    cfg = write_config(tmp_path, m3u_provider(provider))
    assert main(["refresh", "--config", str(cfg)]) == 0
    published = (tmp_path / "data" / "lineups.json").read_bytes()
    full = provider.world.channels
    provider.world.channels = full[:200]
    capsys.readouterr()
    assert main(["refresh", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "shrank from 911 to 200 entries" in err and "fetch.max_shrink" in err
    assert (tmp_path / "data" / "lineups.json").read_bytes() == published
    cfg.write_text(
        cfg.read_text().replace(
            "fetch: {retries: 0, timeout: 5}", "fetch: {retries: 0, timeout: 5, max_shrink: 1}"
        )
    )
    assert main(["refresh", "--config", str(cfg)]) == 0  # the operator accepts the new line-up
    assert sum(len(d["channels"]) for d in lineup(cfg, capsys)["devices"]) == 200


def test_reorder_and_regroup_keep_device_number_and_port(
    provider: FakeProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Shards of 60, then the provider reorders its list and lists 80 channels a second time
    under another group (the "UK & IE" / "US | News" case): every channel keeps its device,
    GuideNumber and port, and none appears twice."""
    cfg = write_config(tmp_path, m3u_provider(provider))
    cfg.write_text(cfg.read_text().replace("'}}\n", "'}, max_channels: 60}\n"))
    assert main(["refresh", "--config", str(cfg)]) == 0

    def where(data: dict) -> dict[str, tuple[str, str, int]]:
        keys = [c["tvg_id"] or c["name"] for d in data["devices"] for c in d["channels"]]
        assert len(keys) == len(set(keys)), "a channel in two devices"
        return {
            c["tvg_id"] or c["name"]: (d["name"], c["number"], d["port"])
            for d in data["devices"]
            for c in d["channels"]
        }

    before = where(lineup(cfg, capsys))
    assert len({v[0] for v in before.values()}) > 6  # sharded
    rng = random.Random(11)
    world = provider.world.channels
    extra = [
        FakeChannel(
            stream_id=30000 + i,
            name=c.name,
            group=rng.choice([g for g in GROUPS if g != c.group]),
            tvg_id=c.tvg_id,
        )
        for i, c in enumerate(rng.sample([c for c in world if c.tvg_id], 80))
    ]
    world.extend(extra)
    rng.shuffle(world)
    assert main(["refresh", "--config", str(cfg)]) == 0
    assert where(lineup(cfg, capsys)) == before


def test_the_console_command_leaves_with_its_output_flushed(
    provider: FakeProvider, tmp_path: Path
) -> None:
    """`plextuner refresh` / `lineup` as processes end with `os._exit` (no teardown of a big
    heap): what they printed into a pipe, their exit code and the files they wrote all stay."""
    cfg = write_config(tmp_path, m3u_provider(provider))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # pipes buffer
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    run = functools.partial(subprocess.run, capture_output=True, text=True, env=env, timeout=120)
    done = run([sys.executable, "-m", "plextuner", "refresh", "--config", str(cfg)])
    assert done.returncode == 0, done.stderr
    assert "channels:" in done.stdout.splitlines()[-1]
    assert (tmp_path / "data" / "lineups.json").stat().st_size > 0
    listed = run([sys.executable, "-m", "plextuner", "lineup", "--config", str(cfg), "--json"])
    assert listed.returncode == 0
    assert len(json.loads(listed.stdout)["devices"]) == 6  # the whole JSON, not a cut buffer
    broken = write_config(tmp_path, "  - {name: gone, m3u_url: '/nonexistent/list.m3u'}\n")
    failed = run([sys.executable, "-m", "plextuner", "refresh", "--config", str(broken)])
    assert failed.returncode == 1
    assert "plextuner: error:" in failed.stderr


def test_a_reader_gone_from_the_pipe_ends_the_command_quietly(
    provider: FakeProvider, tmp_path: Path
) -> None:
    """`plextuner refresh | head`: the reader leaves before the summary is printed. The refresh
    is done and stays published; the command ends as a shell reports SIGPIPE, no traceback."""
    cfg = write_config(tmp_path, m3u_provider(provider))
    for command in (["refresh"], ["lineup", "--json"]):
        ends_quietly_into_a_closed_pipe(command, cfg)
        assert (tmp_path / "data" / "lineups.json").stat().st_size > 0


def ends_quietly_into_a_closed_pipe(command: list[str], cfg: Path) -> None:
    """`plextuner <command>` writing to a pipe nobody reads: 141, as a shell reports SIGPIPE,
    and no traceback."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    read, write = os.pipe()
    os.close(read)  # nobody reads: the first write fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "plextuner", *command, "--config", str(cfg)],
            stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=120,
        )  # fmt: skip
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr


def test_a_refresh_run_in_process_keeps_nothing_for_an_exit(
    provider: FakeProvider, tmp_path: Path
) -> None:
    """Only the console command leaves its outcome to `os._exit`; `main()` in a long-lived
    process (tests, the daemon's own calls) frees it as usual."""
    from plextuner import cli

    cfg = write_config(tmp_path, m3u_provider(provider))
    assert main(["refresh", "--config", str(cfg)]) == 0
    assert not cli._LEFT_TO_EXIT


def test_only_a_serving_refresh_decodes_big_panel_replies_in_steps(
    provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh command serves no viewers: a big Xtream reply is decoded in one msgspec
    call; a refresh inside `serve` keeps decoding it in steps its event loop can run between."""
    import asyncio

    from plextuner.config import load_settings
    from plextuner.ingest import xtream
    from plextuner.pipeline import run_refresh

    seen: list[bool] = []
    real = xtream._json

    def spy(data: bytes, label: str, yield_gil: bool = True) -> object:
        seen.append(yield_gil)
        return real(data, label, yield_gil)

    monkeypatch.setattr(xtream, "_json", spy)
    cfg = write_config(tmp_path, xtream_provider(provider))
    assert main(["refresh", "--config", str(cfg)]) == 0
    assert seen and not any(seen)
    seen.clear()
    asyncio.run(run_refresh(load_settings(cfg, env={})))
    assert seen and all(seen)


def test_a_published_lineup_is_out_of_the_collectors_sight(
    provider: FakeProvider, tmp_path: Path
) -> None:
    """The entries, channels and sources of a lineup are not tracked by the cyclic collector,
    refreshed or read back from the data dir. In `serve` the first collection after a refresh
    walked every tracked object the refresh made, holding the GIL: 300k for 50k channels, a
    50 ms pause of the event loop and of every viewer (now 100k lists, ~7 ms). None of them
    can be part of a cycle: each holds strings, numbers and the next level down only."""
    import asyncio
    import gc

    from plextuner.config import load_settings
    from plextuner.pipeline import run_refresh
    from plextuner.state.published import load_state

    settings = load_settings(write_config(tmp_path, m3u_provider(provider)), env={})
    outcome = asyncio.run(run_refresh(settings))
    loaded = load_state(settings.paths)
    assert loaded is not None
    for state in (outcome.state, loaded):
        entries = [e for d in state.devices for e in (*d.entries, *d.dropped)]
        assert entries
        for e in entries:
            assert not gc.is_tracked(e)
            assert not gc.is_tracked(e.channel)
            assert e.channel.sources
            assert not any(gc.is_tracked(s) for s in e.channel.sources)
