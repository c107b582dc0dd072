"""A big playlist parsed in two parts (ingest/m3uhalf.py) gives what one process gives."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from plextuner import cpus, early
from plextuner.config import load_settings
from plextuner.errors import IngestError
from plextuner.ingest import lines, m3uhalf
from plextuner.ingest.m3u import parse_m3u_file, sniff_rejection
from plextuner.ingest.m3uhalf import HalfAnswer, HalfJob, PlaylistHelpers, parse_in_two
from plextuner.ingest.models import Entry, ParseReport
from plextuner.pipeline import _big_playlist, run_refresh
from plextuner.state.published import ProviderState, PublishedState
from tests.unit.test_m3u_lane import _outcome, _playlists


class _InProcess:
    """A `Split` whose helper is run_half called here on the file's bytes from `offset`."""

    def __init__(self, path: Path, offset: int) -> None:
        self.offset, self._data = offset, path.read_bytes()[offset:]
        with path.open("rb") as fh:
            fd = fh.fileno()
            self.job = HalfJob(
                "s", "p", m3uhalf._lines_before(fd, offset), m3uhalf._header_shift(fd, "s")
            )
        self.taken: bool | None = None

    def collect(self) -> HalfAnswer:
        self.taken = True
        return m3uhalf.run_half(self.job, io.BytesIO(self._data))

    def drop(self, why: str) -> None:
        self.taken = False


def _split_points(data: bytes) -> list[int]:
    """Where the helper may start: every line that begins with `#EXTINF:`."""
    return [i + 1 for i in range(len(data)) if data.startswith(b"\n#EXTINF:", i)]


def _in_two(path: Path, offset: int) -> tuple[tuple[list[Entry], ParseReport] | str, _InProcess]:
    part = _InProcess(path, offset)
    with path.open("rb") as fh:
        return _outcome(parse_in_two, fh, part), part


@given(_playlists(), st.sampled_from([16, 64, 1 << 20]))
@settings(max_examples=300, deadline=None)
@example(
    '#EXTM3U tvg-shift="2"\n#EXTINF:-1 tvg-id="a",A\nhttp://h1.invalid/1.ts\n'
    '#EXTINF:-1 tvg-id="b",B\nhttp://h1.invalid/2.ts\n#EXTINF:-1 tvg-id="c",C\nhttp://h1.invalid/3.ts',
    1 << 20,
)
@example(
    "#EXTM3U\n#EXTGRP:Sticky\n#EXTINF:-1,A\nhttp://h1.invalid/1.ts\n#EXTINF:-1,B\nhttp://h/2.ts\n",
    16,
)
@example(
    '#EXTM3U\n#EXTINF:-1,A\nhttp://h1.invalid/1.ts\n#EXTM3U url-tvg="http://g" tvg-shift="1"\n'
    "#EXTINF:-1,B\nhttp://h1.invalid/2.ts\n#EXTINF:-1,C\nhttp://h1.invalid/3.ts\n",
    64,
)
@example(
    "#EXTM3U\n#EXTINF:-1,A\nhttp://h/1.ts\n#EXTVLCOPT:http-user-agent=VLC\n#EXTINF:-1,B\n"
    "http://h/2.ts\n#KODIPROP:inputstream.adaptive.license_type=com.widevine.alpha\n"
    "#EXTINF:-1,C\nhttp://h/3.ts\n#EXTINF:-1,D\n#EXTINF:-1,E\nhttp://h/5.ts\n",
    1 << 20,
)
def test_every_split_gives_the_one_process_parse(text: str, block: int) -> None:
    """Entries (line numbers included), skips, guide URLs and tvg-shift are the one-process
    parse's at every `#EXTINF` line the helper could start at; where the state there is not
    what the helper was told, its part is not taken."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(lines, "BLOCK", block)
        path = Path(tmp) / "list.m3u"
        data = text.encode("utf-8", "surrogatepass")
        path.write_bytes(data)
        if sniff_rejection(text.removeprefix("\ufeff")[:2048]) is not None:
            return
        want = _outcome(parse_m3u_file, path, "s", "p")
        for offset in _split_points(data)[:12]:
            got, part = _in_two(path, offset)
            assert got == want
            assert part.taken is not None


def _big_playlist_text(entries: int, header: str = "#EXTM3U") -> str:
    out = [header]
    for i in range(entries):
        out.append(f'#EXTINF:-1 tvg-id="c{i}.tv" tvg-logo="http://l.invalid/{i}.png" '
                   f'group-title="G{i % 5}",Channel {i} ' + "x" * 100)  # fmt: skip
        out.append(f"http://cdn{i % 3}.invalid/live/u/p/{i}.ts")
    return "\n".join(out) + "\n"


@pytest.fixture
def big(tmp_path: Path) -> Path:
    path = tmp_path / "big.m3u"
    path.write_text(_big_playlist_text(12_000), encoding="utf-8")
    assert path.stat().st_size >= m3uhalf.SPLIT_MIN
    return path


@pytest.fixture
def two_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """A second CPU, and a helper counted as started (else a 2 MB list is all the parser's
    while the helper starts: see the test of that)."""
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 2.0)
    monkeypatch.setattr(m3uhalf, "START", 0.0)


def _spawned(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    procs: list[subprocess.Popen[bytes]] = []
    spawn = early.spawn

    def counted() -> subprocess.Popen[bytes]:
        procs.append(spawn())
        return procs[-1]

    monkeypatch.setattr(early, "spawn", counted)
    return procs


def _parse_with_helper(path: Path, helpers: PlaylistHelpers) -> Any:
    try:
        return _outcome(parse_m3u_file, path, "s", "p", helpers)
    finally:
        helpers.close()


def _taken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    take = m3uhalf.take_answer

    def counted(state: Any, answer: HalfAnswer) -> None:
        calls.append(len(answer.entries))
        take(state, answer)

    monkeypatch.setattr(m3uhalf, "take_answer", counted)
    return calls


@pytest.mark.parametrize("warm", [True, False])
@pytest.mark.usefixtures("two_cpus")
def test_a_big_playlist_is_parsed_by_two_processes(
    big: Path, monkeypatch: pytest.MonkeyPatch, warm: bool
) -> None:
    want = _outcome(parse_m3u_file, big, "s", "p")
    taken = _taken(monkeypatch)
    assert _parse_with_helper(big, PlaylistHelpers(warm=warm)) == want
    assert len(taken) == 1 and 2_000 < taken[0] < 10_000  # the helper's part, by the balance


def test_a_helper_just_started_is_not_given_a_part_it_would_finish_last(
    big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2.3 MB take the parser ~0.05 s: less than a helper's start. Not split, and the helper
    is gone."""
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 2.0)
    procs, taken = _spawned(monkeypatch), _taken(monkeypatch)
    assert _parse_with_helper(big, PlaylistHelpers()) == _outcome(parse_m3u_file, big, "s", "p")
    assert taken == [] and len(procs) == 1 and procs[0].returncode is not None


