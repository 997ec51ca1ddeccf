"""Build the Godot Asset Library package of the addon: a zip of addons/neural_ss/ (what a user copies).

    python tools/build_asset_zip.py --out dist/neural_ss.zip     (this module is its code)

The zip holds addons/neural_ss/ as it is in the repository, with the default model
(models/default_x2.onnx + its GPU program) and nothing else: no __pycache__ / *.pyc, no hidden files, no
tests, no other models. Godot's Asset Library installer (AssetLib tab or "Import" of a zip) unpacks it
into the project root, so a project gets res://addons/neural_ss/. Entries are sorted and dated
1980-01-01, so the same tree gives the same bytes. Written to a temporary name, then renamed.
"""
from __future__ import annotations

import argparse
import os
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository (nss_godot/ is an editable install's package)
ADDON = ROOT / "addons" / "neural_ss"
PREFIX = "addons/neural_ss"
DEFAULT_MODEL = "default_x2"
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", "tests", ".godot"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".tmp", ".orig", ".rej")


class ZipError(Exception):
    """One-line reason the package could not be built."""


def addon_files(addon: Path = ADDON) -> list[Path]:
    """The files of the package, relative to `addon`, sorted."""
    if not (addon / "plugin.cfg").is_file():
        raise ZipError(f"{addon}: no plugin.cfg (expected the addon folder addons/neural_ss)")
    out = []
    for dirpath, dirnames, filenames in os.walk(addon):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        rel_dir = Path(dirpath).relative_to(addon)
        for name in sorted(filenames):
            rel = rel_dir / name
            if name.startswith(".") or name.endswith(SKIP_SUFFIXES):
                continue
            if rel.parts[0] == "models" and len(rel.parts) == 2 and name != "README.md" \
                    and not name.startswith(DEFAULT_MODEL + "."):
                continue  # only the default model ships
            out.append(rel)
    model = [p for p in out if p.parts[0] == "models" and p.name.startswith(DEFAULT_MODEL + ".")]
    names = {p.name for p in model}
    for need in (f"{DEFAULT_MODEL}.onnx", f"{DEFAULT_MODEL}.nssgpu.json", f"{DEFAULT_MODEL}.nssgpu.bin"):
        if need not in names:
            raise ZipError(f"{addon / 'models' / need}: missing (the package must hold the default model; "
                           "export it with tools/export_onnx.py)")
    return sorted(out)


def build(out: Path, addon: Path = ADDON) -> list[str]:
    """Writes the zip to `out`; returns its entry names."""
    files = addon_files(addon)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    names = []
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for rel in files:
            name = f"{PREFIX}/{rel.as_posix()}"
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, (addon / rel).read_bytes())
            names.append(name)
    os.replace(tmp, out)
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "dist" / "neural_ss.zip"), help="zip to write (default %(default)s)")
    a = ap.parse_args(argv)
    try:
        names = build(Path(a.out))
    except (ZipError, OSError) as e:
        print(f"build_asset_zip: {e}", file=sys.stderr)
        return 1
    size = Path(a.out).stat().st_size
    print(f"build_asset_zip: {a.out}: {len(names)} files, {size / 1024:.0f} KiB (addons/neural_ss/, default model "
          f"{DEFAULT_MODEL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
