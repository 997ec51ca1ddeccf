"""An exported game runs the network (issue 21, item 4): the demo project (godot_project/, its
export_presets.cfg unedited: no include filter) is exported with Godot's own `--export-pack`; the addon's
EditorExportPlugin puts the model's GPU program in. The .pck runs with `--main-pack` from a folder with no
project (Xvfb + lavapipe): it prints the GPU runtime's line, and its upscaled frames (--nss-record) equal
those of the same run from the project folder."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.godot

REPO = Path(__file__).resolve().parents[1]
DEMO_ARGS = ["--low", "160x90", "--scale", "2", "--mode", "neural", "--fixed-fps", "30", "--nss-runtime", "gpu",
             "--quit-after-frames", "8"]


def copy_demo(dest: Path) -> Path:
    """godot_project/ with the addon as a real folder (the repository's is a symlink), no import cache."""
    shutil.copytree(REPO / "godot_project", dest, symlinks=True, ignore=shutil.ignore_patterns(".godot"))
    (dest / "addons" / "neural_ss").unlink()
    shutil.copytree(REPO / "addons" / "neural_ss", dest / "addons" / "neural_ss",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def frames(rec: Path) -> dict[int, np.ndarray]:
    return {int(f.stem.split("_")[1]): np.fromfile(f, np.float32) for f in sorted(rec.glob("neural_*.rgba"))}


@pytest.fixture(scope="module")
def exported(godot, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export_game")
    proj = copy_demo(tmp / "project")
    r = godot.import_project(proj, timeout=300)
    assert not r.timed_out and not r.errors(), r.output[-3000:]
    out = tmp / "game"
    out.mkdir()
    pck = out / "demo.pck"
    r = godot.run(["--headless", "--path", str(proj), "--export-pack", "Linux", str(pck)], 300,
                  paths=[str(proj), str(out)])
    assert not r.timed_out and r.returncode == 0 and pck.is_file(), r.output[-3000:]
    return proj, pck


def test_exported_pck_runs_the_gpu_runtime_like_the_project(godot, exported, tmp_path):
    proj, pck = exported
    assert "include_filter=\"\"" in (REPO / "godot_project" / "export_presets.cfg").read_text()
    runs = {}
    for name, where in (("pck", ["--main-pack", str(pck)]), ("project", ["--path", str(proj)])):
        rec = tmp_path / name
        r = godot.run([*where, "--audio-driver", "Dummy", "--", *DEMO_ARGS, "--nss-record", str(rec)], 200,
                      display=True, paths=[str(pck.parent), str(proj), str(tmp_path)])
        tail = "\n".join(r.output.splitlines()[-30:])
        assert not r.timed_out and r.returncode == 0 and "DEMO_DONE frames=8" in r.output, tail
        assert "neural_ss: GPU runtime (neural_ss/runtime = gpu" in r.output, (name, tail)
        assert "fallback" not in r.output, (name, tail)
        runs[name] = frames(rec)
    common = sorted(set(runs["pck"]) & set(runs["project"]))
    assert len(common) >= 5, {k: sorted(v) for k, v in runs.items()}
    for i in common:
        a, b = runs["pck"][i], runs["project"][i]
        assert a.size == 320 * 180 * 4 and a.size == b.size
        assert np.isfinite(a).all() and float(a[0::4].std()) > 1e-3  # a real picture
        assert float(np.abs(a - b).max()) <= 1e-4, (i, float(np.abs(a - b).max()))
