"""One M3U line at a time: #EXTINF attributes and names, the header, the spellings learned.

The leaf of the M3U parser (`m3uwalk.py` walks the playlist and keeps the state between lines;
`m3udirect.py` reads the directives between an entry's line and its URL, and finishes it)."""

from __future__ import annotations

import re

from plextuner.ingest.models import Entry, ParseReport, clean_text
from plextuner.ingest.urls import clean_url

# Keys are bounded (64 chars) so a long run of word characters costs linear, not quadratic, time.
_ATTR = re.compile(r"""([A-Za-z][\w.:-]{0,63})\s*=\s*(?:"([^"]*)"?|'([^']*)'|([^\s"',]+))""")
# `#EXTINF:<dur> <attrs>,<name>`: the name starts at the first comma outside double quotes.
# Possessive and one character per step: a nested `(?:[^",]+)*` backtracked exponentially on a
# line with no comma outside quotes (a 30-character line took minutes; found by fuzzing).
_EXTINF = re.compile(r'#EXTINF:?((?:[^",]|"[^"]*")*+),(.*)$', re.IGNORECASE)
URL_SCHEMES = ("http://", "https://")
HEADER_NAMES = {
    "http-user-agent": "User-Agent",
    "user-agent": "User-Agent",
    "http-referrer": "Referer",
    "http-referer": "Referer",
    "referrer": "Referer",
    "referer": "Referer",
    "http-origin": "Origin",
    "origin": "Origin",
    "http-cookie": "Cookie",
    "cookie": "Cookie",
}


def parse_attrs(text: str) -> dict[str, str]:
    """Attributes of an #EXTINF or #EXTM3U line; the first non-empty value of a key wins."""
    fast = _attrs_quoted(text)
    return fast if fast is not None else _attrs_scan(text)


def _attrs_scan(text: str) -> dict[str, str]:
    """Any spelling: quoted, single-quoted and bare values, spaces around `=`."""
    attrs: dict[str, str] = {}
    for raw_key, dq, sq, bare in _ATTR.findall(text):
        key = raw_key.lower()
        if not attrs.get(key):
            attrs[key] = (dq or sq or bare).strip()
    return attrs


# The text before each `"value"` (`-1 tvg-id=`, ` group-title=`) → the key `_ATTR` would read
# there, or "" when there is none. Playlists repeat a handful of these, so the cache stays small;
# it is bounded all the same.
_SEGMENT_KEY = re.compile(r"([A-Za-z][\w.:-]{0,63})\s*=$")
_SEGMENT_KEYS: dict[str, str] = {}
_SEGMENT_CACHE = 4096


def _attrs_quoted(text: str, quote: str = '"') -> dict[str, str] | None:
    """The common spelling, every value double-quoted, read with one `split` instead of a regex
    scan that tried a key at every letter of every value (the parser's largest cost on a 50k
    list). The same answer as `_attrs_scan` (a property test holds them equal), or None when
    the line is spelled otherwise: each text between values must hold exactly one `=`, at its
    end, and nothing after the last value may. `quote="'"`: every value single-quoted (a
    spelling `Spellings.learn` checks against the scan before it learns it)."""
    parts = text.split(quote)
    last = len(parts) - 1
    if last & 1 or "=" in parts[last]:
        return None  # unbalanced quotes, or a bare value at the end
    attrs: dict[str, str] = {}
    for i in range(0, last, 2):
        segment = parts[i]
        key = _SEGMENT_KEYS.get(segment)
        if key is None:
            if segment[-1:] != "=" or segment.count("=") != 1:
                return None
            match = _SEGMENT_KEY.search(segment)
            key = match.group(1).lower() if match else ""
            if len(_SEGMENT_KEYS) < _SEGMENT_CACHE:
                _SEGMENT_KEYS[segment] = key
        if not key:  # a value with no key before it: the scan reads keys inside it (`="a=b"`)
            return None
        if not attrs.get(key):
            attrs[key] = parts[i + 1].strip()
    return attrs


