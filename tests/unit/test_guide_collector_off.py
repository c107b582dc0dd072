"""A guide's reading leaves nothing behind with the cyclic collector off, as a refresh runs (cli.py,
the guide worker and the reading helper disable it): what is left in a reference cycle then stays
until the process ends. A pull parser is such a cycle (lxml's own), and so was the prefilter with
its plain reader: a guide with 16,000 refused programmes grew its reader to 141 MB, and a
50,000-channel guide's reading state (~11 MB) sat beside its writing."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from plextuner.epg.plain import PlainReader
from plextuner.epg.prefilter import Prefilter
from tests.unit.test_guide_resync import IDS, STARTS, guide, outcome_of, programme


@contextmanager
def collector_off() -> Iterator[None]:
    was = gc.isenabled()
    gc.collect()  # what earlier tests left, not counted here
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def cyclic_garbage() -> Counter[str]:
    """The types of the objects only the cyclic collector would free now."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def broken_guide(count: int, every: int) -> bytes:
    return guide(
        [
            programme(
                IDS[n % 4], STARTS[n % 3], b"&bogus; %d" % n if n % every == 0 else b"S %d" % n
            )
            for n in range(count)
        ]
    )


@pytest.mark.parametrize("fold", [None, True])
def test_refused_programmes_leave_no_parser_behind(fold: bool | None) -> None:
    """Each refused programme restarts the parser: the same one, not a new one a time."""
    body = broken_guide(400, 5)
    with collector_off():
        _, outcome = outcome_of(body, fold)
        left = cyclic_garbage()
    assert outcome.malformed == 80
    assert outcome.programmes + outcome.skipped == 400
    assert left["XMLPullParser"] <= 1  # the reading's own, dropped with it


def test_a_reading_leaves_no_prefilter_behind() -> None:
    """The plain reader (programmes read from their bytes) takes the wanted channels from the
    prefilter at each block; it asked through a reference to it, a cycle."""
    body = broken_guide(300, 1000)
    with collector_off():
        _, outcome = outcome_of(body, True)
        left = cyclic_garbage()
    assert outcome.programmes > 0 and outcome.malformed == 1
    assert left[Prefilter.__name__] == 0
    assert left[PlainReader.__name__] == 0
