"""One HTTP status policy for everything we ask of a provider (downloads, probes, streams).

A status is sorted once into what it says about the resource; each caller decides what to do
with the class (a download retries `RETRY`/`LIMIT`, a probe calls only `GONE` dead, a stream
labels `LIMIT`/`AUTH` as the account's limit).
"""

from __future__ import annotations

from enum import StrEnum


class StatusClass(StrEnum):
    OK = "ok"  # 2xx
    REDIRECT = "redirect"  # 3xx the client did not follow
    GONE = "gone"  # 404, 410: the resource does not exist (the only "dead" answer)
    AUTH = "auth"  # 401, 403: credentials refused, or a CDN's "not now" for a full account
    LIMIT = "limit"  # 429 and the "account full" codes panels use (458, 509, 513)
    RETRY = "retry"  # 408, 425 and 5xx: the server's trouble, a retry may cure it
    CLIENT = "client"  # any other 4xx


_GONE = frozenset({404, 410})
_AUTH = frozenset({401, 403})
_LIMIT = frozenset({429, 458, 509, 513})
_RETRY = frozenset({408, 425})


def classify(status: int) -> StatusClass:
    if status < 300:
        return StatusClass.OK
    if status < 400:
        return StatusClass.REDIRECT
    for codes, cls in (
        (_GONE, StatusClass.GONE),
        (_AUTH, StatusClass.AUTH),
        (_LIMIT, StatusClass.LIMIT),
        (_RETRY, StatusClass.RETRY),
    ):
        if status in codes:
            return cls
    return StatusClass.RETRY if status >= 500 else StatusClass.CLIENT


def retry_may_help(status: int) -> bool:
    """Whether a later attempt of the same request could succeed (downloads retry these)."""
    return classify(status) in (StatusClass.RETRY, StatusClass.LIMIT)


def is_account_limit(status: int) -> bool:
    """A refusal that means "this account is busy or refused", not "this channel is broken"."""
    return classify(status) in (StatusClass.LIMIT, StatusClass.AUTH)
