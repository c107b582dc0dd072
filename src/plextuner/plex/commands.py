"""`plextuner plex register` and `plextuner plex reload-guides`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from plextuner.addresses import advertised_host
from plextuner.buckets.models import Device
from plextuner.config import Settings
from plextuner.errors import PlexError, PlexTunerError
from plextuner.logging import get_logger
from plextuner.plex.client import PlexClient, device_uuid, xmltv_lineup
from plextuner.state.published import PublishedState, load_state

log = get_logger(__name__)


def device_base(settings: Settings, device: Device) -> str:
    return f"http://{advertised_host(settings)}:{device.port}"


def client_for(settings: Settings) -> PlexClient:
    if not settings.plex.url:
        raise PlexTunerError("plex.url is not set")
    if settings.plex.token is None:
        raise PlexTunerError("plex.token (or plex.token_file) is not set")
    return PlexClient(settings.plex.url, settings.plex.token.get_secret_value())


async def register(settings: Settings, state: PublishedState, plex: PlexClient) -> list[str]:
    """One DVR per device: add the device, create or refresh its DVR, guide, channel map."""
    done = []
    known = {str(d.get("uuid")): d for d in await plex.devices()}
    dvrs = await plex.dvrs()
    for device in state.devices:
        base = device_base(settings, device)
        uuid = device_uuid(device.device_id)
        lineup = xmltv_lineup(f"{base}/guide.xml", device.friendly_name)
        plex_device = known.get(uuid)
        if plex_device is not None and _stale(plex_device, base, device.tuners):
            # Plex keeps the URL and TunerCount it first read per DeviceID; adding the device
            # again at its current URL makes it re-read discover.json (same DeviceID, same key).
            log.info("plex_device_repaired", device=device.name, tuners=device.tuners)
            plex_device = await plex.add_device(base, uuid)
        elif plex_device is None:
            plex_device = await plex.add_device(base, uuid)
        dvr = next((d for d in dvrs if uuid in d.device_uuids), None)
        if dvr is None:
            dvr = await plex.create_dvr(lineup, uuid)
        elif dvr.lineup != lineup:
            await plex.set_lineup(dvr.key, lineup)
        await plex.reload_guide(dvr.key)
        mappings = await plex.channel_map(uuid, lineup)
        enabled = await plex.enable_all_channels(str(plex_device.get("key")), mappings)
        log.info("plex_registered", device=device.name, dvr=dvr.key, channels=enabled)
        done.append(f"{device.name}: DVR {dvr.key}, {enabled} channels enabled")
    return done


def _stale(plex_device: dict[str, object], base: str, tuners: int) -> bool:
    """Plex's record of a device no longer matches what we serve (a port or tuner change)."""
    uri = str(plex_device.get("uri", "")).rstrip("/")
    known_tuners = plex_device.get("tuners")
    return (bool(uri) and uri != base) or (
        known_tuners is not None and str(known_tuners) != str(tuners)
    )


async def guide_served(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
            resp = await http.head(url)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


async def reload_guides(
    settings: Settings,
    state: PublishedState,
    plex: PlexClient,
    is_served: Callable[[str], Awaitable[bool]] = guide_served,
) -> list[str]:
    """Reload our DVRs' guides batch_size at a time, each only once its guide.xml is served."""
    ours = {device_uuid(d.device_id): d for d in state.devices}
    targets = []
    for dvr in await plex.dvrs():
        device = next((ours[u] for u in dvr.device_uuids if u in ours), None)
        if device is None:
            continue
        if not await is_served(f"{device_base(settings, device)}/guide.xml"):
            log.warning("guide_not_served_yet", device=device.name)
            continue
        targets.append((dvr, device))
    done = []
    size = settings.plex.batch_size
    for start in range(0, len(targets), size):
        if start:
            await asyncio.sleep(settings.plex.batch_delay)
        for dvr, device in targets[start : start + size]:
            await plex.reload_guide(dvr.key)
            done.append(f"{device.name}: DVR {dvr.key} guide reloaded")
    return done


async def run_plex_command(action: str, settings: Settings) -> int:
    state = await asyncio.to_thread(load_state, settings.paths)
    if state is None or not state.devices:
        print(f"plextuner: error: nothing published in {settings.data_dir}; run refresh first")
        return 1
    plex = client_for(settings)
    try:
        lines = await (register if action == "register" else reload_guides)(settings, state, plex)
    except PlexError as err:
        print(f"plextuner: error: {err}")
        return 1
    finally:
        await plex.aclose()
    print("\n".join(lines) or "no DVR of ours found in Plex; run `plextuner plex register`")
    return 0
