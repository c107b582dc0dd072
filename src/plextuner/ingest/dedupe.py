"""Merging entries from several providers and entries into channels with ordered backups."""

from __future__ import annotations

import re
from collections.abc import Iterable

from plextuner.ingest.models import FOLDED_KEPT, Channel, Entry, Source, fold, stream_kind
from plextuner.memo import remembered

# Quality and availability markers that differ between copies of the same channel, matched in
# folded text. Case-blind matching would cost a quarter more, and folding leaves only one letter
# that it would match to a pattern's ASCII letter: the dotless i, U+0131 (as `i`). The key is
# persisted (channel numbers hang on it): tests hold it to the first, case-blind, spelling.
_WORD_MARKERS = ("fhd", "uhd", "hd", "sd", "4k", "hevc", "h265", "backup")
_MARKER_WORDS = re.compile(r"\b(?:" + "|".join(_WORD_MARKERS) + r")\b")  # with no bracket
_MARKERS = re.compile(
    r"\((?:\d{3,4}[pi\u0131]|4k|uhd|fhd|hd|sd)\)|\[(?:[^\]]*)\]|" + _MARKER_WORDS.pattern
)
_MARKER_SET = frozenset(_WORD_MARKERS)
_WORDS = re.compile(r"[^\W_]+")  # what the runs of other characters leave
# ASCII text: every byte but a letter or a digit is a space
_ASCII_NON_WORD = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))


# The words each space-separated run of a name leaves (see `_run_words`), for names in other
# scripts: their runs repeat (`Канал`, `Спорт`, `HD`) across thousands of names. Bounded.
_RUNS: dict[str, tuple[str, ...]] = {}
_SPANNING = ("[",)  # `_run_words`'s answer for a run the whole name's patterns must read


def _run_words(run: str) -> tuple[str, ...]:
    """A run of a name without spaces, folded, its markers cut, as its words; `_SPANNING` when
    its folded text holds `[` (a bracket may span runs). Nothing else a marker pattern matches
    spans a space, so the runs' words joined are the name's (a property test holds them)."""
    text = fold(run)
    return _SPANNING if "[" in text else tuple(_WORDS.findall(_unmarked(text)))


def _unmarked(text: str) -> str:
    """Folded text with its quality markers cut. Every marker holds one of the letters tested
    here; a text with none skips the patterns, whose word alternation is tried at every
    position (0.6 us a name)."""
    if "(" in text or "[" in text:
        return _MARKERS.sub(" ", text)
    if (
        "hd" in text
        or "sd" in text
        or "4k" in text
        or "hevc" in text
        or "h265" in text
        or "backup" in text
    ):
        return _MARKER_WORDS.sub(" ", text)
    return text


def normalise_name(name: str) -> str:
    """A comparison key: case, accents, quality markers and punctuation removed."""
    if not name.isascii():  # a run at a time, remembered (2.7 -> ~1 us a Cyrillic name)
        words: list[str] = []
        for run in name.split(" "):
            if run.isascii():
                if run.isalnum():  # a word (`0`, `HD`): itself, or a marker; numbers unique
                    low = run.casefold()
                    if low not in _MARKER_SET:
                        words.append(low)
                    continue
                found = _run_words(run)  # `+1`, `|`: cheap, and not worth remembering
            else:
                found = remembered(_RUNS, run, _run_words, FOLDED_KEPT)
            if found is _SPANNING:
                break
            words += found
        else:
            return " ".join(words)
    text = _unmarked(fold(name))
    # The runs of other characters as one space, none at the ends
    if text.isascii():
        return b" ".join(text.encode().translate(_ASCII_NON_WORD).split()).decode()
    return " ".join(_WORDS.findall(text))


def channel_key(entry: Entry) -> str:
    if entry.tvg_id:
        return "id:" + entry.tvg_id.casefold()
    return "name:" + (normalise_name(entry.name) or entry.name.casefold())


def merge_entries(entries: Iterable[Entry]) -> list[Channel]:
    """One channel per identity (tvg-id, else normalised name), in first-seen order.

    `entries` arrive in provider priority order, so the first entry names the channel and its
    sources are ordered as the providers are.
    """
    channels: dict[str, Channel] = {}
    get = channels.get
    # A group's name once, not once an entry (each was its own string from the parser: ~3 MB
    # of a 50k list with a few dozen groups, held by the channels and sources to the end)
    group_of: dict[str, str] = {}
    for entry in entries:
        tvg_id = entry.tvg_id
        key = "id:" + tvg_id.casefold() if tvg_id else channel_key(entry)  # channel_key, inlined
        group = group_of.setdefault(entry.group, entry.group)
        # Positional, in the models' field order (a test pins them): 50k of each per big list.
        headers = tuple(sorted(entry.headers.items())) if entry.headers else ()
        source = Source(entry.provider, entry.url, headers, stream_kind(entry.url), group)
        channel = get(key)
        if channel is None:
            channels[key] = Channel(
                key,
                _clean_name(entry.name),
                entry.tvg_id,
                group,
                entry.provider,
                entry.logo,
                entry.tvg_name,
                entry.chno,
                entry.tvg_shift,
                [source],
                [group] if group else [],
            )
            continue
        if group and group not in channel.groups:
            channel.groups.append(group)
        if all(s.url != source.url for s in channel.sources):
            channel.sources.append(source)
            if not channel.logo and entry.logo:
                channel.logo = entry.logo
    return list(channels.values())


# `(\s*(\[[^\]]*\]|\(\d{3,4}[pi]\)))+\s*$` spelled backwards and matched at the start of the
# reversed name: the same (maximal) run of trailing markers, without the forward pattern's
# attempt at every position of every name (a third of the merge of a 50k list).
_TRAILING_MARKERS_REVERSED = re.compile(r"\s*(?:(?:\][^\]]*\[|\)[pi]\d{3,4}\()\s*)+", re.IGNORECASE)


def _clean_name(name: str) -> str:
    """`BBC News HD (720p) [Geo-blocked]` → `BBC News HD`; the name Plex shows."""
    stripped = name.strip()
    if not stripped.endswith(("]", ")")):
        return stripped
    match = _TRAILING_MARKERS_REVERSED.match(stripped[::-1])
    cleaned = stripped[: len(stripped) - match.end()].strip() if match else stripped
    return cleaned or stripped
