"""/epg.xml assembled from the device guides: every channel before the first programme, our own
guides spliced as byte ranges (not re-parsed), any other shape re-serialised, a guide replaced
while a request is answered not mixed in, and any byte range of it right."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from plextuner.epg.writer import Placeholders, write_guide
from plextuner.state.aggregate import Aggregate, open_aggregate, read_guide
from tests.unit.test_epg import WINDOW
from tests.unit.test_guide_writer import device


def read(agg: Aggregate, start: int = 0, count: int | None = None) -> bytes:
    out = []
    for piece in agg.span(start, agg.size - start if count is None else count):
        if piece.file is None:
            out.append(piece.data)
        else:
            out.append(os.pread(piece.file.fileno(), piece.size, piece.lo))
    return b"".join(out)


def document(paths: Sequence[Path]) -> bytes:
    agg = open_aggregate(paths)
    assert agg is not None
    try:
        return read(agg)
    finally:
        agg.close()


def guides(tmp_path: Path, block: float = 7200) -> list[Path]:
    lo, hi = WINDOW
    paths = []
    for name, first in (("a", 100), ("b", 200)):
        d = device(name, first)
        progs = {e.number: Placeholders(e.channel.name, lo, hi, block) for e in d.entries}
        write_guide(tmp_path / f"{name}.xml", d, progs, {})  # type: ignore[arg-type]
        paths.append(tmp_path / f"{name}.xml")
    return paths


FOREIGN = (
    '<tv>\n <channel id="x"><display-name>X</display-name></channel>\n'
    ' <programme start="20300101000000 +0000" channel="x"><title>T</title></programme>\n</tv>'
)


def test_spliced_channels_first(tmp_path: Path) -> None:
    paths = guides(tmp_path)
    foreign = tmp_path / "foreign.xml"  # another shape: re-parsed, not spliced
    foreign.write_text(FOREIGN, encoding="utf-8")
    with mock.patch("plextuner.state.aggregate.etree.iterparse", wraps=etree.iterparse) as parsed:
        body = document([*paths, foreign, tmp_path / "missing.xml"])
    assert parsed.call_count == 1  # the foreign file only
    root = etree.fromstring(body)
    tags = [e.tag for e in root]
    assert tags.count("channel") == 7 and tags.index("programme") == 7
    each = [etree.fromstring(read_guide(p)) for p in [*paths, foreign]]  # as served
    assert tags.count("programme") == sum(len(r.findall("programme")) for r in each)
    ids = [e.get("id") for e in root.iterfind("channel")]
    assert ids == [c.get("id") for r in each for c in r.iterfind("channel")]
    assert body.startswith(b"<?xml") and body.endswith(b"</tv>")


def test_none_without_guides(tmp_path: Path) -> None:
    assert open_aggregate([]) is None
    assert open_aggregate([tmp_path / "missing.xml"]) is None


def test_a_guide_replaced_meanwhile_is_not_mixed_in(tmp_path: Path) -> None:
    """The answer is the files as they were opened: a refresh replacing one (rename over it)
    while a long download runs leaves that download whole and well-formed."""
    paths = guides(tmp_path)
    agg = open_aggregate(paths)
    assert agg is not None
    before = read(agg)
    etag = agg.etag
    replacement = tmp_path / "new.xml"
    write_guide(replacement, device("a", 300), {}, {})
    os.replace(replacement, paths[0])
    try:
        assert read(agg) == before
    finally:
        agg.close()
    after = open_aggregate(paths)
    assert after is not None
    assert after.etag != etag and b'"300.plextuner"' in read(after)
    after.close()
    again = open_aggregate(paths)
    assert again is not None and again.etag == after.etag
    again.close()


# The guides are only read: one set serves every example.
@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_range(tmp_path: Path, data: st.DataObject) -> None:
    paths = [tmp_path / "a.xml", tmp_path / "b.xml"]
    if not paths[0].exists():
        guides(tmp_path)
    whole = document(paths)
    start = data.draw(st.integers(0, len(whole)))
    count = data.draw(st.integers(0, len(whole) - start))
    agg = open_aggregate(paths)
    assert agg is not None
    try:
        assert agg.size == len(whole)
        assert read(agg, start, count) == whole[start : start + count]
    finally:
        agg.close()
