"""`plextuner doctor`: one line per check, with the fix when it fails."""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from plextuner.config import Settings
from plextuner.errors import ConfigError, PlexTunerError
from plextuner.ingest.client import make_client
from plextuner.ingest.fetch import Fetcher, FetchOptions
from plextuner.ingest.m3u import parse_m3u
from plextuner.ingest.xtream import XtreamAccount, parse_account
from plextuner.redact import SECRETS, redact_url
from plextuner.state.published import load_state


@dataclass(slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""

    def line(self) -> str:
        mark = "[ok]  " if self.ok else "[FAIL]"
        text = f"{mark} {self.name}" + (f": {self.detail}" if self.detail else "")
        if not self.ok and self.fix:
            text += f"\n       fix: {self.fix}"
        return SECRETS.scrub(text)


def check_data_dir(settings: Settings) -> Check:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=settings.data_dir, prefix=".doctor"):
            pass
    except OSError as err:
        return Check(
            "data dir writable",
            False,
            f"{settings.data_dir}: {err.strerror}",
            "point data_dir at a writable volume (PLEX_TUNER_DATA_DIR)",
        )
    return Check("data dir writable", True, str(settings.data_dir))


def check_binary(name: str, binary: str) -> Check:
    from plextuner.binaries import resolve

    path = resolve(name, binary)
    if path is None:
        return Check(
            f"{name} found",
            False,
            f"{binary!r} not on PATH",
            f"install ffmpeg (apt-get install ffmpeg) or set PLEX_TUNER_{name.upper()}",
        )
    return Check(f"{name} found", True, path)


async def check_provider(fetcher: Fetcher, settings: Settings, index: int) -> list[Check]:
    cfg = settings.providers[index]
    name = f"provider {cfg.name}"
    if cfg.xtream is not None:
        account = XtreamAccount(cfg.xtream)
        try:
            info = parse_account(_json(await fetcher.fetch(account.api_url())), account.label)
        except PlexTunerError as err:
            return [
                Check(
                    f"{name} account",
                    False,
                    str(err),
                    "check the panel URL, username and password (Secret) of this provider",
                )
            ]
        free = (info.max_connections or 0) - (info.active_connections or 0)
        expiry = time.strftime("%Y-%m-%d", time.gmtime(info.exp_date)) if info.exp_date else "never"
        return [
            Check(f"{name} reachable, account active", True, f"status {info.status}"),
            Check(
                f"{name} connections free",
                free > 0 or info.max_connections is None,
                f"{info.active_connections}/{info.max_connections} in use",
                "close other players using this account, or raise max_connections",
            ),
            Check(f"{name} expiry", True, expiry),
        ]
    assert cfg.m3u_url is not None
    location = cfg.m3u_url.get_secret_value()
    try:
        entries, report = parse_m3u(await fetcher.fetch(location), redact_url(location), cfg.name)
    except PlexTunerError as err:
        return [
            Check(
                f"{name} playlist",
                False,
                str(err),
                "check m3u_url (its Secret) and that the provider is up",
            )
        ]
    return [
        Check(f"{name} playlist", True, f"{len(entries)} entries, {report.skipped_total} skipped")
    ]


def _json(data: bytes) -> object:
    import json

    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


async def check_guide(client: httpx.AsyncClient, source: str) -> Check:
    label = redact_url(source)
    if not source.lower().startswith(("http://", "https://")):
        ok = await asyncio.to_thread(Path(source).is_file)
        return Check(f"guide {label}", ok, "" if ok else "file not found", "fix epg.sources")
    try:
        async with client.stream("GET", source) as resp:
            ok = resp.status_code == 200
            detail = f"HTTP {resp.status_code}"
    except httpx.HTTPError as err:
        ok, detail = False, f"unreachable ({type(err).__name__})"
    return Check(f"guide {label}", ok, detail, "check epg.sources / the provider's xmltv URL")


