"""What README.md tells a new user holds on a fresh clone: the demo's figures are the generator's,
its example queries find the demo's day, its commands carry what they need, the production
section names every secret docker-compose.yml requires, and its links lead to files."""

from __future__ import annotations

import argparse
import re
import shlex
from collections import Counter
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


@cache
def demo_day() -> Any:
    """The workload `lifemon demo` runs, with the demo's own defaults (no broker: generation only)."""
    from policy import load_policy
    from streams.cli import build_parser
    from streams.workload import generate

    args = build_parser().parse_args(["demo"])
    return generate(args.events, seed=args.seed, policy=load_policy())


def demo_block() -> str:
    found = re.search(r"```\n(== lifemon demo ==\n.*?)```", README, re.S)
    assert found, "README.md shows no `lifemon demo` output"
    return found[1]


def test_the_demo_table_is_what_the_demo_injects_and_finds() -> None:
    """`make demo` exits 1 unless every injected case is found and no alert is a false alarm
    (streams/demo.py), so a demo that passes prints injected = found and 0, 0: the generator's
    truth alone gives the table, without a broker."""
    rows = re.findall(r"^  (\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", demo_block(), re.M)
    shown = {d: tuple(map(int, n)) for d, *n in rows}
    injected = Counter(t["detector"] for t in demo_day().truth)
    assert shown == {d: (n, n, 0, 0) for d, n in injected.items()}
    # the severity line counts as many alerts per detector as the table finds (one alert a case)
    line = re.search(r"^alerts by detector and severity: (.*)$", demo_block(), re.M)
    assert line
    alerts: Counter[str] = Counter()
    for detector, n in re.findall(r"(\w+)/\w+ (\d+)", line[1]):
        alerts[detector] += int(n)
    assert alerts == injected


def test_the_demo_severity_line_is_what_its_detectors_raise(tmp_path: Path) -> None:
    """The severity line as the demo's day gives it, replayed (a replay equals the live run): it said
    sdk_overcollection/high 4, medium 2 a stop after a call log became C2 and one alert high."""
    from detectors import load_detectors
    from policy import load_policy
    from policy.catalog import Catalog
    from streams.alerts import latest
    from streams.codecs import Decoder
    from streams.engine import Engine
    from streams.pseudonym import Pseudonymizer
    from streams.replay import replay
    from streams.workload import write_files

    policy = load_policy()
    write_files(demo_day(), tmp_path)
    engine = Engine(load_detectors(policy), Catalog(policy), Pseudonymizer(b"readme-key-0123456789"))
    alerts, _ = replay(engine, Decoder(), sorted(tmp_path.glob("*.jsonl")))
    raised = Counter(f"{a.detector}/{a.severity.value}" for a in latest(alerts))
    line = re.search(r"^alerts by detector and severity: (.*)$", demo_block(), re.M)
    assert line
    assert dict(raised) == {k: int(n) for k, n in re.findall(r"(\w+/\w+) (\d+)", line[1])}


def test_the_demo_events_by_stream_are_what_it_produces() -> None:
    from schemas.models import REFERENCE_STREAMS

    line = re.search(r"^events processed by stream: (.*)$", demo_block(), re.M)
    assert line
    shown = {s: int(n) for s, n in re.findall(r"(\w+) (\d+)", line[1])}
    produced = Counter(s for s, _, _ in demo_day().records if s not in REFERENCE_STREAMS)
    assert shown == dict(produced)


def test_the_demos_customer_ids_are_the_ones_the_readme_gives_for_incidents_subjects() -> None:
    """A new user had no ids.txt for `incidents subjects ID --customers ids.txt` on the demo's day:
    the README gives its bank's customers as a range and the `seq` that writes them."""
    found = re.search(r"customers being `(C\d+)` to `(C\d+)`: `seq -f 'C%07g' (\d+) (\d+) >", README)
    assert found, "README no longer says the demo's customer ids"
    first, last, start, end = found.groups()
    assert (f"C{int(start):07d}", f"C{int(end):07d}") == (first, last)
    customers = {r.customer_id for s, _, r in demo_day().records if s == "customers"}
    assert customers == {f"C{i:07d}" for i in range(int(start), int(end) + 1)}


