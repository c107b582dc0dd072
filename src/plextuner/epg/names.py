"""Channel names and guide ids reduced to comparable keys.

`BBC One FHD`, `UK: BBC 1 HD (1080p)` and `bbc one` all become the tokens `bbc 1` (compact key
`bbc1`); the country a prefix or bracket names is kept aside as a tie-breaker, and what makes a
channel a *different* channel (a timeshift `+1`, a regional or East/West feed, a number) stays in
the key, so `ITV +1` and `BBC One Scotland` never collapse into their parent.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Iterable
from sys import intern
from typing import NamedTuple

from plextuner.epg.countries import country_of_code, country_of_name
from plextuner.ingest.models import fold

# Tags that say how a copy is delivered, not which channel it is.
QUALITY = frozenset(
    [
        "hd",
        "hdtv",
        "sdtv",
        "fhd",
        "uhd",
        "sd",
        "4k",
        "8k",
        "hevc",
        "h265",
        "h264",
        "hq",
        "lq",
        "fullhd",
        "hdr",
        "1080p",
        "1080i",
        "720p",
        "2160p",
        "576p",
        "576i",
        "480p",
        "540p",
        "360p",
        "50fps",
        "60fps",
        "25fps",
        "vip",
        "backup",
        "multi",
        "multisub",
        "geoblocked",
        "orig",
        "original",
    ]
)
# Words that mark a feed of the same network for another place or time zone: a channel name that
# differs from another only by one of these is a different channel.
VARIANTS = frozenset(
    [
        "east",
        "west",
        "pacific",
        "mountain",
        "central",
        "atlantic",
        "north",
        "south",
        "northeast",
        "northwest",
        "southeast",
        "southwest",
        "scotland",
        "wales",
        "ireland",
        "ni",
        "london",
        "yorkshire",
        "midlands",
        "anglia",
        "tyne",
        "tees",
        "border",
        "granada",
        "meridian",
        "cymru",
        "alba",
        "region",
        "regional",
        "local",
    ]
)
# Words guide sites add or leave out without changing the channel.
FILLER = frozenset(
    ["tv", "channel", "the", "television", "canal", "network", "telewizja", "televisione", "chaine"]
)
_NUMBER_WORDS = {
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "uno": "1",
    "eins": "1",
    "due": "2",
    "dos": "2",
    "zwei": "2",
    "deux": "2",
    "tre": "3",
    "tres": "3",
    "drei": "3",
    "trois": "3",
}
# Availability notes providers put in names: `[Not 24/7]`, `(Geo-blocked)`, `24/7`.
_NOTES = re.compile(r"\bnot\s+24\s*/\s*7\b|\b24\s*/\s*7\b|\bgeo[\s-]?blocked\b", re.IGNORECASE)
_RESOLUTION = re.compile(r"\d{3,4}[pi]")
_TIMESHIFT = re.compile(r"\+\s?(\d{1,2})\s*(?:h|hr|hrs|hour|hours)?(?=\W|$)", re.IGNORECASE)
_PREFIX = re.compile(
    r"^\s*(?:[\[(|]\s*([^\]\)|]{1,12}?)\s*[\])|]|([A-Za-z]{2,4})\s*(?:[:|\-\u2013]|\s\|)(?=\s|\w))\s*"
)
_BRACKETED = re.compile(r"\[([^\]]*)\]|\(([^)]*)\)")
_SPLIT = re.compile(r"[^\w+]+|_", re.UNICODE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # what _SPLIT splits into, once `+` is spelled out
_ALNUM = re.compile(r"\d+|[^\W\d_]+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)")
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=\d)")  # _CAMEL's only bound in a stem with no capitals


class NameKey(NamedTuple):
    """A name's comparable form. Built by `make_key` (every derived key computed once: keys are
    cached per name and compared many times). A named tuple: built ~10x faster than a frozen
    dataclass, and tens of thousands are built per refresh. A guide's channels each hold one or
    two for the run, so the words are tuples, not sets (a frozenset is 216 bytes however few
    it holds), and the spaced text is made when asked for: 50k guide channels' indexes
    158 -> 118 MB (78 with match.py's single values and the interned words)."""

    tokens: tuple[str, ...]
    country: str | None
    timeshift: int
    compact: str  # spacing-blind (`bbc1` for `BBC 1` and `BBC1`), timeshift included
    loose: str  # the compact key without filler words, "" when too little would be left
    # (critical, timeshift): equal for one channel; critical, what must agree for two names to
    # be one channel, is sorted words, each once (a set's equality, without the set)
    signature: tuple[tuple[str, ...], int]
    content: tuple[str, ...]  # the words without filler words, each once

    def __bool__(self) -> bool:
        return bool(self.tokens)

    @property
    def text(self) -> str:
        """The tokens joined by spaces."""
        return " ".join(self.tokens)


_PLAIN: tuple[tuple[str, ...], int] = ((), 0)  # most names' signature, held once
_new_tuple = tuple.__new__


def _once_each(words: tuple[str, ...]) -> tuple[str, ...]:
    """`words` without repeats, in order; `words` itself when none repeats (most names: a set's
    size is half the cost of `dict.fromkeys`)."""
    return words if len(set(words)) == len(words) else tuple(dict.fromkeys(words))


def make_key(tokens: tuple[str, ...], country: str | None = None, timeshift: int = 0) -> NameKey:
    compact = "".join(tokens)
    if FILLER.isdisjoint(tokens):  # most names: nothing to leave out
        loose = compact
        content = _once_each(tokens)
    else:
        kept = [t for t in tokens if t not in FILLER]
        content = _once_each(tuple(kept))
        loose = (
            "".join(kept)
            if "plus" not in tokens
            else "".join(  # "canal plus" keeps its "canal": Canal+ is not "Plus"
                [
                    t
                    for i, t in enumerate(tokens)
                    if t not in FILLER or tokens[i + 1 : i + 2] == ("plus",)
                ]
            )
        )
    if len(loose) < 2 or loose.isdigit():  # tokens are letter or digit runs: no letter at all
        loose = ""
    signature: tuple[tuple[str, ...], int] = _PLAIN
    if not compact.isalpha() or not VARIANTS.isdisjoint(tokens):
        words = [t for t in tokens if t.isdigit() or t in VARIANTS]
        if words:
            signature = (tuple(sorted(set(words))) if len(words) > 1 else (words[0],), timeshift)
    if timeshift:
        suffix = f"+{timeshift}"
        compact += suffix
        loose = loose + suffix if loose else ""
        signature = signature if signature is not _PLAIN else ((), timeshift)
    # (tuple.__new__: the named tuple's own __new__ is a Python call, and keys are made by
    # the tens of thousands a refresh)
    return _new_tuple(NameKey, (tokens, country, timeshift, compact, loose, signature, content))


# Keys are looked up several times while one channel is matched, and a lineup's names twice a
# pass (what its index must hold, then the match: see Matcher.expect); guide channels' keys are
# made without the cache (guide_keys). 32k holds two names each of 16k channels still to match
# and bounds the memory: at 200k, the keys of a 50k-channel lineup (80 MB) sat beside the
# guide's programmes.
KEY_CACHE = 32_768
# Where nothing keyed the names ahead, a channel's keys are reused during its own match only (and
# a group's across channels: remade once a round): the cache is emptied every this many
# channels. Full, it held ~25 MB of keys while 34k channels were matched, the peak of a 50k-stream
# refresh with a 300 MB guide (its guide job 128-135 -> 116-120 MB), in the same time.
KEYS_HELD = 2048
# A word's tokens, made once: a lineup's and a guide's names repeat their few thousand words
# (`sports`, `news`, `bbc`) across thousands of names. Bounded, as the folded words are.
_WORD_TOKENS: dict[str, tuple[str, ...]] = {}
WORDS_KEPT = 32_768


@functools.lru_cache(maxsize=4096)  # a playlist repeats a few prefixes (`UK:`, `[VIP]`)
def _marker_country(inner: str) -> tuple[bool, str | None]:
    """Is a bracketed text only a marker (quality, country, provider tag)? And its country."""
    words = [w for w in _SPLIT.split(fold(inner)) if w]
    if not words:
        return True, None
    country = country_of_code(inner) if len(words) == 1 else None
    country = country or country_of_name(" ".join(words))
    if country:
        return True, country
    return all(w in QUALITY or _RESOLUTION.fullmatch(w) for w in words), None


def _maybe_prefix(text: str) -> bool:
    """Could `text` (stripped) start with a prefix `_PREFIX` takes? Cheap, before it: a regex
    search costs 3-4 of these `in` tests, and most names have no prefix."""
    head = text[:12]
    return (
        head[:1] in ("[", "(", "|") or ":" in head or "-" in head or "|" in head or "\u2013" in head
    )


@functools.lru_cache(maxsize=KEY_CACHE)  # a channel's names are keyed several times a match
def name_key(name: str) -> NameKey:
    """The comparable form of a channel name or display-name."""
    text = (html.unescape(name) if "&" in name else name).strip()  # `BM&amp;C News`
    country: str | None = None
    for _ in range(3 if _maybe_prefix(text) else 0):  # `[VIP] UK: BBC One`: two
        m = _PREFIX.match(text)
        if not m:
            break
        inner = m.group(1) or m.group(2)
        found = country_of_code(inner) if m.group(2) else None
        is_marker, bracket_country = (True, found) if found else _marker_country(inner)
        if not is_marker:
            break
        country = country or found or bracket_country
        text = text[m.end() :]

    def bracket(m: re.Match[str]) -> str:
        nonlocal country
        inner = m.group(1) if m.group(1) is not None else m.group(2)
        is_marker, found = _marker_country(inner)
        if is_marker:
            country = country or found
            return " "
        return f" {inner} "

    if "/" in text or "eo" in text.lower():  # the notes need one of these; most names have none
        text = _NOTES.sub(" ", text)
    if "[" in text or "(" in text:
        text = _BRACKETED.sub(bracket, text)
    timeshift = 0
    shift = _TIMESHIFT.search(text) if "+" in text else None
    if shift:
        timeshift = int(shift.group(1))
        text = text[: shift.start()] + " " + text[shift.end() :]
    text = fold(text).replace("&", " and ").replace("+", " plus ")
    tokens = _tokens(text)
    if len(tokens) > 1 and len(tokens[-1]) > 3:  # `MTV Brasil`, `Showcase Canada`
        found = country_of_name(tokens[-1])
        if found and tokens[-2] not in FILLER and tokens[-1] not in VARIANTS:
            country = country or found
            tokens.pop()
    return make_key(tuple(tokens), country, timeshift)


def _tokens(text: str) -> list[str]:
    """Words of folded text, quality tags left out, letters split from digits, numbers spelled
    as digits."""
    tokens: list[str] = []
    words = _WORD_TOKENS
    for w in _WORD.findall(text):  # the pieces _SPLIT leaves, without the empty ones
        if w.isdigit():  # no quality tag is all digits, and numbers seldom repeat
            tokens.append(intern(w))
            continue
        made = words.get(w)  # (memo.remembered inlined: its call was a tenth of a word's cost)
        if made is None:
            made = _word_tokens(w)
            if len(words) < WORDS_KEPT:
                words[w] = made
        tokens += made
    return tokens


def _word_tokens(word: str) -> tuple[str, ...]:
    """One word's tokens: none for a quality tag; `bbc1` → `bbc 1`. Interned: a big guide's
    keys hold its few thousand words once, not once a name (50k guide channels: -5 MB)."""
    if word in QUALITY:
        return ()
    if word.isalpha():
        return (intern(_NUMBER_WORDS.get(word, word)),)
    return tuple(intern(_NUMBER_WORDS.get(p, p)) for p in _ALNUM.findall(word) if p not in QUALITY)


# A guide's ids share a few suffixes (`.tv`, `.uk`): each looked up once (a guide of 50,000
# channels asked 50,000 times, ~0.5 us each); at most 52**3 of them
_suffix_country = functools.cache(country_of_code)


def split_id(guide_id: str) -> tuple[str, str | None]:
    """`BBCOne.uk@HD` → (`BBCOne`, `gb`); `bbc1.uk` → (`bbc1`, `gb`); `12345` → (`12345`, None)."""
    base = guide_id.split("@", 1)[0].strip()
    stem, dot, suffix = base.rpartition(".")
    if dot and stem and 2 <= len(suffix) <= 3 and suffix.isalpha():
        country = _suffix_country(suffix)
        if country:
            return stem, country
    return base, None


@functools.lru_cache(maxsize=KEY_CACHE)
def id_key(guide_id: str) -> NameKey:
    """A tvg-id or guide id as a name: `BBCOne.uk` and `bbc1.uk` both give `bbc 1` (gb)."""
    return _id_key(guide_id, name_key)


def guide_keys(names: Iterable[str], guide_id: str) -> tuple[list[NameKey], NameKey]:
    """A guide channel's display-names' keys and its id's, made without the caches: each is
    made once an index build, and a big guide's (100k for 50k channels) would push out the
    lineup's own keys, which its matching asks for again and again."""
    plain = name_key.__wrapped__
    return [k for n in names if (k := plain(n))], _id_key(guide_id, plain)


def _id_key(guide_id: str, keyed: Callable[[str], NameKey]) -> NameKey:
    stem, country = split_id(guide_id)
    if not stem[:1].isalpha() and not any(c.isalpha() for c in stem):
        return make_key((), country)  # numeric ids carry no name
    # A stem without capitals (most ids) has only letter-digit bounds: one lookaround, not three
    camel = _LETTER_DIGIT if stem.islower() else _CAMEL
    key = keyed(camel.sub(" ", stem.replace(".", " ")))
    # Only the country can differ, and nothing else in a key is made from it
    return key if not country or country == key.country else key._replace(country=country)


def forget() -> None:
    """Drop the cached keys once a matching pass is done: ~100k of them for a 50k-channel
    lineup (80 MB, mostly one-shot: lineup names are keyed once per pass) would otherwise
    sit beside the guide's programmes for the rest of the job."""
    name_key.cache_clear()
    id_key.cache_clear()
