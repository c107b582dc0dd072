"""/api/v1/status and the status page for people: server-rendered, no build step."""

from __future__ import annotations

import operator
import time
from collections import Counter
from html import escape
from typing import Any

from plextuner.hdhr.device import base_url
from plextuner.hdhr.runtime import Runtime

_STATE = operator.attrgetter("state")


def _counts(entries: list[Any]) -> dict[str, int]:
    """Each validation state's channels. Counted in C (`Counter` over `attrgetter`): the status
    answer is built on the event loop, and a loop in Python over a 34k-channel lineup was
    9.5 ms of it, per request, against 1.5 ms."""
    out = {"ok": 0, "dead": 0, "unverified": 0, "unchecked": 0}
    for state, n in Counter(map(_STATE, entries)).items():
        out[state.value] = out.get(state.value, 0) + n
    return out


def status_doc(rt: Runtime, host: str) -> dict[str, Any]:
    state = rt.state
    devices = []
    for d in state.devices if state else []:
        with_guide = sum(1 for e in d.entries if e.has_guide)
        devices.append(
            {
                "name": d.name,
                "friendly_name": d.friendly_name,
                "device_id": d.device_id,
                "url": base_url(host, d.port),
                "port": d.port,
                "tuners": d.tuners,
                "channels": len(d.entries),
                "guide_coverage": with_guide,
                "guide": {
                    "matched": sum(1 for e in d.entries if e.guide_id),
                    "with_programmes": with_guide,
                    "without": len(d.entries) - with_guide,
                    "coverage": round(with_guide / len(d.entries), 4) if d.entries else 0.0,
                },
                "validation": _counts(d.entries),
                "held_by_guard": d.name in (state.held if state else []),
            }
        )
    r = rt.refresh
    return {
        "ready": rt.ready,
        "published_at": state.published_at if state else None,
        "uptime_s": round(time.time() - rt.started_at, 1),
        "refresh": {
            "running": r.running,
            "crashes": r.crashes,
            "started_at": r.started_at,
            "finished_at": r.finished_at,
            "ok": r.ok,
            "message": r.message,
            "exit_code": r.exit_code,
        },
        "guard_held": list(state.held) if state else [],
        "providers": [
            {"name": p.name, "ok": p.ok, "max_connections": p.max_connections, "error": p.error}
            for p in (state.providers if state else [])
        ],
        "devices": devices,
        "streams": rt.tuner.active_sessions(),
    }


def _ago(ts: float | None) -> str:
    if not ts:
        return "never"
    delta = int(time.time() - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{delta // size}{unit} ago"
    return f"{delta}s ago"


def status_page(rt: Runtime, host: str) -> str:
    doc = status_doc(rt, host)
    rows = "".join(
        "<tr>"
        f"<td><b>{escape(d['friendly_name'])}</b><br><small>{escape(d['name'])} · "
        f"{escape(d['device_id'])}</small></td>"
        f"<td><code>{escape(d['url'])}</code></td>"
        f"<td>{d['channels']}</td><td>{d['guide_coverage']}/{d['channels']}</td>"
        f"<td>{d['validation']['ok']} ok · {d['validation']['dead']} dead · "
        f"{d['validation']['unverified']} unverified</td>"
        f"<td>{'HELD' if d['held_by_guard'] else ''}</td>"
        "</tr>"
        for d in doc["devices"]
    )
    streams = (
        "".join(
            f"<li>{escape(str(s.get('device')))} tuner{int(s.get('tuner', 0))} "
            f"ch {escape(str(s.get('channel')))} {escape(str(s.get('name', '')))} — "
            f"{escape(str(s.get('client', '')))}, upstream #{s.get('upstream')} "
            f"({int(s.get('upstream_viewers', 0))} viewer(s), "
            f"{escape(str(s.get('provider', '')))}, {escape(str(s.get('upstream_state', '')))}), "
            f"{int(s.get('bps', 0)) // 1000} kbit/s, "
            f"{int(time.time() - float(s.get('started', 0)))}s</li>"
            for s in doc["streams"]
        )
        or "<li>none</li>"
    )
    refresh = doc["refresh"]
    outcome = "running" if refresh["running"] else ("ok" if refresh["ok"] else refresh["message"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>plextuner</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1rem;max-width:60rem}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;padding:.4rem;
text-align:left;vertical-align:top}}code{{word-break:break-all}}
@media (max-width:40rem){{td:nth-child(4),th:nth-child(4),
td:nth-child(5),th:nth-child(5){{display:none}}}}
</style></head><body>
<h1>plextuner</h1>
<p>{"Ready" if doc["ready"] else "Not ready: nothing published yet"} ·
last publish {_ago(doc["published_at"])} · last refresh: {escape(str(outcome))}</p>
<h2>Devices</h2>
<p>In Plex: Live TV &amp; DVR → Set up → enter a device address below.</p>
<table id="devices"><tr><th>device</th><th>address for Plex</th><th>channels</th>
<th>guide</th><th>validation</th><th>guard</th></tr>{rows}</table>
<h2>Active streams</h2><ul id="streams">{streams}</ul>
<p><a href="/api/v1/status">status JSON</a> · <a href="/metrics">metrics</a></p>
</body></html>
"""