def test_the_alerts_examples_find_the_demos_day() -> None:
    """A `--since` after the demo's last event lists nothing on the demo's data; and an example's
    comment says the time it means in UTC, as `lifemon alerts` reads it (a new user's "from 10:00
    UTC" was read as the bank's 10:00, 02:00 UTC: 36 alerts, not 4)."""
    events = [r.ts for s, _, r in demo_day().records if s == "access"]
    first, last = (datetime.fromtimestamp(t / 1000, UTC) for t in (min(events), max(events)))
    examples = re.findall(r"lifemon alerts[^`\n#]*--since ([0-9T:Z+-]+)[^\n]*", README)
    assert examples
    for since in examples:
        assert first.date() <= _utc(since).date() and _utc(since) <= last, since
    said = re.findall(r"lifemon alerts[^`\n#]*--since ([0-9T:Z+-]+) *#[^\n]*from (\d\d:\d\d) UTC", README)
    assert said
    for since, hhmm in said:
        assert f"{_utc(since):%H:%M}" == hhmm, since


def _utc(text: str) -> datetime:
    """As `lifemon alerts` reads --since: in the bank's zone when no zone is given."""
    from zoneinfo import ZoneInfo

    from policy import load_policy
    from streams.cli import BankTime, when

    found = when(text)
    return (
        found.instant(ZoneInfo(load_policy().recipients.timezone)) if isinstance(found, BankTime) else found
    )


def test_every_ship_example_names_its_broker() -> None:
    """`lifemon ship` refuses to start without one (`ship needs a broker: --bootstrap …`): an
    example gives `--bootstrap`, or `--config` (its kafka.bootstrap)."""
    ships = re.findall(r"lifemon ship [^`\n]*", README)
    assert ships
    assert all("--bootstrap" in s or "--config" in s for s in ships), ships


def test_the_report_path_is_the_commands_default() -> None:
    from streams.cli import build_parser

    out = build_parser().parse_args(["report"]).out
    assert f"`lifemon report` writes\nthe same page, from what ClickHouse holds then, to `./{out}`" in README
    said = re.findall(r"lifemon report\s+#\s*(\S+)", README)
    assert said and all(path == f"./{out}" for path in said)


