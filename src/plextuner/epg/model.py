"""What a guide is read into: its channels, its programmes, and how the reading went.

Apart from the reader (xmltv.py) so that what only writes guides (a lineup with no guide
source) need not import it and its patterns (~15 ms of a refresh's start).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(slots=True)
class GuideChannel:
    id: str
    names: Sequence[str]  # a tuple as read: one allocation, not two (tens of thousands)
    icon: str = ""
    lang: str = ""  # the first display-name's language
    lcn: str = ""  # the channel number the guide gives, a matching hint


@dataclass(slots=True)
class Programme:
    channel: str
    start: float
    stop: float | None
    title: str
    sub_title: str = ""
    desc: str = ""
    categories: tuple[str, ...] = ()
    episode_nums: tuple[tuple[str, str], ...] = ()
    icon: str = ""
    date: str = ""
    new: bool = False
    previously_shown: bool = False


@dataclass(slots=True)
class ParseOutcome:
    source: str
    channels: int = 0
    programmes: int = 0
    truncated: str | None = None
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    malformed: int = 0  # programmes libxml2 refused, read alone after mending (resync.py)
    malformed_first: str | None = None  # the first one's error
