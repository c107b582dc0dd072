"""Probe classification: TS inspection, ffprobe output and errors, host limiter AIMD."""

from __future__ import annotations

import random

import pytest

from plextuner.demo.clips import minimal_ts
from plextuner.validate.hosts import (
    ABORT_GRACE,
    BAN_PATIENCE,
    BAN_RETRY,
    BOLDER_AFTER,
    OVERSHOOT,
    RATE_STEP,
    REFINE,
    REFUSED_RETRY,
    SAFETY,
    HostLimiter,
    HostMode,
    Lessons,
)
from plextuner.validate.probe import inspect_ts, parse_ffprobe
from plextuner.validate.result import Scope, Verdict, classify_ffprobe_error, classify_status
from tests.fakes.cdn import audio_only_ts


class TestInspectTs:
    def test_video_ts_ok(self) -> None:
        """PAT → PMT with an H.264 stream is ok."""
        assert inspect_ts(minimal_ts(10)).verdict is Verdict.OK

    def test_offset_sync(self) -> None:
        """Leading junk before the first sync byte is tolerated."""
        assert inspect_ts(b"\x00\x01" + minimal_ts(10)).verdict is Verdict.OK

    def test_audio_only_dead(self) -> None:
        """A PMT without a video stream is dead."""
        assert inspect_ts(audio_only_ts()).verdict is Verdict.DEAD

    def test_not_ts(self) -> None:
        """Bytes without TS sync: the channel's own definite failure (dead when the retry
        gets the same), not dead at once (a text page can be a panel's "try later")."""
        result = inspect_ts(b"hello world" * 100)
        assert (result.verdict, result.scope, result.definite) == (
            Verdict.TRANSIENT,
            Scope.CHANNEL,
            True,
        )


class TestClassify:
    @pytest.mark.parametrize(
        ("status", "verdict"),
        [
            (404, Verdict.DEAD),
            (410, Verdict.DEAD),
            (403, Verdict.TRANSIENT),
            (429, Verdict.TRANSIENT),
            (503, Verdict.TRANSIENT),
            (401, Verdict.TRANSIENT),
        ],
    )
    def test_status(self, status: int, verdict: Verdict) -> None:
        """Only 404/410 are definitive among HTTP errors."""
        result = classify_status(status)
        assert result is not None and result.verdict is verdict

    @pytest.mark.parametrize(
        ("stderr", "verdict"),
        [
            ("Connection refused", Verdict.TRANSIENT),
            ("Server returned 403 Forbidden", Verdict.TRANSIENT),
            ("Server returned 404 Not Found", Verdict.DEAD),
            ("Invalid data found when processing input", Verdict.DEAD),
            ("something odd", Verdict.TRANSIENT),
        ],
    )
    def test_ffprobe_errors(self, stderr: str, verdict: Verdict) -> None:
        """ffprobe failures are dead only on definitive messages."""
        assert classify_ffprobe_error(stderr).verdict is verdict

    def test_ffprobe_json(self) -> None:
        """Video codec and size become an ok result with an HD flag; no video is dead."""
        ok = parse_ffprobe(
            b'{"streams":[{"codec_type":"video","codec_name":"h264","width":1280,"height":720}]}'
        )
        assert ok.verdict is Verdict.OK and ok.hd is True and ok.video_codec == "h264"
        assert parse_ffprobe(b'{"streams":[{"codec_type":"audio"}]}').verdict is Verdict.DEAD