def split_extinf(body: str) -> tuple[str, str]:
    """(attribute part, display name): the name starts at the first comma outside quotes."""
    in_quote = False
    for i, ch in enumerate(body):
        if ch == '"':
            in_quote = not in_quote
        elif ch == "," and not in_quote:
            return body[:i], body[i + 1 :].strip()
    if in_quote:  # an unbalanced quote: fall back to the last comma
        head, sep, tail = body.rpartition(",")
        if sep:
            return head, tail.strip()
    return body, ""


# A tvg-shift in hours; one further than this either way is no time zone's: dropped, as is
# `nan` or `inf` (float() reads them; a NaN shift made every programme's time NaN)
MAX_SHIFT = 24.0


def _shift_hours(value: str | None) -> float | None:
    if not value:
        return None
    try:
        hours = float(value.replace(",", "."))
    except ValueError:
        return None
    return hours if -MAX_SHIFT <= hours <= MAX_SHIFT else None  # False for NaN


def read_header(line: str, report: ParseReport) -> None:
    attrs = parse_attrs(line[7:])
    for key in ("url-tvg", "x-tvg-url"):
        for url in attrs.get(key, "").split(","):
            if url.strip() and url.strip() not in report.guide_urls:
                report.guide_urls.append(url.strip())
    report.tvg_shift = _shift_hours(attrs.get("tvg-shift"))


def entry_from_extinf(
    line: str, lineno: int, provider: str, report: ParseReport, known: Spellings | None = None
) -> Entry | None:
    """The entry an #EXTINF line describes; None (the skip counted) when it has no name.
    `known`: the playlist's spellings so far, tried first and learned from this line."""
    if known is not None and known.shapes:
        entry = known.read(line, lineno, provider, report.tvg_shift)
        if entry is not None:
            return entry
    line = clean_text(line)
    comma = line.find(",", 8)
    if line[7:8] == ":" and comma > 0 and not line.count('"', 8, comma) & 1:
        # The first comma, with no quote open before it: where `_EXTINF` would split (the
        # regex walks the attributes a character at a time; this is one C-level scan).
        attr_part, name = line[8:comma], line[comma + 1 :].strip()
    elif (match := _EXTINF.match(line)) is not None:
        attr_part, name = match.group(1), match.group(2).strip()
    else:  # no comma outside quotes: unbalanced quote or no name at all
        attr_part, name = split_extinf(line[8:] if len(line) > 8 else "")
    attrs = parse_attrs(attr_part)
    name = name or attrs.get("tvg-name", "")
    if not name:
        report.skip("entry without name")
        return None
    if known is not None and line[7:8] == ":":
        known.learn(attr_part)
    group = attrs.get("group-title", "")
    return Entry(  # positional, in the field order: 50k of these per big list
        name,
        "",
        provider,
        attrs.get("tvg-id", "").strip(),
        attrs.get("tvg-name", ""),
        attrs.get("tvg-logo", ""),
        _group(group),
        *_specials(attrs, report.tvg_shift),
        {},
        lineno,
    )


def _specials(
    attrs: dict[str, str], shift: float | None
) -> tuple[str, float | None, dict[str, str], dict[str, str]]:
    """The fields read from more than one attribute, or converted: channel number, tvg-shift
    (else the header's `shift`), catch-up attributes and HTTP headers. They depend only on the
    keys in _SPECIAL (and those starting `catchup`), so a learned spelling passes just those."""
    headers = (
        {}
        if HEADER_NAMES.keys().isdisjoint(attrs)  # most entries: no header attributes
        else {HEADER_NAMES[k]: v for k, v in attrs.items() if k in HEADER_NAMES and v}
    )
    return (
        attrs.get("tvg-chno") or attrs.get("ch-number", ""),
        _shift_hours(attrs.get("tvg-shift")) if "tvg-shift" in attrs else shift,
        _catchup(attrs),
        headers,
    )


def _group(value: str) -> str:
    return value.split(";", 1)[0].strip() if ";" in value else value.strip()


