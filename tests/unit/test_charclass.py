"""A character set spelled by what it allows matches what `[^...]` of the excluded matches."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.charclass import MAX_CODE_POINT, allowed, allowed_bytes
from plextuner.ingest.urls import _BAD, clean_url

_EDGES = (
    "".join(
        map(chr, [0, 9, 10, 13, 0x1F, 0x20, 0x21, 0x22, 0x7F, 0x80, 0xFF, 0x100, 0xD800, 0xFFFF])
    )
    + chr(0x10000)
    + chr(MAX_CODE_POINT)
    + "\"',<>\\^`{}|/?#é€😀"
)


@given(st.text(alphabet=_EDGES, max_size=6), st.text(alphabet=_EDGES, max_size=12))
@settings(max_examples=500, deadline=None)
def test_allowed_is_the_negated_set(excluded: str, text: str) -> None:
    negated = re.compile("[^" + re.escape(excluded) + "]*") if excluded else re.compile(".*", re.S)
    spelled = re.compile(allowed(excluded) + "*")
    assert (negated.fullmatch(text) is None) == (spelled.fullmatch(text) is None)


@given(st.text(alphabet=_EDGES + "ab:", max_size=24))
@settings(max_examples=300, deadline=None)
def test_a_clean_url_is_what_it_was_with_negated_sets(url: str) -> None:
    """`clean_url` as it was spelled before its sets were (negated ones, `_BAD` escaped)."""
    bad = re.escape(_BAD + "|")
    before = re.compile(rf"([A-Za-z][A-Za-z0-9+.-]*+:(?://[^/?#{bad}]*+)?+)[^{bad}]*+")
    now = re.compile(clean_url(without="|"))
    a, b = before.fullmatch(url), now.fullmatch(url)
    assert (a is None) == (b is None)
    assert a is None or b is None or a.groups() == b.groups()


def test_every_code_point_but_the_excluded() -> None:
    assert allowed("") == "[\\x00-\\U0010ffff]"
    assert allowed('"\r\n') == "[\\x00-\\x09\\x0b-\\x0c\\x0e-\\x21\\x23-\\U0010ffff]"
    assert allowed(chr(MAX_CODE_POINT)) == "[\\x00-\\U0010fffe]"


@given(st.binary(max_size=6), st.binary(max_size=16))
@settings(max_examples=500, deadline=None)
def test_allowed_bytes_is_the_negated_set(excluded: bytes, data: bytes) -> None:
    negated = (
        re.compile(b"[^" + re.escape(excluded) + b"]*") if excluded else re.compile(b".*", re.S)
    )
    spelled = re.compile(allowed_bytes(excluded) + b"*")
    assert (negated.fullmatch(data) is None) == (spelled.fullmatch(data) is None)
