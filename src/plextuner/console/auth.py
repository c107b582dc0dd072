"""Who may change things: the admin token, as a Bearer header (API) or a login cookie (pages),
and a CSRF token on every form. With no admin token configured every action is refused."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

from plextuner.config import Settings

COOKIE = "plextuner_session"
MAX_TOKEN = 512


def _secret(settings: Settings) -> bytes | None:
    token = settings.admin_token
    return token.get_secret_value().encode() if token is not None else None


def _mac(mac_key: bytes, purpose: str) -> str:
    return hmac.new(mac_key, purpose.encode(), hashlib.sha256).hexdigest()


def enabled(settings: Settings) -> bool:
    return _secret(settings) is not None


def token_ok(settings: Settings, given: str) -> bool:
    mac_key = _secret(settings)
    if mac_key is None or not given or len(given) > MAX_TOKEN:
        return False
    return hmac.compare_digest(given.encode(), mac_key)


def session_value(settings: Settings) -> str | None:
    """The login cookie's value: derived from the token, so changing the token logs everyone
    out, and the cookie never carries the token itself."""
    mac_key = _secret(settings)
    return _mac(mac_key, "session") if mac_key else None


def logged_in(settings: Settings, request: web.Request) -> bool:
    expected = session_value(settings)
    given = request.cookies.get(COOKIE, "")
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def csrf_token(settings: Settings) -> str:
    mac_key = _secret(settings)
    return _mac(mac_key, "csrf") if mac_key else ""


def bearer_ok(settings: Settings, request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    return header.startswith("Bearer ") and token_ok(settings, header[7:].strip())


def require_api(settings: Settings, request: web.Request) -> None:
    """For the JSON API: the Bearer token (a browser never sends it on its own: no CSRF)."""
    if not enabled(settings):
        raise web.HTTPForbidden(text="admin actions disabled: set admin_token\n")
    if not bearer_ok(settings, request):
        raise web.HTTPUnauthorized(
            text="bad or missing bearer token\n", headers={"WWW-Authenticate": "Bearer"}
        )


def require_form(settings: Settings, request: web.Request, form: dict[str, str]) -> None:
    """For a page's form: the login cookie and the form's CSRF token, or the Bearer header."""
    if not enabled(settings):
        raise web.HTTPForbidden(text="admin actions disabled: set admin_token\n")
    if bearer_ok(settings, request):
        return
    if not logged_in(settings, request):
        raise web.HTTPUnauthorized(text="log in with the admin token first\n")
    given = form.get("csrf", "")
    if not hmac.compare_digest(given.encode(), csrf_token(settings).encode()):
        raise web.HTTPForbidden(text="bad or missing CSRF token: reload the page\n")