def test_one_cpu_parses_alone(big: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 1.0)
    taken = _taken(monkeypatch)
    helpers = PlaylistHelpers(warm=True)
    assert helpers._ready is None  # nothing started
    assert _parse_with_helper(big, helpers) == _outcome(parse_m3u_file, big, "s", "p")
    assert taken == []


def test_a_small_playlist_starts_no_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "small.m3u"
    path.write_text(_big_playlist_text(100))
    spawned: list[object] = []
    monkeypatch.setattr(early, "spawn", lambda: spawned.append(1))
    assert _parse_with_helper(path, PlaylistHelpers()) == _outcome(parse_m3u_file, path, "s", "p")
    assert spawned == []


@pytest.mark.parametrize(
    ("helper", "why"),
    [
        ("import sys; sys.stdin.buffer.read(); sys.exit(3)", "the helper exited 3"),
        ("import sys; sys.stdin.buffer.read(); sys.stdout.write('junk')", "unreadable"),
        (
            "import sys; sys.stdin.buffer.read(); sys.stdout.buffer.write(b'\\x93\\x01')",
            "unreadable",
        ),
        ("import time; time.sleep(60)", "the helper took over"),
    ],
)
@pytest.mark.usefixtures("two_cpus")
def test_a_helper_that_fails_leaves_the_rest_to_the_parser(
    big: Path, monkeypatch: pytest.MonkeyPatch, helper: str, why: str
) -> None:
    monkeypatch.setattr(early, "HELPER", [sys.executable, "-c", helper])
    monkeypatch.setattr(m3uhalf, "WAIT_MIN", 1.0)
    procs = _spawned(monkeypatch)
    logged: list[str] = []
    monkeypatch.setattr(m3uhalf, "_dropped", lambda source, reason: logged.append(reason))
    taken = _taken(monkeypatch)
    started = time.monotonic()
    assert _parse_with_helper(big, PlaylistHelpers()) == _outcome(parse_m3u_file, big, "s", "p")
    assert time.monotonic() - started < 30
    assert taken == [] and len(logged) == 1 and why in logged[0]
    assert len(procs) == 1 and procs[0].returncode is not None  # gone, not left running


