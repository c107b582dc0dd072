"""Long bodies referenced where they lie in the guide's file, not copied through the spill
(`Spill.add_source`, plain.py's `SourcedRun`): the same guides as when they are spilled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.epg import canonical, plain
from plextuner.epg.spill import Spill
from plextuner.epg.spillparts import Part
from plextuner.errors import EpgError
from tests.unit.test_guide_halves import CHANNELS, read
from tests.unit.test_guide_spill import HOUR, WINDOW, stamp

LONG_DESC = ("A long description of the programme, told at length. " * 14).strip()  # ~770 bytes


def long_guide(path: Path, hours: int = 44) -> Path:
    """Programmes of long descriptions in time order, spelled the ways the one pass meets:
    plain, with `lang`, a sub-title to fold, an episode number, a comment between two, a
    reference the reader writes as its character, an attribute it drops; the first hours
    outside the window, or of a channel not carried (their blocks cut, the rest kept whole),
    and one not carried later (its block passed whole, that programme dropped).
    Each spelling other than the plain one in a few hours: the blocks around them are read
    where they lie, and those holding them where they differ from the file."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<tv generator-info-name="t">']
    parts += [f'<channel id="{c}"><display-name>{c}</display-name></channel>' for c in CHANNELS]
    for h in range(hours):
        t = WINDOW[0] - 2 * HOUR + h * HOUR / 2
        # (the first half's, so that the helper's is read whole: `read` splits the file)
        for i, c in enumerate(CHANNELS if h < 6 or h == 18 else CHANNELS[:3]):
            lang = ' lang="en"' if 8 <= h < 10 else ""
            sub = f"<sub-title>part {i}</sub-title>" if h == 17 else ""
            ep = f'<episode-num system="onscreen">E{h}</episode-num>' if h % 3 == 0 else ""
            quote = "&quot;" if h == 11 else ""
            extra = f' catchup-id="{h}"' if h == 13 else ""
            parts.append(
                f'<programme start="{stamp(t)}" stop="{stamp(t + HOUR / 2)}" channel="{c}"'
                f"{extra}><title{lang}>Show {h} &amp; {i}{quote}</title>{sub}"
                f"<desc{lang}>{LONG_DESC}{h}</desc>{ep}</programme>"
            )
            if h in (15, 19) and i == 0:  # between two programmes of a block
                parts.append("<!-- a comment -->")
    parts.append("</tv>\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def spilled_only() -> Any:
    """Every body spilled, as before bodies were referenced in the file."""
    return mock.patch.object(Spill, "add_source", return_value=False)


@pytest.fixture(autouse=True)
def every_block_tried() -> Iterator[None]:
    """Each block offered to the one pass (not the next 16 after one spelled otherwise: this
    guide spells a few otherwise among few blocks), so that both kinds meet in a reading."""
    with mock.patch.object(plain, "UNWRITTEN_SKIP", 0):
        yield


@pytest.mark.parametrize(("split", "writers"), [(False, 1), (True, 1), (True, 2)])
def test_sourced_bodies_write_the_guides_spilled_ones_write(
    tmp_path: Path, split: bool, writers: int
) -> None:
    """Read by one reader or two, written by one writer or two: the same guides, and the
    bodies of the blocks kept whole (most of the guide) not written to the spill."""
    guide = long_guide(tmp_path / "g.xml")
    with spilled_only():
        spilled = read(tmp_path / "spilled", guide, split, chunk=4096, writers=writers)
    sourced = read(tmp_path / "sourced", guide, split, chunk=4096, writers=writers)
    assert sourced.guides == spilled.guides
    assert sourced.counts == spilled.counts
    assert sourced.sourced == (2 if split else 1)
    assert spilled.sourced == 0
    # (the helper, another process, skips blocks after one spelled otherwise: fewer there)
    assert sourced.spilled < spilled.spilled * (0.8 if split else 0.5)
    assert b"Show 30" in sourced.guides["d0.xml"]


@given(
    chunk=st.sampled_from([4096, 9000, 16384, 70_000]),
    hours=st.integers(10, 60),
)
@settings(max_examples=12, deadline=None)
def test_sourced_bodies_whatever_the_blocks(
    tmp_path_factory: pytest.TempPathFactory, chunk: int, hours: int
) -> None:
    tmp = tmp_path_factory.mktemp("g")
    guide = long_guide(tmp / "g.xml", hours)
    with spilled_only():
        spilled = read(tmp / "spilled", guide, True, chunk=chunk)
    sourced = read(tmp / "sourced", guide, True, chunk=chunk)
    assert sourced.guides == spilled.guides
    assert sourced.counts == spilled.counts


def test_a_references_offset_is_where_its_body_lies() -> None:
    block = "".join(
        f'\n<programme start="{stamp(WINDOW[0])}" stop="{stamp(WINDOW[0] + HOUR)}" '
        f'channel="c{i}"><title>T{i}</title><desc>{LONG_DESC}</desc></programme>'
        for i in range(5)
    ).encode()
    found = canonical.read_block(block, len(block))
    assert found is not None
    refs = canonical.references(found, 1000)
    bodies = [block[(r >> 30) - 1000 : (r >> 30) - 1000 + (r & ((1 << 30) - 1))] for r in refs]
    assert bodies == [body for *_, body in found]


def test_a_guide_file_rewritten_while_the_guides_are_written_keeps_no_fingerprint(
    tmp_path: Path,
) -> None:
    """Its bodies may be the new bytes: the next refresh writes every guide again."""
    guide = long_guide(tmp_path / "g.xml")
    real = Spill.sources_changed
    calls: list[bool] = []

    def changed(self: Spill) -> bool:
        calls.append(real(self))
        if len(calls) == 1:  # after the reading: as it was; then rewritten
            with guide.open("ab") as fh:
                fh.write(b"<!-- more -->\n")
        return calls[-1]

    with mock.patch.object(Spill, "sources_changed", changed):
        read(tmp_path, guide, False, chunk=16384)
    assert calls == [False, True]
    prints = json.loads((tmp_path / "whole" / "1" / "guides" / ".fingerprints.json").read_text())
    assert not prints.get("devices", prints)


def test_a_guide_file_rewritten_while_it_is_read_fails_its_source(tmp_path: Path) -> None:
    """Rewritten in place (a grabber's `>`) before the reader is done: its source fails, as a
    file that cannot be read does, rather than guides of bytes it no longer holds."""
    guide = long_guide(tmp_path / "g.xml")
    real = Spill.sources_changed

    def changed(self: Spill) -> bool:
        with guide.open("ab") as fh:
            fh.write(b"<!-- more -->\n")
        return real(self)

    with (
        mock.patch.object(Spill, "sources_changed", changed),
        pytest.raises(EpgError, match="changed while it was read"),
    ):
        read(tmp_path, guide, False, chunk=16384)


def test_a_guide_file_that_cannot_be_mapped_is_spilled(tmp_path: Path) -> None:
    """Mapped as it is taken (a file system that refuses it): its bodies spilled instead."""
    guide = long_guide(tmp_path / "g.xml")
    with spilled_only():
        spilled = read(tmp_path / "spilled", guide, False, chunk=4096)
    with mock.patch.object(Part, "view", side_effect=EpgError("no mapping here")):
        refused = read(tmp_path / "refused", guide, False, chunk=4096)
    assert refused.sourced == 0
    assert refused.guides == spilled.guides
