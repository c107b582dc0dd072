"""Console pages and the JSON API they are built from, on the daemon's HTTP app.

Reading needs nothing; every change needs the admin token (Bearer header for the API; for the
pages a login cookie plus the form's CSRF token) and is refused when none is configured.
Overrides are saved atomically to the data dir and a refresh is queued to apply them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from plextuner.buckets.models import channel_id
from plextuner.console import auth
from plextuner.console.data import (
    PAGE_SIZE,
    STATES,
    Query,
    channel_row,
    guide_match_row,
    index,
    live,
    provider_hosts,
    search,
    state_counts,
)
from plextuner.console.nownext import now_next
from plextuner.console.preview import preview_rule
from plextuner.errors import OverrideError
from plextuner.hdhr.app import RUNTIME
from plextuner.hdhr.runtime import Runtime
from plextuner.state.overrides import (
    PLEX_MAX_CHANNELS,
    OverrideStore,
    export_yaml,
    parse_override,
)

STATIC = Path(__file__).with_name("static")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' http: https: data:; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_FORM = 16 * 1024
_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("plextuner.console", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
_ENV.filters["when"] = lambda epoch: (
    datetime.fromtimestamp(float(epoch), UTC).strftime("%Y-%m-%d %H:%M UTC") if epoch else ""
)
WRITE_LOCK: web.AppKey[asyncio.Lock] = web.AppKey("console_write_lock", asyncio.Lock)


def runtime_of(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def page(request: web.Request, template: str, **ctx: Any) -> web.Response:
    rt = runtime_of(request)
    html = _ENV.get_template(template).render(
        admin=auth.enabled(rt.settings),
        logged_in=auth.logged_in(rt.settings, request),
        csrf=auth.csrf_token(rt.settings) if auth.logged_in(rt.settings, request) else "",
        notice=request.query.get("notice", "")[:300],
        path=request.path,
        quote=lambda s: quote(s, safe=""),
        **ctx,
    )
    return web.Response(text=html, content_type="text/html", headers=SECURITY_HEADERS)


def json_answer(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, headers=SECURITY_HEADERS)


# -- reading ---------------------------------------------------------------------------------


async def channels_page(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    query = Query.parse(request.query)
    rows, hits, pages = await asyncio.to_thread(search, rt, query)  # 50k rows: off the loop
    hosts = provider_hosts(rt)
    params = {k: v for k, v in (("q", query.q), ("device", query.device),
              ("state", query.state), ("guide", query.guide)) if v}  # fmt: skip
    return page(
        request,
        "channels.html",
        query=query,
        rows=[channel_row(r, hosts) for r in rows],
        hits=hits,
        page=min(query.page, pages),
        pages=pages,
        base=urlencode(params),
        devices=[d.name for d in (rt.state.devices if rt.state else [])],
        states=STATES,
        counts=state_counts(rt),
        page_size=PAGE_SIZE,
    )


async def channels_api(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    query = Query.parse(request.query)
    rows, hits, pages = await asyncio.to_thread(search, rt, query)  # 50k rows: off the loop
    hosts = provider_hosts(rt)
    return json_answer(
        {
            "total": hits,
            "page": min(query.page, pages),
            "pages": pages,
            "channels": [channel_row(r, hosts) for r in rows],
        }
    )


def _detail(request: web.Request) -> dict[str, Any]:
    rt = runtime_of(request)
    key = request.match_info["key"]
    row = index(rt).by_key.get(key)
    if row is None:
        raise web.HTTPNotFound(text="no channel with that key\n")
    out = channel_row(row, provider_hosts(rt))
    out["match"] = guide_match_row(rt.settings.paths.guide_matches, key)
    style = rt.settings.epg.channel_ids
    slots = now_next(rt.settings.paths.guide(row.device.name), channel_id(row.entry.number, style))
    out["now_next"] = [{"start": a, "stop": b, "title": t} for a, b, t in slots]
    store = OverrideStore.load(rt.settings.paths.overrides)
    current = store.items.get(key)
    out["override"] = current.changes() if current else {}
    return out


async def channel_page(request: web.Request) -> web.Response:
    detail = await asyncio.to_thread(_detail, request)
    rt = runtime_of(request)
    devices = [d.name for d in (rt.state.devices if rt.state else [])]
    return page(request, "channel.html", ch=detail, devices=devices)


async def channel_api(request: web.Request) -> web.Response:
    return json_answer(await asyncio.to_thread(_detail, request))


async def live_page(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    return page(request, "live.html", live=live(rt))


async def live_api(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    return json_answer(live(rt))


async def overrides_page(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    store = OverrideStore.load(rt.settings.paths.overrides)
    by_key = (await asyncio.to_thread(index, rt)).by_key
    items = [
        {"key": o.key, "changes": o.changes(), "updated": o.updated,
         "name": by_key[o.key].entry.channel.name if o.key in by_key else ""}
        for o in store.items.values()
    ]  # fmt: skip
    return page(request, "overrides.html", items=items, yaml=export_yaml(store.items.values()))


async def overrides_api(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    store = OverrideStore.load(rt.settings.paths.overrides)
    if request.query.get("format") == "yaml":
        return web.Response(
            text=export_yaml(store.items.values()),
            content_type="application/yaml",
            headers=SECURITY_HEADERS,
        )
    rows = [{"key": o.key, **o.changes(), "updated": o.updated} for o in store.items.values()]
    return json_answer({"overrides": rows})


async def setup_page(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    rule = {k: request.query.get(k, "")[:300] for k in ("group", "name", "tvg_id", "provider")}
    result = None
    if any(rule.values()):
        # A pasted regex runs over every channel: only for the operator (logged in).
        if not auth.logged_in(rt.settings, request) and not auth.bearer_ok(rt.settings, request):
            result = {"error": "log in with the admin token to preview rules"}
        else:
            result = await asyncio.to_thread(preview_rule, rt, rule)
    return page(request, "setup.html", rule=rule, result=result)


async def login_page(request: web.Request) -> web.Response:
    return page(request, "login.html")


# -- changing ----------------------------------------------------------------------------------


def check_applicable(rt: Runtime, key: str, changes: dict[str, Any]) -> None:
    """Refuse an override that cannot apply to what is served now."""
    if rt.state is None:
        raise OverrideError("nothing published yet")
    by_key = index(rt).by_key
    if key not in by_key:
        raise OverrideError("no channel with that key")
    own = by_key[key]
    target = changes.get("device")
    if target and target != own.device.name:
        device = rt.by_name.get(target)
        if device is None:
            raise OverrideError(f"no device named {target}")
        if len(device.entries) >= PLEX_MAX_CHANNELS:
            raise OverrideError(f"device {target} has {PLEX_MAX_CHANNELS} channels: full")
    number = changes.get("number")
    taken = {e.number for d in rt.state.devices for e in d.entries}
    if number and number != own.entry.number and number in taken:
        raise OverrideError(f"number {number} is taken")


async def save_override(
    request: web.Request, key: str, changes: dict[str, Any] | None
) -> dict[str, Any]:
    """Write the override (None: delete it) and queue a refresh that applies it."""
    rt = runtime_of(request)
    async with request.app[WRITE_LOCK]:  # one override write at a time
        store = await asyncio.to_thread(OverrideStore.load, rt.settings.paths.overrides)
        if changes is None:
            found = store.delete(key)
            result: Any = None
            if not found:
                raise web.HTTPNotFound(text="no override for that key\n")
        else:
            result = store.put(key, changes)
        await asyncio.to_thread(store.save)
    started = await rt.queue_refresh(True) if rt.queue_refresh else False
    return {
        "key": key,
        "override": result.changes() if result else None,
        "refresh": "started" if started else "queued",
    }


async def form_fields(request: web.Request) -> dict[str, str]:
    if request.content_length and request.content_length > MAX_FORM:
        raise web.HTTPRequestEntityTooLarge(MAX_FORM, request.content_length)
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def back_to(location: str, notice: str) -> web.HTTPSeeOther:
    sep = "&" if "?" in location else "?"
    return web.HTTPSeeOther(f"{location}{sep}{urlencode({'notice': notice[:200]})}")


async def form_override(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    form = await form_fields(request)
    auth.require_form(rt.settings, request, form)
    key = request.match_info["key"]
    back = f"/channels/{quote(key, safe='')}"
    raw: dict[str, Any] = {"key": key}
    for name in ("name", "number", "device", "guide_id"):
        if name in form:
            value = form[name].strip()
            raw[name] = value or None  # an emptied field clears that override
    if "disabled" in form:
        raw["disabled"] = form["disabled"] == "1" or None
    try:
        key, changes = parse_override(raw)
        await asyncio.to_thread(check_applicable, rt, key, changes)
    except OverrideError as err:
        raise back_to(back, f"not saved: {err}") from None
    result = await save_override(request, key, changes)
    raise back_to(back, f"saved; refresh {result['refresh']}")


async def form_delete(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    form = await form_fields(request)
    auth.require_form(rt.settings, request, form)
    key = request.match_info["key"]
    await save_override(request, key, None)
    raise back_to("/overrides", f"override of {key} removed; refresh queued")


async def form_reprobe(request: web.Request) -> web.Response:
    from plextuner.validate.cache import ProbeCache
    from plextuner.validate.stage import cache_key

    rt = runtime_of(request)
    form = await form_fields(request)
    auth.require_form(rt.settings, request, form)
    key = request.match_info["key"]
    row = (await asyncio.to_thread(index, rt)).by_key.get(key)
    if row is None:
        raise web.HTTPNotFound(text="no channel with that key\n")
    path = rt.settings.paths.probe_cache
    async with request.app[WRITE_LOCK]:
        cache = await asyncio.to_thread(ProbeCache.load, path)
        cache.forget(cache_key(row.entry))
        await asyncio.to_thread(cache.save, path)
    started = await rt.queue_refresh(False) if rt.queue_refresh else False
    refresh = "started" if started else "queued"
    raise back_to(f"/channels/{quote(key, safe='')}", f"re-probe at the refresh {refresh}")


async def form_refresh(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    form = await form_fields(request)
    auth.require_form(rt.settings, request, form)
    started = await rt.queue_refresh(False) if rt.queue_refresh else False
    raise back_to("/channels", "refresh started" if started else "refresh queued")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
KEY = "{key:.+}"


def install(app: web.Application) -> None:
    from plextuner.console.api import api_delete, api_post  # they build on this module
    from plextuner.console.session import doctor_page, login, logout, static

    app[WRITE_LOCK] = asyncio.Lock()
    r = app.router
    r.add_get("/channels", channels_page)
    r.add_get("/channels/" + KEY, channel_page)
    r.add_get("/live", live_page)
    r.add_get("/overrides", overrides_page)
    r.add_get("/setup", setup_page)
    r.add_get("/doctor", doctor_page)
    r.add_get("/login", login_page)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_post("/console/refresh", form_refresh)
    r.add_post("/console/override/" + KEY, form_override)
    r.add_post("/console/reprobe/" + KEY, form_reprobe)
    r.add_post("/console/unoverride/" + KEY, form_delete)
    r.add_get("/console/static/{name}", static)
    r.add_get("/api/v1/channels", channels_api)
    r.add_get("/api/v1/channels/" + KEY, channel_api)
    r.add_get("/api/v1/live", live_api)
    r.add_get("/api/v1/overrides", overrides_api)
    r.add_post("/api/v1/overrides", api_post)
    r.add_delete("/api/v1/overrides/" + KEY, api_delete)
