"""Programme bodies rendered a piece at a time, each piece remembered: a guide repeats its titles,
categories, episode numbers and icons across channels, days and reruns, so most of a body is
found rendered already and only the description (different almost every time) is escaped.
The output is `xmltext.programme_body`'s, byte for byte (a property test holds them equal): a
value escaped alone is what the joint escape gives it."""

from __future__ import annotations

import dataclasses

from plextuner.epg.chunked import SpilledList, held_for
from plextuner.epg.emit import RenderedRun, SourcedRun
from plextuner.epg.model import Programme
from plextuner.epg.spill import Spill
from plextuner.epg.xmltext import programme_end
from plextuner.memo import remembered
from plextuner.xmlescape import NEEDS_ESCAPE, RARE, xml_attr, xml_text

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
        head = remembered(self._titles, p.title or "Untitled", _title, CACHED)
        return (
            head + remembered(self._subs, p.sub_title, _sub_title, CACHED) if p.sub_title else head
        )

    def _closing(self, p: Programme) -> str:
        """Everything after the description, to the end tag."""
        parts = []
        if p.date:
            parts.append(remembered(self._dates, p.date, _date, CACHED))
        if p.categories:
            parts.append(remembered(self._categories, p.categories, _categories, CACHED))
        if p.icon:
            parts.append(remembered(self._icons, p.icon, _icon, CACHED))
        if p.episode_nums:
            parts.append(remembered(self._episodes, p.episode_nums, _episodes, CACHED))
        parts.append(programme_end(p))
        return "".join(parts)


def _title(title: str) -> str:
    return f"<title>{_text(title)}</title>"


def _sub_title(sub_title: str) -> str:
    return f"<sub-title>{_text(sub_title)}</sub-title>"


def _date(date: str) -> str:
    return f"<date>{_text(date)}</date>"


def _categories(categories: tuple[str, ...]) -> str:
    return "".join(f"<category>{_text(c)}</category>" for c in categories)


def _icon(icon: str) -> str:
    return f"<icon src={_attr(icon)}/>"


def _episodes(episodes: tuple[tuple[str, str], ...]) -> str:
    return "".join(
        f"<episode-num system={_attr(system)}>{_text(value)}</episode-num>"
        for system, value in episodes
    )


def shaped(p: Programme, fold: bool) -> Programme:
    """Plex groups airings by title and shows one description for them all when a programme has
    no episode number; folding the sub-title into the title keeps episodes apart."""
    if fold and p.sub_title and not p.episode_nums and p.sub_title not in p.title:
        return dataclasses.replace(p, title=f"{p.title}: {p.sub_title}")
    return p


def keep_programme(
    p: Programme | RenderedRun,
    fold: bool,
    spill: Spill,
    packed: dict[str, SpilledList],
    bodies: BodyRenderer,
) -> None:
    """`p` rendered into `spill` (or a run that came rendered), its times and reference added
    to its channel's list."""
    if isinstance(p, RenderedRun):
        _keep_run(p, spill, packed)
        return
    kept = packed.get(p.channel)
    if kept is None:
        kept = packed[p.channel] = SpilledList()
    body = spill.add(bodies.render(shaped(p, fold)).encode())
    kept.append(p.start, p.stop, body, spill, held_for(len(packed)))  # as `_keep_run`'s


def _keep_run(run: RenderedRun, spill: Spill, packed: dict[str, SpilledList]) -> None:
    """`SpilledList.append` inlined, the times as kept (plain.py makes them once a slot): a
    provider's own guide keeps a million programmes."""
    # (a sourced run's bodies are read where they lie in the guide's file: not spilled)
    refs = run.refs if isinstance(run, SourcedRun) else spill.add_many([i[3] for i in run])
    get = packed.get
    full = held_for(len(packed))
    for (channel, at, end, _), ref in zip(run, refs, strict=True):
        kept = get(channel)
        if kept is None:
            kept = packed[channel] = SpilledList()
        held = kept.held
        held.append(at << 32 | end & 0xFFFFFFFF)  # `pack_times`, inlined
        held.append(ref)
        if len(held) >= full:
            kept.spill_to(spill)
