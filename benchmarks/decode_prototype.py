"""Decode prototype: typed structs (msgspec) against a columnar batch (polars / Arrow) for the
bulk_query hot path, against a JSON-parsing ceiling measured in the same run.

    python benchmarks/decode_prototype.py [--events 100000] [--batch 5000] [--runs 3]

Input: the generator's access events (seed 11) as JSON lines, exactly the bytes the producer
writes (`model_dump_json`). Every path runs over all of them `--runs` times; the best run counts.
Prints µs/event, events/s, and the ratio of each path's events/s to the `orjson.loads` ceiling
(1.0 = as fast as just parsing the JSON; e2e_throughput.py prints its ratios the same way).

Rows:
  ceiling        bare loop touching each value; orjson.loads per line
  decode         pydantic model_validate_json per line (the old path); msgspec strict Struct decoder
                 per line; streams.codecs.Decoder on batches (adds event-time checks, dead letters);
                 polars read_ndjson / pyarrow read_json of each joined batch (columnar), and
                 pyarrow on one thread (what parsing alone costs a core)
  aggregate only the batch computation below on batches decoded beforehand, both ways
  one batch      the same stateless bulk_query batch computed both ways: per actor, distinct
                 customers each weighted by their heaviest access in the batch (JR/T class x action),
                 rows without a named customer counted as the detector does. Structs: a Python loop
                 over msgspec Structs. Columnar: explode, join weights, two group-bys in polars.
                 The two results are checked equal before anything is timed.
  current path   Decoder + Engine([bulk_query]).process + advance per batch: dedup, pseudonyms,
                 rollups, approvals, the 60-minute sliding window across batches, episodes, timers,
                 RocksDB-backed state. And the engine alone, on batches decoded beforehand.

The columnar prototype computes one batch in isolation: no sliding window across batches, no
state, no episodes, no approvals, no pseudonyms. It is a lower bound for what a columnar
bulk_query would cost, not an equivalent of the current path.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import orjson
import polars as pl

try:
    import pyarrow as pa
    import pyarrow.json as paj
except ImportError:  # the Arrow rows are skipped
    pa = paj = None

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from detectors import load_detectors  # noqa: E402
from policy import load_policy  # noqa: E402
from policy.catalog import Catalog  # noqa: E402
from schemas.models import AccessEvent, Action, Outcome  # noqa: E402
from schemas.structs import STRICT, from_model  # noqa: E402
from streams.codecs import Decoder, RawRecord  # noqa: E402
from streams.engine import Engine  # noqa: E402
from streams.pseudonym import Pseudonymizer  # noqa: E402
from streams.workload import generate  # noqa: E402

TOPIC = "pfi.access"
SEP = "\x1f"  # joins a field list into one string key; never inside a catalog field id

# AccessEvent as a columnar schema. Enums are checked (a value outside them fails the whole batch);
# string lengths and `ge` bounds are not, and an unknown field is silently ignored.
POLARS_SCHEMA = {
    "event_id": pl.String,
    "ts": pl.Int64,
    "actor_id": pl.String,
    "actor_org": pl.String,
    "system": pl.String,
    "action": pl.Enum([a.value for a in Action]),
    "subject_ids": pl.List(pl.String),
    "row_count": pl.Int64,
    "fields": pl.List(pl.String),
    "purpose": pl.String,
    "approval_id": pl.String,
    "outcome": pl.Enum([o.value for o in Outcome]),
    "client_ip": pl.String,
}


# -- the same bulk_query batch, two ways ------------------------------------------------------------
def batch_scores_structs(events: list[Any], profile: Callable, weight: dict) -> dict[str, tuple[int, int]]:
    """actor -> (weighted score in milli-units, distinct customers) of one batch of Structs."""
    per_actor: dict[str, dict[str, int]] = {}
    for ev in events:
        if ev.outcome is not Outcome.success:
            continue
        cls, _ = profile(ev.fields)
        w = weight[(cls, ev.action)]
        seen = per_actor.get(ev.actor_id)
        if seen is None:
            seen = per_actor[ev.actor_id] = {}
        ids = dict.fromkeys(ev.subject_ids)
        for cid in ids:
            if seen.get(cid, 0) < w:
                seen[cid] = w
        unidentified = ev.row_count - len(ids)
        if unidentified > 0:  # rows the log counts but does not name: one entry, weight x rows
            seen[f"#{ev.event_id}"] = w * unidentified
    return {actor: (sum(s.values()), len(s)) for actor, s in per_actor.items()}


class Columnar:
    """The same batch over a polars DataFrame."""

    def __init__(self, catalog: Catalog, weight: dict):
        self.profile = catalog.profile
        self.classes: dict[str, str] = {}  # joined field list -> JR/T class, grown per batch
        self.weights = pl.DataFrame(
            {
                "cls": [c.value for c, _ in weight],
                "action": [a.value for _, a in weight],
                "w": list(weight.values()),
            },
            schema={"cls": pl.String, "action": POLARS_SCHEMA["action"], "w": pl.Int64},
        )

    @staticmethod
    def decode(lines: list[bytes]) -> pl.DataFrame:
        return pl.read_ndjson(io.BytesIO(b"\n".join(lines)), schema=POLARS_SCHEMA)

    def scores(self, df: pl.DataFrame) -> pl.DataFrame:
        df = df.filter(pl.col("outcome") == "success").with_columns(fk=pl.col("fields").list.join(SEP))
        for fk in df["fk"].unique().to_list():  # a handful of distinct field sets per batch
            if fk not in self.classes:
                self.classes[fk] = self.profile(fk.split(SEP) if fk else [])[0].value
        ev = (
            df.with_columns(cls=pl.col("fk").replace_strict(self.classes, return_dtype=pl.String))
            .join(self.weights, on=["cls", "action"], how="left")
            .select("actor_id", "event_id", "row_count", "w", cid=pl.col("subject_ids").list.unique())
        )
        named = ev.select("actor_id", "cid", "w").explode("cid").drop_nulls("cid")
        unnamed = ev.filter(pl.col("row_count") > pl.col("cid").list.len()).select(
            "actor_id",
            cid=pl.lit("#") + pl.col("event_id"),
            w=pl.col("w") * (pl.col("row_count") - pl.col("cid").list.len()),
        )
        return (
            pl.concat([named, unnamed])
            .group_by("actor_id", "cid")
            .agg(pl.col("w").max())
            .group_by("actor_id")
            .agg(score=pl.col("w").sum(), customers=pl.len())
        )


# -- timing ------------------------------------------------------------------------------------------
def timed(paths: list[tuple[str, Callable, Callable | None]], runs: int) -> dict[str, tuple[float, float]]:
    """name -> (best wall s, best CPU s) over `runs` rounds. Each round runs every path once, in
    turn, so noise from neighbours on a shared machine spreads over all paths instead of landing on
    one. A path's `setup` (untimed) builds its argument for each run."""
    best = {name: (float("inf"), float("inf")) for name, _, _ in paths}
    for _ in range(runs):
        for name, fn, setup in paths:
            arg = setup() if setup else None
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            fn(arg) if setup else fn()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000, help="access events (JSON lines)")
    ap.add_argument("--batch", type=int, default=5000, help="events per batch (the runtime's batch_size)")
    ap.add_argument("--runs", type=int, default=3, help="runs per path; the best counts")
    ap.add_argument("--no-freeze", action="store_true", help="leave the generator's objects to the GC")
    args = ap.parse_args()

    policy = load_policy()
    catalog = Catalog(policy)
    spec = next(s for s in load_detectors(policy) if s.kind == "bulk_query")
    weight = spec.new(None)._weight  # (class, action) -> milli-units, exactly the detector's table
    wl = generate(int(args.events / 0.7) + 1000, seed=11, policy=policy)
    access = [r for s, _, r in wl.records if s == "access"][: args.events]
    entitlements = [from_model("entitlements", r) for s, _, r in wl.records if s == "entitlements"]
    lines = [r.model_dump_json().encode() for r in access]
    n, size = len(lines), args.batch
    batches = [lines[i : i + size] for i in range(0, n, size)]
    raw_batches = [
        [RawRecord(TOPIC, 0, i + j, v) for j, v in enumerate(b)]
        for i, b in zip(range(0, n, size), batches, strict=True)
    ]
    del wl, access

    def settle() -> None:
        """Fixtures are frozen out of the GC's sight (unless --no-freeze): a full collection would
        otherwise walk the generator's 100k+ records and the pre-decoded batches, a cost of this
        script's heap that lands only on the paths that keep a batch alive (Decoder, engine)."""
        gc.collect()
        if not args.no_freeze:
            gc.freeze()

    pseudonymize = Pseudonymizer(os.urandom(32))  # shared: its cache is warm after the first run
    decoder = Decoder()
    columnar = Columnar(catalog, weight)

    # the two prototypes must agree before either is timed
    for raws, b in zip(raw_batches, batches, strict=True):
        structs = [ev for _, ev in decoder.decode("access", raws).ok]
        expected = batch_scores_structs(structs, catalog.profile, weight)
        got = {a: (s, c) for a, s, c in columnar.scores(columnar.decode(b)).iter_rows()}
        assert got == expected, "columnar and struct batch scores differ"

    # -- the paths ---------------------------------------------------------------------------------
    def touch() -> None:
        total = 0
        for v in lines:
            total += len(v)

    def orjson_loads() -> None:
        loads = orjson.loads
        for v in lines:
            loads(v)

    def pydantic() -> None:
        validate = AccessEvent.model_validate_json
        for v in lines:
            validate(v)

    def msgspec_struct() -> None:
        decode = msgspec.json.Decoder(STRICT["access"]).decode
        for v in lines:
            decode(v)

    def codecs_decoder() -> None:
        for raws in raw_batches:
            decoder.decode("access", raws)

    def structs_batch() -> None:
        for raws in raw_batches:
            batch_scores_structs([ev for _, ev in decoder.decode("access", raws).ok], catalog.profile, weight)

    def polars_decode() -> None:
        for b in batches:
            columnar.decode(b)

    decoded_structs = [[ev for _, ev in decoder.decode("access", raws).ok] for raws in raw_batches]
    decoded_frames = [columnar.decode(b) for b in batches]

    settle()

    def structs_aggregate() -> None:
        for events in decoded_structs:
            batch_scores_structs(events, catalog.profile, weight)

    def polars_aggregate() -> None:
        for frame in decoded_frames:
            columnar.scores(frame)

    def polars_batch() -> None:
        for b in batches:
            columnar.scores(columnar.decode(b))

    opened: list[Engine] = []  # closed after the timings: closing is not part of the hot path

    def new_engine() -> Engine:
        engine = Engine([spec], catalog, pseudonymize)
        engine.apply_reference("entitlements", entitlements)
        opened.append(engine)
        return engine

    alerts: list[int] = []

    def current_path(engine: Engine) -> None:
        count = 0
        for raws in raw_batches:
            count += len(engine.process("access", TOPIC, 0, decoder.decode("access", raws).ok))
            count += len(engine.advance())
        alerts.append(count)

    def predecoded() -> tuple[Engine, list]:
        decoded = [decoder.decode("access", raws).ok for raws in raw_batches]
        settle()
        return new_engine(), decoded

    def engine_only(arg: tuple[Engine, list]) -> None:
        engine, decoded = arg
        for ok in decoded:
            engine.process("access", TOPIC, 0, ok)
            engine.advance()

    arrow_decode = arrow_decode_one_thread = arrow_batch = None
    if paj is not None:

        def arrow_type(name: str) -> Any:
            if name in ("subject_ids", "fields"):
                return pa.list_(pa.string())
            return pa.int64() if name in ("ts", "row_count") else pa.string()

        options = paj.ParseOptions(
            explicit_schema=pa.schema([(k, arrow_type(k)) for k in POLARS_SCHEMA]),
            unexpected_field_behavior="ignore",
        )

        def arrow_read(chunk: list[bytes], one_thread: bool = False) -> Any:
            read = paj.ReadOptions(use_threads=not one_thread)
            return paj.read_json(io.BytesIO(b"\n".join(chunk)), read_options=read, parse_options=options)

        def arrow_frame(chunk: list[bytes]) -> pl.DataFrame:
            """Arrow's JSON reader, then polars on the same buffers (enums cast, and so checked)."""
            return pl.from_arrow(arrow_read(chunk)).with_columns(  # type: ignore[union-attr]
                pl.col("action").cast(POLARS_SCHEMA["action"]),
                pl.col("outcome").cast(POLARS_SCHEMA["outcome"]),
            )

        for b in batches:
            got = {a: (s, c) for a, s, c in columnar.scores(arrow_frame(b)).iter_rows()}
            assert got == {a: (s, c) for a, s, c in columnar.scores(columnar.decode(b)).iter_rows()}

        def arrow_decode() -> None:
            for b in batches:
                arrow_read(b)

        def arrow_decode_one_thread() -> None:
            """What a core's worth of JSON parsing costs: the floor under any per-core figure."""
            for b in batches:
                arrow_read(b, one_thread=True)

        def arrow_batch() -> None:
            for b in batches:
                columnar.scores(arrow_frame(b))

    candidates: list[tuple[str, Callable | None, Callable | None]] = [
        ("ceiling: bare loop touching each value", touch, None),
        ("ceiling: orjson.loads per line", orjson_loads, None),
        ("decode: pydantic model_validate_json", pydantic, None),
        ("decode: msgspec Struct (STRICT) per line", msgspec_struct, None),
        ("decode: codecs.Decoder.decode (batches)", codecs_decoder, None),
        ("decode: polars read_ndjson (batches)", polars_decode, None),
        ("decode: pyarrow read_json (batches)", arrow_decode, None),
        ("decode: pyarrow read_json, one thread", arrow_decode_one_thread, None),
        ("aggregate only: structs loop (pre-decoded)", structs_aggregate, None),
        ("aggregate only: polars (pre-decoded frames)", polars_aggregate, None),
        ("one batch: Decoder + structs loop", structs_batch, None),
        ("one batch: polars decode + aggregate", polars_batch, None),
        ("one batch: pyarrow decode + polars aggregate", arrow_batch, None),
        ("current: Decoder + Engine(bulk_query)", current_path, new_engine),
        ("current: Engine(bulk_query) only", engine_only, predecoded),
    ]
    paths = [(name, fn, setup) for name, fn, setup in candidates if fn is not None]  # pyarrow is optional
    results = timed(paths, args.runs)

    for engine in opened:
        engine.close()

    # -- report ------------------------------------------------------------------------------------
    ceiling = n / results["ceiling: orjson.loads per line"][0]
    print(
        f"lifemon decode prototype: {n} access events ({sum(map(len, lines)) / n:.0f} bytes/line), "
        f"batches of {size}, best of {args.runs} interleaved rounds, {os.cpu_count()} cores, "
        f"polars {pl.__version__} ({pl.thread_pool_size()} threads), msgspec {msgspec.__version__}; "
        f"{alerts[-1]} alerts on the current path"
    )
    print(f"{'path':<48}{'µs/event':>10}{'events/s':>12}{'ratio':>7}{'CPU µs/event':>14}")
    for name, (wall, cpu) in results.items():
        rate = n / wall
        print(f"{name:<48}{wall / n * 1e6:>10.2f}{rate:>12,.0f}{rate / ceiling:>7.2f}{cpu / n * 1e6:>14.2f}")


if __name__ == "__main__":
    main()
