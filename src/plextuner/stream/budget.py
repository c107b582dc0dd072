"""Tuner pools per device and one connection budget per provider account.

Viewers and post-validation probes share a provider's budget. Viewers come first: a viewer that
finds the budget full cancels a probe and waits (bounded) for its connection to be released, so the
provider never sees more than `limit` connections. Probes never take the last connection a viewer
could need (when the account allows more than one).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from types import TracebackType

from plextuner.config import ProviderConfig
from plextuner.errors import ConnectionsExhaustedError, TunerInUseError, TunersBusyError
from plextuner.stream.accounts import Account, accounts_of

VIEWER_WAIT = 3.0  # a channel change: the closing session frees its connection within this
VIEWER_QUIET = 10.0  # probes stay off an account for this long after a viewer tuned (zapping)
LINGER_STEP = 5.0  # the first guess at a provider's linger, and the least hold after a refusal
MAX_LINGER = 60.0


class LeaseKind(StrEnum):
    VIEWER = "viewer"
    PROBE = "probe"


class Lease:
    """One provider connection. Release exactly once, in a `finally` (or `async with`)."""

    _ids = itertools.count(1)

    def __init__(
        self, budget: ProviderBudget, kind: LeaseKind, on_preempt: Callable[[], None] | None
    ) -> None:
        self.id = next(self._ids)
        self.kind = kind
        self.budget = budget
        self.preempted = asyncio.Event()
        # An HLS session: providers keep counting one for a while after its last request,
        # a TS stream mostly not; its holder says which, and the linger is learned per kind.
        self.hls = False
        # Refused by the provider ("max connections"): never open there, so it does not linger.
        self.refused = False
        self._on_preempt = on_preempt
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.budget.returned(self)

    def preempt(self) -> None:
        """A viewer needs this probe's connection: ask its owner to stop."""
        if not self.preempted.is_set():
            self.preempted.set()
            if self._on_preempt is not None:
                self._on_preempt()

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class ProviderBudget:
    """At most `limit` concurrent upstream connections to one provider account."""

    def __init__(self, name: str, limit: int, viewer_wait: float = VIEWER_WAIT) -> None:
        self.name = name
        self._limit = max(1, limit)
        self.viewer_wait = viewer_wait
        self._leases: dict[int, Lease] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._viewers_waiting = 0
        self._last_tune = float("-inf")
        # A provider keeps counting a closed stream (an HLS session above all) for a while:
        # probes treat a freed slot as busy that long. Configured, or learned from refusals.
        self.linger: float | None = None
        self._learned = {True: 0.0, False: 0.0}  # per kind of connection: HLS or not
        self._released_at: deque[tuple[float, bool]] = deque(maxlen=64)  # (when, hls)
        self._probe_hold_until = float("-inf")
        self.listeners: list[Callable[[], None]] = []  # told whenever a connection is returned
        # Closes an upstream nobody watches (a lingering one) when a tune finds us full.
        self.reclaim: Callable[[str], bool] | None = None

    @property
    def limit(self) -> int:
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        self._limit = max(1, value)

    @property
    def viewers_waiting(self) -> int:
        """Tunes waiting for a connection right now (a zap on a full account)."""
        return self._viewers_waiting

    @property
    def in_use(self) -> int:
        return len(self._leases)

    @property
    def free(self) -> int:
        return max(0, self._limit - len(self._leases))

    def count(self, kind: LeaseKind) -> int:
        return sum(1 for lease in self._leases.values() if lease.kind is kind)

    def _grant(self, kind: LeaseKind, on_preempt: Callable[[], None] | None = None) -> Lease:
        lease = Lease(self, kind, on_preempt)
        self._leases[lease.id] = lease
        return lease

    def returned(self, lease: Lease) -> None:
        """A lease's connection is free again (called by `Lease.release` only)."""
        self._leases.pop(lease.id, None)
        if not lease.refused:
            self._released_at.append((time.monotonic(), lease.hls))
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        for listener in list(self.listeners):
            listener()

    @property
    def linger_s(self) -> float:
        """The longest linger in force (configured, or the longest learned)."""
        return self.linger if self.linger is not None else max(self._learned.values())

    def linger_for(self, hls: bool) -> float:
        return self.linger if self.linger is not None else self._learned[hls]

    def _lingering(self, now: float) -> int:
        return sum(1 for t, hls in self._released_at if now - t < self.linger_for(hls))

    def note_refusal(self) -> None:
        """The provider refused the account although our count had a slot free: its count
        lags ours. Learn how long (unless configured) and hold probes back meanwhile."""
        now = time.monotonic()
        blamed = self._blamed(now)
        if self.linger is None:
            last = max((t for t, hls in self._released_at if hls is blamed), default=None)
            since = now - last if last is not None else LINGER_STEP
            self._learned[blamed] = min(
                MAX_LINGER, max(self._learned[blamed] * 2, since + 1.0, LINGER_STEP)
            )
        self._probe_hold_until = now + max(self.linger_for(blamed), LINGER_STEP)

    def _blamed(self, now: float) -> bool:
        """The kind of connection the provider still counted (True: HLS): one that closed lately
        and that we took for gone, an HLS session first (what providers are known to keep
        counting); else the kind of the last one closed. Learned per kind, a provider that
        lingers HLS sessions does not slow the probes of its TS streams (a 2-connection run
        took 6x an oracle's time when one refusal after an HLS probe held every probe 5 s)."""
        for hls in (True, False):
            last = max((t for t, h in self._released_at if h is hls), default=None)
            if last is not None and self.linger_for(hls) <= now - last < MAX_LINGER:
                return hls
        return self._released_at[-1][1] if self._released_at else False

    def probes_blocked_until(self, clock: Callable[[], float] = time.monotonic) -> float:
        """When (on `clock`) the next time-based block on probes ends (a viewer's quiet period,
        a hold after a refusal, a freed slot's linger); inf when none. Releases are announced to
        `listeners`; these are the time-based conditions."""
        now = time.monotonic()
        ends = [self._last_tune + VIEWER_QUIET, self._probe_hold_until]
        ends += [t + self.linger_for(hls) for t, hls in self._released_at]
        future = [e for e in ends if e > now]
        return clock() + (min(future) - now) if future else float("inf")

    async def _changed(self) -> None:
        """Return after the next release (callers re-check their condition)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)

    async def acquire_viewer(self, wait: float | None = None) -> Lease:
        """A connection for a viewer, preempting probes; ConnectionsExhaustedError after `wait`."""
        self._last_tune = time.monotonic()
        if self.free > 0:
            return self._grant(LeaseKind.VIEWER)
        self._preempt_one_probe()
        if self.reclaim is not None:
            self.reclaim(self.name)  # its lease comes back once the upstream has closed
        self._viewers_waiting += 1
        try:
            async with asyncio.timeout(self.viewer_wait if wait is None else wait):
                while self.free <= 0:
                    await self._changed()
                return self._grant(LeaseKind.VIEWER)
        except TimeoutError:
            raise ConnectionsExhaustedError(self.name) from None
        finally:
            self._viewers_waiting -= 1

    def viewer_refused(self) -> None:
        """The provider refused a viewer (account limit) though our count had room: probes give
        way and hold off a while. No lesson on the linger: a 403 for good would teach 60 s."""
        self._probe_hold_until = max(self._probe_hold_until, time.monotonic() + LINGER_STEP)
        for lease in list(self._leases.values()):
            if lease.kind is LeaseKind.PROBE:
                lease.preempt()

    def _preempt_one_probe(self) -> None:
        probes = [lease for lease in self._leases.values() if lease.kind is LeaseKind.PROBE]
        pending = [p for p in probes if not p.preempted.is_set()]
        if pending:
            pending[0].preempt()

    def try_acquire_probe(self, on_preempt: Callable[[], None] | None = None) -> Lease | None:
        """A connection for a probe, or None: never the last one, never ahead of a viewer."""
        now = time.monotonic()
        if self._viewers_waiting or now - self._last_tune < VIEWER_QUIET:
            return None  # someone is zapping: probes wait until the viewers settle
        if now < self._probe_hold_until:
            return None  # the provider just refused the account: let its count catch up
        if self.count(LeaseKind.VIEWER) and self._limit == 1:
            return None
        if self.probe_slots(now) <= 0:
            return None
        return self._grant(LeaseKind.PROBE, on_preempt)

    def probe_slots(self, now: float | None = None) -> int:
        """Connections probes may take now: the free ones, less those the provider may still
        count (linger) and the one kept for viewers."""
        now = time.monotonic() if now is None else now
        reserve = 1 if self._limit > 1 else 0
        return max(0, self.free - self._lingering(now) - reserve)

    async def acquire_probe(
        self, on_preempt: Callable[[], None] | None = None, wait: float = 30.0
    ) -> Lease | None:
        """Wait (bounded) until a probe may take a connection; None on timeout."""
        lease = self.try_acquire_probe(on_preempt)
        if lease is not None:
            return lease
        try:
            async with asyncio.timeout(wait):
                while True:
                    await self._changed()
                    lease = self.try_acquire_probe(on_preempt)
                    if lease is not None:
                        return lease
        except TimeoutError:
            return None


class BudgetRegistry:
    """The budgets of every provider; limits refreshed from config and Xtream user_info."""

    def __init__(self, default_limit: int = 1, viewer_wait: float = VIEWER_WAIT) -> None:
        self._default = default_limit
        self._viewer_wait = viewer_wait
        self.linger: float | None = None  # postvalidate.provider_linger, for every account
        self._budgets: dict[str, ProviderBudget] = {}
        self._accounts: dict[str, list[Account]] = {}
        self._aliases: dict[str, str] = {}  # account key -> the key of the same login
        self._listeners: list[Callable[[], None]] = []
        self.reclaim: Callable[[str], bool] | None = None  # set by the stream engine's hub

    def configure_accounts(self, providers: list[ProviderConfig]) -> None:
        """Pooled accounts (stream/accounts.py): each login its own budget; a login that two
        providers share counts once."""
        seen: dict[str, str] = {}
        for cfg in providers:
            accounts = accounts_of(cfg)
            self._accounts[cfg.name] = accounts
            for account in accounts:
                if account.login is not None and account.login in seen:
                    if seen[account.login] != account.key:
                        self._aliases[account.key] = seen[account.login]
                    continue
                if account.login is not None:
                    seen[account.login] = account.key
                if account.key != cfg.name and account.max_connections:
                    self.set_limit(account.key, account.max_connections)

    def accounts_of(self, provider: str) -> list[Account]:
        """The provider's accounts, its own first (one implicit account when none is set)."""
        return self._accounts.get(provider) or [Account(provider, provider)]

    async def lease_any(self, provider: str) -> tuple[Lease, Account]:
        """A connection from any of the provider's accounts with a free slot; when all are
        full, wait (bounded by `viewer_wait`) on all of them at once and take whichever frees
        first (each wait may preempt a probe or reclaim an idle upstream of its account)."""
        accounts = self.accounts_of(provider)
        for account in accounts:
            budget = self.get(account.key)
            if budget.free > 0:
                return await budget.acquire_viewer(), account
        if len(accounts) == 1:
            return await self.get(accounts[0].key).acquire_viewer(), accounts[0]
        waits = {asyncio.ensure_future(self.get(a.key).acquire_viewer()): a for a in accounts}
        won: tuple[Lease, Account] | None = None
        try:
            pending = set(waits)
            while pending and won is None:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is None and won is None:
                        won = task.result(), waits[task]
                    elif task.exception() is None:
                        task.result().release()  # two came free at once: keep one
        finally:
            for task in waits:
                task.cancel()
            results = await asyncio.gather(*waits, return_exceptions=True)
            for result in results:  # a wait that won after the cancel was requested
                if isinstance(result, Lease) and (won is None or result is not won[0]):
                    result.release()
        if won is None:
            raise ConnectionsExhaustedError(provider)
        return won

    def get(self, provider: str) -> ProviderBudget:
        provider = self._aliases.get(provider, provider)
        budget = self._budgets.get(provider)
        if budget is None:
            budget = ProviderBudget(provider, self._default, self._viewer_wait)
            budget.linger = self.linger
            budget.listeners.extend(self._listeners)
            budget.reclaim = self._reclaim
            self._budgets[provider] = budget
        return budget

    def _reclaim(self, provider: str) -> bool:
        return self.reclaim(provider) if self.reclaim is not None else False

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` whenever any provider's connection is returned; returns the undo."""
        self._listeners.append(listener)
        for budget in self._budgets.values():
            budget.listeners.append(listener)

        def unsubscribe() -> None:
            for holder in (self._listeners, *(b.listeners for b in self._budgets.values())):
                while listener in holder:
                    holder.remove(listener)

        return unsubscribe

    def set_limit(self, provider: str, limit: int | None) -> None:
        self.get(provider).limit = limit or self._default

    def all(self) -> list[ProviderBudget]:
        return list(self._budgets.values())


class TunerPool:
    """A device's tuners: `auto` takes the lowest free one; `tunerN` asks for one."""

    def __init__(self, device: str, count: int) -> None:
        self.device = device
        self.count = count
        self._busy: set[int] = set()

    @property
    def busy(self) -> int:
        return len(self._busy)

    def acquire(self, tuner: int | None = None) -> int:
        if tuner is not None:
            if tuner >= self.count or tuner in self._busy:
                raise TunerInUseError(self.device, tuner)
            self._busy.add(tuner)
            return tuner
        for index in range(self.count):
            if index not in self._busy:
                self._busy.add(index)
                return index
        raise TunersBusyError(self.device)

    def release(self, tuner: int) -> None:
        self._busy.discard(tuner)

    def resized(self, count: int) -> TunerPool:
        """A pool of `count` tuners for the same device that keeps the busy ones busy."""
        new = TunerPool(self.device, count)
        new._busy = {t for t in self._busy if t < count}
        return new