class TestHostLimiter:
    def test_aimd_and_parking(self) -> None:
        """Transient results with other probes of ours on the host halve its concurrency and
        double the interval; repeated ones park."""
        lim = HostLimiter("h", 4, 0.5, 0.0, park_after=3, rng=random.Random(1))
        lim.started(0)
        lim.started(0)
        lim.finished_transient(0, "refused")
        assert (lim.concurrency, lim.interval, lim.mode) == (2, 1.0, HostMode.BACKOFF)
        assert not lim.ready(0.1)
        for _ in range(2):
            lim.started(100)
            lim.finished_transient(100, "refused")
        assert lim.mode is HostMode.PARKED and not lim.ready(10_000)

    def test_a_host_that_answered_is_parked_only_after_its_ban_outlasts_patience(self) -> None:
        """Refusals from a host that answered earlier in the run are a ban (it ends): the host
        is retried, at least every BAN_RETRY (within a quarter), until BAN_PATIENCE has passed,
        then parked. One that never answered doubles its cool-downs (the test below)."""
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=3, rng=random.Random(1))
        lim.started(0)
        lim.finished_ok()
        now = 10.0
        for _ in range(12):
            lim.started(now)
            lim.finished_transient(now, "HTTP 503")
            assert lim.mode is HostMode.BACKOFF, now
            assert lim.next_start - now <= 1.25 * BAN_RETRY
            now = lim.next_start
        assert now - 10.0 < BAN_PATIENCE
        lim.started(10.0 + BAN_PATIENCE)
        lim.finished_transient(10.0 + BAN_PATIENCE, "HTTP 503")
        assert lim.mode is HostMode.PARKED

    @pytest.mark.parametrize("seed", range(10))
    def test_a_ban_that_refuses_connections_is_checked_every_second(self, seed: int) -> None:
        """A host that answered, then a 503 and its listener closed (refused connections):
        after the 503's own cool-down, retried about every REFUSED_RETRY, not 2, 4, 5 s; and a
        503 in the middle of it doubles again."""
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=9, rng=random.Random(seed))
        lim.started(0)
        lim.finished_ok()
        lim.started(1.0)
        lim.finished_transient(1.0, "HTTP 503")
        now = lim.next_start
        for _ in range(5):
            lim.started(now)
            lim.finished_transient(now, "connection refused", refused=True)
            assert 0.75 * REFUSED_RETRY <= lim.next_start - now <= 1.25 * REFUSED_RETRY
            now = lim.next_start
        lim.started(now)
        lim.finished_transient(now, "HTTP 503")
        assert lim.next_start - now >= 0.75 * BAN_RETRY
        assert lim.mode is HostMode.BACKOFF

    def test_a_host_that_never_answered_doubles_even_when_refused(self) -> None:
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=9, rng=random.Random(1))
        now = 0.0
        for strike in range(1, 5):
            lim.started(now)
            lim.finished_transient(now, "connection refused", refused=True)
            assert lim.next_start - now >= 0.75 * 0.5 * 2**strike
            now = lim.next_start

    @pytest.mark.parametrize("seed", range(40))
    def test_cooldowns_after_refusals_stay_near_their_doubling(self, seed: int) -> None:
        """Refusals in a row (a ban): each retry waits 1, 2, 4, ... s within a quarter either
        way, so the retries that reach past a 5 s ban come after 5.25-8.75 s, never 10+."""
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=9, rng=random.Random(seed))
        now, nominal = 0.0, 0.0
        for strike in range(1, 5):
            lim.started(now)
            lim.finished_transient(now, "refused")
            nominal += 0.5 * 2**strike
            now = lim.next_start
            assert 0.75 * nominal <= now <= 1.25 * nominal, (strike, now)

    def test_a_backoff_leaves_a_slot_beside_a_hung_channels_long_retry(self) -> None:
        """The long retry of a channel that hung holds its slot, sending nothing, for up to the
        full timeout: a backoff (a rate limit's 503) halves the host's concurrency but never to
        that retry alone, so its other channels go on (at the slower pace)."""
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=9, rng=random.Random(1))
        lim.started(0, holds=True)  # the retry, running
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")
        assert lim.concurrency == 2 and lim.running == 1
        assert lim.ready(lim.next_start)  # beside the retry, once the cool-down is over
        lim.hold_ended(True)  # the retry ended (the pool tells it)
        lim.finished_neutral(30)
        lim.started(40)
        lim.started(40)
        lim.finished_transient(40, "HTTP 503")
        assert lim.concurrency == 1  # no retry held: halved as before

    def test_trouble_met_one_probe_at_a_time_keeps_the_concurrency(self) -> None:
        """With no other probe of ours on the host, the trouble is the rate's (halved): a single
        slot left would let a hung channel's first-byte timeout stop the host's other probes."""
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=9, rng=random.Random(1))
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")
        assert (lim.concurrency, lim.rate) == (2, 1.0)

    def test_recovery(self) -> None:
        """Back from trouble under its new ceiling, the first clean answer steps at once (the
        backoff's level, one strike, is spent); then a step per CLEAN_STREAK answers again."""
        lim = HostLimiter("h", 4, 0.5, 0.0, park_after=10)
        lim.started(0)
        lim.started(0)
        lim.finished_transient(0, "x")
        assert (lim.concurrency, lim.mode) == (2, HostMode.BACKOFF)  # (no narrowing for mypy)
        lim.finished_ok()
        assert lim.concurrency == 3 and lim.mode is HostMode.NORMAL
        lim.started(0)
        lim.finished_ok()  # the streak's second answer
        assert lim.concurrency == 3
        lim.started(0)
        lim.finished_ok()  # its third
        assert lim.concurrency == 4


