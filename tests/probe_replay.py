"""Judge cases as producers log them: JSON lines in their own words, read by the real decoder
(streams/codecs.py, the door) into the real engine with the shipped policy, as `lifemon replay`
reads files. Shared by the probe's case files (tests/test_probe_*.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from detectors import load_detectors
from schemas.models import Alert
from streams.alerts import latest
from streams.codecs import Decoder
from streams.engine import Engine
from streams.pseudonym import Pseudonymizer
from streams.replay import replay

KEY = b"probe-cases-key-0123456789abcdef"


def replayed(
    folder: Path,
    policy: Any,
    catalog: Any,
    kind: str,
    batch_size: int = 5000,
    **streams: list[dict[str, Any]],
) -> tuple[list[Alert], list[Any]]:
    """The newest revision of each alert `kind` raises on the streams' records, and the dead letters."""
    for stream, records in streams.items():
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
        (folder / f"pfi.{stream}.jsonl").write_text(text, encoding="utf-8")
    spec = next(s for s in load_detectors(policy) if s.kind == kind)
    e = Engine([spec], catalog, pseudonymize=Pseudonymizer(KEY), allowed_lateness_ms=60_000)
    alerts, dead = replay(e, Decoder(), sorted(folder.glob("pfi.*.jsonl")), batch_size=batch_size)
    return list(latest(sorted(alerts, key=lambda a: a.revision))), dead
