"""The parser is fed a block a piece at a time (resync.FEED_BYTES): libxml2 builds the nodes of
everything it is fed before any is cleared, so a 1 MB block of channels held ~14 MB of nodes.

Each test compares the pieces' items and counts with the same guide fed whole blocks (FEED_BYTES
larger than any block, as before), on programmes the parser itself must read (a reference to a
carriage return: neither plain.py nor canonical.py reads it from the bytes)."""

from __future__ import annotations

import io
from unittest import mock

from plextuner.epg import resync
from plextuner.epg.model import GuideChannel, ParseOutcome, Programme
from plextuner.epg.xmltv import iter_guide

START = "20231114221320 +0000"
WINDOW = (1_699_990_000.0, 1_700_100_000.0)


def rich_guide(channels: int, per_channel: int, broken_at: int | None = None) -> bytes:
    parts = [b'<?xml version="1.0" encoding="UTF-8"?>\n<tv>\n']
    parts += [
        b'<channel id="c%d.tv"><display-name>Channel %d &amp; co</display-name>'
        b'<icon src="http://i.invalid/%d.png"/></channel>\n' % (c, c, c)
        for c in range(channels)
    ]
    n = 0
    for h in range(per_channel):
        for c in range(channels):
            if n == broken_at:
                parts.append(b"<programme <<< broken>\n")
            parts.append(
                f'<programme start="{START}" channel="c{c}.tv"><title lang="en">Show {h}</title>'
                f'<desc>Part {h}&#13; of {c}</desc><credits><actor role="X">A {c}</actor>'
                f"</credits><rating><value>PG</value></rating></programme>\n".encode()
            )
            n += 1
    parts.append(b"</tv>\n")
    return b"".join(parts)


def read(body: bytes, feed: int) -> tuple[list[GuideChannel | Programme], ParseOutcome, int]:
    """Items, counts and the largest piece the parser was fed."""
    outcome = ParseOutcome("t")
    items: list[GuideChannel | Programme] = []
    largest = 0
    real = resync._fed

    def spy(parser: object, block: bytes | None, close: bool = False) -> object:
        nonlocal largest
        largest = max(largest, len(block or b""))
        return real(parser, block, close)  # type: ignore[arg-type]

    def wanted() -> set[str]:
        return {i.id for i in items if isinstance(i, GuideChannel)}

    with mock.patch.object(resync, "FEED_BYTES", feed), mock.patch.object(resync, "_fed", spy):
        for item in iter_guide(io.BytesIO(body), "t", outcome, wanted, WINDOW, fold=True):
            assert isinstance(item, GuideChannel | Programme)  # the parser's, not plain.py's
            items.append(item)
    return items, outcome, largest


def test_pieces_read_what_whole_blocks_read() -> None:
    """A 2.6 MB guide (blocks of 1 MB) fed 64 KB (and an odd 1,000 bytes) at a time: the same
    channels and programmes, in order, and no piece over the limit; elements straddle pieces."""
    body = rich_guide(2000, 6)
    assert len(body) > 2 * 1024 * 1024
    whole, counts, largest = read(body, 1 << 30)
    assert largest > resync.FEED_BYTES  # the old way: the prefilter's blocks, whole
    assert sum(isinstance(i, Programme) for i in whole) == 12_000
    for feed in (resync.FEED_BYTES, 1000):
        items, outcome, largest = read(body, feed)
        assert largest <= feed
        assert items == whole
        assert (outcome.channels, outcome.programmes, outcome.skipped) == (
            counts.channels,
            counts.programmes,
            counts.skipped,
        )


def test_a_break_in_a_piece_costs_what_whole_blocks_cost() -> None:
    """Garbage in the middle of a block: what parsed before it (in earlier pieces of the same
    block, and in its own piece) is kept, the piece it is in read alone (resync.py: it finds
    the programme behind the garbage), and a fresh parser reads on; as with whole blocks."""
    body = rich_guide(500, 8, broken_at=2345)
    whole, counts, _ = read(body, 1 << 30)
    for feed in (resync.FEED_BYTES, 1000):
        items, outcome, _ = read(body, feed)
        assert (outcome.malformed, outcome.truncated) == (counts.malformed, None) == (1, None)
        assert sum(isinstance(i, Programme) for i in items) == 4000
        assert items == whole
