"""deploy/grafana/vendor_plugin.py as a module for the tests (it lives with the deployment files,
outside the packages, so it runs where lifemon is not installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "vendor_plugin", Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "vendor_plugin.py"
)
assert _spec and _spec.loader
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
pinned, vendor = _module.pinned, _module.vendor