# A playlist spells its #EXTINF lines alike: the same attributes, in the same order, with the
# same text between the values (`-1 tvg-id="`, `" tvg-name="`, ...). That text, learned from a
# line read the general way, becomes a pattern later lines are matched against whole: the values
# come out as its groups, with no split and no lookups. The plain fields are taken from their
# groups; the few attributes read through _specials (channel number, shift, catch-up, headers)
# are handed to it as a dict of just those. A spelling naming a key twice is not learned (the
# first non-empty value wins there: read the general way every time).
# A learned spelling's value, in a line and in a block (where it may not run past its line)
_VALUES = {
    '"': ('"([^"]*+)"', r'"([^"\r\n]*+)"'),
    "'": ("'([^'\",]*+)'", r"'([^'\",\r\n]*+)'"),
}
SPELLINGS_KEPT = 32  # a handful; dozens where a list leaves out its empty attributes (2x)
GIVE_UP_AFTER = 256  # lines no spelling matched, when they outnumber the matched four to one
_FIELDS = ("tvg-id", "tvg-name", "tvg-logo", "group-title")  # what a learned spelling fills
_SPECIAL = frozenset({*HEADER_NAMES, "tvg-shift", "tvg-chno", "ch-number", "timeshift"})
_CATCHUP_ON = frozenset({"catchup", "timeshift", "catchup-source"})  # catch-up only with one


def _catchup_key(key: str) -> bool:
    return key.startswith("catchup") or key == "timeshift"


class Shape:
    __slots__ = ("catchup", "chno", "headers", "name_at", "pair", "pattern", "shift_at", "slots",
                 "specials")  # fmt: skip

    def __init__(
        self,
        pattern: re.Pattern[str],
        pair: re.Pattern[str],
        slots: tuple[int, ...],
        specials: tuple[tuple[str, int], ...],
    ) -> None:
        self.pattern = pattern
        self.pair = pair  # the line and the URL line after it, in a block (m3ublock.py)
        self.slots = slots  # the group of each of _FIELDS (0: not in this spelling)
        self.specials = specials  # (key, group) of each attribute read through _specials
        self.name_at = pattern.groups  # the display name: the last group
        # What `_specials` decides from the keys alone, decided once for the spelling: which
        # groups hold the channel number, the shift, the catch-up attributes (none unless one
        # of the three that turn it on is there) and the headers (a line in the rich spelling
        # 1.6 -> 0.6 us; a property test holds it to the general reading)
        at = dict(specials)
        self.chno = (at.get("tvg-chno", 0), at.get("ch-number", 0))
        self.shift_at = at.get("tvg-shift", 0)
        self.catchup = (
            tuple((k, i) for k, i in specials if _catchup_key(k))
            if not at.keys().isdisjoint(_CATCHUP_ON)
            else ()
        )
        self.headers = tuple((HEADER_NAMES[k], i) for k, i in specials if k in HEADER_NAMES)

    def entry(
        self, values: tuple[str, ...], lineno: int, provider: str, shift: float | None
    ) -> Entry | None:
        """The entry of a line this spelling matched (`values`: "", then its groups); None
        when it has no name (the general reading counts that skip)."""
        a, b, c, d = self.slots
        tvg_id, tvg_name = values[a].strip(), values[b].strip()
        logo, group = values[c].strip(), values[d].strip()
        if ";" in group:
            group = _group(group)
        name = values[self.name_at].strip() or tvg_name
        if not name:
            return None
        if self.specials:
            a, b = self.chno
            return Entry(
                name, "", provider, tvg_id, tvg_name, logo, group,
                values[a].strip() or values[b].strip(),
                _shift_hours(values[self.shift_at].strip()) if self.shift_at else shift,
                {k: values[i].strip() for k, i in self.catchup} if self.catchup else {},
                {h: v for h, i in self.headers if (v := values[i].strip())} if self.headers else {},
                {}, lineno,
            )  # fmt: skip
        return Entry(name, "", provider, tvg_id, tvg_name, logo, group, "", shift,
                     {}, {}, {}, lineno)  # fmt: skip


