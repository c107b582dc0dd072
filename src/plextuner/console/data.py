"""What the console shows, built from the served state: channel rows with filters and pages,
one channel's detail, the live view. Nothing here carries a credential or a provider URL."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from plextuner.buckets.models import Device, LineupEntry
from plextuner.fileio import read_json
from plextuner.hdhr.runtime import Runtime
from plextuner.redact import SECRETS
from plextuner.state.published import PublishedState

PAGE_SIZE = 100
STATES = ("ok", "dead", "unverified", "unchecked")


@dataclass(frozen=True, slots=True)
class Row:
    device: Device
    entry: LineupEntry
    served: bool  # False for a channel the last probes found dead (not in the lineup)
    haystack: str

    @property
    def key(self) -> str:
        return self.entry.channel.key


@dataclass(slots=True)
class Index:
    """Every channel of a published state once, with a search text and the state counts:
    built once per publish (in a worker thread: 50k channels), then only read."""

    state: PublishedState | None = None
    rows: list[Row] = field(default_factory=list)
    by_key: dict[str, Row] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))


_INDEX = Index()


def index(rt: Runtime) -> Index:
    global _INDEX  # noqa: PLW0603 - swapped whole, so a reader never sees a half-built one
    state = rt.state
    if state is _INDEX.state:
        return _INDEX
    built = Index(state)
    for d in state.devices if state else []:
        for e, served in [(e, True) for e in d.entries] + [(e, False) for e in d.dropped]:
            ch = e.channel
            text = " ".join((ch.name, ch.group, ch.tvg_id, e.number, d.name, ch.provider))
            row = Row(d, e, served, text.casefold())
            built.rows.append(row)
            built.by_key.setdefault(row.key, row)
            built.counts[e.state.value] = built.counts.get(e.state.value, 0) + 1
    _INDEX = built
    return built


@dataclass(frozen=True, slots=True)
class Query:
    q: str = ""
    device: str = ""
    state: str = ""
    guide: str = ""  # "missing": channels with no guide programmes
    page: int = 1

    @classmethod
    def parse(cls, params: Any) -> Query:
        def get(name: str, limit: int = 200) -> str:
            value = params.get(name, "")
            return value.strip()[:limit] if isinstance(value, str) else ""

        try:
            page = max(1, min(int(get("page", 9) or 1), 1_000_000))
        except ValueError:
            page = 1
        state = get("state", 20)
        return cls(
            q=get("q"),
            device=get("device", 60),
            state=state if state in STATES else "",
            guide="missing" if get("guide", 20) == "missing" else "",
            page=page,
        )

    def matches(self, row: Row) -> bool:
        if self.device and row.device.name != self.device:
            return False
        if self.state and row.entry.state.value != self.state:
            return False
        if self.guide == "missing" and row.entry.has_guide:
            return False
        return not self.q or all(w in row.haystack for w in self.q.casefold().split())


def search(rt: Runtime, query: Query) -> tuple[list[Row], int, int]:
    """The page's rows, the number of hits and of pages."""
    hits = [r for r in index(rt).rows if query.matches(r)]
    pages = max(1, math.ceil(len(hits) / PAGE_SIZE))
    page = min(query.page, pages)
    return hits[(page - 1) * PAGE_SIZE : page * PAGE_SIZE], len(hits), pages


def safe_logo(url: str, provider_hosts: set[str]) -> str:
    """A logo URL fit for a page: http(s), no credentials, not on a provider's own host."""
    if not url or len(url) > 2000:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return ""
    if (parts.hostname or "") in provider_hosts or SECRETS.scrub(url) != url:
        return ""
    lowered = parts.query.lower()
    return "" if "password" in lowered or "token" in lowered else url


def provider_hosts(rt: Runtime) -> set[str]:
    hosts: set[str] = set()
    for p in rt.settings.providers:
        m3u = p.m3u_url.get_secret_value() if p.m3u_url else None
        for url in (m3u, p.xtream.url if p.xtream else None):
            if url and "://" in url:
                hosts.add(_host(url))
    return hosts


def channel_row(row: Row, hosts: set[str]) -> dict[str, Any]:
    e, ch = row.entry, row.entry.channel
    return {
        "key": ch.key,
        "number": e.number,
        "name": ch.name,
        "group": ch.group,
        "device": row.device.name,
        "served": row.served,
        "logo": safe_logo(ch.logo, hosts),
        "state": e.state.value,
        "state_reason": e.state_reason or "",
        "checked_at": e.checked_at,
        "has_guide": bool(e.has_guide),
        "guide_id": e.guide_id,
        "guide_match": e.guide_match or "none",
        "guide_score": e.guide_score,
        "sources": [
            {"provider": s.provider, "host": _host(s.url), "kind": s.kind.value} for s in ch.sources
        ],
    }


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


@dataclass(slots=True)
class _FileCache:
    mtime: float = -1.0
    value: Any = None


_MATCHES: dict[Path, _FileCache] = {}


def guide_match_row(path: Path, key: str) -> dict[str, Any] | None:
    """The guide stage's record of one channel (tier, confidence, candidates), if any."""
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    cached = _MATCHES.setdefault(path, _FileCache())
    if cached.mtime != mtime:
        try:
            report = read_json(path)
        except Exception:  # noqa: BLE001 - a damaged report only loses the explanations
            report = None
        rows = {}
        for device in report.get("devices", []) if isinstance(report, dict) else []:
            for r in device.get("rows", []):
                rows[r.get("key")] = r
        cached.mtime, cached.value = mtime, rows
    found = cached.value.get(key)
    return found if isinstance(found, dict) else None


def live(rt: Runtime) -> dict[str, Any]:
    budgets = rt.tuner.budgets_snapshot()
    now = time.time()
    sessions = [
        {
            "device": s["device"],
            "tuner": s["tuner"],
            "channel": s["channel"],
            "name": s["name"],
            "client": s["client"],
            "account": s["provider"],
            "upstream": s["upstream"],
            "upstream_viewers": s["upstream_viewers"],
            "upstream_state": s["upstream_state"],
            "bitrate_kbps": round(s["bps"] / 1000),
            "duration_s": round(now - s["started"]),
            "failovers": s["failovers"],
        }
        for s in rt.tuner.active_sessions()
    ]
    upstreams: dict[str, dict[str, Any]] = {}
    for s in sessions:
        if s["upstream"] is not None:
            up = upstreams.setdefault(
                str(s["upstream"]),
                {"id": s["upstream"], "channel": s["name"], "account": s["account"],
                 "state": s["upstream_state"], "viewers": 0},
            )  # fmt: skip
            up["viewers"] += 1
    return {
        "at": now,
        "sessions": sessions,
        "upstreams": list(upstreams.values()),
        "budgets": budgets,
        "failovers": sum(s["failovers"] for s in sessions),
        "recent_failovers": [
            {**f, "ago_s": round(now - float(f["at"]))} for f in rt.tuner.recent_failovers()
        ],
    }


def state_counts(rt: Runtime) -> dict[str, int]:
    return index(rt).counts
