"""What the matcher answers for a lineup channel: the tier that found its guide channel, a
confidence, and the candidates `guide-match` shows (see match.py)."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class MatchTier(StrEnum):
    MANUAL = "manual"
    TVG_ID = "tvg-id"
    TVG_ID_NORMALISED = "tvg-id-normalised"
    NAME = "name"
    NAME_LOOSE = "name-loose"
    FUZZY = "fuzzy"
    NONE = "none"


CONFIDENCE = {
    MatchTier.MANUAL: 1.0,
    MatchTier.TVG_ID: 1.0,
    MatchTier.TVG_ID_NORMALISED: 0.97,
    MatchTier.NAME: 0.95,
    MatchTier.NAME_LOOSE: 0.9,
}
LOW_CONFIDENCE = 0.9  # below this guide-match lists the alternatives
TIER_VALUE = {tier: tier.value for tier in MatchTier}  # an enum's `.value` is a slow property


# Structs, not frozen dataclasses: a refresh makes a few of these for each lineup channel, and a
# frozen dataclass's __init__ sets each field through object.__setattr__ (0.55 us against 0.07
# for four fields; 50k channels' facts and answers ~50 ms).
class Candidate(msgspec.Struct, frozen=True, gc=False):
    guide_id: str
    name: str
    score: float


class MatchResult(msgspec.Struct, frozen=True, gc=False):
    guide_id: str | None
    tier: MatchTier
    confidence: float
    candidates: tuple[Candidate, ...] = ()
    note: str = ""


UNMATCHED = MatchResult(None, MatchTier.NONE, 0.0)
