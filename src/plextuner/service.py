"""The daemon's lifecycle: startup → serve (HTTP per device, UDP discovery, refresh loop) → stop.

One root TaskGroup. SIGTERM/SIGINT only set the stop event; shutdown closes the listeners, ends
open streams and waits a bounded time. A second signal forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
import time
from collections.abc import Callable

from aiohttp import web

from plextuner import memtrim
from plextuner.addresses import advertised_host
from plextuner.config import Settings, layout_digest, secret_values
from plextuner.console.routes import install as install_console
from plextuner.errors import PlexTunerError
from plextuner.hdhr.app import build_app
from plextuner.hdhr.control import ControlView, start_control
from plextuner.hdhr.device import Identity, device_auth
from plextuner.hdhr.discovery import Announcement, announcement, start_discovery
from plextuner.hdhr.runtime import Runtime
from plextuner.hdhr.tuners import all_tuners
from plextuner.logging import get_logger
from plextuner.looplag import start_stall_watchdog, watch_loop_lag
from plextuner.metrics import CHANNELS, REFRESH_DURATION, REFRESH_LAST_SUCCESS
from plextuner.pipeline import RefreshOutcome, run_refresh
from plextuner.redact import SECRETS
from plextuner.refresh import default_stages
from plextuner.release import release_in_thread, trim_in_thread
from plextuner.stages import Stage, StageName
from plextuner.state.published import PublishedState, load_state
from plextuner.stream.proxy import StreamEngine
from plextuner.supervise import record_crash, supervised
from plextuner.validate.carry import make_carry_stage

log = get_logger(__name__)
SWITCH_INTERVAL = 0.0005


def settle_heap(*, young: bool = False) -> None:
    """Move the served state out of the collector's sight (`gc.freeze`): a full collection
    walks every live object holding the GIL, and with 50k channels served that is a pause of
    several hundred ms on the event loop, triggered by whatever thread allocates (a refresh's
    parser). The state is acyclic; reference counting still frees it when it is replaced.
    A collection first: cyclic garbage frozen is never freed (a refresh context held by its
    failed guide download's traceback leaked ~50 MB a refresh that way). `young`: after a
    refresh run with the collector off, everything it made is in the youngest generation,
    and collecting that one alone (the new state's lists mostly, its structs untracked) is
    the walk the collector would make anyway as it is turned on: ~7 ms, where a full one
    with 20 viewers streaming held the loop 20-40 ms. Not `young`: what earlier settles froze
    is looked at again too (`gc.unfreeze`), so an object alive at a refresh (a viewer's
    session, a connection's transport) that ended in a cycle since is freed, not kept for good
    (asyncio's closed transports are such cycles: a few objects a connection, unbounded over
    months of refreshes)."""
    if not young:
        gc.unfreeze()
    gc.collect(0 if young else 2)
    gc.freeze()


def record_refresh(outcome: RefreshOutcome) -> None:
    """A published refresh in the daemon's metrics (the pipeline sets none: a one-shot
    `plextuner refresh` has no /metrics to serve them, and prometheus-client is 50 ms of its
    start-up)."""
    REFRESH_DURATION.observe(outcome.duration)
    REFRESH_LAST_SUCCESS.set(outcome.state.published_at)
    for device in outcome.state.devices:
        CHANNELS.labels(bucket=device.name).set(len(device.entries))


SHUTDOWN_GRACE = 5.0
# A daemon that always has a viewer at its refreshes still settles fully this often: the
# 20-40 ms the full collection holds the loop with 20 viewers, once a day, against cycles
# kept for good (see settle_heap)
FULL_SETTLE_EVERY = 24 * 3600.0


class Service:
    def __init__(
        self,
        settings: Settings,
        stages: Callable[[Settings, StreamEngine], list[Stage]] | None = None,
        *,
        refresh_on_start: bool = False,
    ) -> None:
        self._refresh_on_start = refresh_on_start
        memtrim.limit_arenas()  # before the refreshes' worker threads allocate (see memtrim)
        self.settings = settings
        SECRETS.add(*secret_values(settings))  # idempotent: the CLI registered them already
        self.engine = StreamEngine(settings)
        self.runtime = Runtime(settings=settings, tuner=self.engine)
        self.runtime.on_state.append(self.engine.update_state)
        self.runtime.request_refresh = self.trigger_refresh
        self.runtime.queue_refresh = self.queue_refresh
        self._stages = stages or (lambda s, e: default_stages(s, e.budgets))
        self._stop = asyncio.Event()
        self._force = asyncio.Event()  # a second signal: stop waiting for streams to end
        self._refresh_now = asyncio.Event()
        self._next_quick = False  # the queued refresh only applies overrides (no probes)
        self._refresh_lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._ports: set[int] = set()
        self._discovery: asyncio.DatagramTransport | None = None
        self._control: asyncio.Server | None = None
        self.started = asyncio.Event()
        self._settled = time.monotonic()  # the last full settle (the start's, or a refresh's)
        # Set once something is served: a state swapped in and its devices' ports open (a new
        # device's port opens after the swap, the heap settled: a client told earlier could
        # be refused on it)
        self.published = asyncio.Event()

    # --- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> int:
        # The loop thread hands the GIL back and forth with a refresh's worker thread on every
        # socket call; at the default 5 ms switch interval 20 viewers' writes queue up behind
        # the parser (the convoy effect: 0.3 s stalls). 0.5 ms keeps the loop responsive.
        sys.setswitchinterval(SWITCH_INTERVAL)
        loop = asyncio.get_running_loop()
        self._install_signals(loop)
        try:
            await self._startup()
            self.started.set()
            async with asyncio.TaskGroup() as tg:
                refresher = tg.create_task(supervised("refresh_loop", self._refresh_loop))
                lag = tg.create_task(supervised("loop_lag", watch_loop_lag))
                start_stall_watchdog()
                await self._stop.wait()
                refresher.cancel()
                lag.cancel()
        finally:
            await self._shutdown()
        return 1 if self._force.is_set() else 0

    def stop(self) -> None:
        self._stop.set()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        def on_signal() -> None:
            # Only flags: the shutdown path reads them (a second signal cuts the grace short).
            if self._stop.is_set():
                log.warning("forced_exit")
                self._force.set()
                return
            log.info("stopping")
            self._stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, on_signal)

    async def _startup(self) -> None:
        await self.engine.start()
        try:
            state = await asyncio.to_thread(load_state, self.settings.paths)
        except PlexTunerError as err:
            log.warning("state_unreadable", error=err)
            state = None
        if state is not None:
            self.runtime.swap(state)
            settle_heap()
            log.info(
                "state_loaded",
                devices=len(state.devices),
                age_s=round(time.time() - state.published_at),
            )
        app = build_app(self.runtime)
        install_console(app)
        self._runner = web.AppRunner(
            app,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=1.0,
        )
        await self._runner.setup()
        await self._open_ports(state)
        if self.settings.discovery_port:
            host, port = self.settings.host, self.settings.discovery_port
            # Both optional: a busy port costs discovery or the control protocol, not the daemon.
            try:
                self._discovery, _ = await start_discovery(host, port, self.announce)
            except OSError as err:
                log.warning("discovery_unavailable", port=port, error=err.strerror)
            try:
                self._control, _ = await start_control(host, port, self.control_view)
            except OSError as err:
                log.warning("control_unavailable", port=port, error=err.strerror)

    async def _open_ports(self, state: PublishedState | None) -> None:
        assert self._runner is not None
        wanted = {self.settings.port} | {d.port for d in (state.devices if state else [])}
        if self.settings.compat_http_port:
            wanted.add(self.settings.compat_http_port)
        for port in sorted(wanted - self._ports):
            site = web.TCPSite(self._runner, self.settings.host, port, reuse_address=True)
            try:
                await site.start()
            except OSError as err:
                if port == self.settings.port:
                    raise PlexTunerError(f"cannot listen on port {port}: {err.strerror}") from None
                log.error("port_unavailable", port=port, error=err.strerror)  # noqa: TRY400
                continue
            self._ports.add(port)
            log.info("listening", host=self.settings.host, port=port)
        if state is not None:
            self.published.set()

    async def _shutdown(self) -> None:
        if self._discovery is not None:
            self._discovery.close()
        if self._control is not None:
            self._control.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_GRACE), asyncio.TaskGroup() as tg:
                closing = tg.create_task(self._close_all())
                forced = tg.create_task(self._force.wait())
                await asyncio.wait({closing, forced}, return_when=asyncio.FIRST_COMPLETED)
                closing.cancel()
                forced.cancel()
        log.info("stopped", forced=self._force.is_set())

    async def _close_all(self) -> None:
        await self.engine.aclose()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- discovery and the TCP control protocol ------------------------------------------------
    def control_view(self) -> ControlView:
        """The daemon as `hdhomerun_config <id> get …` sees it (see hdhr/control.py)."""
        state = self.runtime.state
        devices = state.devices if state else []
        return ControlView(
            identity=self.runtime.identity(devices[0]) if devices else Identity(),
            tuners=all_tuners(devices, self.engine.active_sessions()),
            channels=sum(len(d.entries) for d in devices),
            scanning=self.runtime.scan_in_progress,
        )

    def announce(self, local_ip: str) -> list[Announcement]:
        host = advertised_host(self.settings, local=local_ip)
        state = self.runtime.state
        return [
            announcement(int(d.device_id, 16), d.tuners, host, local_ip, d.port, device_auth(d))
            for d in (state.devices if state else [])
        ]

    # --- refresh -------------------------------------------------------------------------------
    @property
    def refreshing(self) -> bool:
        return self._refresh_lock.locked()

    async def trigger_refresh(self) -> bool:
        """Ask for a refresh now; False when one is already running."""
        if self._refresh_lock.locked():
            return False
        self._refresh_now.set()
        return True

    async def queue_refresh(self, quick: bool = False) -> bool:
        """A refresh now, or right after the one running (an override must not be missed);
        True when it starts now. `quick` (an override): no probes, the last results carried;
        a full refresh asked for meanwhile wins."""
        if not quick:
            self._next_quick = False
        elif not self._refresh_now.is_set():
            self._next_quick = True
        self._refresh_now.set()
        return not self._refresh_lock.locked()

    async def _refresh_loop(self) -> None:
        interval = max(self.settings.refresh_interval, 1.0)
        state = self.runtime.state
        stale = (
            state is None
            or time.time() - state.published_at >= interval
            or state.config_digest != layout_digest(self.settings)
        )
        new_layout = state is None or state.config_digest != layout_digest(self.settings)
        if new_layout and self.settings.postvalidate.enabled:
            # Probing a big list takes minutes: serve the new lineups first, then validate them.
            await self.refresh_once(quick=True)
        if stale or self._refresh_on_start:
            await self.refresh_once()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._refresh_now.wait()
            self._refresh_now.clear()
            quick, self._next_quick = self._next_quick, False
            await self.refresh_once(quick=quick)

    def _settle(self) -> None:
        """After a refresh. With nobody streaming, a full collection stalls no one (~30 ms of
        50k channels' lists): the one that frees what was frozen and has ended in a cycle
        since. With viewers, only what the refresh made (see settle_heap), but a full one at
        least every FULL_SETTLE_EVERY."""
        now = time.monotonic()
        young = self.engine.streaming() and now - self._settled < FULL_SETTLE_EVERY
        settle_heap(young=young)
        if not young:
            self._settled = now

    async def refresh_once(self, *, quick: bool = False) -> bool:
        """One pipeline pass; `quick` skips the probes and carries the last ones' results."""
        stages = self._stages(self.settings, self.engine)
        if quick:
            stages = [make_carry_stage() if s.name is StageName.VALIDATE else s for s in stages]
        async with self._refresh_lock:
            info = self.runtime.refresh
            info.started_at, info.finished_at = time.time(), None
            self.runtime.scan_in_progress = self.runtime.state is None
            refreshed = False
            try:
                # No automatic full collections while the refresh allocates its hundreds of
                # thousands of objects: each would walk them all holding the GIL (pauses of
                # 0.2-0.6 s on the loop with 50k channels). Reference counting still frees them.
                gc.disable()
                outcome = await run_refresh(self.settings, stages=stages)
                refreshed = True
            except PlexTunerError as err:  # NothingPublishedError among them
                info.ok, info.message, info.exit_code = False, SECRETS.scrub(str(err)), 1
                log.error("refresh_failed", error=err)  # noqa: TRY400 - expected, no traceback
                return False
            except Exception as err:  # noqa: BLE001 - the refresh's supervision boundary
                # A bug, or a foreign error nobody mapped: the last good state stays served.
                record_crash("refresh", err)
                info.crashes += 1
                info.ok, info.exit_code = False, 1
                info.message = SECRETS.scrub(f"internal error ({type(err).__name__}); see the log")
                return False
            finally:
                if not refreshed:
                    gc.enable()
                self.runtime.scan_in_progress = False
                info.finished_at = time.time()
            try:  # the collector stays off until the new state is frozen (settle_heap)
                record_refresh(outcome)
                state, exit_code = outcome.state, outcome.exit_code
                box: list[object] = [self.runtime.state, outcome]  # replaced state, context
                del outcome
                self.runtime.swap(state)
                await release_in_thread(box)  # freed off the loop
                await trim_in_thread()  # and what that freed handed back (see memtrim.py)
                self._settle()
            finally:
                gc.enable()
            await self._open_ports(state)
            info.ok, info.exit_code = True, exit_code
            info.message = "held: " + ", ".join(state.held) if state.held else "ok"
        if not quick:
            try:
                await self._tell_plex(state)
            except Exception as err:  # noqa: BLE001 - supervision boundary: Plex actions never end the daemon
                record_crash("plex", err)
        return True

    async def _tell_plex(self, state: PublishedState) -> None:
        """Register DVRs and/or reload guides now that the new guide.xml is being served."""
        plex_cfg = self.settings.plex
        if not (plex_cfg.register_dvrs or plex_cfg.reload_after_refresh):
            return
        from plextuner.plex.commands import client_for, register, reload_guides

        try:
            client = client_for(self.settings)
        except PlexTunerError as err:
            log.warning("plex_skipped", error=err)
            return
        try:
            if plex_cfg.register_dvrs:
                await register(self.settings, state, client)
            elif plex_cfg.reload_after_refresh:
                await reload_guides(self.settings, state, client)
        except PlexTunerError as err:
            log.warning("plex_update_failed", error=err)
        finally:
            await client.aclose()


async def serve(settings: Settings) -> int:
    return await Service(settings).run()
