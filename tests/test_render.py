"""Rendering with bpy: motion and depth correctness, jitter sign, the CLI, resume and bad input.

Everything here is a real Cycles render (tiny sizes, 2 threads). The motion test prints its error ratios.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="needs Blender's bpy module (pip install bpy==5.0.1)")

from nss_runtime import frames as F  # noqa: E402
from nss_train.sources import render as R  # noqa: E402

pytestmark = pytest.mark.bpy
ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


# --- hand-built scenes ---------------------------------------------------------------------

def _checker(name: str, scale: float, c1=(0.9, 0.8, 0.2, 1), c2=(0.05, 0.1, 0.4, 1)):
    mat = bpy.data.materials.new(name)
    nt = mat.node_tree
    bsdf = nt.nodes["Principled BSDF"]
    bsdf.inputs["Roughness"].default_value = 1.0
    bsdf.inputs["Specular IOR Level"].default_value = 0.0  # diffuse only: shading does not change with view
    tex = nt.nodes.new("ShaderNodeTexChecker")
    tex.inputs["Scale"].default_value = scale
    tex.inputs["Color1"].default_value = c1
    tex.inputs["Color2"].default_value = c2
    tc = nt.nodes.new("ShaderNodeTexCoord")
    nt.links.new(tc.outputs["Object"], tex.inputs["Vector"])
    nt.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def _mesh(name, make, mat, **kw):
    import bmesh

    me = bpy.data.meshes.new(name)
    bm = bmesh.new()
    make(bm, **kw)
    bm.to_mesh(me)
    bm.free()
    me.materials.append(mat)
    ob = bpy.data.objects.new(name, me)
    bpy.context.scene.collection.objects.link(ob)
    return ob


def _keys(ob, path, frames_values):
    for f, v in frames_values:
        setattr(ob, path, v)
        ob.keyframe_insert(path, frame=f)


def build_motion_scene() -> None:
    """Camera on a curved, accelerating path; a cube on a curved path, spinning; a rolling sphere."""
    import bmesh

    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.frame_start, sc.frame_end = 1, 5
    sc.world = bpy.data.worlds.new("w")
    sc.world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.5, 0.6, 0.8, 1)
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.data.energy = 3.0
    sun.rotation_euler = (0.5, 0.3, 0.0)
    sc.collection.objects.link(sun)
    _mesh("ground", lambda bm: bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=20), _checker("g", 1.2))
    cube = _mesh("cube", lambda bm: bmesh.ops.create_cube(bm, size=2.0),
                 _checker("c", 3.0, (0.9, 0.2, 0.1, 1), (0.1, 0.9, 0.3, 1)))
    _keys(cube, "location", [(1, (0, 0, 1.2)), (3, (1.4, 0.9, 1.6)), (5, (1.6, -0.6, 1.1))])
    _keys(cube, "rotation_euler", [(1, (0, 0, 0)), (5, (0.2, 0.1, 0.9))])
    ball = _mesh("ball", lambda bm: bmesh.ops.create_uvsphere(bm, u_segments=24, v_segments=12, radius=1.0),
                 _checker("b", 4.0, (0.9, 0.9, 0.9, 1), (0.1, 0.1, 0.1, 1)))
    _keys(ball, "location", [(1, (-3, 1, 1)), (5, (-2.2, -0.5, 1))])
    _keys(ball, "rotation_euler", [(1, (0, 0, 0)), (5, (0.0, -1.0, 0.5))])
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    sc.collection.objects.link(cam)
    sc.camera = cam
    _keys(cam, "location", [(1, (0.5, -10, 4.5)), (3, (1.6, -9.4, 5.2)), (5, (1.9, -8.2, 4.4))])
    target = bpy.data.objects.new("target", None)
    sc.collection.objects.link(target)
    _keys(target, "location", [(1, (0, 0, 0.5)), (5, (-0.6, 0.3, 0.8))])
    c = cam.constraints.new("TRACK_TO")
    c.target, c.track_axis, c.up_axis = target, "TRACK_NEGATIVE_Z", "UP_Y"


def build_depth_scene() -> None:
    """Camera at the origin looking down -Z; planes facing it at 7.25 and 4.5; sky on the left edge."""
    import bmesh

    bpy.ops.wm.read_factory_settings(use_empty=True)
    sc = bpy.context.scene
    sc.frame_start = sc.frame_end = 1
    sc.world = bpy.data.worlds.new("w")
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    sc.collection.objects.link(cam)
    sc.camera = cam
    far = _mesh("far", lambda bm: bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=3.0), _checker("f", 4))
    far.location = (1.0, 0.0, -7.25)
    near = _mesh("near", lambda bm: bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=0.5),
                 _checker("n", 4))
    near.location = (0.8, -0.6, -4.5)


# --- helpers ---------------------------------------------------------------------------------

def bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample (C, H, W) at pixel-index coordinates (x, y) (pixel centres at integers)."""
    h, w = img.shape[1:]
    x0 = np.clip(np.floor(x).astype(int), 0, w - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, h - 2)
    fx, fy = np.clip(x - x0, 0, 1), np.clip(y - y0, 0, 1)
    a, b = img[:, y0, x0], img[:, y0, x0 + 1]
    c, d = img[:, y0 + 1, x0], img[:, y0 + 1, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def warp_errors(prev: F.Frame, cur: F.Frame, motion: np.ndarray, colour="colour", depth="depth"):
    """Backward-warp prev into cur with `motion` (prev = p + motion).

    Returns (warped error, unwarped error, valid fraction) as mean absolute error of
    tone-mapped colour over the pixels that are visible in both frames: foreground
    (not sky), inside the previous frame, and whose previous-frame depth neighbourhood
    agrees with the current depth (not disoccluded, not straddling an edge).
    """
    pc, cc = getattr(prev, colour), getattr(cur, colour)
    pd, cd = getattr(prev, depth), getattr(cur, depth)
    h, w = cc.shape[1:]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = xx + motion[0], yy + motion[1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    d = cd[0]
    x0 = np.clip(np.floor(x).astype(int), 0, w - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, h - 2)
    nb = np.stack([pd[0, y0, x0], pd[0, y0, x0 + 1], pd[0, y0 + 1, x0], pd[0, y0 + 1, x0 + 1]])
    no_edge = nb.max(0) < 1.05 * nb.min(0)  # bilinear taps all on one surface
    # same surface as now (the camera may approach it by ~10 % a frame), not a disoccluded one
    not_occluded = np.abs(nb.mean(0) - d) < 0.2 * d
    mask = (d < F.DEPTH_BACKGROUND) & inside & no_edge & not_occluded
    tm = lambda a: a / (1 + a)  # noqa: E731
    warped = bilinear(pc, x, y)
    e_w = np.abs(tm(warped) - tm(cc)).mean(0)[mask].mean()
    e_0 = np.abs(tm(pc) - tm(cc)).mean(0)[mask].mean()
    return float(e_w), float(e_0), float(mask.mean())


@pytest.fixture(scope="module")
def motion_seq(tmp_path_factory):
    build_motion_scene()
    cfg = R.RenderConfig(size=(96, 54), scale=2, spp_low=16, spp_high=16, threads=2, progress=False)
    return R.render_current_scene(tmp_path_factory.mktemp("motion") / "seq", cfg, [1, 2, 3, 4, 5], {"scene": "motion"})


# --- tests --------------------------------------------------------------------------------------

@pytest.mark.parametrize("res", ["low", "high"])
def test_motion_warp_reduces_error(motion_seq, res):
    meta = F.read_meta(motion_seq)
    assert meta.cuts == [True, False, False, False, False]
    frs = [F.read_frame(F.frame_path(motion_seq, i)) for i in range(meta.frames)]
    ratios, wrong, moved = [], [], []
    for t in range(1, meta.frames):
        prev, cur = frs[t - 1], frs[t]
        if res == "low":
            m, kw = cur.motion, {}
        else:
            m, kw = cur.target_motion, dict(colour="target", depth="target_depth")
        e_w, e_0, valid = warp_errors(prev, cur, m, **kw)
        e_flip, _, _ = warp_errors(prev, cur, m * np.array([1, -1], np.float32)[:, None, None], **kw)
        assert valid > 0.3, f"frame {t}: only {valid:.0%} of pixels comparable"
        ratios.append(e_w / e_0)
        wrong.append(e_flip / e_0)
        moved.append(float(np.abs(m).max()))
    print(f"\n[{res}-res] warped/unwarped error per frame: {np.round(ratios, 3).tolist()} "
          f"(wrong y sign: {np.round(wrong, 3).tolist()}; max |motion| px: {np.round(moved, 1).tolist()})")
    assert max(moved) > 3.0, "the scene should move several pixels per frame"
    # what remains is mostly bilinear resampling of hard checker edges (aliased at 96x54) and noise
    assert max(ratios) < 0.45, f"warping with the stored motion should remove most of the error: {ratios}"
    assert min(wrong) > 0.9, "the wrong y sign should be no better than not warping at all"
    assert min(w / r for w, r in zip(wrong, ratios)) > 2.5, "the y sign of motion must matter"


def test_motion_equals_camera_geometry(tmp_path):
    """Static scene, camera on a curved path with a moving look-at target: every pixel's stored
    motion must equal the reprojection of its 3D point (from depth + intrinsics) into the previous camera."""
    build_motion_scene()
    sc = bpy.context.scene
    for name in ("cube", "ball"):
        sc.objects[name].animation_data_clear()
    mats = []
    for f in (1, 2, 3):
        sc.frame_set(f)
        mats.append(np.array(sc.camera.matrix_world))
    cfg = R.RenderConfig(size=(64, 36), scale=2, spp_low=1, spp_high=1, threads=2, progress=False)
    seq = R.render_current_scene(tmp_path / "seq", cfg, [1, 2, 3], {"scene": "static"})
    meta = F.read_meta(seq)
    for t in (1, 2):
        fr = F.read_frame(F.frame_path(seq, t))
        k = meta.intrinsics[t]
        h, w = fr.depth.shape[1:]
        v, u = np.mgrid[0:h, 0:w] + 0.5
        d = fr.depth[0].astype(np.float64)
        # pixel -> camera space (Blender cameras look down -Z, y up) -> world -> previous camera -> pixel
        pc = np.stack([(u - k["cx"]) / k["fx"] * d, -(v - k["cy"]) / k["fy"] * d, -d, np.ones_like(d)])
        q = np.linalg.inv(mats[t - 1]) @ (mats[t] @ pc.reshape(4, -1))
        u2 = k["cx"] + k["fx"] * q[0] / -q[2]
        v2 = k["cy"] - k["fy"] * q[1] / -q[2]
        gt = np.stack([u2.reshape(h, w) - u, v2.reshape(h, w) - v])
        fg = d < F.DEPTH_BACKGROUND
        err = np.abs(gt - fr.motion)[:, fg]
        print(f"\nframe {t}: |motion| up to {np.abs(gt[:, fg]).max():.1f} px, "
              f"max deviation from camera geometry {err.max():.4f} px")
        assert np.abs(gt[:, fg]).max() > 2 and err.max() < 0.05


def test_depth_is_planar_view_depth(tmp_path):
    build_depth_scene()
    cfg = R.RenderConfig(size=(64, 36), scale=2, spp_low=1, spp_high=4, threads=2, progress=False)
    seq = R.render_current_scene(tmp_path / "seq", cfg, [1], {"scene": "depth"})
    fr = F.read_frame(F.frame_path(seq, 0))
    for d, name in ((fr.depth[0], "low-res"), (fr.target_depth[0], "target")):
        far = np.abs(d - 7.25) < 0.1
        near = np.abs(d - 4.5) < 0.1
        sky = d >= F.DEPTH_BACKGROUND
        print(f"\n[{name}] far plane {d[far].mean():.4f} (max err {np.abs(d[far] - 7.25).max():.2e}, n={far.sum()}), "
              f"near plane {d[near].mean():.4f} (n={near.sum()}), sky {sky.mean():.0%}")
        assert far.sum() > 0.3 * d.size and near.sum() > 10 and sky.sum() > 0.05 * d.size
        # planar: off-axis pixels of the far plane read 7.25 too (radial distance would reach ~7.7)
        assert np.abs(d[far] - 7.25).max() < 2e-3 and np.abs(d[near] - 4.5).max() < 2e-3
        assert far[:, -1].any() and sky[:, 0].all(), "plane on the right, sky on the left edge"
    meta = F.read_meta(seq)
    intr = meta.intrinsics[0]
    assert intr["type"] == "persp" and intr["fx"] == pytest.approx(50 / 36 * 64)
    assert (intr["cx"], intr["cy"]) == (32, 18)


def test_jitter_sign_and_motion_is_jitter_free(tmp_path):
    """Jitter (jx, jy) must move the sample of pixel i to i + 0.5 + jx (x right, y down).

    A whole-pixel jitter makes that checkable: the jittered image equals the plain one
    shifted by one pixel. Motion must not see jitter (a static scene has zero motion).
    """
    build_depth_scene()
    cfg = R.RenderConfig(size=(48, 27), scale=2, spp_low=64, threads=2, progress=False)
    R._configure(bpy, cfg)
    work = tmp_path / "work"
    work.mkdir()
    r = R._Renderer(bpy, cfg, work)
    base = r._render(1, cfg.size, 64, True, (0.0, 0.0))
    for jit, sl_a, sl_b in (((1.0, 0.0), np.s_[:, :, :-1], np.s_[:, :, 1:]),
                            ((0.0, 1.0), np.s_[:, :-1, :], np.s_[:, 1:, :])):
        j = r._render(1, cfg.size, 64, True, jit)
        good = np.abs(j["colour"][sl_a] - base["colour"][sl_b]).mean()
        bad = np.abs(j["colour"][sl_b] - base["colour"][sl_a]).mean()
        assert good < 0.25 * bad, f"jitter {jit}: shifted match {good:.4f} vs opposite {bad:.4f}"
        dz = np.abs(j["depth"][sl_a] - base["depth"][sl_b])[j["depth"][sl_a] < 1e9]
        assert np.median(dz) < 1e-3
        assert np.abs(j["motion"]).max() < 1e-3, "static scene: motion must be zero, jitter or not"


def _run(*args, timeout=300):
    return subprocess.run([PY, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))


def test_cli_render_check_resume_corrupt(tmp_path):
    out = tmp_path / "D"
    cmd = ["-m", "nss_train.sources.render", "--out", str(out), "--sequences", "2", "--frames", "4", "--size", "64x36",
           "--scale", "2", "--spp-high", "8", "--threads", "2", "--jitter", "--no-progress"]
    r = _run(*cmd)
    assert r.returncode == 0, r.stderr
    r = _run("-m", "nss_train.data", "check", str(out), "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 sequence(s), 8 frame(s)" in r.stdout
    meta = F.read_meta(out / "seq_00001")
    assert meta.jitter[1] == pytest.approx([R.halton(2, 2) - 0.5, R.halton(2, 3) - 0.5])

    # resume: a deleted frame is rendered again, the same (seeded), the others are kept
    victim = F.frame_path(out / "seq_00001", 2)
    before = F.read_frame(victim)
    keep = F.frame_path(out / "seq_00000", 1)
    mtime = keep.stat().st_mtime_ns
    victim.unlink()
    r = _run(*cmd)
    assert r.returncode == 0, r.stderr
    assert keep.stat().st_mtime_ns == mtime
    after = F.read_frame(victim)
    # same samples; only float summation order may differ between thread schedules
    for a, b in ((before.colour, after.colour), (before.target, after.target), (before.motion, after.motion)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)

    # corrupt one file: check names it and fails
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    r = _run("-m", "nss_train.data", "check", str(out), "-q")
    assert r.returncode != 0
    assert str(victim) in r.stderr and "Traceback" not in r.stderr
    # ... and a re-run of render replaces the truncated frame
    r = _run(*cmd)
    assert r.returncode == 0, r.stderr
    assert _run("-m", "nss_train.data", "check", str(out), "-q").returncode == 0

    # resuming with other settings is refused in one line
    r = _run(*cmd[:-1], "--spp-low", "2", "--no-progress")
    assert r.returncode == 1 and "other settings" in r.stderr and "spp_low" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_blend_files_good_broken_and_without_camera(tmp_path):
    # a user .blend with a camera cut (marker-bound second camera) renders with its own animation
    build_motion_scene()
    sc = bpy.context.scene
    cam2 = bpy.data.objects.new("cam2", bpy.data.cameras.new("cam2"))
    sc.collection.objects.link(cam2)
    cam2.location, cam2.rotation_euler = (6, -6, 3), (math.radians(70), 0, math.radians(45))
    sc.timeline_markers.new("a", frame=1).camera = sc.camera
    sc.timeline_markers.new("b", frame=3).camera = cam2
    good = tmp_path / "good.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(good))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.collection.objects.link(bpy.data.objects.new("empty", None))
    nocam = tmp_path / "nocam.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(nocam))
    broken = tmp_path / "broken.blend"
    broken.write_bytes(good.read_bytes()[:3000])
    garbage = tmp_path / "garbage.blend"
    garbage.write_bytes(b"this is not a blend file\n" * 10)

    out = tmp_path / "B"
    base = ["-m", "nss_train.sources.render", "--out", str(out), "--size", "32x18", "--spp-high", "4", "--threads", "2",
            "--no-progress", "--blend"]
    r = _run(*base, str(good))
    assert r.returncode == 0, r.stderr
    meta = F.read_meta(out / "blend_good")
    assert meta.frames == 5 and meta.cuts == [True, False, True, False, False]
    assert meta.source["group"].startswith("blend:")
    for bad, words in ((nocam, "no camera"), (broken, "cannot open"), (garbage, "not a .blend"),
                       (tmp_path / "missing.blend", "not found")):
        r = _run(*base, str(bad))
        assert r.returncode == 1, r.stderr
        last = r.stderr.strip().splitlines()[-1]
        assert str(bad) in last and words in last and "Traceback" not in r.stderr, r.stderr


def test_bad_arguments_one_line():
    for args, words in ((["--size", "64by36"], "expected WxH"), (["--scale", "3"], "invalid choice"),
                        (["--shard", "2/2"], "0 <= I < N"), (["--spp-low", "0"], "must be >= 1")):
        r = _run("-m", "nss_train.sources.render", "--out", "/nonexistent/never", *args)
        assert r.returncode != 0 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_full_disk_is_a_clear_error(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs permission to mount a small tmpfs")
    try:
        r = _run("-m", "nss_train.sources.render", "--out", str(mnt / "D"), "--sequences", "1", "--frames", "4",
                 "--size", "64x36", "--threads", "2", "--no-progress")
        assert r.returncode == 1 and "MB are free" in r.stderr and "Traceback" not in r.stderr, r.stderr
        # a disk that fills up mid-way: a clear error, and the finished frames are kept for the resume
        subprocess.run(["mount", "-o", "remount,size=600k", str(mnt)], check=True)
        build_motion_scene()
        cfg = R.RenderConfig(size=(64, 36), spp_high=2, threads=2, target_extras=False, progress=False)
        with pytest.raises(R.RenderError, match="disk full") as e:
            R.render_current_scene(mnt / "D2", cfg, [1, 2, 3, 4, 5], {"scene": "motion"})
        assert len(str(e.value).splitlines()) == 1
        done = sorted(p.name for p in (mnt / "D2").glob("frame_*.exr"))
        assert done and len(done) < 5, done
        for name in done:
            F.read_frame(mnt / "D2" / name)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_builtin_scenes_are_reproducible_and_varied(tiny_dataset):
    seqs = F.list_sequences(tiny_dataset)
    assert [s.name for s in seqs] == ["seq_00000", "seq_00001"]
    m0, m1 = (F.read_meta(s) for s in seqs)
    assert m0.source["objects"] != m1.source["objects"]
    for s, m in zip(seqs, (m0, m1)):
        fr = F.read_frame(F.frame_path(s, 3))
        assert fr.colour.shape == (3, 36, 64) and fr.target.shape == (3, 72, 128)
        assert np.isfinite(fr.colour).all() and fr.colour.mean() > 0.01
        assert np.abs(fr.motion).max() > 0.1, "camera and objects move"
        assert (fr.depth < F.DEPTH_BACKGROUND).mean() > 0.3
    # same seed, same scene: the first frame renders again bit-identically
    bpy.ops.wm.read_factory_settings(use_empty=True)
    from nss_train.sources import scenes

    assert scenes.build_scene(0, 6)["objects"] == m0.source["objects"]


def test_shards_partition_the_sequences_and_jitter_is_halton():
    names = lambda i, n: [j.name for j in R._jobs(R.RenderConfig(sequences=5, shard=(i, n)))]  # noqa: E731
    assert names(0, 2) == ["seq_00000", "seq_00002", "seq_00004"] and names(1, 2) == ["seq_00001", "seq_00003"]
    assert sorted(sum((names(i, 3) for i in range(3)), [])) == names(0, 1)
    assert [j.seed for j in R._jobs(R.RenderConfig(sequences=3, seed=7))] == [7, 8, 9]
    jit = np.array([R.jitter_for(k) for k in range(64)])
    assert (np.abs(jit) <= 0.5).all() and len({tuple(j) for j in jit}) == 64
    assert abs(jit.mean(0)).max() < 0.02, "Halton points cover the pixel evenly"


def test_denoised_targets_are_closer_to_converged(tmp_path):
    """--denoise-high: the target (never the low-res frame) goes through OpenImageDenoise, so two
    renders of one target frame with different noise seeds agree better than without it
    (benchmarks/bench_blender_target_noise.py: 31.4 -> 37.9 dB at 32 spp), and meta.json says so."""
    from nss_train.sources import scenes

    def reinhard_psnr(a, b):
        return 10 * np.log10(1.0 / np.mean((a / (1 + a) - b / (1 + b)) ** 2))

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scenes.build_scene(3, 2, cut_prob=0.0)
    agree = {}
    for denoise in (False, True):
        cfg = R.RenderConfig(size=(64, 36), spp_high=8, threads=2, denoise_high=denoise, progress=False)
        R._configure(bpy, cfg)
        r = R._Renderer(bpy, cfg, tmp_path)
        imgs = []
        for seed in (0, 1):
            bpy.context.scene.cycles.seed = seed
            imgs.append(r._render(1, (128, 72), 8, False, (0.0, 0.0))["colour"])
        lo = r._render(1, (64, 36), 1, True, (0.0, 0.0))
        assert not bpy.context.scene.cycles.use_denoising and lo["colour"].shape == (3, 36, 64)  # low-res: never
        agree[denoise] = reinhard_psnr(*imgs)
    print(f"\ntwo 8-spp targets agree at {agree[False]:.1f} dB plain, {agree[True]:.1f} dB denoised")
    assert agree[True] > agree[False] + 2.0
    cfg = R.RenderConfig(size=(32, 18), spp_low=1, spp_high=2, threads=2, denoise_high=True, progress=False)
    seq = R.render_current_scene(tmp_path / "seq", cfg, [1], {"scene": "denoise"})
    assert F.read_meta(seq).source["denoise"] is True
