"""The patterns plain.py reads a plainly spelled programme with (see there): one match a
programme, its fields in fixed places of the match's groups."""

from __future__ import annotations

import re

from plextuner.epg.canonical import channel_first

_W = rb"[ \t\n\r]*+"
# Text and attribute values by structure alone (the cheap classes); what else they may not
# hold is looked for once over the whole piece (`REFUSED`, `ENTITY`). Every repetition is
# possessive (`*+`: no backtracking into it, a fifth of the match's time): what follows each
# (a `<`, a quote, an element's end) is never something it could have taken.
_TEXT = rb"[^<>\r]*+"
_VALUE = rb'[^"<>\x00-\x1f]*+'
_PLAIN_ATTR = rb'"[^"<&\t\n\r]*+"'
_LANG = rb'(?:[ \t\n\r]+lang="[^"<]*+")?' + _W
_ONE_ATTR = rb'(?:[ \t\n\r]+[A-Za-z_][\w.-]*+="[^"<]*+")?' + _W
# Characters XML refuses (the parser would stop there) and entities other than the three whose
# escaped form is what `xml_text` writes back.
REFUSED = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
ENTITY = re.compile(rb"&(?!(?:amp|lt|gt);)")
# Every byte but those, CR, LF, `<` and `>`: what a block's one `translate` deletes, its marks
# left (~0.35 ms a 256 KB block, against ~0.55 for REFUSED's own, ~0.6 for the three searches
# of `canonical.balanced` and ~0.07 for the line count)
UNMARKED = bytes(sorted(set(range(256)) - set(REFUSED) - set(b"\r\n<>")))
_OURS = rb"(?:title|sub-title|desc|date|category|icon|episode-num|new|previously-shown)(?![\w.-])"


def _skipped(n: int) -> bytes:
    """Elements we do not write, in a run: text-only or with text-only children (credits,
    rating, star-rating, video), one attribute at most each (two may be a duplicate). Where
    the DTD puts the common ones: after the description (credits), the categories (keyword,
    length), the episode numbers (video, audio) and at the end (rating, star-rating)."""
    inner = (
        rb"(?:<(?P<i" + str(n).encode() + rb">[A-Za-z_][\w.-]*+)" + _ONE_ATTR
        + rb"(?:/>|>" + _TEXT + rb"</(?P=i" + str(n).encode() + rb")>)" + _W + rb")*+"
    )  # fmt: skip
    return (
        rb"(?:" + _W + rb"<(?!" + _OURS + rb")(?P<o" + str(n).encode() + rb">[A-Za-z_][\w.-]*+)"
        + _ONE_ATTR + rb"(?:/>|>" + _TEXT + inner
        + rb"</(?P=o" + str(n).encode() + rb")>))*+"
    )  # fmt: skip


def _first(tag: bytes, name: bytes, attrs: bytes = _LANG, more: bytes | None = None) -> bytes:
    """The first of a run of `tag` captured (its text, as group `name`), the rest matched (as
    group `more`, when named)."""
    one = rb"<" + tag + attrs + rb">(?P<" + name + rb">" + _TEXT + rb")</" + tag + rb">"
    rest = rb"(?:" + _W + rb"<" + tag + attrs + rb">" + _TEXT + rb"</" + tag + rb">)*+"
    return _W + one + (rb"(?P<" + more + rb">" + rest + rb")" if more else rest)


# The times (XMLTV's stop is optional), then the channel: the start tag as the DTD orders it
_TIMES = rb"start=" + _PLAIN_ATTR + rb"(?:[ \t\n\r]+stop=" + _PLAIN_ATTR + rb")?"
_SLOT = rb"(?P<slot>start=(?P<start>" + _PLAIN_ATTR + rb")(?:[ \t\n\r]+stop=(?P<stop>"
_SLOT += _PLAIN_ATTR + rb"))?)"
_CHANNEL = rb'channel="(?P<channel>[^"<&\t\n\r]*+)"'
_BODY = (
    _first(b"title", b"title")
    + rb"(?:" + _first(b"sub-title", b"sub") + rb")?"
    + rb"(?:" + _first(b"desc", b"desc", more=b"descs") + rb")?"
    + _skipped(1)
    + rb"(?:" + _W + rb"<date>(?P<date>" + _TEXT + rb")</date>)?"
    + rb"(?:" + _W + rb"<category" + _LANG + rb">(?P<cat>" + _TEXT + rb")</category>"
    + rb"(?P<cats>(?:" + _W + rb"<category" + _LANG + rb">" + _TEXT + rb"</category>)*+))?"
    + _skipped(2)
    + rb'(?:' + _W + rb'<icon[ \t\n\r]+src="(?P<icon>' + _VALUE + rb')"' + _W + rb"/>)?"
    + rb"(?:" + _W + rb'<episode-num(?:[ \t\n\r]+system="(?P<system>' + _VALUE + rb')")?'
    + _W + rb">(?P<ep>" + _TEXT + rb")</episode-num>"
    + rb"(?P<eps>(?:" + _W + rb'<episode-num(?:[ \t\n\r]+system="' + _VALUE + rb'")?' + _W
    + rb">" + _TEXT + rb"</episode-num>)*+))?"
    + _skipped(3)
    + rb"(?:" + _W + rb"(?P<shown><previously-shown" + _W + rb"/>))?"
    + rb"(?:" + _W + rb"(?P<new><new" + _W + rb"/>))?"
    + _skipped(4)
    + _W
)  # fmt: skip
PROGRAMME = re.compile(
    _W + rb"<programme " + _SLOT + rb"[ \t\n\r]+" + _CHANNEL + _W + rb">" + _BODY
)
# `channel` first (ElementTree's sorted attributes, some generators): the times captured ahead,
# so that the groups come in the same places
CHANNEL_FIRST = re.compile(
    _W + rb'<programme (?=channel="[^"<&\t\n\r]*+"[ \t\n\r]+' + _SLOT + _W + rb">)"
    + _CHANNEL + rb"[ \t\n\r]+" + _TIMES + _W + rb">" + _BODY
)  # fmt: skip
if CHANNEL_FIRST.groupindex != PROGRAMME.groupindex:
    raise RuntimeError("the two spellings' fields must be in the same places")


def pattern_for(block: bytes) -> re.Pattern[bytes]:
    """The pattern for a block's programmes, by its first start tag (a guide spells them alike;
    one spelled otherwise goes to the parser, as before)."""
    return CHANNEL_FIRST if channel_first(block) else PROGRAMME


# Where each field is in `groups()` (the skipped elements' groups lie between them); the first
# category and episode number, and the rest of each run
_FIELDS = ("slot", "start", "stop", "channel", "title", "sub", "desc", "descs", "date", "cat",
           "cats", "icon", "system", "ep", "eps", "shown", "new")  # fmt: skip
(SLOT, START, STOP, CHANNEL, TITLE, SUB, DESC, DESCS, DATE, CAT, CATS, ICON, SYSTEM, EP,
 EPS, SHOWN, NEW) = (PROGRAMME.groupindex[name] - 1 for name in _FIELDS)  # fmt: skip
CATEGORY = re.compile(rb">(" + _TEXT + rb")</category>")
EPISODE = re.compile(
    rb'<episode-num(?:[ \t\n\r]+system="(' + _VALUE + rb')")?' + _W + rb">(" + _TEXT
    + rb")</episode-num>"
)  # fmt: skip
SPACE = b" \t\n\r"
