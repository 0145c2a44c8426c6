"""Fuzzed records on every topic through a real Tansu broker and `lifemon run` (docs/fuzzing.md):
the process stays alive and ends cleanly, each bad record is on the DLQ with its kind and reason
(none echoing the planted C3 value), and the good ones around them are processed."""

from __future__ import annotations

import warnings
from collections import Counter

import pytest
from fuzzing import SENTINEL, VALID, raws, records_of, to_json
from hypothesis import strategies as st
from hypothesis.errors import NonInteractiveExampleWarning
from test_crash_points import clickhouse_totals
from test_pipeline import make_config, read_all, run_cli, send, write_config

from schemas.models import EVENT_MODELS, REFERENCE_STREAMS
from streams.codecs import Decoder
from streams.runtime import ensure_topics

pytestmark = pytest.mark.integration


def test_fuzzed_records_on_every_topic_through_the_real_process(broker, names, tmp_path_factory) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    dsn = f"chdb://{tmp / 'chdb'}"
    config = make_config(names, broker, dsn)
    ensure_topics(broker, config)
    expect_dead: Counter = Counter()
    expect_good: dict[str, int] = {}
    decoder = Decoder()
    for stream in EVENT_MODELS:
        fuzzed = _examples(records_of(stream), 6)
        good = [(to_json({**VALID[stream], **_unique(stream, i)}), None) for i in range(3)]
        batch = [good[0], *fuzzed[:3], good[1], *fuzzed[3:], good[2]]  # bad records between good ones
        judged = decoder.decode(stream, raws("t", batch))
        topic = config.topic_of(stream)
        expect_dead[topic] = len(judged.dead)
        expect_good[stream] = len(judged.ok)
        send(broker, topic, batch)
    proc = run_cli(write_config(config, tmp / "lifemon.yaml"), until_idle=2)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode()[-3000:]
    dlq = read_all(broker, config.topics.dlq, expect_at_least=sum(expect_dead.values()))
    got = Counter(dict(m.headers())["source.topic"].decode() for m in dlq)
    assert got == +expect_dead
    for m in dlq:
        headers = dict(m.headers())
        assert headers["error.kind"] and headers["error.message"]
        assert all(SENTINEL.encode() not in v for v in headers.values())
    rollups = clickhouse_totals(dsn, names["database"])["rollups"]
    for stream, n in expect_good.items():
        if stream not in REFERENCE_STREAMS:
            assert 3 <= rollups.get(stream, 0) <= n, (stream, rollups)  # the good ones; a repeat once


def _examples(strategy: st.SearchStrategy, n: int) -> list:
    """n varied draws (a one-example @given would draw the simplest, all-valid one); tombstones
    aside: the producer helper stamps a record by its value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        found: list = []
        while len(found) < n:
            value = strategy.example()
            if value[0] is not None:
                found.append(value)
        return found


def _unique(stream: str, i: int) -> dict[str, str]:
    """A distinct id per good record (duplicates are counted once)."""
    return {"event_id": f"good-{i}"} if "event_id" in VALID[stream] else {"ts": VALID[stream]["ts"] + i}
