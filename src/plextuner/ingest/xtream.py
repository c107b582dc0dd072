"""Xtream Codes `player_api.php`: account check, categories and live streams."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from plextuner.config import XtreamConfig
from plextuner.errors import FetchError, IngestError, ProviderAuthError
from plextuner.ingest.fetch import Fetcher
from plextuner.ingest.models import AccountInfo, Entry, ParseReport, clean_text
from plextuner.ingest.urls import url_problem
from plextuner.redact import redact_url

# A JSON reply is decoded whole: 64 MiB holds ~200k streams and decodes within ~300 MB.
API_MAX_BYTES = 64 * 1024**2


class XtreamAccount:
    """One account's URLs, built in the provider's own form with credentials percent-encoded."""

    def __init__(self, cfg: XtreamConfig) -> None:
        assert cfg.username is not None and cfg.password is not None
        self.base = cfg.url.rstrip("/")
        self._user = cfg.username.get_secret_value()
        self._password = cfg.password.get_secret_value()
        self.output = cfg.output

    @property
    def label(self) -> str:
        return redact_url(self.base + "/player_api.php")

    def api_url(self, action: str | None = None) -> str:
        params = {"username": self._user, "password": self._password}
        if action:
            params["action"] = action
        return f"{self.base}/player_api.php?{urlencode(params)}"

    def stream_url(self, stream_id: int | str) -> str:
        return f"{self.stream_prefix()}{stream_id}.{self.output}"

    def stream_prefix(self) -> str:
        """Every stream URL up to its id (built once per list, not once per stream)."""
        user, pw = quote(self._user, safe=""), quote(self._password, safe="")
        return f"{self.base}/live/{user}/{pw}/"

    def xmltv_url(self) -> str:
        query = urlencode({"username": self._user, "password": self._password})
        return f"{self.base}/xmltv.php?{query}"


def _int(value: Any) -> int | None:
    """Numbers arrive as ints, strings, floats or null."""
    if type(value) is int:  # most of them (not a bool: its type is bool)
        return value
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(float(str(value).strip()))
    except (ValueError, OverflowError):  # "abc", "nan"; "1e999" and "inf" overflow int()
        return None


# A reply over this is decoded so the event loop can run meanwhile (below).
INTERRUPTIBLE_ABOVE = 1024 * 1024


def _same(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _json(data: bytes, label: str, yield_gil: bool = True) -> Any:
    """`yield_gil`: a daemon serves viewers meanwhile (the one-shot refresh command serves
    none, and decodes a 50k-stream reply in msgspec: 40 ms against 67)."""
    try:
        if yield_gil and len(data) > INTERRUPTIBLE_ABOVE:
            # One C call holds the GIL from start to end, worker thread or not: a 50k-stream
            # get_live_streams (15 MB) stalled the event loop's viewers 82 ms in msgspec, 152 ms
            # in json. A Python hook per object lets the interpreter hand the GIL over between
            # objects: 13 ms at most, for a decode of 150 ms.
            return json.loads(data, object_hook=_same)
        try:
            return msgspec.json.decode(data)  # twice as fast as json on small replies
        except msgspec.DecodeError:  # NaN, lone surrogates: what json accepts stays accepted
            return json.loads(data)
    except RecursionError:
        raise IngestError(label, "player_api.php returned JSON nested too deeply") from None
    except ValueError:
        head = data[:64].lstrip().lower()
        kind = "an HTML page" if head.startswith((b"<", b"<!")) else "invalid JSON"
        raise IngestError(label, f"player_api.php returned {kind}") from None


def parse_account(payload: Any, label: str, now: float | None = None) -> AccountInfo:
    """Check `user_info`; raise ProviderAuthError for a wrong, disabled or expired account."""
    info = payload.get("user_info") if isinstance(payload, dict) else None
    if not isinstance(info, dict):
        raise IngestError(label, "player_api.php reply has no user_info")
    if _int(info.get("auth")) != 1:
        raise ProviderAuthError(label, "authentication failed (wrong username or password)")
    status = str(info.get("status") or "Active")
    if status.lower() != "active":
        raise ProviderAuthError(label, f"account status is {status}")
    exp = _int(info.get("exp_date"))
    if exp and exp < (now or time.time()):
        raise ProviderAuthError(label, "account expired")
    return AccountInfo(
        status=status,
        exp_date=exp,
        max_connections=_int(info.get("max_connections")),
        active_connections=_int(info.get("active_cons")),
        is_trial=str(info.get("is_trial", "0")) == "1",
    )


def _list_reply(payload: Any, label: str, what: str) -> list[dict[str, Any]]:
    if isinstance(payload, dict):
        if isinstance(payload.get("user_info"), dict):
            raise ProviderAuthError(label, f"{what}: authentication failed")
        # Some panels return {"0": {...}, "1": {...}}
        payload = list(payload.values())
    if not isinstance(payload, list):
        raise IngestError(label, f"{what}: expected a list")
    return [item for item in payload if isinstance(item, dict)]


def streams_to_entries(
    account: XtreamAccount,
    categories: list[dict[str, Any]],
    streams: list[dict[str, Any]],
    provider: str,
    report: ParseReport,
) -> list[Entry]:
    names = {
        str(c.get("category_id")): clean_text(str(c.get("category_name") or "")) for c in categories
    }
    entries = []
    # Every stream URL is the account's prefix and an integer id: checked once, not per stream.
    prefix, suffix = account.stream_prefix(), f".{account.output}"
    problem = url_problem(f"{prefix}0{suffix}")
    for item in streams:
        stream_id = _int(item.get("stream_id"))
        name = clean_text(str(item.get("name") or "")).strip()
        if stream_id is None or not name:
            report.skip("stream without id or name")
            continue
        if str(item.get("stream_type") or "live") not in ("live", "created_live", "radio_streams"):
            report.skip("not a live stream")
            continue
        if problem is not None:
            report.skip(problem)
            continue
        entries.append(
            Entry(
                name=name,
                url=f"{prefix}{stream_id}{suffix}",
                provider=provider,
                tvg_id=clean_text(str(item.get("epg_channel_id") or "")).strip(),
                logo=clean_text(str(item.get("stream_icon") or "")),
                group=names.get(str(item.get("category_id")), ""),
                chno=str(item.get("num") or ""),
                attrs={"stream_id": str(stream_id)},
            )
        )
    report.entries = len(entries)
    return entries


async def _api(fetcher: Fetcher, url: str, label: str) -> Any:
    """A player_api.php reply decoded off the event loop (big panels send tens of MB)."""
    data = await fetcher.fetch(url, max_bytes=API_MAX_BYTES)
    return await asyncio.to_thread(_json, data, label, fetcher.options.yield_gil)


async def fetch_xtream(
    fetcher: Fetcher, cfg: XtreamConfig, provider: str
) -> tuple[list[Entry], ParseReport, AccountInfo, str]:
    """Entries, report, account info and the panel's xmltv.php URL."""
    account = XtreamAccount(cfg)
    label = account.label
    try:
        info = parse_account(await _api(fetcher, account.api_url(), label), label)
        cats_raw = await _api(fetcher, account.api_url("get_live_categories"), label)
        streams_raw = await _api(fetcher, account.api_url("get_live_streams"), label)
    except FetchError as err:
        if err.status in (401, 403):
            raise ProviderAuthError(label, f"{err.reason}: credentials refused") from None
        raise
    report = ParseReport(source=label)
    categories = _list_reply(cats_raw, label, "get_live_categories")
    streams = _list_reply(streams_raw, label, "get_live_streams")
    entries = await asyncio.to_thread(
        streams_to_entries, account, categories, streams, provider, report
    )
    if not entries:
        raise IngestError(label, "get_live_streams listed no live channels")
    return entries, report, info, account.xmltv_url()
