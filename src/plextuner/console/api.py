"""The console's write API: `POST /api/v1/overrides` and `DELETE /api/v1/overrides/<key>`,
Bearer `admin_token`. Malformed bodies get 400 naming the field; conflicts 409."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from plextuner.console import auth
from plextuner.console.routes import check_applicable, json_answer, runtime_of, save_override
from plextuner.errors import OverrideError
from plextuner.state.overrides import parse_override


async def api_post(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    auth.require_api(rt.settings, request)
    try:
        body = await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError):
        return json_answer({"error": "body is not JSON"}, 400)
    try:
        key, changes = parse_override(body)
        await asyncio.to_thread(check_applicable, rt, key, changes)  # reads 50k rows
    except OverrideError as err:
        return json_answer(
            {"error": str(err)}, 409 if "taken" in str(err) or "full" in str(err) else 400
        )
    return json_answer(await save_override(request, key, changes))


async def api_delete(request: web.Request) -> web.Response:
    rt = runtime_of(request)
    auth.require_api(rt.settings, request)
    return json_answer(await save_override(request, request.match_info["key"], None))
