"""The M3U line walk: a playlist's lines read one after another into entries and a report.

`Walk` is where a parse stands (the entries so far, what is pending for the next URL line, the
spellings learned, the line number); `walk` reads blocks of lines on from there, and
`conclude` ends the parse. A playlist may be walked in parts: see m3uhalf.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from plextuner.errors import IngestError
from plextuner.ingest.lines import MAYBE_LONG, too_long
from plextuner.ingest.m3ublock import FastLane
from plextuner.ingest.m3udirect import Pending, finish, kodiprop, vlcopt
from plextuner.ingest.m3uline import URL_SCHEMES, Spellings, entry_from_extinf, read_header
from plextuner.ingest.models import Entry, ParseReport


class Walk:
    """Where a parse of one playlist stands: what `walk` continues from, line after line."""

    __slots__ = (
        "entries",
        "known",
        "lane",
        "lineno",
        "pending",
        "provider",
        "report",
        "saw_header",
    )

    def __init__(self, report: ParseReport, provider: str, lineno: int = 0) -> None:
        self.report, self.provider = report, provider
        self.entries: list[Entry] = []
        self.pending = Pending()
        self.known = Spellings()
        self.lane = FastLane(self.known, report, provider, self.entries)
        self.saw_header = False
        self.lineno = lineno  # the last line read


def parse_blocks(
    blocks: Iterable[str | None], source: str, provider: str
) -> tuple[list[Entry], ParseReport]:
    state = Walk(ParseReport(source=source), provider)
    walk(blocks, state)
    return conclude(state)


def walk(  # noqa: C901, PLR0912, PLR0915 - one pass, one line-kind dispatch; split, it hid the state
    blocks: Iterable[str | None], state: Walk
) -> None:
    """`blocks`: the playlist's text a block of whole lines at a time (None: a line too long
    to read), from the line after `state.lineno`. Runs of entries in a learned spelling go by
    the fast lane (m3ublock.py), every other line by the line walk below."""
    report, entries, pending, known, lane = (
        state.report, state.entries, state.pending, state.known, state.lane
    )  # fmt: skip
    provider, saw_header, lineno = state.provider, state.saw_header, state.lineno
    for block in blocks:
        if block is None:
            lineno += 1
            report.skip("line too long")
            continue
        first = lineno + 1
        numbered = (
            lane.lines(block, lineno, pending)
            if lane.ahead
            else enumerate(block.split("\n"), first)
        )
        for lineno, raw in numbered:
            if len(raw) > MAYBE_LONG and too_long(raw):
                report.skip("line too long")
                continue
            line = raw.strip()
            if not line:
                continue
            if "\x00" in line:
                report.skip("line with NUL bytes")
                continue
            if line[0] == "#":
                upper = line if line.startswith("#EXTINF") else line[:12].upper()
                if upper.startswith("#EXTINF"):
                    if pending.entry is not None:
                        report.skip("entry without URL")
                    pending.entry = entry_from_extinf(line, lineno, provider, report, known)
                elif upper.startswith("#EXTM3U"):
                    saw_header = True
                    read_header(line, report)
                elif upper.startswith("#EXTGRP:"):
                    # In force from here on, for the entry being read too: given at its URL
                    # line (an #EXTGRP between an #EXTINF and its URL is that entry's group)
                    lane.group = line[8:].strip()
                elif upper.startswith("#EXTVLCOPT:"):
                    vlcopt(line[11:], pending)
                elif upper.startswith("#KODIPROP:"):
                    kodiprop(line[10:], pending)
                continue
            if pending.entry is None:
                if line.startswith(URL_SCHEMES):
                    report.skip("URL without #EXTINF")
                else:
                    report.skip("unparsable line")
                continue
            entry = finish(pending, line, report)
            pending.entry = None  # emptied in place: most entries have no directives to forget
            if pending.headers:
                pending.headers = {}
            if pending.kodiprops:
                pending.kodiprops = {}
            if entry is not None:
                if not entry.group and lane.group:
                    entry.group = lane.group
                entries.append(entry)
        lineno = first + block.count("\n")  # the block's last line (the lane may have read it)
    state.saw_header, state.lineno = saw_header, lineno


def conclude(state: Walk) -> tuple[list[Entry], ParseReport]:
    """The playlist's entries and report once every line is walked; IngestError when none."""
    report, entries = state.report, state.entries
    if state.pending.entry is not None:
        report.skip("entry without URL")
    if not state.saw_header and entries:
        report.skip("missing #EXTM3U header (parsed anyway)", 0)
    if not entries:
        why = (
            "no channel entries"
            if state.saw_header
            else "not an M3U playlist (no #EXTM3U, no entries)"
        )
        if report.skipped:
            why += " (skipped: " + ", ".join(f"{k}={v}" for k, v in report.skipped.items()) + ")"
        raise IngestError(report.source, why)
    report.entries = len(entries)
    return entries, report
