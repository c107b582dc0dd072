"""`plextuner guide`: the published guide as the daemon serves it, placeholders rendered.

A big lineup's device guides hold their placeholder programmes as a note (placeholders.py), so
a tool reading guides/*.xml directly misses them; the command prints /epg.xml (or one bucket's
guide.xml) whole, as the HTTP answers carry it."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from plextuner import placeholders as fill
from plextuner.cli import main
from plextuner.datadir import DataDir
from plextuner.state.aggregate import open_aggregate, read_guide
from plextuner.state.published import load_state
from tests.conftest import require_tool
from tests.fakes.provider import FakeProvider, make_world
from tests.integration.test_refresh_cli import (
    ends_quietly_into_a_closed_pipe,
    m3u_provider,
    write_config,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    fake = FakeProvider(make_world()).start()
    yield fake
    fake.stop()


@pytest.fixture
def published(
    provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, DataDir]:
    """A refresh whose every device guide notes its placeholders (as a big lineup's do)."""
    monkeypatch.setattr(fill, "NOTE_FROM", 0)
    cfg = write_config(tmp_path, m3u_provider(provider))
    assert main(["refresh", "--config", str(cfg)]) == 0
    return cfg, DataDir(tmp_path / "data")


def programmes(xml: bytes) -> Counter[str]:
    """Programmes a channel id."""
    root = etree.fromstring(xml)
    return Counter(p.get("channel", "") for p in root.iterfind("programme"))


def test_the_whole_guide_holds_every_channels_placeholders(
    published: tuple[Path, DataDir], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    cfg, paths = published
    state = load_state(paths)
    assert state is not None
    numbers = {e.number for d in state.devices for e in d.entries}
    capsysbinary.readouterr()
    assert main(["guide", "--config", str(cfg)]) == 0
    out = capsysbinary.readouterr().out
    served = programmes(out)
    assert {c.split(".")[0] for c in served} == numbers  # every channel has programmes
    on_disk: Counter[str] = Counter()
    for d in state.devices:
        on_disk += programmes(paths.guide(d.name).read_bytes())
    assert sum(on_disk.values()) < sum(served.values())  # the files alone lack the noted ones
    agg = open_aggregate([paths.guide(d.name) for d in state.devices])  # what /epg.xml sends
    assert agg is not None
    try:
        assert len(out) == agg.size
    finally:
        agg.close()


def test_a_bucket_is_its_guide_xml_and_a_file_is_written_whole(
    published: tuple[Path, DataDir],
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    cfg, paths = published
    state = load_state(paths)
    assert state is not None
    device = state.devices[1]
    capsysbinary.readouterr()
    assert main(["guide", "--config", str(cfg), "--bucket", device.name]) == 0
    out = capsysbinary.readouterr().out
    assert out == read_guide(paths.guide(device.name))
    assert {c.split(".")[0] for c in programmes(out)} == {e.number for e in device.entries}
    target = tmp_path / "out" / "guide.xml"
    args = ["guide", "--config", str(cfg), "--bucket", device.name, "--output", str(target)]
    assert main(args) == 0
    assert target.read_bytes() == out
    assert target.stat().st_mode & 0o777 == 0o644
    assert not [p for p in target.parent.iterdir() if p != target]  # no temporary left


def test_the_guide_validates(published: tuple[Path, DataDir], tmp_path: Path) -> None:
    tool = require_tool("tv_validate_file")
    cfg, _ = published
    target = tmp_path / "epg.xml"
    assert main(["guide", "--config", str(cfg), "--output", str(target)]) == 0
    done = subprocess.run(
        [tool, str(target)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "XMLTV_SUPPLEMENT": "/usr/share/xmltv"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_what_cannot_be_printed_says_why(
    published: tuple[Path, DataDir], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg, paths = published
    capsys.readouterr()
    assert main(["guide", "--config", str(cfg), "--bucket", "nope"]) == 1
    assert "no published bucket named 'nope'" in capsys.readouterr().err
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["guide", "--config", str(cfg), "--output", str(blocker / "epg.xml")]) == 1
    assert "cannot write" in capsys.readouterr().err
    for guide in paths.guide("x").parent.glob("*.xml"):
        guide.unlink()
    assert main(["guide", "--config", str(cfg)]) == 1
    assert "no guide written" in capsys.readouterr().err
    empty = tmp_path / "empty.yaml"
    empty.write_text(f"data_dir: {tmp_path / 'none'}\n")
    assert main(["guide", "--config", str(empty)]) == 1
    assert "refresh" in capsys.readouterr().err


def test_a_reader_gone_from_the_pipe_ends_it_quietly(published: tuple[Path, DataDir]) -> None:
    """`plextuner guide | head`: the command ends as a shell reports SIGPIPE, no traceback."""
    cfg, _ = published
    ends_quietly_into_a_closed_pipe(["guide"], cfg)


def test_a_guide_cut_under_the_reader_is_a_clear_error(
    published: tuple[Path, DataDir], capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone truncating a guide file in place (never the daemon: it replaces them) while it
    is read: exit 1 with the file named, no traceback, no half file."""
    from plextuner.state import aggregate

    cfg, paths = published
    state = load_state(paths)
    assert state is not None
    path = paths.guide(state.devices[0].name)
    real = aggregate.open_guide

    def opened_then_cut(p: Path) -> aggregate.Aggregate | None:
        agg = real(p)
        os.truncate(path, 100)
        return agg

    aggregate_open = "plextuner.state.aggregate.open_guide"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(aggregate_open, opened_then_cut)
        target = path.parent.parent / "out.xml"
        args = ["guide", "--config", str(cfg), "--bucket", state.devices[0].name]
        assert main([*args, "--output", str(target)]) == 1
    assert "ended at byte 100" in capsys.readouterr().err
    assert not list(target.parent.glob("*out.xml*"))  # neither the file nor its temporary