def check_ports(settings: Settings) -> list[Check]:
    try:
        state = load_state(settings.paths)
    except PlexTunerError:
        state = None
    ports = sorted({settings.port} | {d.port for d in (state.devices if state else [])})
    busy = []
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((settings.host, port))
            except OSError:
                busy.append(port)
    if busy and _daemon_answers(settings.port):
        return [Check("ports", True, f"{busy} held by a running plextuner")]
    checks = [
        Check(
            "HTTP ports free",
            not busy,
            f"{ports}" if not busy else f"busy: {busy}",
            "stop what holds them or change `port`",
        )
    ]
    if settings.discovery_port:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((settings.host, settings.discovery_port))
                checks.append(Check("UDP discovery port free", True, str(settings.discovery_port)))
            except OSError:
                checks.append(
                    Check(
                        "UDP discovery port free",
                        _daemon_answers(settings.port),
                        f"{settings.discovery_port} busy",
                        "set discovery_port: 0 or stop the other responder",
                    )
                )
    return checks


def _daemon_answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def check_advertise(settings: Settings) -> Check:
    host = settings.advertise_host
    if not host:
        return Check("advertise host", True, "unset: URLs follow each request's Host")
    try:
        socket.getaddrinfo(host, settings.port)
    except OSError:
        return Check("advertise host", False, f"{host} does not resolve", "fix advertise_host")
    if _daemon_answers(settings.port):
        # The daemon runs here: the address we advertise must reach it too.
        try:
            ok = httpx.get(f"http://{host}:{settings.port}/healthz", timeout=3).status_code == 200
        except httpx.HTTPError:
            ok = False
        return Check(
            "advertise host reachable",
            ok,
            f"http://{host}:{settings.port}",
            "advertise_host must be an address of this machine that Plex can reach",
        )
    return Check("advertise host", True, f"{host} resolves")


async def check_plex(settings: Settings) -> Check:
    from plextuner.plex.commands import client_for

    try:
        plex = client_for(settings)
    except PlexTunerError as err:
        return Check("Plex", False, str(err), "set plex.url and plex.token_file")
    try:
        await plex.identity()
    except PlexTunerError as err:
        return Check("Plex reachable, token valid", False, str(err), "check plex.url / plex.token")
    finally:
        await plex.aclose()
    return Check("Plex reachable, token valid", True, settings.plex.url or "")


async def run_checks(settings: Settings, emit: Callable[[Check], None]) -> bool:
    ok = True

    def put(check: Check) -> None:
        nonlocal ok
        ok &= check.ok
        emit(check)

    put(Check("config valid", True))
    put(await asyncio.to_thread(check_data_dir, settings))
    put(check_binary("ffmpeg", settings.ffmpeg))
    put(check_binary("ffprobe", settings.ffprobe))
    client = make_client(min(settings.fetch.timeout, 15.0), settings.fetch.user_agent)
    fetcher = Fetcher(
        client,
        FetchOptions(
            timeout=min(settings.fetch.timeout, 15.0), retries=0, max_bytes=settings.fetch.max_bytes
        ),
    )
    try:
        for index in range(len(settings.providers)):
            for check in await check_provider(fetcher, settings, index):
                put(check)
        for source in settings.epg.sources:
            put(await check_guide(client, source))
    finally:
        await client.aclose()
    for check in await asyncio.to_thread(check_ports, settings):
        put(check)
    put(await asyncio.to_thread(check_advertise, settings))
    if settings.plex.url or settings.plex.register_dvrs:
        put(await check_plex(settings))
    return ok


def report_invalid_config(err: ConfigError) -> int:
    """The first check failed: the CLI could not load the settings."""
    print("[FAIL] config valid")
    for problem in err.problems:
        print(f"       {SECRETS.scrub(problem)}")
    print("       fix: correct the keys above (plextuner check-config shows the result)")
    return 1


def run_doctor(settings: Settings) -> int:
    ok = asyncio.run(run_checks(settings, lambda c: print(c.line(), flush=True)))
    return 0 if ok else 1
