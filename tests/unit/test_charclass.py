"""A byte set spelled by what it allows matches what `[^...]` of the excluded bytes matches."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from plextuner.charclass import allowed_bytes


@given(st.binary(max_size=6), st.binary(max_size=16))
@settings(max_examples=500, deadline=None)
def test_allowed_bytes_is_the_negated_set(excluded: bytes, data: bytes) -> None:
    negated = (
        re.compile(b"[^" + re.escape(excluded) + b"]*") if excluded else re.compile(b".*", re.S)
    )
    spelled = re.compile(allowed_bytes(excluded) + b"*")
    assert (negated.fullmatch(data) is None) == (spelled.fullmatch(data) is None)


def test_every_byte_but_the_excluded() -> None:
    assert allowed_bytes(b"") == b"[\\x00-\\xff]"
    assert allowed_bytes(b'"<') == b"[\\x00-\\x21\\x23-\\x3b\\x3d-\\xff]"
    assert allowed_bytes(b"\xff\x00") == b"[\\x01-\\xfe]"
