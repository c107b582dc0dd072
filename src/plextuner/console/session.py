"""Console pages that stand apart: logging in and out (the admin token to a cookie), the
static files, and the doctor page."""

from __future__ import annotations

from aiohttp import web

from plextuner.console import auth
from plextuner.console.routes import (
    SECURITY_HEADERS,
    STATIC,
    back_to,
    form_fields,
    page,
    runtime_of,
)


async def login(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    form = await form_fields(request)
    if not auth.enabled(rt.settings):
        raise web.HTTPForbidden(text="admin actions disabled: set admin_token\n")
    if not auth.token_ok(rt.settings, form.get("token", "")):
        raise back_to("/login", "wrong token")
    response = back_to("/channels", "logged in")
    value = auth.session_value(rt.settings) or ""
    secure = request.secure
    response.set_cookie(
        auth.COOKIE, value, httponly=True, samesite="Strict", secure=secure, path="/"
    )
    raise response


async def logout(request: web.Request) -> web.Response:
    response = back_to("/channels", "logged out")
    response.del_cookie(auth.COOKIE, path="/")
    raise response


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    path = STATIC / name
    if "/" in name or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={**SECURITY_HEADERS, "Cache-Control": "max-age=3600"})


async def doctor_page(request: web.Request) -> web.Response:
    """`plextuner doctor`'s checks, run on request by the operator (they contact providers)."""
    from plextuner.doctor import Check, run_checks

    rt = runtime_of(request)
    checks: list[Check] = []
    allowed = auth.logged_in(rt.settings, request) or auth.bearer_ok(rt.settings, request)
    if allowed and request.query.get("run") == "1":
        await run_checks(rt.settings, checks.append)
    rows = [{"name": c.name, "ok": c.ok, "line": c.line()} for c in checks]
    return page(request, "doctor.html", checks=rows, allowed=allowed)
