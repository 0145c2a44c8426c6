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


def test_the_demo_events_by_stream_are_what_it_produces() -> None:
    from schemas.models import REFERENCE_STREAMS

    line = re.search(r"^events processed by stream: (.*)$", demo_block(), re.M)
    assert line
    shown = {s: int(n) for s, n in re.findall(r"(\w+) (\d+)", line[1])}
    produced = Counter(s for s, _, _ in demo_day().records if s not in REFERENCE_STREAMS)
    assert shown == dict(produced)


def test_the_alerts_examples_find_the_demos_day() -> None:
    """A `--since` after the demo's last event lists nothing on the demo's data."""
    events = [r.ts for s, _, r in demo_day().records if s == "access"]
    first, last = (datetime.fromtimestamp(t / 1000, UTC) for t in (min(events), max(events)))
    examples = re.findall(r"lifemon alerts[^`\n#]*--since ([0-9T:-]+)", README)
    assert examples
    for since in examples:
        assert first.date() <= datetime.fromisoformat(since).date() and _utc(since) <= last, since


def _utc(text: str) -> datetime:
    """As `lifemon alerts` reads --since: UTC when no zone is given."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


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


def test_links_lead_to_files_in_the_repository() -> None:
    """README and docs/ once pointed to DESIGN.md and ../shared/DESIGN.md, which a clone lacks."""
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" not in target:
                assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links to {target}"
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
