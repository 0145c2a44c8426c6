"""The busy time the throughput figures divide by (Stats.busy): from the first record to the
checkpoint that saved the latest one, so a benchmark counts what saving its records costs however
many checkpoints fall inside the run. Driven by a fake clock, wall and CPU apart."""

from __future__ import annotations

import pytest

import streams.stats
from streams.stats import Stats


class Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = 100.0, 10.0

    def monotonic(self) -> float:
        return self.wall

    def process_time(self) -> float:
        return self.cpu

    def spend(self, wall: float, cpu: float) -> None:
        self.wall += wall
        self.cpu += cpu


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(streams.stats, "time", c)
    return c


def checkpoint(stats: Stats, clock: Clock, wall: float, cpu: float) -> None:
    began = clock.monotonic(), clock.process_time()
    clock.spend(wall, cpu)
    stats.on_saved(*began)


def test_busy_ends_with_the_checkpoint_that_saved_the_latest_record(clock: Clock) -> None:
    stats = Stats()
    stats.begin()
    clock.spend(1.0, 0.8)
    stats.on_decoded("access", 5000, [])
    clock.spend(0.5, 0.4)  # the batch judged after its decode
    stats.on_processed()
    assert stats.busy() == pytest.approx((1.5, 1.2))  # nothing saved yet: the records' time so far
    clock.spend(3.0, 0.01)  # idle until the checkpoint is due: not busy
    checkpoint(stats, clock, 0.3, 0.25)
    assert stats.busy() == pytest.approx((1.8, 1.45))
    checkpoint(stats, clock, 0.2, 0.1)  # a later one (at close) saved nothing new: not counted again
    assert stats.busy() == pytest.approx((1.8, 1.45))


def test_a_checkpoint_begun_before_the_latest_record_is_not_its_save(clock: Clock) -> None:
    stats = Stats()
    stats.begin()
    stats.on_processed()
    checkpoint(stats, clock, 0.3, 0.25)  # saved the first batch
    clock.spend(1.0, 0.9)
    stats.on_processed()  # a second batch, not saved yet
    assert stats.busy() == pytest.approx((1.3, 1.15))  # the first save is inside, nothing after
    checkpoint(stats, clock, 0.4, 0.35)
    assert stats.busy() == pytest.approx((1.7, 1.5))


def test_the_live_line_says_the_rate_now_and_how_long_idle_the_last_the_whole_run(clock: Clock) -> None:
    """A probe's progress line fell from 5,310/s to 579/s after a pause, the rate averaged from the
    first record as if the monitor had slowed. Live: the rate over the last 10 s (lines are made every
    second and logged every tenth: a review's steady stream read `idle 1s` between batches), or how
    long no record has come; at the end, the rate while data flowed."""
    stats = Stats()
    stats.begin()
    clock.spend(1.0, 0.5)
    stats.on_decoded("access", 5000, [])
    assert "5,000/s while data flowed" in stats.line()  # the first line: no earlier one to compare
    for _ in range(4):  # a batch every 2 s, a line every second
        clock.spend(1.0, 0.5)
        assert "/s now" in stats.line()
        clock.spend(1.0, 0.5)
        stats.on_decoded("access", 8000, [])
        assert "/s now" in stats.line()
    assert "4,000/s now" in stats.line()
    clock.spend(70.0, 0.0)
    assert "idle 70s" in stats.line()
    clock.spend(1.0, 0.5)
    stats.on_decoded("access", 19, [])
    assert "19/s now" in stats.line()
    assert f"{37019 / stats.busy()[0]:,.0f}/s while data flowed" in stats.line(final=True)
