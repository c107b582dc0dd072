"""A programme's body as lxml serialises it (all after its start tag; the escapes are
xmlescape.py's). Light on imports: the second half's helper (halves.py) renders with it."""

from __future__ import annotations

from plextuner.epg.model import Programme
from plextuner.xmlescape import NEEDS_ESCAPE, RARE, xml_attr, xml_text


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
