"""NeuralSSViewport's raw sub-pixel jitter (`jitter = true`): sign, magnitude, sequence, jitter-free motion.

tests/godot/jitter_geometry.gd renders, through the real addon under Xvfb + lavapipe, an unshaded wall
whose colour is a known linear function of the world position it shows (r = 0.5 + 0.08 x,
g = 0.5 + 0.12 y at depth 6), so each pixel's colour says where its sample lies: the frame contract
wants the sample of pixel (i, j) at (i + 0.5 + jx, j + 0.5 + jy). A box moves by a known step per
frame; the camera stands still for 5 frames, then moves +x by 0.03 per frame.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from nss_runtime.frames import frame_path, read_frame
from nss_train.sources.godot_raw import convert
from nss_train.sources.render import halton

pytestmark = pytest.mark.godot

REPO = Path(__file__).resolve().parents[1]
LOW = (160, 90)  # the test project's window (320x180) at scale 2
WALL, RAMP_X, RAMP_Y = 6.0, 0.08, 0.12
BOX_DEPTH, BOX_STEP = 3.75, (0.02, 0.01)
CAM_STEP, STILL = 0.03, 5
FRAMES, SAMPLES = 10, 8


@pytest.fixture(scope="module")
def jittered(godot, tmp_path_factory):
    """One capture of jitter_geometry.gd with jitter on; returns (meta, frames)."""
    root = tmp_path_factory.mktemp("jitter")
    p = root / "project"
    shutil.copytree(REPO / "tests/godot", p, ignore=shutil.ignore_patterns(".godot"))
    shutil.copytree(REPO / "addons/neural_ss", p / "addons/neural_ss",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "models"))
    r = godot.import_project(p, timeout=300)
    assert r.returncode == 0 and not r.errors(), r.output[-2000:]
    out = root / "cap"
    r = godot.run(["--path", str(p), "-s", "res://jitter_geometry.gd", "--", "--out", str(out),
                   "--frames", str(FRAMES), "--low", f"{LOW[0]}x{LOW[1]}", "--jitter", "1",
                   "--samples", str(SAMPLES)], 150, display=True, paths=[str(p), str(out)])
    assert not r.timed_out and not r.errors() and "JITTER_GEOMETRY_DONE" in r.output, r.output[-3000:]
    meta = convert(out, keep_raw=False, progress=False)
    frames = [read_frame(frame_path(out, i), with_target=False) for i in range(meta.frames)]
    return meta, frames


def sample_offsets(meta, frames):
    """Per frame: where the wall's samples lie relative to the pixel centres (median over the wall), px."""
    w, h = LOW
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    est = []
    for i, f in enumerate(frames):
        intr = meta.intrinsics[i]
        cam_x = CAM_STEP * max(0, i - STILL + 1)
        wall = np.abs(f.depth[0] - WALL) < 0.05
        u = ((f.colour[0] - 0.5) / RAMP_X - cam_x) / WALL * intr["fx"] + intr["cx"]
        v = intr["cy"] - (f.colour[1] - 0.5) / RAMP_Y / WALL * intr["fy"]
        est.append((np.median((u - xs)[wall]), np.median((v - ys)[wall])))
    return np.array(est)


def test_jitter_is_the_recorded_halton_sequence(jittered):
    meta, _ = jittered
    idx = meta.source["frame_index"]
    want = [(halton(k % SAMPLES + 1, 2) - 0.5, halton(k % SAMPLES + 1, 3) - 0.5) for k in idx]
    np.testing.assert_allclose(np.array(meta.jitter), np.array(want), atol=1e-6)
    assert len({tuple(j) for j in meta.jitter}) == min(FRAMES, SAMPLES)


def test_samples_lie_where_the_recorded_jitter_says(jittered):
    # half-float colour rounds towards zero: a bias of ~0.02 px; a wrong sign is off by 2|j| (up to 0.9 px)
    meta, frames = jittered
    for intr in meta.intrinsics:  # intrinsics are the un-jittered camera's (centred here)
        assert abs(intr["cx"] - LOW[0] / 2) < 1e-3 and abs(intr["cy"] - LOW[1] / 2) < 1e-3, intr
    jit = np.array(meta.jitter)
    est = sample_offsets(meta, frames)
    err = np.abs(est - jit)
    assert err.max() < 0.05, f"sample offsets {est.round(3).tolist()} vs recorded jitter {jit.round(3).tolist()}"
    flipped = np.abs(est + jit)  # the test can tell the sign on both axes
    assert (flipped[:, 0] > 0.1).sum() >= 5 and (flipped[:, 1] > 0.1).sum() >= 5


def test_motion_stays_jitter_free(jittered):
    meta, frames = jittered
    for i, f in enumerate(frames):
        fx, fy = meta.intrinsics[i]["fx"], meta.intrinsics[i]["fy"]
        cam = CAM_STEP if i >= STILL else 0.0
        wall = np.abs(f.depth[0] - WALL) < 0.05
        box = np.abs(f.depth[0] - BOX_DEPTH) < 0.05
        assert wall.sum() > 1000 and box.sum() > 50
        # static wall: only the camera's motion (prev = p + motion); a camera moving +x moves points left
        m = f.motion[:, wall]
        assert np.abs(m[0] - cam * fx / WALL).max() < 0.01, f"frame {i}: wall motion x {np.median(m[0]):.4f}"
        assert np.abs(m[1]).max() < 0.01, f"frame {i}: wall motion y {np.median(m[1]):.4f}"
        mb = np.median(f.motion[:, box], axis=1)
        want = ((cam - BOX_STEP[0]) * fx / BOX_DEPTH, BOX_STEP[1] * fy / BOX_DEPTH)
        np.testing.assert_allclose(mb, want, atol=0.01, err_msg=f"frame {i}: box motion")
