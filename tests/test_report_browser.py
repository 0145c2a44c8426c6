"""`lifemon report` in a real browser: Debian's headless Chromium opens the page the command wrote
(from the real schema on chDB), and it must render its headings, charts and alerts, in Chinese
too, with nothing in red in the console. The same checks on a page broken on purpose must fail,
so a checker that sees nothing cannot pass for a clean page."""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from browser import CHROMIUM, MISSING, chromium
from conftest import access
from test_report import store_day

from streams.cli import main

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=MISSING)

HEADINGS = """[...document.querySelectorAll('h1, h2, figcaption')].map(e => e.textContent)"""


def cjk_font() -> bool:
    fc = shutil.which("fc-list")
    return bool(
        fc and subprocess.run([fc, ":lang=zh", "family"], capture_output=True, text=True).stdout.strip()
    )


def png_pixels(png: bytes) -> tuple[int, int, bytes]:
    """(width, height, the decompressed scanlines) of a PNG: enough to tell a blank one."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    data, at = b"", 8
    while at < len(png):
        (size,) = struct.unpack(">I", png[at : at + 4])
        if png[at + 4 : at + 8] == b"IDAT":
            data += png[at + 8 : at + 8 + size]
        at += 12 + size
    return width, height, zlib.decompress(data)


def write_report(ch: Any, db: str, policy: Any, catalog: Any, tmp_path: Path) -> Path:
    """Alerts and rollups of a small day in ClickHouse, then `lifemon report` on them."""
    store_day(
        ch,
        db,
        policy,
        catalog,
        access("e1", customers=70, every_s=20) + access("e2", customers=45, start=7_200_000, every_s=20),
    )
    config = tmp_path / "lifemon.yaml"
    config.write_text(yaml.safe_dump({"clickhouse": {"database": db}}))
    out = tmp_path / "report.html"
    root = logging.getLogger()
    saved = root.handlers[:], root.level  # the command sets up its logging; the test process keeps its own
    try:
        dsn = f"chdb://{os.environ['LIFEMON_TEST_CHDB']}"
        assert main(["report", "--config", str(config), "--clickhouse", dsn, "--out", str(out)]) == 0
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    return out


def test_the_report_renders_in_chromium_without_console_errors(ch, names, policy, catalog, tmp_path) -> None:
    if not cjk_font():
        pytest.skip("no Chinese font (apt-get install -y fonts-noto-cjk; `make test-deps` does)")
    report = write_report(ch, names["database"], policy, catalog, tmp_path)
    broken = tmp_path / "broken.html"
    broken.write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>x</title></head><body><h1>标题</h1>'
        '<img src="missing.png"><script>console.error("on purpose"); throw new Error("thrown")</script>'
        "</body></html>",
        encoding="utf-8",
    )
    with chromium(tmp_path / "profile") as page:
        page.open(broken.as_uri())
        found = page.console_errors()
        assert any("on purpose" in e for e in found) and any("thrown" in e for e in found)
        assert any("missing.png" in e or "Failed to load resource" in e for e in found), found

        page.events.clear()
        page.open(report.as_uri())
        assert page.console_errors() == []
        headings = page.evaluate(HEADINGS)
        assert headings == [
            "lifemon — 个人金融信息生命周期监测报告 / PFI lifecycle report",
            "Leakage incidents / 泄露事件",  # what management must act on, before the long tables
            "Events per hour by stream / 各数据流每小时事件数 (Asia/Shanghai)",
            "Events by JR/T 0171 class / 按敏感类别 (C3/C2/C1)",
            "Alerts per hour / 每小时告警数, by severity / 按严重程度 (Asia/Shanghai; by last event, as the "
            "alerts table / 按末次事件时间, 同告警表)",
            "Data taken out by org and class / 按机构和类别的数据导出",
            "Lifecycle / 生命周期",
            "Personal information provided to others / 对外提供个人金融信息",
            "Alert handling / 告警处置时效",
            "Alerts by organisation / 各机构告警",
            "Alerts / 告警",
        ]
        rows = page.evaluate(  # the alerts table, the report's last
            "[...[...document.querySelectorAll('table')].at(-1).querySelectorAll('tr')].slice(1).map(r => r.innerText)"
        )
        assert len(rows) == 2 and all("批量查询个人金融信息" in r for r in rows)
        assert page.evaluate("document.querySelectorAll('svg rect').length") >= 3  # bars drawn
        # the period covered, with the year, where the page starts: in the bank's zone (the built-in
        # policy's Asia/Shanghai), UTC beside it
        window = page.evaluate("document.querySelector('.window').innerText")
        assert (
            window.startswith("data window / 数据时间范围: 2026-01-01 08:00 – 2026-01-01 10:")
            and "Asia/Shanghai (2026-01-01 00:00 – 2026-01-01 02:" in window
        ), window
        period = page.evaluate("document.querySelector('.period').innerText")
        assert (
            period == "report period / 报告期: everything stored / 全部数据 (no --month, --since or --until)"
        )
        # the class figures are laid out beside the chart, every class with its count, on screen
        counts = page.evaluate(
            "[...document.querySelectorAll('table.classes tr')].map(r => r.innerText.split('\\t'))"
        )
        assert counts[0] == ["stream / 数据流", "C3", "C2", "C1"] and counts[-1][0] == "total / 合计"
        box = page.evaluate(
            "(() => { const r = document.querySelector('table.classes').getBoundingClientRect(); return [r.width, r.height] })()"
        )
        assert box[0] > 100 and box[1] > 40
        # laid out, not collapsed: the charts take the page's width
        assert page.evaluate("document.querySelector('svg').getBoundingClientRect().width") > 600
        width, height, pixels = png_pixels(page.screenshot())
        assert (width, height) == (1200, 1600)
        assert len(set(pixels)) > 50, "the screenshot is blank"
