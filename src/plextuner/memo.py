"""A bounded memo for pure functions of values that repeat (a leaf module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remembered(cache: dict[K, V], key: K, make: Callable[[K], V], limit: int) -> V:
    """`make(key)`, kept in `cache` while it holds fewer than `limit` values; past that, made
    each time (a bound on memory, not an eviction: what repeats early is what repeats)."""
    value = cache.get(key)
    if value is None:
        value = make(key)
        if len(cache) < limit:
            cache[key] = value
    return value
