"""Match answers kept from one refresh for the next: a re-refresh of an unchanged lineup and
guide matches nothing again.

Matching a 50k-stream lineup's 34k channels against a guide costs ~1 s and its keys' memory
(the name keys of every lineup name, and of every guide channel: a 50,000-channel guide's
indexes cost 1.2-1.4 s more). Between refreshes the guide's channel list and the lineup mostly
stay as they were, and an answer depends only on the channel's facts and on what the matcher
holds (`Matcher.fingerprint`: the guide channels added, in order, the manual mapping, the
aliases, the threshold) and on the matching code itself (`code_stamp`: the modules' bytes and the
versions of the libraries they use), so an answer is reused only where all of them are equal.
The file is ours (the cache dir), decoded into typed rows by msgspec; anything unreadable is
dropped, and everything is matched again as before.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
from array import array
from pathlib import Path

import msgspec

from plextuner.epg.match import ChannelFacts
from plextuner.epg.matchresult import UNMATCHED, Candidate, MatchResult, MatchTier
from plextuner.errors import StateError
from plextuner.fileio import write_atomic
from plextuner.logging import get_logger

log = get_logger(__name__)

FILE = "matches.msgpack"
MAX_BYTES = 256 * 1024**2
FORMAT = 2  # 2: facts digested from their msgpack encoding, not their repr
_encode = msgspec.msgpack.Encoder().encode
# What an answer is computed by: any edit of these, or another version of the libraries, and
# the kept answers are not used
_MODULES = tuple(
    f"plextuner.{name}"
    for name in ("epg.match", "epg.names", "epg.nameindex", "epg.countries", "ingest.models")
)
_LIBRARIES = ("rapidfuzz", "pycountry")

# A channel's facts (their digest, `facts_digest`) and its answer, as stored
Row = tuple[int, str | None, str, float, str, tuple[tuple[str, str, float], ...]]
Answers = dict[int, MatchResult]  # by `facts_digest`
Answered = tuple["array[int]", list[MatchResult]]  # a pass's digests and their answers, in order


class _File(msgspec.Struct):
    format: int
    code: str
    passes: dict[str, list[Row]]  # by matcher fingerprint (hex): a pass of `match_pending`


@functools.cache
def code_stamp() -> str:
    """The matching code's identity: its modules' bytes (an install without them: its
    version) and its libraries' versions."""
    digest = hashlib.blake2b(digest_size=16)
    for name in _MODULES:
        module = importlib.import_module(name)
        try:
            digest.update(Path(module.__file__ or "").read_bytes())
        except OSError:
            digest.update(f"{name} {_version('plextuner')}".encode())
    for library in _LIBRARIES:
        digest.update(_version(library).encode())
    return digest.hexdigest()


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def load(directory: Path) -> dict[bytes, Answers]:
    """The answers the last refresh kept, by matcher fingerprint; none when there are none, or
    when they were computed by other code."""
    path = directory / FILE
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as err:
        log.warning("guide_match_cache_unreadable", path=str(path), error=str(err))
        return {}
    if len(data) > MAX_BYTES:  # not one we wrote (34k channels' answers are 1.2 MB)
        log.warning("guide_match_cache_unreadable", path=str(path), error="too big")
        return {}
    try:
        kept = msgspec.msgpack.decode(data, type=_File)
        if kept.format != FORMAT or kept.code != code_stamp():
            return {}
        return {
            bytes.fromhex(fp): dict(_answer(row) for row in rows)
            for fp, rows in kept.passes.items()
        }
    except (msgspec.DecodeError, ValueError) as err:
        log.warning("guide_match_cache_unreadable", path=str(path), error=str(err)[:200])
        return {}


def save(directory: Path, passes: dict[bytes, Answered]) -> None:
    """This refresh's answers, for the next (replacing the last's)."""
    rows = {fp.hex(): [_row(digest, answer) for digest, answer in zip(*answered, strict=True)]
            for fp, answered in passes.items()}  # fmt: skip
    data = msgspec.msgpack.encode(_File(FORMAT, code_stamp(), rows))
    try:
        write_atomic(directory / FILE, data)
    except StateError as err:  # a read-only or full cache: the next refresh matches again
        log.warning("guide_match_cache_unwritable", path=str(directory / FILE), error=str(err))


def facts_digest(facts: ChannelFacts) -> int:
    """A channel's facts as 64 bits, stable between processes (`hash` is not): the answers of
    34k channels keyed by their facts held ~15 MB more at the match, by these ~2 MB. Two facts
    of one lineup meeting in 64 bits: ~1 in 10^10 for 50k channels."""
    # msgpack: each text length-prefixed (no two facts encode alike), ~2x faster than `repr`
    fields = (facts.key, facts.name, facts.tvg_id, facts.tvg_name, facts.groups, facts.chno)
    return int.from_bytes(hashlib.blake2b(_encode(fields), digest_size=8).digest(), "big")


def _row(digest: int, answer: MatchResult) -> Row:
    candidates = tuple((c.guide_id, c.name, c.score) for c in answer.candidates)
    return digest, answer.guide_id, answer.tier.value, answer.confidence, answer.note, candidates


def _answer(row: Row) -> tuple[int, MatchResult]:
    digest, guide_id, tier, confidence, note, candidates = row
    answer = MatchResult(
        guide_id, MatchTier(tier), confidence, tuple(Candidate(*c) for c in candidates), note
    )
    # The unmatched answer is one object, and the report tells it by identity (report.py)
    return digest, UNMATCHED if answer == UNMATCHED else answer