class TestRatePacing:
    """TCP-style pacing: additive increase on clean streaks, a ceiling learned from trouble."""

    def clean(self, lim: HostLimiter, n: int) -> None:
        for _ in range(n):
            lim.started(0)
            lim.finished_ok()

    def test_clean_streaks_raise_the_rate_past_the_configured_pace(self) -> None:
        """The jitter decays and the rate climbs above 1/min_interval: what the CDN allows,
        not a third under it."""
        lim = HostLimiter("h", 2, 0.5, 0.5, park_after=5, rng=random.Random(1))
        assert lim.effective_rate == pytest.approx(1 / 0.75)
        self.clean(lim, 3 * 6)
        assert lim.jitter_now == 0.0
        assert lim.rate == pytest.approx(2.0 + 6 * RATE_STEP)

    def test_a_long_clean_run_climbs_bolder_until_the_first_trouble(self) -> None:
        """Every BOLDER_AFTER clean answers in a row the step grows by RATE_STEP; trouble ends
        the run (and a learned ceiling takes over the climb)."""
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=5, rng=random.Random(1))
        self.clean(lim, BOLDER_AFTER)
        at = 2.0 + (BOLDER_AFTER // 3 - 1) * RATE_STEP + 2 * RATE_STEP  # the last step doubled
        assert lim.rate == pytest.approx(at)
        self.clean(lim, 3)
        assert lim.rate == pytest.approx(at + 2 * RATE_STEP)
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")
        ceiling = lim.ceiling
        self.clean(lim, BOLDER_AFTER + 3)
        assert lim.rate <= ceiling  # after a lesson the ceiling bounds the climb, bold or not

    def test_first_trouble_sets_a_ceiling_the_climb_respects(self) -> None:
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=5, rng=random.Random(1))
        self.clean(lim, 3 * 4)  # 2.0 -> 3.0 /s
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")
        assert lim.ceiling == pytest.approx(SAFETY * 3.0)
        assert lim.rate == pytest.approx(1.5)
        self.clean(lim, 3 * 20)
        assert lim.rate == pytest.approx(lim.ceiling)  # closed in on, never passed

    def test_trouble_far_under_the_ceiling_teaches_nothing(self) -> None:
        """A refusal at half the learned rate (a slot held by a hung request) slows the host
        but keeps the ceiling; one near the ceiling lowers it a little."""
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=9, rng=random.Random(1))
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")  # at 2.0/s
        ceiling = lim.ceiling
        lim.started(0)
        lim.finished_ok()
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")  # at 1.0/s: far under
        assert lim.ceiling == ceiling
        self.clean(lim, 3 * 20)
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")  # at the ceiling
        assert lim.ceiling == pytest.approx(ceiling * REFINE)

    def test_lasting_trouble_far_under_the_ceiling_with_the_host_to_itself_lowers_it(
        self,
    ) -> None:
        """A first lesson taken while the pace was already over a strict limit (1/s) stays over
        it: trouble far under that ceiling, with no other probe of ours on the host, that lasts
        (a ban's refusal follows) teaches a ceiling under the base rate it came at."""
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=9, rng=random.Random(1))
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")  # at 2.0/s: ceiling 1.7, rate 1.0
        self.clean(lim, 1)  # 1.0 -> 1.35/s (back from trouble: a step an answer), under 0.85 x 1.7
        base = lim.rate
        assert base < 0.85 * lim.ceiling
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")
        assert lim.ceiling == pytest.approx(SAFETY * 2.0)  # one strike: maybe a blip
        lim.started(1)
        lim.finished_transient(1, "connection refused", refused=True)  # it lasts: a ban
        assert lim.ceiling == pytest.approx(SAFETY * REFINE * base)
        assert lim.cap == lim.ceiling and lim.rate <= lim.ceiling
        self.clean(lim, 3 * 20)
        assert lim.rate == pytest.approx(lim.ceiling)

    @pytest.mark.parametrize("other", ["probe", "hung retry"])
    def test_lasting_trouble_beside_another_probe_of_ours_teaches_no_ceiling(
        self, other: str
    ) -> None:
        """With another probe of ours, or a hung channel's long retry, on the host, the
        trouble may be the slot: it halves the host's concurrency, not its ceiling."""
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=9, rng=random.Random(1))
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")
        ceiling = lim.ceiling
        self.clean(lim, 1)  # 1.35/s: well under the ceiling
        lim.started(0, holds=other == "hung retry")
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")
        lim.started(1)
        lim.finished_transient(1, "connection refused", refused=True)
        assert lim.ceiling == ceiling

    def test_a_request_we_dropped_during_trouble_does_not_end_it(self) -> None:
        """A hung channel's probe that we give up on mid-ban was sent before the trouble: it
        is not a clean answer, so the ban's next refusal is an echo, not new trouble."""
        lim = HostLimiter("h", 2, 0.5, 0.0, park_after=9, rng=random.Random(1))
        lim.started(0)
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")
        lim.finished_neutral(5, aborted=True)
        assert lim.strikes == 1
        lim.started(6)
        lim.finished_neutral(7)  # a channel's own answer: the host is back
        assert lim.strikes == 0

    def test_a_low_first_lesson_takes_the_hosts_typical_ceiling_up_to_its_own_cap(self) -> None:
        """A host that met trouble while its jitter was wide learned a ceiling well under its
        siblings'; it takes their median, never above SAFETY x the base rate that met its own
        trouble, and a host whose own lesson is higher keeps it."""
        lessons = Lessons()
        wide = HostLimiter("a", 2, 0.5, 0.5, park_after=9, rng=random.Random(1), lessons=lessons)
        wide.started(0)
        wide.finished_transient(0, "HTTP 503")  # base 2.0/s, jittered mean 1.33/s
        assert wide.ceiling == pytest.approx(SAFETY * (2.0 + 1 / 0.75) / 2)  # taken midway
        assert wide.cap == pytest.approx(SAFETY * 2.0)
        siblings = []
        for name in "bcd":
            lim = HostLimiter(name, 2, 0.5, 0.0, park_after=9, lessons=lessons)
            self.clean(lim, 3 * 4)  # 3.0/s
            lim.started(0)
            lim.finished_transient(0, "HTTP 503")
            siblings.append(lim)
        assert lessons.typical() == pytest.approx(SAFETY * 3.0)
        self.clean(wide, 3 * 20)
        assert wide.ceiling == pytest.approx(SAFETY * 2.0)  # the median, capped by its own
        assert wide.rate == pytest.approx(wide.ceiling)
        high = HostLimiter("e", 2, 0.25, 0.0, park_after=9, lessons=lessons)
        high.started(0)
        high.finished_transient(0, "HTTP 503")  # 4.0/s: well above the median
        self.clean(high, 3 * 20)
        assert high.ceiling == pytest.approx(SAFETY * 4.0)

    def test_a_first_lesson_a_little_over_the_hosts_typical_ceiling_comes_down_to_it(self) -> None:
        """A host whose burst overshot (its first ceiling up to OVERSHOOT x the median of the
        run's first lessons) takes the median: it would be banned again at its own. Its own
        later lesson is its own; with fewer than three lessons the median is not trusted."""
        lessons = Lessons()
        for name in "abc":
            lim = HostLimiter(name, 2, 0.5, 0.0, park_after=9, lessons=lessons)
            self.clean(lim, 3 * 4)  # 3.0/s
            lim.started(0)
            lim.finished_transient(0, "HTTP 503")
        typical = lessons.typical()
        over = HostLimiter("d", 2, 0.3, 0.0, park_after=9, lessons=lessons)
        over.started(0)
        over.finished_transient(0, "HTTP 503")  # 3.33/s: 1.11x the median
        assert typical < over.ceiling <= OVERSHOOT * typical
        self.clean(over, 3 * 20)
        assert over.ceiling == pytest.approx(typical) and over.rate == pytest.approx(typical)
        refined = HostLimiter("e", 2, 0.3, 0.0, park_after=9, lessons=lessons)
        refined.started(0)
        refined.finished_transient(0, "HTTP 503")
        refined.ceiling = refined.rate = 1.2 * lessons.typical()  # as if it had climbed there
        refined.taught = 2  # and been refused there again: its own lesson
        self.clean(refined, 3 * 20)
        assert refined.ceiling == pytest.approx(1.2 * lessons.typical())
        few = Lessons()
        alone = HostLimiter("f", 2, 0.5, 0.0, park_after=9, lessons=few)
        self.clean(alone, 3 * 4)
        alone.started(0)
        alone.finished_transient(0, "HTTP 503")
        other = HostLimiter("g", 2, 0.3, 0.0, park_after=9, lessons=few)
        other.started(0)
        other.finished_transient(0, "HTTP 503")
        self.clean(other, 3 * 20)
        assert other.ceiling == pytest.approx(SAFETY / 0.3)  # two lessons: its own

    def test_without_shared_lessons_a_ceiling_is_a_hosts_own(self) -> None:
        lim = HostLimiter("a", 2, 0.5, 0.5, park_after=9, rng=random.Random(1))
        lim.started(0)
        lim.finished_transient(0, "HTTP 503")
        self.clean(lim, 3 * 20)
        assert lim.ceiling == pytest.approx(SAFETY * (2.0 + 1 / 0.75) / 2)

    def test_an_aborted_request_holds_its_slot_a_moment(self) -> None:
        """After we drop a hung request the server still counts it: no new start at once."""
        lim = HostLimiter("h", 2, 0.0, 0.0, park_after=5)
        lim.started(10.0)
        lim.finished_neutral(10.0, aborted=True)
        assert not lim.ready(10.0) and lim.ready(10.0 + ABORT_GRACE)