@pytest.mark.usefixtures("two_cpus")
def test_a_group_in_force_at_the_split_is_not_the_helpers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An `#EXTGRP` at the top is in force for every entry: the helper, told none, is not
    taken, and the parser reads on alone."""
    path = tmp_path / "grp.m3u"
    text = _big_playlist_text(12_000).replace(' group-title="G', ' x-group="G')
    path.write_text(text.replace("#EXTM3U\n", "#EXTM3U\n#EXTGRP:Sticky\n", 1))
    logged: list[str] = []
    monkeypatch.setattr(m3uhalf, "_dropped", lambda source, reason: logged.append(reason))
    got = _parse_with_helper(path, PlaylistHelpers())
    assert got == _outcome(parse_m3u_file, path, "s", "p")
    assert {e.group for e in got[0]} == {"Sticky"}
    assert logged == ["the state at the split is not the helper's"]


@pytest.mark.usefixtures("two_cpus")
def test_the_header_shift_goes_to_the_helper(tmp_path: Path) -> None:
    path = tmp_path / "shift.m3u"
    path.write_text(_big_playlist_text(12_000, '\ufeff #EXTM3U tvg-shift="+2" url-tvg="http://g"'))
    entries, report = _parse_with_helper(path, PlaylistHelpers())
    assert {e.tvg_shift for e in entries} == {2.0}
    assert report.guide_urls == ["http://g"] and report.entries == 12_000


@pytest.mark.usefixtures("two_cpus")
def test_a_parser_failure_ends_the_helper(big: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    procs = _spawned(monkeypatch)

    def broken(blocks: object, state: object) -> None:
        raise MemoryError

    monkeypatch.setattr(m3uhalf, "walk", broken)
    with pytest.raises(MemoryError):
        _parse_with_helper(big, PlaylistHelpers())
    assert len(procs) == 1 and procs[0].returncode is not None


def test_a_warm_helper_not_needed_ends_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 2.0)
    helpers = PlaylistHelpers(warm=True)
    assert helpers._ready is not None
    proc = helpers._ready[0]
    out, err = proc.communicate(b"", timeout=30)  # input closed: the job is never sent
    assert (proc.returncode, out, err) == (0, b"", b"")
    helpers.close()
    assert helpers._ready is None


def test_a_helper_for_a_gone_parser_ends(big: Path) -> None:
    """A parser killed mid-way closes the helper's input: it answers into a closed pipe or
    ends on the truncated job, never waits forever."""
    proc = subprocess.Popen(
        early.HELPER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.communicate(m3uhalf._HEAD.pack(1000) + b"\x93", timeout=30)  # a job cut short
    assert proc.returncode != 0


def test_a_big_playlist_is_expected_from_its_last_count_or_its_size(tmp_path: Path) -> None:
    small, large = tmp_path / "small.m3u", tmp_path / "large.m3u"
    small.write_text(_big_playlist_text(10))
    with large.open("wb") as fh:
        fh.truncate(m3uhalf.SPLIT_MIN)

    def expected(url: str, entries: int | None = None) -> bool:
        cfg = load_settings(None, {"data_dir": str(tmp_path / "d"),
                                   "providers": [{"name": "p", "m3u_url": url}]})  # fmt: skip
        head = PublishedState(devices=[], providers=[ProviderState(name="p", entries=entries)])
        return _big_playlist(cfg, head if entries is not None else None)

    assert not expected(str(small))
    assert expected(str(large)) and expected(f"file://{large}")
    assert not expected("http://h.invalid/list.m3u") and not expected(str(tmp_path / "none"))
    assert expected("http://h.invalid/list.m3u", m3uhalf.WARM_ENTRIES)
    assert not expected("http://h.invalid/list.m3u", m3uhalf.WARM_ENTRIES - 1)


@pytest.mark.usefixtures("two_cpus")
async def test_a_refresh_of_a_big_list_starts_its_helper_ahead(
    big: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warmed: list[bool] = []
    init = PlaylistHelpers.__init__

    def spy(self: PlaylistHelpers, warm: bool = False) -> None:
        warmed.append(warm)
        init(self, warm)

    monkeypatch.setattr(PlaylistHelpers, "__init__", spy)
    taken = _taken(monkeypatch)
    settings_ = load_settings(
        None,
        {
            "data_dir": str(tmp_path / "data"),
            "providers": [{"name": "p", "m3u_url": str(big)}],
            "postvalidate": {"enabled": False},
            "epg": {"placeholder": False},
        },
    )
    outcome = await run_refresh(settings_, serving=False)
    assert warmed == [True] and len(taken) == 1
    assert sum(len(d.entries) for d in outcome.state.devices) == 12_000


@pytest.mark.usefixtures("two_cpus")
def test_an_ingest_error_is_the_one_process_parses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No entry in either part: the one-process error, with both parts' skips."""
    path = tmp_path / "none.m3u"
    path.write_text("#EXTM3U\n" + "#EXTINF:-1,\nhttp://h.invalid/x.ts\n" * 100_000)
    with pytest.raises(IngestError) as one:
        parse_m3u_file(path, "s", "p")
    taken = _taken(monkeypatch)
    got = _parse_with_helper(path, PlaylistHelpers())
    assert got == str(one.value) and "=100000" in got
    assert taken == [0]


