"""The shared connection budget and the tuner pools."""

from __future__ import annotations

import asyncio

import pytest

from plextuner.errors import ConnectionsExhaustedError, TunerInUseError, TunersBusyError
from plextuner.stream.budget import LeaseKind, ProviderBudget, TunerPool


class TestProviderBudget:
    async def test_viewers_never_exceed_limit(self) -> None:
        """A third viewer on a two-connection account is refused after the bounded wait."""
        budget = ProviderBudget("p", 2, viewer_wait=0.05)
        a, b = await budget.acquire_viewer(), await budget.acquire_viewer()
        with pytest.raises(ConnectionsExhaustedError):
            await budget.acquire_viewer()
        a.release()
        b.release()
        assert budget.in_use == 0

    async def test_channel_change_waits_for_closing_session(self) -> None:
        """A tune that finds the budget full gets the connection a closing session frees."""
        budget = ProviderBudget("p", 1, viewer_wait=1.0)
        old = await budget.acquire_viewer()
        asyncio.get_running_loop().call_later(0.05, old.release)
        new = await budget.acquire_viewer()
        assert new.kind is LeaseKind.VIEWER and budget.in_use == 1
        new.release()

    async def test_probe_keeps_last_connection_for_viewers(self) -> None:
        """Probes may use limit-1 connections when the account allows more than one."""
        budget = ProviderBudget("p", 3)
        probes = [budget.try_acquire_probe() for _ in range(3)]
        assert [p is not None for p in probes] == [True, True, False]
        viewer = await budget.acquire_viewer()
        assert budget.in_use == 3
        for lease in (*probes[:2], viewer):
            assert lease is not None
            lease.release()

    async def test_viewer_preempts_probe(self) -> None:
        """A viewer facing a full budget cancels a probe and takes its connection."""
        budget = ProviderBudget("p", 1, viewer_wait=1.0)
        probe_task: asyncio.Task[None] | None = None

        async def probe() -> None:
            def preempt() -> None:
                if probe_task is not None:
                    probe_task.cancel()

            lease = budget.try_acquire_probe(on_preempt=preempt)
            assert lease is not None
            try:
                await asyncio.sleep(10)
            finally:
                lease.release()

        probe_task = asyncio.create_task(probe())
        await asyncio.sleep(0)
        assert budget.count(LeaseKind.PROBE) == 1
        viewer = await budget.acquire_viewer()
        assert probe_task.cancelled() or probe_task.done()
        assert budget.in_use == 1 and budget.count(LeaseKind.VIEWER) == 1
        viewer.release()

    async def test_probes_wait_while_viewers_zap(self) -> None:
        """Right after a tune, probes stay off the account even with connections free."""
        budget = ProviderBudget("p", 4)
        viewer = await budget.acquire_viewer()
        viewer.release()
        assert budget.try_acquire_probe() is None
        budget._last_tune -= 60
        lease = budget.try_acquire_probe()
        assert lease is not None
        lease.release()

    async def test_release_is_idempotent(self) -> None:
        """Releasing twice frees one connection only once."""
        budget = ProviderBudget("p", 2)
        lease = await budget.acquire_viewer()
        other = await budget.acquire_viewer()
        lease.release()
        lease.release()
        assert budget.in_use == 1
        other.release()


class TestTunerPool:
    def test_auto_and_forced(self) -> None:
        """`auto` takes the lowest free tuner; a busy forced tuner is 804, all busy 805."""
        pool = TunerPool("d", 2)
        assert pool.acquire() == 0
        with pytest.raises(TunerInUseError):
            pool.acquire(0)
        assert pool.acquire(1) == 1
        with pytest.raises(TunersBusyError):
            pool.acquire()
        pool.release(0)
        assert pool.acquire() == 0


class TestLinger:
    async def test_a_freed_slot_stays_busy_for_the_linger(self) -> None:
        """A provider that still counts a closed stream: probes wait out its linger."""
        budget = ProviderBudget("p", 3)
        budget.linger = 30.0
        first = budget.try_acquire_probe()
        assert first is not None
        first.release()
        # 3 slots, one kept for viewers, one still counted by the provider: none for probes
        assert budget.try_acquire_probe() is not None
        assert budget.try_acquire_probe() is None
        assert budget.probes_blocked_until() < float("inf")

    async def test_learned_from_refusals(self) -> None:
        budget = ProviderBudget("p", 2)
        lease = budget.try_acquire_probe()
        assert lease is not None
        lease.release()
        assert budget.linger_s == 0
        budget.note_refusal()
        assert budget.linger_s >= 5.0
        assert budget.try_acquire_probe() is None  # held back after the refusal
        before = budget.linger_s
        budget.note_refusal()
        assert budget.linger_s > before

    async def test_learned_per_kind(self) -> None:
        """A provider that keeps counting HLS sessions: the refusal after an HLS probe teaches
        the HLS linger only, so a TS stream's slot is free again at once and an HLS one's not."""
        budget = ProviderBudget("p", 2)
        hls = budget.try_acquire_probe()
        assert hls is not None
        hls.hls = True
        hls.release()
        ts = budget.try_acquire_probe()  # TS after it, taken (nothing learned yet)
        assert ts is not None
        ts.release()
        budget.note_refusal()
        assert budget.linger_for(True) >= 5.0 and budget.linger_for(False) == 0
        budget._probe_hold_until = 0.0  # past the hold after the refusal
        budget._released_at.clear()  # and past the HLS linger
        ts = budget.try_acquire_probe()
        assert ts is not None
        ts.release()
        again = budget.try_acquire_probe()
        assert again is not None  # a closed TS stream does not linger
        again.hls = True
        again.release()
        assert budget.try_acquire_probe() is None  # a closed HLS session does

    async def test_a_lingering_ts_provider_is_learned_too(self) -> None:
        """With no HLS session closed lately, the refusal is the TS streams' linger."""
        budget = ProviderBudget("p", 2)
        lease = budget.try_acquire_probe()
        assert lease is not None
        lease.release()
        budget.note_refusal()
        assert budget.linger_for(False) >= 5.0 and budget.linger_for(True) == 0

    async def test_a_refused_connection_does_not_linger(self) -> None:
        """The probe the provider refused was never open there: the refusal is put on the TS
        stream closed before it, not on the refused HLS session."""
        budget = ProviderBudget("p", 2)
        ts = budget.try_acquire_probe()
        assert ts is not None
        ts.release()
        refused = budget.try_acquire_probe()
        assert refused is not None
        refused.hls, refused.refused = True, True
        refused.release()
        budget.note_refusal()
        assert budget.linger_for(False) >= 5.0 and budget.linger_for(True) == 0
