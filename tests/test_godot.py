"""Godot tests: pytest drives Godot 4 (tools/godot_env.py: host Godot or the cached chroot).

Every run is bounded (timeout), its output is scanned for GDScript errors, and the results are
checked from exit codes, printed markers and written files. Runs that need real pixels use Xvfb +
lavapipe (display=True). Known geometry (tests/godot/known_geometry.gd): a wall at depth 6, a wall
at depth 11, sky, a box at depth 3.75 moving (+0.04, +0.02, 0) per frame.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from nss_runtime.frames import FrameError, frame_path, read_frame, read_meta
from nss_train.sources.godot_raw import convert
from nss_godot.toolchain import GodotError, RunResult, find_godot

pytestmark = pytest.mark.godot

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "godot_project"
LOW = (160, 90)
CAM_STEP, YAW_DEG = 0.03, 0.4
BOX_STEP = (0.04, 0.02)
WALLS = (6.0, 11.0)
BOX_DEPTH = 3.75


def check(r: RunResult, marker: str | None = None, rc: int = 0) -> str:
    """Assert a Godot run ended as expected; return its output."""
    tail = "\n".join(r.output.splitlines()[-40:])
    assert not r.timed_out, f"timed out after {r.seconds:.0f} s:\n{tail}"
    assert not r.errors(), "GDScript errors:\n" + "\n".join(r.errors()) + f"\n---\n{tail}"
    assert r.returncode == rc, f"exit {r.returncode}, expected {rc}:\n{tail}"
    if marker:
        assert marker in r.output, f"{marker!r} not in output:\n{tail}"
    return r.output


@pytest.fixture(scope="session")
def test_project(addon_project):
    """tests/godot + a COPY of addons/neural_ss: the addon as a user drops it into their project."""
    return addon_project("godot_tests")


@pytest.fixture(scope="session")
def demo_imported(godot):
    check(godot.import_project(DEMO, timeout=300))
    return DEMO


def known_geometry(godot, project: Path, out: Path, scenario: str, frames: int = 4, extra: list[str] | None = None,
                   display: bool = True, timeout: float = 150) -> RunResult:
    args = ["--out", str(out), "--frames", str(frames), "--scenario", scenario,
            "--low", f"{LOW[0]}x{LOW[1]}", "--scale", "2", *(extra or [])]
    if display:
        return godot.run(["--path", str(project), "-s", "res://known_geometry.gd", "--", *args], timeout,
                         display=True, paths=[str(project), str(out)])
    return godot.run_script(project, "res://known_geometry.gd", args, timeout=timeout)


def homography_motion(intr: dict, size: tuple[int, int], yaw_deg: float) -> np.ndarray:
    """Contract motion of a camera yawing by yaw_deg between frames (any depth): prev = p + motion."""
    w, h = size
    fx, fy, cx, cy = intr["fx"], intr["fy"], intr["cx"], intr["cy"]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    d = np.stack([(xs - cx) / fx, -(ys - cy) / fy, -np.ones_like(xs)])
    t = math.radians(yaw_deg)  # prev_cam = Rot_y(-k t)... relative rotation R_prev^T R_cur = Rot_y(t)
    rot = np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])
    dp = np.einsum("ij,jhw->ihw", rot, d)
    px = cx + fx * dp[0] / -dp[2]
    py = cy - fy * dp[1] / -dp[2]
    return np.stack([px - xs, py - ys]).astype(np.float32)


def bilinear_warp(prev: np.ndarray, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """prev sampled at p + motion (bilinear); valid = inside the image."""
    _, h, w = prev.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = xs + motion[0], ys + motion[1]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    valid = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < w) & (y0 + 1 < h)
    x0, y0 = np.clip(x0, 0, w - 2), np.clip(y0, 0, h - 2)
    out = (prev[:, y0, x0] * (1 - fx) * (1 - fy) + prev[:, y0, x0 + 1] * fx * (1 - fy)
           + prev[:, y0 + 1, x0] * (1 - fx) * fy + prev[:, y0 + 1, x0 + 1] * fx * fy)
    return out, valid


# --- toolchain and project ---------------------------------------------------------------------

def test_demo_addon_is_the_top_level_addon():
    link = DEMO / "addons/neural_ss"
    assert link.is_symlink(), "godot_project/addons/neural_ss must be a symlink to addons/neural_ss"
    assert link.resolve() == (REPO / "addons/neural_ss").resolve()


def test_demo_import_is_clean(demo_imported):
    # the import itself was checked by the fixture; every script must also compile: load them all
    assert (DEMO / ".godot").is_dir()


def test_demo_runs_headless_without_rendering_device(godot, demo_imported):
    # --headless has no RenderingDevice (like the Compatibility renderer): warn once, keep running
    r = godot.run(["--headless", "--path", str(DEMO), "--", "--quit-after-frames", "8"], timeout=120)
    out = check(r, "DEMO_DONE frames=8")
    assert out.count("no RenderingDevice") == 1, out


def test_plugin_enables_in_headless_editor(godot, test_project, tmp_path):
    p = tmp_path / "plugin_project"
    shutil.copytree(test_project, p, symlinks=True)
    cfg = (p / "project.godot").read_text()
    cfg += '\n[editor_plugins]\n\nenabled=PackedStringArray("res://addons/neural_ss/plugin.cfg")\n'
    (p / "project.godot").write_text(cfg)
    r = godot.run(["--headless", "--editor", "--path", str(p), "--quit-after", "20"], timeout=180)
    out = check(r, "neural_ss: plugin enabled")
    for key in ("enabled", "scale_factor", "model_path", "python/command", "python/execution_provider",
                "show_stats_overlay"):
        assert key in out.split("neural_ss: plugin enabled")[1].splitlines()[0]
    # the node has its own icon in the editor's class list (@icon) and the icon imports
    cache = (p / ".godot/global_script_class_cache.cfg").read_text()
    block = re.search(r'\{[^{}]*"class": &"NeuralSSViewport"[^{}]*\}', cache)
    assert block and '"icon": "res://addons/neural_ss/icons/neural_ss_viewport.svg"' in block.group(0), cache[:2000]
    assert list((p / ".godot/imported").glob("neural_ss_viewport.svg-*.ctex")), "the icon was not imported"


# --- capture against known geometry ------------------------------------------------------------

@pytest.fixture(scope="module")
def translate_capture(godot, test_project, tmp_path_factory):
    out = tmp_path_factory.mktemp("kg_translate")
    check(known_geometry(godot, test_project, out, "translate"), "KNOWN_GEOMETRY_DONE written=4")
    meta = convert(out, progress=False)
    return out, meta


def test_capture_files_follow_the_contract(translate_capture):
    out, meta = translate_capture
    m = read_meta(out)
    assert m.lowres == LOW and m.frames == 4 and m.scale == 2
    assert m.cuts[0] and not any(m.cuts[1:])
    assert m.jitter == [[0.0, 0.0]] * 4  # no TAA -> no jitter
    for i in range(m.frames):
        f = read_frame(frame_path(out, i), expect_lowres=m.lowres, with_target=False)
        assert f.colour.shape == (3, LOW[1], LOW[0]) and np.isfinite(f.colour).all()
    intr = m.intrinsics[0]
    # fov 60 deg vertical at 90 px: fy = 45 / tan(30 deg)
    assert intr["fy"] == pytest.approx(45.0 / math.tan(math.radians(30.0)), rel=1e-4)
    assert intr["cx"] == pytest.approx(80.0) and intr["cy"] == pytest.approx(45.0)


def _regions(f) -> dict[str, np.ndarray]:
    d = f.depth[0]
    return {"wall6": np.abs(d - WALLS[0]) < 0.5, "wall11": np.abs(d - WALLS[1]) < 0.5,
            "box": np.abs(d - BOX_DEPTH) < 0.01, "sky": d >= 1e9}


def _interior(mask: np.ndarray, r: int = 2) -> np.ndarray:
    """Pixels whose whole (2r+1)^2 neighbourhood is in mask: away from edges."""
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out &= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


def test_capture_depth_of_known_planes(translate_capture):
    out, meta = translate_capture
    f = read_frame(frame_path(out, 2), with_target=False)
    reg = _regions(f)
    for name, depth in (("wall6", WALLS[0]), ("wall11", WALLS[1]), ("box", BOX_DEPTH)):
        px = f.depth[0][reg[name]]
        assert px.size > 20, f"{name}: only {px.size} pixels"
        err = np.abs(px / depth - 1.0).max()
        assert err < 0.01, f"{name}: depth error {err:.4%} (>= 1 %)"
    assert reg["sky"].sum() > LOW[0] * LOW[1] * 0.3  # the upper half is sky


def test_capture_motion_of_camera_pan_and_moving_box(translate_capture):
    out, meta = translate_capture
    fx, fy = meta.intrinsics[0]["fx"], meta.intrinsics[0]["fy"]
    for i in (1, 2, 3):
        f = read_frame(frame_path(out, i), with_target=False)
        reg = _regions(f)
        # camera moves +x: static content moves left on screen, so prev = p + (+fx * step / depth, 0)
        expect = {"wall6": (fx * CAM_STEP / WALLS[0], 0.0), "wall11": (fx * CAM_STEP / WALLS[1], 0.0),
                  "box": (-fx * (BOX_STEP[0] - CAM_STEP) / BOX_DEPTH, fy * BOX_STEP[1] / BOX_DEPTH),
                  "sky": (0.0, 0.0)}
        for name, (ex, ey) in expect.items():
            m = _interior(reg[name])
            assert m.sum() > 10, f"frame {i} {name}: too few interior pixels"
            err = np.abs(f.motion[0][m] - ex).max(), np.abs(f.motion[1][m] - ey).max()
            assert max(err) < 0.05, f"frame {i} {name}: motion error {err} px (expected ({ex:.3f}, {ey:.3f}))"


def test_capture_motion_of_camera_rotation_incl_sky(godot, test_project, tmp_path):
    check(known_geometry(godot, test_project, tmp_path, "rotate"), "KNOWN_GEOMETRY_DONE written=4")
    meta = convert(tmp_path, progress=False)
    expect = homography_motion(meta.intrinsics[1], LOW, YAW_DEG)
    assert np.abs(expect[0]).mean() > 0.5  # the test means something: about 0.54 px per frame
    for i in (1, 2, 3):
        f = read_frame(frame_path(tmp_path, i), with_target=False)
        reg = _regions(f)
        for name in ("wall6", "wall11", "sky"):  # pure rotation: the same motion at every depth
            m = _interior(reg[name])
            err = np.abs(f.motion[:, m] - expect[:, m]).max()
            assert err < 0.05, f"frame {i} {name}: motion error {err:.4f} px under camera rotation"


def test_warp_with_captured_motion_cuts_the_error(godot, test_project, tmp_path):
    # translation + moving box, 5x the step: motion of several pixels, different per depth
    check(known_geometry(godot, test_project, tmp_path, "translate", extra=["--speed", "5"]),
          "KNOWN_GEOMETRY_DONE written=4")
    convert(tmp_path, progress=False)
    for i in (1, 2, 3):
        a = read_frame(frame_path(tmp_path, i - 1), with_target=False)
        b = read_frame(frame_path(tmp_path, i), with_target=False)
        warped, valid = bilinear_warp(a.colour, b.motion)
        e_warp = np.abs(warped - b.colour)[:, valid].mean()
        e_none = np.abs(a.colour - b.colour)[:, valid].mean()
        assert e_warp < 0.25 * e_none, f"frame {i}: warped error {e_warp:.4f} vs unwarped {e_none:.4f}"


def test_resolution_change_mid_run_flags_a_cut(godot, test_project, tmp_path):
    check(known_geometry(godot, test_project, tmp_path, "resize", frames=8), "KNOWN_GEOMETRY_DONE written=8")
    recs = [json.loads((tmp_path / f"raw/frame_{i:05d}.json").read_text()) for i in range(8)]
    sizes = [tuple(r["size"]) for r in recs]
    assert sizes[0] == LOW and sizes[-1] == (2 * LOW[0], LOW[1]), sizes
    first_new = sizes.index((2 * LOW[0], LOW[1]))
    assert recs[first_new]["cut"] and not any(r["cut"] for r in recs[1:first_new])
    with pytest.raises(FrameError, match="one sequence has one resolution"):
        convert(tmp_path, progress=False)


def test_2d_scene_without_camera_keeps_running(godot, test_project, tmp_path):
    out = check(known_geometry(godot, test_project, tmp_path, "nocamera"), "KNOWN_GEOMETRY_DONE written=0")
    assert "active=false" in out
    assert out.count("no current Camera3D") == 1


def test_compatibility_renderer_falls_back_to_plain_scaling(godot, test_project, tmp_path):
    r = godot.run(["--path", str(test_project), "--rendering-method", "gl_compatibility",
                   "--rendering-driver", "opengl3", "-s", "res://known_geometry.gd", "--",
                   "--out", str(tmp_path), "--frames", "3", "--scenario", "translate"], 150, display=True)
    out = check(r, "KNOWN_GEOMETRY_DONE written=0")
    assert "no RenderingDevice" in out and "active=true" in out


# --- the demo ----------------------------------------------------------------------------------

def test_demo_capture_mode_writes_contract_frames(godot, demo_imported, tmp_path):
    out = tmp_path / "demo_seq"
    r = godot.render(DEMO, ["--", "--capture", str(out), "--frames", "4", "--low", "160x90", "--fixed-fps", "30",
                            "--time-scale", "8"], timeout=240)
    check(r, "DEMO_CAPTURE_DONE written=4")
    meta = convert(out, progress=False)
    m = read_meta(out)
    assert (m.lowres, m.frames, m.scale) == ((160, 90), 4, 2)
    assert m.source["fps"] == 30 and m.cuts == [True, False, False, False]
    frames = [read_frame(frame_path(out, i), expect_lowres=m.lowres, with_target=False) for i in range(4)]
    for f in frames:
        sky = f.depth[0] >= 1e9
        assert 0.05 < sky.mean() < 0.95 and f.colour.max() > 0.05
    # the camera moves along its path: there is motion, and warping with it explains the change
    # on geometry better than no warp (fine textures alias at 160x90, so less than on known geometry)
    for i in (1, 2, 3):
        warped, valid = bilinear_warp(frames[i - 1].colour, frames[i].motion)
        geo = valid & (frames[i].depth[0] < 1e9)
        e_warp = np.abs(warped - frames[i].colour)[:, geo].mean()
        e_none = np.abs(frames[i - 1].colour - frames[i].colour)[:, geo].mean()
        assert np.abs(frames[i].motion).mean() > 1.0
        assert e_warp < 0.8 * e_none, f"frame {i}: warped {e_warp:.4f} vs unwarped {e_none:.4f}"


def test_taa_jitter_is_recorded_with_the_contract_sign(godot, test_project, tmp_path):
    # With TAA the engine jitters the projection. The contract says the sample of pixel i lies at
    # i + 0.5 + jitter, so the last column covered by the depth-6 wall (right edge at x_edge)
    # is floor(x_edge - 0.5 - jx): check that per frame, against the un-jittered prediction too.
    check(known_geometry(godot, test_project, tmp_path, "translate", frames=6, extra=["--taa", "1"]),
          "KNOWN_GEOMETRY_DONE written=6")
    meta = convert(tmp_path, progress=False)
    jit = np.array(meta.jitter)
    assert np.abs(jit).max() <= 0.5 and len({tuple(j) for j in jit.tolist()}) >= 4, jit
    fx, cx = meta.intrinsics[0]["fx"], meta.intrinsics[0]["cx"]
    hits_jitter = hits_plain = 0
    for i, k in enumerate(meta.source["frame_index"]):
        f = read_frame(frame_path(tmp_path, i), with_target=False)
        last = np.where(np.abs(f.depth[0][70] - WALLS[0]) < 0.5)[0].max()
        x_edge = cx + fx * (-0.2 - CAM_STEP * k) / WALLS[0]
        hits_jitter += last == math.floor(x_edge - 0.5 - jit[i][0])
        hits_plain += last == math.floor(x_edge - 0.5)
    assert hits_jitter == meta.frames, f"jitter explains {hits_jitter}/{meta.frames} edges"
    assert hits_plain < meta.frames  # the test can tell jitter from none
    # y (down): the box's top face ends, towards the top of the image, at its back edge (depth 4.25, height
    # -0.75 + BOX_STEP.y k); the sample of row j lies at j + 0.5 + jy, so the first box row is
    # floor(v_edge - 0.5 - jy) + 1
    fy, cy = meta.intrinsics[0]["fy"], meta.intrinsics[0]["cy"]
    hits_y = hits_y_plain = hits_y_flipped = 0
    for i, k in enumerate(meta.source["frame_index"]):
        f = read_frame(frame_path(tmp_path, i), with_target=False)
        col = int(cx + fx * (-2.0 + (BOX_STEP[0] - CAM_STEP) * k) / 4.25)
        first = np.where(f.depth[0][:, col] < 5.0)[0].min()
        v_edge = cy + fy * (0.75 - BOX_STEP[1] * k) / 4.25
        hits_y += first == math.floor(v_edge - 0.5 - jit[i][1]) + 1
        hits_y_plain += first == math.floor(v_edge - 0.5) + 1
        hits_y_flipped += first == math.floor(v_edge - 0.5 + jit[i][1]) + 1
    assert hits_y == meta.frames, f"jitter explains {hits_y}/{meta.frames} top edges (flipped y: {hits_y_flipped})"
    assert min(hits_y_plain, hits_y_flipped) < meta.frames
