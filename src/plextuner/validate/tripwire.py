"""The early guard trip: a bucket certain to be held stops being probed.

Once this many channels of a bucket are definitively dead and they are more than twice the
allowed drop share of its decided channels, the guard will hold the bucket anyway; probing the
rest would only load the CDN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from plextuner.logging import get_logger

EARLY_TRIP_MIN_DEAD = 20
log = get_logger(__name__)


@dataclass(slots=True)
class BucketTripwire:
    max_drop_ratio: float
    tripped: list[str] = field(default_factory=list)
    _counts: dict[str, list[int]] = field(default_factory=dict)  # bucket -> [decided, dead]
    # Channels whose first answer was a definite failure (a page, `200, then nothing`), their
    # retry pending: counted dead until decided. A provider serving its error page for every
    # channel trips the bucket as early as one answering 404 (tripping drops nothing: the
    # guard holds the bucket either way).
    _struck: dict[str, set[object]] = field(default_factory=dict)

    def struck(self, bucket: str, key: object) -> bool:
        """A definite failure awaiting its retry; True when this trips the bucket (once)."""
        self._struck.setdefault(bucket, set()).add(key)
        return self._check(bucket)

    def decided(self, bucket: str, dead: bool, key: object = None) -> bool:
        """Count one decided channel; True when this trips the bucket (once)."""
        self._struck.get(bucket, set()).discard(key)
        counts = self._counts.setdefault(bucket, [0, 0])
        counts[0] += 1
        counts[1] += dead
        return self._check(bucket)

    def _check(self, bucket: str) -> bool:
        pending = len(self._struck.get(bucket, ()))
        total, dead_count = (n + pending for n in self._counts.get(bucket, [0, 0]))
        if (
            bucket in self.tripped
            or dead_count < EARLY_TRIP_MIN_DEAD
            or dead_count / total <= min(0.95, 2 * self.max_drop_ratio)
        ):
            return False
        self.tripped.append(bucket)
        log.warning("probe_bucket_tripped", bucket=bucket, dead=dead_count, decided=total)
        return True
