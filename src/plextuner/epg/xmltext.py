"""XMLTV text as lxml serialises it: the escapes, and a programme's body (all after its start
tag). Light on imports: the second half's helper (halves.py) renders with it."""

from __future__ import annotations

import re

from plextuner.epg.model import Programme

# Characters XML 1.0 cannot carry (lxml refuses them; provider text may hold them): what its
# Char production leaves out, spelled as the few ranges it is (the negated class of the
# allowed ranges took 6.8 ms to compile, in every process that writes a guide; this 0.6 ms).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;", "\r": "&#13;",
     "\t": "&#9;"}
)  # fmt: skip


# Any character an attribute escapes or XML cannot carry (a superset of what text escapes), as
# one class (3x faster than the alternation; a test holds it equal over every code point): a
# channel whose values hold none of them is written without escaping anything.
NEEDS_ESCAPE = re.compile('[\x00-\x1f&<>"\ud800-\udfff\ufffe\uffff]')
_needs_escape = NEEDS_ESCAPE.search


def xml_text(value: str) -> str:
    """Element text escaped as lxml serialises it. Most values need nothing: one class search
    answers that (the deletion and the translation through a table of strings cost ~0.9 us
    a value, a placeholder guide's 50k titles and channel ids 0.1 s of its first write)."""
    if _needs_escape(value) is None:
        return value
    return _NOT_XML.sub("", value).translate(_TEXT_ESCAPES)


def xml_attr(value: str) -> str:
    """A double-quoted attribute value escaped as lxml serialises it."""
    if _needs_escape(value) is None:
        return f'"{value}"'
    return '"' + _NOT_XML.sub("", value).translate(_ATTR_ESCAPES) + '"'


# The characters of NEEDS_ESCAPE beyond `&<>"`: control characters and what XML cannot carry.
RARE = re.compile("[\x00-\x1f\ud800-\udfff\ufffe\uffff]")


def programme_body(p: Programme) -> str:
    """Everything after the start tag. Values needing no escape (one class search over them
    all) go in as they are; values whose only special characters are `&<>"` (a description
    with `&`: most of a real guide) are escaped in one pass over them all, joined; the rest
    one by one."""
    values = [p.title or "Untitled", p.sub_title, p.desc, p.date, p.icon, *p.categories]
    for system, value in p.episode_nums:
        values += (system, value)
    raw = "".join(values)
    text, attr = _same, _quoted
    if NEEDS_ESCAPE.search(raw) is not None:
        if RARE.search(raw) is None:  # so no value holds the NUL the join uses
            joined = "\x00".join(values)
            joined = joined.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            values, attr = joined.split("\x00"), _quoted_escaped
        else:
            text, attr = xml_text, xml_attr
    title, sub_title, desc, date, icon = values[:5]
    parts = [f"<title>{text(title)}</title>"]
    if sub_title:
        parts.append(f"<sub-title>{text(sub_title)}</sub-title>")
    if desc:
        parts.append(f"<desc>{text(desc)}</desc>")
    if date:
        parts.append(f"<date>{text(date)}</date>")
    end = 5 + len(p.categories)
    parts.extend(f"<category>{text(cat)}</category>" for cat in values[5:end])
    if icon:
        parts.append(f"<icon src={attr(icon)}/>")
    parts.extend(
        f"<episode-num system={attr(values[i])}>{text(values[i + 1])}</episode-num>"
        for i in range(end, len(values), 2)
    )
    parts.append(programme_end(p))
    return "".join(parts)


def programme_end(p: Programme) -> str:
    """The flags (empty elements) and the end tag."""
    shown = "<previously-shown/>" if p.previously_shown else ""
    return f"{shown}{'<new/>' if p.new else ''}</programme>"


def _same(value: str) -> str:
    return value


def _quoted(value: str) -> str:
    return f'"{value}"'


def _quoted_escaped(value: str) -> str:
    """An attribute value whose `&<>` are already escaped (and that holds no rarer character)."""
    return '"' + value.replace('"', "&quot;") + '"'