class Spellings:
    """The #EXTINF spellings one playlist's parse has learned."""

    __slots__ = ("hits", "learning", "misses", "refused", "shapes")

    def __init__(self) -> None:
        self.shapes: list[Shape] = []
        self.hits = self.misses = self.refused = 0
        self.learning = True

    def read(self, line: str, lineno: int, provider: str, shift: float | None) -> Entry | None:
        """What the general reading gives `line`, when it has a known spelling and a name;
        None for the general reading (which counts the skip of a nameless entry)."""
        if line.isprintable():  # else the general reading cleans it first
            for shape in self.shapes:
                if (match := shape.pattern.fullmatch(line)) is not None:
                    self.hits += 1
                    return shape.entry(("", *match.groups()), lineno, provider, shift)
        self.misses += 1
        if self.misses > GIVE_UP_AFTER and self.misses > 4 * self.hits:
            self.shapes, self.learning = [], False  # spelled every which way: not worth a try
        return None

    def learn(self, attr_part: str) -> None:
        """Keep the spelling of a line whose attributes, read the general way, were these."""
        if not self.learning or len(self.shapes) >= SPELLINGS_KEPT:
            return
        # Values in double quotes; or in single quotes where the line holds no double one (a
        # generator's `tvg-id='x'`: 2x the parse by the general reading). The general reading
        # ends the attributes at the first comma outside double quotes: a single-quoted value
        # learned here holds neither a comma nor a double quote.
        quote = '"' if '"' in attr_part or "'" not in attr_part else "'"
        parts = attr_part.split(quote)
        keys = self._keys(attr_part, parts, quote)
        if keys is None:
            self.refused += 1
            self.learning = self.refused < GIVE_UP_AFTER  # each try costs a second reading
            return
        value, paired = _VALUES[quote]
        pattern = "#EXTINF:" + re.escape(parts[0])
        pair = pattern
        for segment in parts[2::2]:
            pattern += value + re.escape(segment)  # possessive: a miss fails at once
            pair += paired + re.escape(segment)
        pattern += ",(.*)"
        # In a block: the name to the line's end (a CR before it left out), an `#EXTGRP:` line
        # or none (its value a group: None when there is none), `#EXTVLCOPT:` lines or none
        # (one group, "" when there are none), then the next line when it is a URL read as it
        # stands: clean characters (no space around it, no NUL, not a directive) and no
        # Kodi-style `|headers`; its head a group for the host's verdict. Anything else is
        # left to the line walk (m3ublock.py).
        pair += (
            r",([^\r\n]*+)\r?\n(?:#EXTGRP:([^\r\n\x00]*+)\r?\n)?"
            r"((?:#EXTVLCOPT:[^\r\n\x00]*+\r?\n)*+)"
            rf"({clean_url(without='|')})\r?(?=\n|\Z)"
        )
        if any(s.pattern.pattern == pattern for s in self.shapes):
            return
        slots = tuple(keys.index(f) + 1 if f in keys else 0 for f in _FIELDS)
        specials = tuple((k, n) for n, k in enumerate(keys, 1) if k in _SPECIAL or _catchup_key(k))
        shape = Shape(re.compile(pattern, re.DOTALL), re.compile(pair), slots, specials)
        self.shapes.append(shape)

    @staticmethod
    def _keys(attr_part: str, parts: list[str], quote: str) -> list[str] | None:
        """The keys of `attr_part` (split at its quotes into `parts`) when its values are all
        quoted with `quote`, read so as the general reading reads them, and each key comes
        once; else None."""
        quoted = _attrs_quoted(attr_part, quote)
        if quoted is None or (quote == "'" and quoted != _attrs_scan(attr_part)):
            return None
        keys = [_SEGMENT_KEYS.get(parts[i], "") for i in range(0, len(parts) - 1, 2)]
        return keys if all(keys) and len(set(keys)) == len(keys) else None


def _catchup(attrs: dict[str, str]) -> dict[str, str]:
    if attrs.keys().isdisjoint(_CATCHUP_ON):
        return {}
    return {k: v for k, v in attrs.items() if _catchup_key(k)}
