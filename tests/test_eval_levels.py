"""The evaluation levels (eval_levels/): they import, run without script errors, have a current
camera and move, and two runs give the same frames (the comparison tool relies on that).

One temporary copy of the project (plus tests/eval_levels/probe.gd as res://_probe.gd), one import,
then two real rendering runs (Xvfb + lavapipe) that play every level for a few frames at 160x90
and save frames 1 and 3 of each, and one short run of the first level at --time-scale 2.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nss_godot.toolchain import RunResult

REPO = Path(__file__).resolve().parents[1]
LEVELS = REPO / "eval_levels"
SCENES = ["res://thin_and_foliage.tscn", "res://textures_and_text.tscn", "res://motion_and_effects.tscn"]
FRAMES = 4
SHOTS = (1, 3)


def _check(r: RunResult, marker: str) -> str:
    tail = "\n".join(r.output.splitlines()[-30:])
    assert not r.timed_out, f"timed out after {r.seconds:.0f} s:\n{tail}"
    assert not r.errors(), "GDScript errors:\n" + "\n".join(r.errors()) + f"\n---\n{tail}"
    assert r.returncode == 0, f"exit {r.returncode}:\n{tail}"
    assert marker in r.output, f"{marker!r} not in output:\n{tail}"
    return r.output


def test_levels_are_small_and_addon_free():
    """The project stays small (< 2 MB tracked) and carries no addon: the comparison tool puts it in."""
    files = subprocess.run(["git", "ls-files", "eval_levels"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    assert files, "eval_levels/ has no tracked files"
    size = sum((REPO / f).stat().st_size for f in files)
    assert size < 2_000_000, f"eval_levels/ is {size} bytes tracked; expected < 2 MB"
    assert not any(f.startswith("eval_levels/addons/") for f in files), "eval_levels/ must not ship the addon"
    project = (LEVELS / "project.godot").read_text()
    assert 'renderer/rendering_method="forward_plus"' in project
    for scene in SCENES:
        assert (LEVELS / scene.removeprefix("res://")).is_file(), scene


@pytest.fixture(scope="module")
def level_runs(godot, tmp_path_factory):
    """Two independent runs of every level: (output of run 1, {name: [frames of run 1, frames of run 2]},
    the project copy)."""
    proj = tmp_path_factory.mktemp("eval_levels") / "project"
    shutil.copytree(LEVELS, proj, ignore=shutil.ignore_patterns(".godot"))
    shutil.copy(REPO / "tests/eval_levels/probe.gd", proj / "_probe.gd")
    _check(godot.import_project(proj, timeout=300), "")
    outputs, shots = [], {}
    for run in range(2):
        out = proj.parent / f"shots{run}"
        out.mkdir()
        r = godot.run(["--path", str(proj), "--fixed-fps", "30", "-s", "res://_probe.gd", "--",
                       f"--scenes={','.join(SCENES)}", f"--frames={FRAMES}", "--size=160x90",
                       f"--shots={out}", f"--shot-frames={','.join(map(str, SHOTS))}"],
                      timeout=900, display=True, paths=[str(proj)])
        outputs.append(_check(r, f"PROBE_DONE scenes={len(SCENES)}"))
        for scene in SCENES:
            name = Path(scene).stem
            frames = [np.asarray(Image.open(out / f"{name}_{k}.png").convert("RGB")) for k in SHOTS]
            shots.setdefault(name, []).append(frames)
    return outputs[0], shots, proj


@pytest.mark.godot
def test_time_scale_speeds_up_the_level(level_runs, godot):
    """--time-scale 2 moves the scene exactly twice as fast: the probe's frame 2 at time-scale 2 is frame 3
    at time-scale 1 (the probe's frame k shows scene time (k - 1) x step x scale: its frame 0 is the one
    drawn while the scene is added, before its first _process), pixel for pixel."""
    _, shots, proj = level_runs
    out = proj.parent / "shots_ts2"
    out.mkdir()
    r = godot.run(["--path", str(proj), "--fixed-fps", "30", "--time-scale", "2", "-s", "res://_probe.gd", "--",
                   f"--scenes={SCENES[0]}", "--frames=3", "--size=160x90", f"--shots={out}", "--shot-frames=2"],
                  timeout=900, display=True, paths=[str(proj)])
    _check(r, "PROBE_DONE scenes=1")
    name = Path(SCENES[0]).stem
    fast2 = np.asarray(Image.open(out / f"{name}_2.png").convert("RGB")).astype(int)
    (slow1, slow3), _ = shots[name]
    same = np.abs(fast2 - slow3).max()
    other = np.abs(fast2 - slow1).mean()
    assert same == 0 and other > 1.0, (
        f"{name}: time-scale 2 frame 2 vs time-scale 1 frame 3 differ by up to {same}/255 "
        f"(vs frame 1: {other:.2f} on average): motion does not follow Engine.time_scale exactly")


@pytest.mark.godot
def test_every_level_has_a_current_camera_and_a_look(level_runs):
    output, _, _ = level_runs
    blocks = output.split("PROBE_SCENE ")[1:]
    assert [b.split()[0] for b in blocks] == SCENES
    tonemaps = set()
    glow = False
    for b in blocks:
        cam = re.search(r"PROBE_CAMERA (\S+) current=(\w+)", b)
        assert cam and cam[2] == "true", f"{b.split()[0]}: no current Camera3D:\n{b[:400]}"
        env = re.search(r"PROBE_ENV tonemap=(\d+) glow=(\w+)", b)
        assert env, f"{b.split()[0]}: no WorldEnvironment"
        tonemaps.add(int(env[1]))
        glow |= env[2] == "true"
    assert tonemaps - {0}, "no level uses a non-Linear tonemapper"
    assert glow, "no level uses glow"


@pytest.mark.godot
@pytest.mark.parametrize("name", [Path(s).stem for s in SCENES])
def test_level_moves_and_is_deterministic(level_runs, name):
    _, shots, _ = level_runs
    (a1, a3), (b1, b3) = shots[name]
    assert a1.std() > 10, f"{name}: frame 1 is nearly flat (std {a1.std():.1f}): nothing rendered?"
    moved = np.abs(a1.astype(int) - a3.astype(int)).mean()
    assert moved > 1.0, f"{name}: frames 1 and 3 differ by {moved:.2f}/255 on average: nothing moves"
    for k, (x, y) in zip(SHOTS, [(a1, b1), (a3, b3)]):
        diff = np.abs(x.astype(int) - y.astype(int))
        assert diff.max() == 0, (f"{name}: frame {k} differs between two runs (max {diff.max()}, "
                                 f"{(diff.max(axis=2) > 0).mean():.1%} of pixels): motion is not frame-locked")
