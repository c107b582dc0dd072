"""The aiohttp application: device endpoints per port and under /devices/<name>/, daemon routes."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from plextuner.addresses import advertised_host
from plextuner.buckets.models import Device
from plextuner.errors import PlexTunerError, TuneRefusedError
from plextuner.hdhr.device import Rendered, base_url
from plextuner.hdhr.epgxml import send_aggregate
from plextuner.hdhr.playlist import aggregate_m3u
from plextuner.hdhr.runtime import Runtime
from plextuner.hdhr.status import status_doc, status_page
from plextuner.hdhr.tuners import device_tuners, status_json, tuners_html
from plextuner.logging import get_logger
from plextuner.metrics import STREAM_REJECTED, render
from plextuner.redact import SECRETS
from plextuner.state.aggregate import open_aggregate, open_guide
from plextuner.stream.proxy import STREAM_HEADERS

log = get_logger(__name__)
RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)
JSON_HEADERS = {
    "Content-Type": 'application/json; charset="utf-8"',
    "Cache-Control": "no-cache",
    "Access-Control-Allow-Origin": "*",
}
CHANNEL = r"{number:[0-9]{1,6}(?:\.[0-9]{1,3})?}"


def _rt(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def _local_port(request: web.Request) -> int | None:
    sockname = request.get_extra_info("sockname")
    return int(sockname[1]) if sockname else None


def _device(request: web.Request) -> Device:
    rt = _rt(request)
    name = request.match_info.get("device")
    if name is not None:
        device = rt.by_name.get(name)
    else:
        port = _local_port(request) or -1
        device = rt.by_port.get(port)
        if device is None and port == rt.settings.compat_http_port and rt.state:
            device = rt.state.devices[0] if rt.state.devices else None  # the port-80 listener
    if device is None:
        raise web.HTTPNotFound(text="no such device\n")
    return device


def request_host(request: web.Request) -> str:
    """The host for URLs in this answer (the one policy in `addresses.py`)."""
    sockname = request.get_extra_info("sockname")
    local = str(sockname[0]) if sockname else "127.0.0.1"
    return advertised_host(_rt(request).settings, request_host=request.host, local=local)


def _base(request: web.Request, device: Device) -> str:
    return base_url(request_host(request), device.port)


def _bytes(body: bytes, content_type: str, headers: dict[str, str] | None = None) -> web.Response:
    resp = web.Response(body=body, headers=headers or {"Cache-Control": "no-cache"})
    if headers is None:
        resp.content_type = content_type
    return resp


async def discover_json(request: web.Request) -> web.Response:
    device = _device(request)
    return _bytes(_rendered(request, device).discover, "", JSON_HEADERS)


def _rendered(request: web.Request, device: Device) -> Rendered:
    rt = _rt(request)
    return rt.cache.get(device, _base(request, device), rt.identity(device))


async def lineup_json(request: web.Request) -> web.Response:
    device = _device(request)
    body = _rendered(request, device).lineup_json
    return _bytes(body, "", JSON_HEADERS)


async def lineup_xml(request: web.Request) -> web.Response:
    device = _device(request)
    return _bytes(_rendered(request, device).lineup_xml, "application/xml")


async def lineup_m3u(request: web.Request) -> web.Response:
    device = _device(request)
    body = _rendered(request, device).lineup_m3u
    return _bytes(body, "audio/x-mpegurl")


async def device_xml(request: web.Request) -> web.Response:
    device = _device(request)
    return _bytes(_rendered(request, device).device_xml, "application/xml")


async def lineup_status(request: web.Request) -> web.Response:
    _device(request)
    rt = _rt(request)
    doc: dict[str, object]
    if rt.scan_in_progress:
        doc = {"ScanInProgress": 1, "Progress": 50, "Found": 0}
    else:
        doc = {"ScanInProgress": 0, "ScanPossible": 1, "Source": "Cable", "SourceList": ["Cable"]}
    return _bytes(json.dumps(doc).encode(), "", JSON_HEADERS)


async def lineup_post(request: web.Request) -> web.Response:
    # Plex sends scan=start during setup; anything but 200 makes it say it cannot talk to us.
    _device(request)
    scan = request.query.get("scan")
    if scan is None and not request.query:
        raise web.HTTPBadRequest(text="missing scan parameter\n")
    return web.Response(status=200, headers={"Cache-Control": "no-cache"})


async def status_json_route(request: web.Request) -> web.Response:
    device = _device(request)
    tuners = device_tuners(device, _rt(request).tuner.active_sessions())
    return _bytes(json.dumps(status_json(tuners)).encode(), "", JSON_HEADERS)


async def tuners_html_route(request: web.Request) -> web.Response:
    device = _device(request)
    tuners = device_tuners(device, _rt(request).tuner.active_sessions())
    return web.Response(text=tuners_html(device, tuners), content_type="text/html")


async def playlist_m3u(request: web.Request) -> web.Response:
    """Every device's channels as one M3U for IPTV players (see docs/clients.md)."""
    rt = _rt(request)
    host = request_host(request)
    guide = f"http://{host}:{_local_port(request) or rt.settings.port}/epg.xml"
    devices = rt.state.devices if rt.state else []
    body = aggregate_m3u(devices, host, guide, rt.settings.epg.channel_ids)
    return _bytes(body, "audio/x-mpegurl")


async def epg_xml(request: web.Request) -> web.StreamResponse:
    """Every device's guide in one XMLTV file (channel ids are GuideNumbers), assembled from
    the device guides as they are now (see state/aggregate.py)."""
    rt = _rt(request)
    paths = [rt.settings.paths.guide(d.name) for d in (rt.state.devices if rt.state else [])]
    agg = await asyncio.to_thread(open_aggregate, paths)
    if agg is None:
        raise web.HTTPNotFound(text="no guide published yet\n")
    try:
        return await send_aggregate(request, agg)
    finally:
        agg.close()