@pytest.mark.usefixtures("two_cpus")
async def test_two_big_playlists_each_get_a_helper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Providers are ingested together: the second big list starts a helper of its own, and
    the merged lineup is what one process makes of the two (first provider's entries first)."""
    lists = []
    for n in range(2):
        path = tmp_path / f"list{n}.m3u"
        text = _big_playlist_text(12_000).replace("/live/u/", f"/live/u{n}/")
        path.write_text(text.replace("Channel ", f"P{n} Channel "))
        lists.append(path)
    procs, taken = _spawned(monkeypatch), _taken(monkeypatch)

    def settings_for(data: str) -> Any:
        return load_settings(
            None,
            {
                "data_dir": str(tmp_path / data),
                "providers": [{"name": f"p{n}", "m3u_url": str(p)} for n, p in enumerate(lists)],
                "postvalidate": {"enabled": False},
                "epg": {"placeholder": False},
            },
        )

    two = await run_refresh(settings_for("two"), serving=False)
    assert len(taken) == 2 and len(procs) == 2
    assert all(p.returncode is not None for p in procs)
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 1.0)
    one = await run_refresh(settings_for("one"), serving=False)
    assert len(taken) == 2  # the second refresh split nothing
    flat = [[(e.number, e.channel) for e in d.entries] for d in two.state.devices]
    assert flat == [[(e.number, e.channel) for e in d.entries] for d in one.state.devices]
    assert sum(len(d) for d in flat) == 12_000  # the same tvg-ids: one channel, two sources
    assert {len(ch.sources) for d in flat for _, ch in d} == {2}


def test_the_refresh_command_starts_a_helper_before_its_imports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 2.0)
    monkeypatch.setattr(early, "_started", None)
    early.start(["plextuner", "serve"])
    early.start(["plextuner", "lineup", "refresh"])
    assert early.take() is None
    early.start(["plextuner", "refresh", "--config", "x.yaml"])
    started = early._started
    assert started is not None
    helpers = PlaylistHelpers()  # not expected big: the early helper taken all the same
    assert helpers._ready is started and early.take() is None
    helpers.close()
    assert started[0].returncode is not None


def test_one_cpu_starts_no_early_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "usable_cpus", lambda: 1.0)
    monkeypatch.setattr(early, "_started", None)
    early.start(["plextuner", "refresh"])
    assert early.take() is None


def test_the_refresh_command_splits_a_big_list(big: Path, tmp_path: Path) -> None:
    """As a user runs it: the helper started by the command takes the second part."""
    config = tmp_path / "c.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\nproviders:\n  - {{name: p, m3u_url: '{big}'}}\n"
        "epg: {placeholder: false}\npostvalidate: {enabled: false}\nlog_level: debug\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "plextuner", "refresh", "--config", str(config)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    log = proc.stderr.decode()
    if cpus.second_cpu():
        assert '"playlist_split"' in log and "playlist_half_dropped" not in log
    assert "12000 entries" in proc.stdout.decode()


def test_the_pipes_to_and_from_a_helper_are_widened(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    read, write = os.pipe()
    try:
        m3uhalf._widen(write)
        assert fcntl.fcntl(write, fcntl.F_GETPIPE_SZ) == m3uhalf.PIPE_SIZE
    finally:
        os.close(read)
        os.close(write)
    with (tmp_path / "f").open("wb") as fh:
        m3uhalf._widen(fh.fileno())  # not a pipe: refused, left as it is, no error
