"""Unpack a Grafana plugin's release zip into deploy/grafana/plugins/<id>/ for an offline install
(deploy/grafana/offline.yml), after checking it is the plugin and version plugins.lock pins.

    python3 deploy/grafana/vendor_plugin.py grafana-clickhouse-datasource-4.8.0.linux_amd64.zip

Get the zip from wherever the bank mirrors Grafana's plugin releases; it is the archive grafana.com
serves for the pinned version, for the server's OS and CPU. Standard library only: it runs where
lifemon is not installed.
"""

from __future__ import annotations

import json
import shutil
import sys
import zipfile
from pathlib import Path, PurePosixPath

HERE = Path(__file__).resolve().parent


def pinned(lock: Path = HERE / "plugins.lock") -> dict[str, str]:
    """plugin id -> version, from plugins.lock's `id: version` lines."""
    out = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            plugin, _, version = line.partition(":")
            out[plugin.strip()] = version.strip()
    return out


def vendor(archive: Path, dest: Path = HERE / "plugins") -> Path:
    """The folder the plugin was unpacked into; SystemExit naming the problem if the zip is not a
    pinned plugin at its pinned version."""
    with zipfile.ZipFile(archive) as z:
        manifests = [n for n in z.namelist() if PurePosixPath(n).name == "plugin.json" and n.count("/") == 1]
        if len(manifests) != 1:
            raise SystemExit(f"{archive}: not a Grafana plugin release (no <id>/plugin.json at its top)")
        info = json.loads(z.read(manifests[0]))
        plugin, version = info.get("id"), info.get("info", {}).get("version")
        want = pinned().get(plugin)
        if want is None:
            raise SystemExit(f"{archive}: plugin {plugin!r} is not pinned in plugins.lock")
        if version != want:
            raise SystemExit(
                f"{archive}: {plugin} {version}, but plugins.lock pins {want}; get the {want} zip"
            )
        top = PurePosixPath(manifests[0]).parent.name
        target = dest / plugin
        shutil.rmtree(target, ignore_errors=True)
        for member in z.infolist():
            parts = PurePosixPath(member.filename).parts
            if not parts or parts[0] != top or ".." in parts or member.filename.startswith("/"):
                continue  # only the plugin's own folder, never a path outside it
            out = target.joinpath(*parts[1:])
            if member.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(z.read(member))
            mode = (member.external_attr >> 16) & 0o777
            if mode:  # the backend executable (gpx_*) must stay executable
                out.chmod(mode)
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(f"unpacked into {vendor(Path(sys.argv[1]))}")
