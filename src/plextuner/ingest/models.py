"""Plain models the indexer hands to the rest of the pipeline.

The four a big list makes tens of thousands of (`Entry`, `Source`, `Channel`, and the lineup's
`LineupEntry`) are msgspec Structs: built in C, about half the time of a slotted dataclass, and
encoded into the published state without a field lookup each (a 50k-stream refresh: merge
124-133 -> 109-113 ms, bucketing 84-91 -> 70-74, the state's encoding 91 -> 51-54). Those
persisted leave out fields at their defaults (`omit_defaults`; read back as the defaults): an
unprobed channel's eight empty probe fields were a third of `lineups.json` (50k: 20.6 -> 14.8
MB)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import filterfalse

import msgspec

from plextuner.memo import remembered

# C0 and C1 control characters (tab becomes a space): XML 1.0 cannot carry them, so a name with
# one would make every guide and lineup.xml unwritable (found by the whole-pipeline fuzz test).
_CONTROL = dict.fromkeys([*range(32), 127, *range(128, 160)]) | {0x09: 0x20}


# The combining marks of the Latin accents' block: cut by one `sub`, they leave most European
# names ASCII (a name 1.75 -> 0.7 us); other scripts pay one `sub` that finds nothing (~0.2 us)
_LATIN_MARKS = re.compile(
    "[" + "".join(c for c in map(chr, range(0x300, 0x370)) if unicodedata.combining(c)) + "]"
)


# Non-ASCII words folded so far: a playlist in another script repeats its words (`Канал`,
# `Спорт`) across thousands of names, and a word costs ~1 us to fold, a lookup 0.05. Bounded:
# a word past the bound is folded each time, as before.
_FOLDED: dict[str, str] = {}
FOLDED_KEPT = 32_768


def fold(text: str) -> str:
    """Accents removed, case folded: `Türkiye` → `turkiye` (ASCII has nothing to decompose).
    A word at a time: decomposition, mark removal and case folding each work a character at a
    time, and a space (a starter) ends any run of marks, so the words fold on their own."""
    if text.isascii():
        return text.casefold()
    if " " not in text:
        return remembered(_FOLDED, text, _fold, FOLDED_KEPT)
    return " ".join(
        [
            w.casefold() if w.isascii() else remembered(_FOLDED, w, _fold, FOLDED_KEPT)
            for w in text.split(" ")
        ]
    )


def _fold(text: str) -> str:
    decomposed = _LATIN_MARKS.sub("", unicodedata.normalize("NFKD", text))
    if decomposed.isascii():
        return decomposed.casefold()
    return "".join(filterfalse(unicodedata.combining, decomposed)).casefold()


def clean_text(value: str) -> str:
    """Text from a provider made safe for every output format (XML, JSON, M3U)."""
    return value.translate(_CONTROL) if not value.isprintable() else value


class StreamKind(StrEnum):
    TS = "ts"
    HLS = "hls"
    DASH = "dash"  # cannot be delivered as MPEG-TS by remuxing a URL; reported, not published
    OTHER = "other"


def is_hls_type(content_type: str) -> bool:
    """An HLS playlist by its Content-Type (every spelling servers use contains "mpegurl")."""
    return "mpegurl" in content_type.lower()


def is_hls_reply(content_type: str, head: bytes = b"") -> bool:
    """An HLS playlist by its Content-Type or, when servers mislabel it, by its first bytes."""
    return is_hls_type(content_type) or head.lstrip()[:7] == b"#EXTM3U"


def is_html_reply(content_type: str, head: bytes = b"") -> bool:
    """An HTML page (a login wall, an error page) where media was expected."""
    return "text/html" in content_type.lower() or head.lstrip()[:1] == b"<"


_TS, _HLS, _DASH, _OTHER = StreamKind.TS, StreamKind.HLS, StreamKind.DASH, StreamKind.OTHER


def stream_kind(url: str) -> StreamKind:
    if "?" in url or "|" in url:
        path = url.split("?", 1)[0].split("|", 1)[0]
    else:  # most of a big list: the URL is the path (0.25 -> 0.15 us an entry)
        if url.endswith(".ts"):
            return _TS
        path = url
    tail = path[-5:].lower()  # the suffixes below are at most 5 characters
    # `.ts` first: most of a big list, and no path ending in it ends in the others
    if tail.endswith(".ts"):
        return _TS
    if tail.endswith((".m3u8", ".m3u")):
        return _HLS
    if tail.endswith(".mpd"):
        return _DASH
    return _TS if "/live/" in path or "/live/" in path.lower() else _OTHER


# The per-channel structs (Source, Entry, Channel and buckets' LineupEntry) are untracked by the
# cyclic collector (`gc=False`): they hold strings, numbers and the level below only, so no cycle
# can run through them. In `serve` the first collection after a refresh walked every tracked
# object the refresh had made, holding the GIL: 300k for 50k channels, a 50 ms pause of the
# event loop (/healthz answered in up to 103 ms); 100k (their lists) and ~7 ms untracked.
class Source(msgspec.Struct, omit_defaults=True, gc=False):
    """One way to fetch a channel. `url` carries credentials: it never leaves the daemon."""

    provider: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    kind: StreamKind = StreamKind.OTHER
    group: str = ""  # the group of the playlist entry this source came from

    def at(self, url: str) -> Source:
        """This source fetched from `url` (another account's credentials in it)."""
        return self if url == self.url else msgspec.structs.replace(self, url=url)


class Entry(msgspec.Struct, gc=False):
    """One playlist entry (or one Xtream stream) as the provider listed it."""

    name: str
    url: str
    provider: str = ""
    tvg_id: str = ""
    tvg_name: str = ""
    logo: str = ""
    group: str = ""
    chno: str = ""
    tvg_shift: float | None = None
    catchup: dict[str, str] = msgspec.field(default_factory=dict)
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    attrs: dict[str, str] = msgspec.field(default_factory=dict)
    line: int = 0


class Channel(msgspec.Struct, omit_defaults=True, gc=False):
    """A channel after de-duplication: one identity, its sources in priority order."""

    key: str
    name: str
    tvg_id: str
    group: str
    provider: str
    logo: str = ""
    tvg_name: str = ""
    chno: str = ""
    tvg_shift: float | None = None
    sources: list[Source] = msgspec.field(default_factory=list)
    # Every group its entries were listed under, in order: bucket rules match any of them, so
    # a channel's device does not depend on which of its entries the provider lists first.
    groups: list[str] = msgspec.field(default_factory=list)


@dataclass(slots=True)
class ParseReport:
    """What a source yielded and what it skipped, by reason."""

    source: str
    entries: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    guide_urls: list[str] = field(default_factory=list)
    tvg_shift: float | None = None

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


@dataclass(slots=True)
class AccountInfo:
    """Xtream user_info, loosely typed values normalised."""

    status: str
    exp_date: int | None
    max_connections: int | None
    active_connections: int | None
    is_trial: bool = False


@dataclass(slots=True)
class ProviderResult:
    """One provider's outcome in a refresh: its entries, or the error that stopped it."""

    provider: str
    entries: list[Entry] = field(default_factory=list)
    report: ParseReport | None = None
    account: AccountInfo | None = None
    error: str | None = None
    guide_urls: list[str] = field(default_factory=list)
    count: int = 0  # entries accepted; kept after `entries` is released once merged

    def take_entries(self) -> list[Entry]:
        """The entries, handed over (to be freed elsewhere); the result keeps their count."""
        taken, self.entries = self.entries, []
        self.count = len(taken)
        return taken