async def guide_xml(request: web.Request) -> web.StreamResponse:
    """The device's guide file, its placeholder programmes rendered as it is sent (see
    placeholders.py), answered as a static file would be (state/aggregate.py)."""
    device = _device(request)
    path = _rt(request).settings.paths.guide(device.name)
    agg = await asyncio.to_thread(open_guide, path)
    if agg is None:
        raise web.HTTPNotFound(text="no guide published for this device yet\n")
    try:
        return await send_aggregate(request, agg)
    finally:
        agg.close()


async def tune(request: web.Request) -> web.StreamResponse:
    """A stream. Errors as a device answers them: an empty body and `X-HDHomeRun-Error` (a
    client such as Jellyfin reads any body as video). `?transcode=` is accepted and ignored, as a
    non-transcoding HDHomeRun does; HEAD answers the headers without opening an upstream."""
    device = _device(request)
    rt = _rt(request)
    entry = rt.entry(device, request.match_info["number"])
    if entry is None:
        return hdhr_error(404, "801 Unknown Channel")
    tuner_raw = request.match_info.get("tuner")
    tuner = int(tuner_raw) if tuner_raw is not None else None
    if tuner is not None and tuner >= device.tuners:
        return hdhr_error(404, "801 Unknown Channel")
    if request.method == "HEAD":
        return web.Response(status=200, headers=STREAM_HEADERS)
    return await rt.tuner.handle(request, device, entry, tuner)


def hdhr_error(status: int, code: str) -> web.Response:
    """A tune refused the way a real device refuses it: no body, the reason in a header."""
    return web.Response(status=status, headers={"X-HDHomeRun-Error": code, "Content-Length": "0"})


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    rt = _rt(request)
    if not rt.ready:
        return web.json_response({"status": "not ready: nothing published yet"}, status=503)
    return web.json_response({"status": "ready"})


async def metrics(_: web.Request) -> web.Response:
    resp = web.Response(body=render())
    resp.content_type = "text/plain"
    resp.charset = "utf-8"
    return resp


async def api_status(request: web.Request) -> web.Response:
    rt = _rt(request)
    return web.json_response(status_doc(rt, request_host(request)))


async def index(request: web.Request) -> web.Response:
    rt = _rt(request)
    return web.Response(text=status_page(rt, request_host(request)), content_type="text/html")


async def api_refresh(request: web.Request) -> web.Response:
    rt = _rt(request)
    token = rt.settings.admin_token
    if token is None or rt.request_refresh is None:
        raise web.HTTPForbidden(text="admin API disabled: set admin_token\n")
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise web.HTTPUnauthorized(
            text="bad or missing bearer token\n", headers={"WWW-Authenticate": "Bearer"}
        )
    started = await rt.request_refresh()
    status = 202 if started else 409
    return web.json_response({"started": started, "at": time.time()}, status=status)


def _bucket_label(request: web.Request) -> str:
    """The bucket of the device a request reached, by prefix or by port."""
    rt = _rt(request)
    name = request.match_info.get("device")
    device = rt.by_name.get(name) if name else rt.by_port.get(_local_port(request) or -1)
    return device.bucket if device is not None else "unknown"


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors to HTTP; nothing unexpected leaks a traceback or a secret."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except TuneRefusedError as err:
        STREAM_REJECTED.labels(bucket=_bucket_label(request), reason=err.reason).inc()
        log.info("tune_refused", path=request.path, reason=err.reason, detail=err)
        return hdhr_error(503, err.hdhr_error)
    except PlexTunerError as err:
        log.warning("request_failed", path=request.path, error=err)
        return web.Response(status=500, text=SECRETS.scrub(str(err)) + "\n")
    except (ConnectionResetError, TimeoutError):
        raise
    except Exception as err:  # the HTTP supervision boundary: a bug never ends the daemon
        log.error("request_crashed", path=request.path, error=err, exc_info=True)
        return web.Response(status=500, text="internal error\n")


def build_app(runtime: Runtime) -> web.Application:
    app = web.Application(middlewares=[errors_middleware], client_max_size=64 * 1024)
    app[RUNTIME] = runtime
    r = app.router
    for prefix in ("", "/devices/{device:[a-z0-9][a-z0-9_-]{0,40}}"):
        r.add_get(prefix + "/discover.json", discover_json)
        r.add_get(prefix + "/lineup.json", lineup_json)
        r.add_get(prefix + "/lineup.xml", lineup_xml)
        r.add_get(prefix + "/lineup.m3u", lineup_m3u)
        r.add_get(prefix + "/lineup_status.json", lineup_status)
        r.add_route("POST", prefix + "/lineup.post", lineup_post)
        r.add_get(prefix + "/lineup.post", lineup_post)
        r.add_get(prefix + "/device.xml", device_xml)
        r.add_get(prefix + "/guide.xml", guide_xml)
        r.add_get(prefix + "/status.json", status_json_route)
        r.add_get(prefix + "/tuners.html", tuners_html_route)
        r.add_get(prefix + "/auto/v" + CHANNEL, tune)
        r.add_get(prefix + "/tuner{tuner:[0-9]{1,2}}/v" + CHANNEL, tune)
    r.add_get("/playlist.m3u", playlist_m3u)
    r.add_get("/epg.xml", epg_xml)
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", readyz)
    r.add_get("/metrics", metrics)
    r.add_get("/api/v1/status", api_status)
    r.add_post("/api/v1/refresh", api_refresh)
    r.add_get("/", index)
    return app