def test_the_production_section_names_every_secret_compose_requires() -> None:
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    settings = "\n".join(line for line in compose.splitlines() if not line.lstrip().startswith("#"))
    required = set(re.findall(r"\$\{(\w+):\?", settings))
    section = README.split("## Production", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    assert required and named == required


def _anchors(doc: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped,
    spaces as hyphens, a repeated heading numbered."""
    seen: Counter[str] = Counter()
    out = set()
    for heading in re.findall(r"^#+ (.+)$", doc.read_text(encoding="utf-8"), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return out


def test_links_lead_to_files_in_the_repository() -> None:
    """README and docs/ once pointed to DESIGN.md and ../shared/DESIGN.md, which a clone lacks, and
    to a heading of docs/benchmarks.md by an anchor it did not have."""
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)]*))?\)", text):
            if "://" in target:
                continue
            linked = doc.parent / target if target else doc
            assert linked.exists(), f"{doc.relative_to(ROOT)} links to {target}"
            if anchor and linked.suffix == ".md":
                assert anchor in _anchors(linked), f"{doc.relative_to(ROOT)} links to {target}#{anchor}"
        for path in re.findall(r"`(\.\./[^`]+)`", text):
            assert (doc.parent / path).exists(), f"{doc.relative_to(ROOT)} names {path}"


def test_commands_in_the_readme_parse() -> None:
    """Each `lifemon …` command line shown in a bash block is one the CLI accepts."""
    from streams.cli import build_parser

    parser = build_parser()
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    commands = [shlex.split(line)[1:] for line in lines if line.startswith("lifemon ")]
    assert len(commands) >= 6
    for argv in commands:
        parser.parse_args(argv)


def test_the_command_list_names_every_command() -> None:
    """`incidents` was missing from it."""
    from streams.cli import build_parser

    listed = re.search(r"## Commands\n\n```\n(.*?)```", README, re.S)[1]
    words = {w for w in re.split(r"[\s|]+", listed)}
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) - words == set()


def test_the_chdb_in_use_message_is_the_one_lifemon_prints() -> None:
    """The README once quoted chDB's own 'Cannot lock file' error, which lifemon replaced."""
    quoted = re.search(r"status 3 and `([^`]*)`", README)
    assert quoted is not None
    message = " ".join(quoted[1].split())
    source = " ".join((ROOT / "streams" / "clickhouse.py").read_text(encoding="utf-8").split())
    # the message with its path and pid left out, as the code writes it around them
    for part in re.split(r"…/\.lifemon/chdb|\(pid …\)", message):
        assert part.strip(" (") in source, part


def test_the_example_alert_and_incident_lines_are_the_demos(
    tmp_path: Path, ch: Any, names: dict, monkeypatch: Any
) -> None:
    """The lines README shows from `lifemon alerts` and `lifemon incidents` are what those commands
    print on the demo's day: the demo replayed from files (replay equals live, docs/runtimes.md),
    stored as `lifemon replay --clickhouse` stores it, listed by the commands' own queries. The
    pseudonyms aside (the demo's key is a one-off), every field of each line is compared."""
    from detectors import load_detectors
    from policy import load_policy
    from policy.catalog import Catalog
    from streams.alert_query import render_alert
    from streams.cli import _alerts_and_incidents, _store_replay
    from streams.codecs import Decoder
    from streams.engine import Engine
    from streams.incident_query import query_incidents, render_incident
    from streams.lifecycle_ledger import DeletionLedger
    from streams.pseudonym import Pseudonymizer
    from streams.replay import replay
    from streams.transfer_ledger import TransferLedger
    from streams.workload import write_files

    policy = load_policy()
    files = [p for p in write_files(demo_day(), tmp_path) if p.suffix == ".jsonl"]
    engine = Engine(load_detectors(policy), Catalog(policy), Pseudonymizer(b"readme-example-key-0123456789"))
    engine.deletions = DeletionLedger(policy)  # as `lifemon replay` does
    engine.transfers = TransferLedger(policy)
    alerts, dead = replay(engine, Decoder(), files)
    latest = {a.alert_id: a for a in sorted(alerts, key=lambda a: a.revision)}
    monkeypatch.setattr("streams.clickhouse.connect", lambda dsn: ch)  # one chDB per process
    db = names["database"]
    _store_replay("chdb://unused", db, engine, list(latest.values()), engine.take_incidents(), dead)
    # as `lifemon alerts` lists them: each with the incident it opened or joined
    shown_alerts = {r["alert_id"][:12]: r for r in _alerts_and_incidents(ch, db, limit=1000).rows}
    shown_incidents = {r["incident_id"][:12]: r for r in query_incidents(ch, db, limit=1000).rows}
    examples = re.findall(r"^(20\d\d-.*\[([0-9a-f]{12})(?: rev \d+)?\]\n    .*)$", README, re.M)
    assert len(examples) >= 3
    squeeze = lambda text: re.sub(r" +", " ", text)  # noqa: E731 (column widths follow the listing)
    for example, uid in examples:
        if uid in shown_incidents:
            printed = render_incident(shown_incidents[uid], datetime.now(UTC))
        else:
            assert uid in shown_alerts, f"README shows {uid}, which the demo's day does not raise"
            printed = render_alert(shown_alerts[uid])
        if "…" in example:  # a summary README cut short
            head, _, _ = example.partition("…")
            assert squeeze(printed).startswith(squeeze(head)), (example, printed)
        else:
            assert squeeze(printed) == squeeze(example)


def test_a_detector_page_counts_the_examples_its_policy_file_holds() -> None:
    """Three pages counted ten, eleven and twelve cases where their policy files held 11, 17 and 14."""
    import yaml

    words = dict(zip(["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "twenty-one", "twenty-two", "twenty-three", "twenty-four"], range(1, 25), strict=True))  # fmt: skip
    counted = 0
    for page in sorted((ROOT / "docs" / "detectors").glob("*.md")):
        said = re.findall(r"\b([\w-]+) (?:example )?cases\b", page.read_text(encoding="utf-8"))
        said = [words[w] for w in said if w in words]
        if not said:
            continue
        policy = yaml.safe_load(
            (ROOT / "policy" / "detectors" / page.name.replace(".md", ".yaml")).read_text()
        )
        assert said == [len(policy["tests"])] * len(said), page.name
        counted += 1
    assert counted >= 5