def test_one_status_policy() -> None:
    """One table: only 404/410 are gone; limits and 5xx are worth a retry; 401/403 and panel
    "account full" codes are the account's limit, never a dead channel."""
    from plextuner.httpstatus import StatusClass, classify, is_account_limit, retry_may_help

    assert [classify(s) for s in (200, 302, 404, 410)] == [
        StatusClass.OK,
        StatusClass.REDIRECT,
        StatusClass.GONE,
        StatusClass.GONE,
    ]
    assert all(retry_may_help(s) for s in (408, 425, 429, 458, 500, 503, 509, 513))
    assert not any(retry_may_help(s) for s in (400, 401, 403, 404, 410))
    assert all(is_account_limit(s) for s in (401, 403, 429, 458, 509))
    assert not is_account_limit(404)


def test_hls_and_html_detection() -> None:
    """One detector: every mpegurl spelling, or a body that starts like a playlist or a page."""
    from plextuner.ingest.models import is_hls_reply, is_html_reply

    for ctype in ("application/vnd.apple.mpegurl", "audio/x-mpegurl", "Application/X-MPEGURL"):
        assert is_hls_reply(ctype)
    assert is_hls_reply("video/mp2t", b"  #EXTM3U\n#EXT-X-VERSION:3")
    assert not is_hls_reply("video/mp2t", b"G\x40\x00")
    assert is_html_reply("text/html; charset=utf-8") and is_html_reply("", b"\n<html>")
