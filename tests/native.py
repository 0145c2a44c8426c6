"""Shared pieces of the tests of lifemon's C modules (streams/_door.c, streams/_ids.c,
streams/_avro.c, detectors/_window.c): hypothesis settings, a fresh interpreter with the debug allocator for
callbacks that change what a C loop walks, and a leak measure."""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import Phase, settings

ROOT = Path(__file__).resolve().parents[1]
# no shrinking: a red run stays seconds long (the named tests pin each case found)
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    phases=(Phase.explicit, Phase.generate),
)


def isolated(prelude: str, code: str) -> subprocess.CompletedProcess:
    """`prelude` then `code` run in a fresh interpreter with the debug allocator (freed memory
    overwritten, so a borrowed reference used after its object died crashes instead of reading
    stale bytes)."""
    head = f"import gc, sys\nsys.path.insert(0, {str(ROOT)!r})\n" + textwrap.dedent(prelude)
    env = {**os.environ, "PYTHONMALLOC": "debug", "PYTHONFAULTHANDLER": "1"}
    return subprocess.run(
        [sys.executable, "-c", head + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=ROOT,
    )


def no_crash(prelude: str, code: str, expected: str) -> None:
    """`code` (see `isolated`) exits cleanly and prints `expected`."""
    done = isolated(prelude, code)
    assert (done.returncode, done.stdout.strip()) == (0, expected), done.stderr[-2000:]


def blocks_grown(step: Callable[[], Any], n: int, warmup: int = 200) -> int:
    """Allocated blocks after n more calls of `step` (fresh objects each) than before them."""
    for _ in range(warmup):
        step()
    gc.collect()  # a full one also empties the free lists: the blocks then are live objects
    before = sys.getallocatedblocks()
    for _ in range(n):
        step()
    gc.collect()
    return sys.getallocatedblocks() - before


def leaks(odd: dict[str, tuple[Callable[[], Any], Any]], n: int) -> dict[str, int]:
    """Of each odd call (the exception it is expected to raise, if any, caught), the blocks n
    more calls leave behind, where over 100. What is alive before is frozen: a full collection
    between the calls is then quick."""
    grown = {}
    gc.collect()
    gc.freeze()
    try:
        for case, (call, expected) in odd.items():
            catch = expected if isinstance(expected, type) else ()

            def step(call: Callable[[], Any] = call, catch: Any = catch) -> None:
                with contextlib.suppress(catch):
                    call()

            # a thread of an earlier test (a Kafka client's, a log handler's) may allocate meanwhile:
            # a case over the bar is measured again, and a true leak grows every time
            grown[case] = blocks_grown(step, n, warmup=20)
            for _ in range(2):
                if grown[case] > 100:
                    grown[case] = min(grown[case], blocks_grown(step, n, warmup=0))
    finally:
        gc.unfreeze()
    return {case: k for case, k in grown.items() if k > 100}
