"""The plain reader's memo of channel values (plain.py), filled with the wanted ids ahead."""

from __future__ import annotations

from collections.abc import Container


def fill(memo: dict[bytes, str | None], wanted: Container[str], codec: str, limit: int) -> None:
    """`memo` given each wanted id by its bytes: what the reader would answer for it, and the
    wanted set's own string, not a decoded copy of each (the kept lists are keyed by them: 2.9
    MB of a guide of 50,000 wanted channels, in the reader and again in its helper). Only a set
    within `limit` (the memo's bound) is walked."""
    if not isinstance(wanted, set | frozenset) or len(wanted) + len(memo) > limit:
        return
    for gid in wanted:
        try:
            raw = gid.encode(codec)
        except UnicodeEncodeError:  # (no byte of the guide can spell it)
            continue
        if raw:
            memo[raw] = gid  # (an id decodes from its bytes as itself in the codecs read here)
