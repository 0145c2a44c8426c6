"""The pipeline-health panels add streams and instances up: each pipeline_stats row must carry its own
stream's figures. Rows written as the runtime writes them (Stats.pipeline_rows through the stats
sink), read back on chDB by the dashboard's own SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from test_deploy import BASE, _panel_rows

from streams.clickhouse import apply_ddl
from streams.sinks.clickhouse import STATS_COLUMNS, ClickHouseTableSink, identity_row
from streams.stats import Stats

# records each stream decoded in one 10-second checkpoint window, per instance
DECODED = {"access": 600, "transfer": 90, "sdk": 30, "marketing": 60, "lifecycle": 120}
# (stream, topic, partition) -> (messages behind, seconds behind)
LAGS = {
    ("access", "pfi.access", 0): (40, 2.0),
    ("access", "pfi.access", 1): (10, 1.0),
    ("transfer", "pfi.transfer", 0): (5, 0.5),
}
INSTANCES = ("lifemon-1", "lifemon-2")
WINDOW_S = 10.0


@pytest.fixture
def db(ch: Any) -> Iterator[str]:
    name = f"health_{uuid.uuid4().hex[:8]}"
    apply_ddl(ch, name)
    yield name
    ch.command(f"DROP DATABASE IF EXISTS {name}")


def checkpoint_rows(instance: str) -> list[tuple]:
    stats = Stats()
    for stream, n in DECODED.items():
        stats.on_decoded(stream, n, [])
    stats.on_lag(LAGS)
    return stats.pipeline_rows(BASE, instance, now=stats.window_start + WINDOW_S)


def test_pipeline_health_panels_add_up_to_the_real_totals(ch: Any, db: str) -> None:
    sink = ClickHouseTableSink(ch, f"{db}.pipeline_stats", STATS_COLUMNS, identity_row, "stats")
    for instance in INSTANCES:
        sink.add(checkpoint_rows(instance))
    sink.flush()

    throughput = {r["stream"]: r["events_per_s"] for r in _panel_rows("Pipeline throughput", ch, db)}
    # each stream is its own records over the window, on every instance, summed over instances
    assert throughput == pytest.approx({s: len(INSTANCES) * n / WINDOW_S for s, n in DECODED.items()})
    real_rate = len(INSTANCES) * sum(DECODED.values()) / WINDOW_S  # 180 events/s
    assert sum(throughput.values()) == pytest.approx(real_rate)

    lag = {r["stream"]: r["lag"] for r in _panel_rows("Consumer lag", ch, db)}
    assert lag == {"access": 100, "transfer": 10, "sdk": 0, "marketing": 0, "lifecycle": 0}
    real_lag = len(INSTANCES) * sum(n for n, _ in LAGS.values())
    assert sum(lag.values()) == real_lag


def test_the_rate_window_restarts_at_each_checkpoint() -> None:
    stats = Stats()
    stats.on_decoded("access", 50, [])
    assert stats.rates(now=stats.window_start + 5) == {"access": 10.0}
    stats.on_decoded("transfer", 4, [])
    assert stats.rates(now=stats.window_start + 2) == {"transfer": 2.0}  # access had nothing since
