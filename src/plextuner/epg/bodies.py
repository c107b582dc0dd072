"""Programme bodies rendered a piece at a time, each piece remembered: a guide repeats its titles,
categories, episode numbers and icons across channels, days and reruns, so most of a body is
found rendered already and only the description (different almost every time) is escaped.
The output is `writer.programme_body`'s, byte for byte (a property test holds them equal): a
value escaped alone is what the joint escape gives it."""

from __future__ import annotations

from typing import TypeVar

from plextuner.epg.writer import NEEDS_ESCAPE, RARE, xml_attr, xml_text
from plextuner.epg.xmltv import Programme

K = TypeVar("K")

CACHED = 65_536  # pieces remembered per kind; past that, rendered each time


def _text(value: str) -> str:
    if NEEDS_ESCAPE.search(value) is None:
        return value
    if RARE.search(value) is None:  # only `&<>"`: three replaces (translate is 5x slower)
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return xml_text(value)


def _attr(value: str) -> str:
    if NEEDS_ESCAPE.search(value) is None:
        return f'"{value}"'
    if RARE.search(value) is None:
        return '"' + _text(value).replace('"', "&quot;") + '"'
    return xml_attr(value)


class BodyRenderer:
    """`render(p)` == `programme_body(p)`, with the repeated pieces looked up."""

    def __init__(self) -> None:
        self._titles: dict[str, str] = {}
        self._subs: dict[str, str] = {}
        self._dates: dict[str, str] = {}
        self._categories: dict[tuple[str, ...], str] = {}
        self._icons: dict[str, str] = {}
        self._episodes: dict[tuple[tuple[str, str], ...], str] = {}

    def render(self, p: Programme) -> str:
        desc = f"<desc>{_text(p.desc)}</desc>" if p.desc else ""
        return f"{self._opening(p)}{desc}{self._closing(p)}"

    def _opening(self, p: Programme) -> str:
        """The title and sub-title."""
        title = p.title or "Untitled"
        head = self._titles.get(title)
        if head is None:
            head = _remember(self._titles, title, f"<title>{_text(title)}</title>")
        if not p.sub_title:
            return head
        sub = self._subs.get(p.sub_title)
        if sub is None:
            sub = f"<sub-title>{_text(p.sub_title)}</sub-title>"
            _remember(self._subs, p.sub_title, sub)
        return head + sub

    def _closing(self, p: Programme) -> str:
        """Everything after the description, to the end tag."""
        parts = []
        if p.date:
            date = self._dates.get(p.date)
            if date is None:
                date = _remember(self._dates, p.date, f"<date>{_text(p.date)}</date>")
            parts.append(date)
        if p.categories:
            cats = self._categories.get(p.categories)
            if cats is None:
                cats = "".join(f"<category>{_text(c)}</category>" for c in p.categories)
                _remember(self._categories, p.categories, cats)
            parts.append(cats)
        if p.icon:
            icon = self._icons.get(p.icon)
            if icon is None:
                icon = _remember(self._icons, p.icon, f"<icon src={_attr(p.icon)}/>")
            parts.append(icon)
        if p.episode_nums:
            eps = self._episodes.get(p.episode_nums)
            if eps is None:
                eps = "".join(
                    f"<episode-num system={_attr(system)}>{_text(value)}</episode-num>"
                    for system, value in p.episode_nums
                )
                _remember(self._episodes, p.episode_nums, eps)
            parts.append(eps)
        if p.previously_shown:
            parts.append("<previously-shown/>")
        if p.new:
            parts.append("<new/>")
        parts.append("</programme>")
        return "".join(parts)


def _remember(cache: dict[K, str], key: K, piece: str) -> str:
    if len(cache) < CACHED:
        cache[key] = piece
    return piece
