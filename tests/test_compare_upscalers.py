"""tools/compare_upscalers.py: the metric code on synthetic arrays, its one-line errors, and (marker godot)
a short real run of every method on one scene, plus the camera options on a scene without a camera."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nss_train.eval import in_engine as C
from nss_train.eval import metrics as U
from nss_train.eval import pictures as P
from nss_train.eval.runtime_process import ToolError

ROOT = Path(__file__).resolve().parents[1]

LEVELS = ROOT / "eval_levels"


# --- metrics -------------------------------------------------------------------------------------

def test_psnr_is_of_the_mean_mse_not_the_mean_of_psnrs():
    ref = np.zeros((3, 8, 8))
    a = ref + 0.1    # MSE 1e-2 -> 20 dB
    b = ref + 0.001  # MSE 1e-6 -> 60 dB
    mses = [U.mse(a, ref), U.mse(b, ref)]
    assert U.psnr_of_mean_mse(mses) == pytest.approx(10 * np.log10(1 / ((1e-2 + 1e-6) / 2)))
    assert U.psnr_of_mean_mse(mses) == pytest.approx(23.01, abs=0.01)  # the mean of per-frame PSNRs would say 40
    with pytest.raises(ValueError):
        U.psnr_of_mean_mse([])


def test_flicker_counts_change_the_reference_does_not_have():
    rng = np.random.default_rng(0)
    ref = [np.full((3, 4, 4), 0.1 * t) for t in range(4)]  # the reference brightens by 0.1 per frame
    assert U.flicker(ref, ref) == [0.0, 0.0, 0.0]
    frozen = [ref[0]] * 4  # a method that does not follow the change misses 0.1 per frame
    assert U.flicker(frozen, ref) == pytest.approx([0.1, 0.1, 0.1])
    noisy = [r + (0.05 if t % 2 else -0.05) for t, r in enumerate(ref)]  # +-0.05 flicker on top
    assert U.flicker(noisy, ref) == pytest.approx([0.1, 0.1, 0.1])
    assert U.temporal_change(ref) == pytest.approx([0.1, 0.1, 0.1])
    with pytest.raises(ValueError):
        U.flicker(ref[:2], ref)
    assert np.mean(U.flicker([r + rng.normal(0, 0.01, r.shape) for r in ref], ref)) > 0


def test_box_filter_averages_in_linear_light():
    # a 2x2 checker of black and white display pixels is 50 % linear light: display 0.7354, not 0.5
    img = np.zeros((3, 4, 4), np.float32)
    img[:, ::2, ::2] = 1
    img[:, 1::2, 1::2] = 1
    out = U.box_down_display(img, 2)
    assert out.shape == (3, 2, 2)
    assert out == pytest.approx(np.full((3, 2, 2), 0.7354), abs=1e-3)
    assert U.box_down_display(img, 1) is not img and np.array_equal(U.box_down_display(img, 1), img)
    # flat areas keep their value; decode/encode round-trips
    flat = np.full((3, 4, 4), 0.3, np.float32)
    assert U.box_down_display(flat, 2) == pytest.approx(np.full((3, 2, 2), 0.3), abs=1e-6)
    with pytest.raises(ValueError):
        U.box_down(np.zeros((3, 5, 4)), 2)


def test_alignment_catches_a_method_one_frame_late():
    rng = np.random.default_rng(1)
    base = rng.random((3, 16, 64))
    ref = [np.roll(base, 3 * t, axis=2) for t in range(6)]  # a pan: 3 px per frame
    blurred = [0.5 * r + 0.25 * np.roll(r, 1, 2) + 0.25 * np.roll(r, -1, 2) for r in ref]  # an upscaler's blur
    assert U.alignment(blurred, ref)["aligned"]
    late = [blurred[0]] + blurred[:-1]  # shows frame i-1 at i
    a = U.alignment(late, ref)
    assert not a["aligned"] and {f["neighbour"] for f in a["failures"]} <= {f["frame"] - 1 for f in a["failures"]}


def test_flip_subset():
    assert C.flip_subset(5, 8) == [0, 1, 2, 3, 4] and C.flip_subset(5, 0) == [0, 1, 2, 3, 4]
    assert C.flip_subset(24, 6) == [0, 5, 9, 14, 18, 23]


def test_detailed_regions_find_the_texture():
    img = np.zeros((3, 60, 90), np.float32)
    img[:, 30:50, 60:90] = (np.indices((20, 30)).sum(0) % 2)  # a checker in the lower right
    (y, x), = P.detailed_regions(img, 1, (20, 30))
    assert (y, x) == (30, 60)
    two = P.detailed_regions(img, 2, (20, 30))
    assert len(two) == 2 and two[1] != two[0]


def test_side_by_side_writes_labelled_png(tmp_path):
    from PIL import Image

    img = np.random.default_rng(2).random((3, 36, 64)).astype(np.float32)
    regions = P.side_by_side(tmp_path / "s.png", [("native", img), ("bilinear", img * 0.5)], n_zooms=2, zoom=3)
    im = Image.open(tmp_path / "s.png")
    assert im.size == (128, 36 * 3) and len(regions) == 2


def test_error_map_shows_where_one_method_loses(tmp_path):
    from PIL import Image

    ref = np.full((3, 36, 64), 0.5, np.float32)
    ea, eb = np.full((36, 64), 0.01, np.float32), np.full((36, 64), 0.01, np.float32)
    ea[18:27, :8] += 0.02  # a is worse in one tile only (row 2, column 0)
    r = P.error_map(tmp_path / "e.png", ref, ea, eb, ("neural", "fsr2"), tiles=(4, 8))
    im = np.asarray(Image.open(tmp_path / "e.png").convert("RGB"))
    assert im.shape == (36, 128, 3)
    assert im[22, 64 + 3].mean() > 200 and abs(int(im[30, 64 + 40].mean()) - 128) <= 1  # white where a loses, grey
    assert r["tiles"][2][0] == pytest.approx(0.02 * 72 / (0.01 * 36 * 64), rel=1e-3)
    assert sum(map(sum, r["tiles"])) == pytest.approx(r["tiles"][2][0], rel=1e-3)


# --- one-line errors --------------------------------------------------------------------------------

def _project(tmp_path: Path, renderer: str = "forward_plus", scene: str | None = "main.tscn") -> Path:
    p = tmp_path / "proj"
    p.mkdir(parents=True)
    (p / "project.godot").write_text(f'config_version=5\n\n[rendering]\n\nrenderer/rendering_method="{renderer}"\n')
    if scene:
        (p / scene).write_text('[gd_scene format=3]\n\n[node name="Main" type="Node3D"]\n')
    return p


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def test_one_line_errors(tmp_path):
    with pytest.raises(ToolError) as e:
        C.parse_size("320by180", "--low")
    assert "--low" in _one_line(e) and "WxH" in str(e.value)
    with pytest.raises(ToolError) as e:
        C.parse_methods("native,dlss")
    assert "dlss" in _one_line(e)
    assert C.parse_methods("fsr2,neural") == ["native", "fsr2", "neural"]
    with pytest.raises(ToolError) as e:
        C.check_camera("orbit:Cam")
    assert "orbit:Cam" in _one_line(e)
    with pytest.raises(ToolError) as e:
        C.check_camera(f"replay:{tmp_path / 'none.json'}")
    assert "no such file" in _one_line(e)
    bad = tmp_path / "bad.json"
    bad.write_text('{"transforms": [[1, 2, 3]]}')
    with pytest.raises(ToolError) as e:
        C.check_camera(f"replay:{bad}")
    assert "12 numbers" in _one_line(e)
    with pytest.raises(ToolError) as e:
        C.check_project(tmp_path, "res://main.tscn")
    assert "no project.godot" in _one_line(e)
    proj = _project(tmp_path)
    with pytest.raises(ToolError) as e:
        C.check_project(proj, "res://levels/missing.tscn")
    assert "res://levels/missing.tscn" in _one_line(e) and "no such file" in str(e.value)
    with pytest.raises(ToolError) as e:
        C.check_project(proj, "main.tscn")
    assert "res://" in _one_line(e)
    compat = _project(tmp_path / "c", renderer="gl_compatibility")
    with pytest.raises(ToolError) as e:
        C.check_project(compat, "res://main.tscn")
    assert "gl_compatibility" in _one_line(e) and "Forward+" in str(e.value)
    # the whole tool answers in one line on stderr, exit 1, before any Godot run
    assert C.main(["--project", str(proj), "--scene", "res://nope.tscn", "--out", str(tmp_path / "o")]) == 1


def test_project_copy_gets_addon_plugin_and_harness(tmp_path):
    proj = _project(tmp_path)
    text = (proj / "project.godot").read_text() + '\n[editor_plugins]\n\nenabled=PackedStringArray("res://addons/x/plugin.cfg")\n'
    (proj / "project.godot").write_text(text)
    copy = C.prepare_project(proj, tmp_path / "t", text)
    out = (copy / "project.godot").read_text()
    assert C.config_get(out, "editor_plugins", "enabled") == (
        'PackedStringArray("res://addons/x/plugin.cfg", "res://addons/neural_ss/plugin.cfg")')
    assert C.config_get(out, "autoload", "NSSCompareHarness") == f'"*{C.HARNESS_RES}"'
    assert (copy / "addons" / "neural_ss" / "neural_ss_viewport.gd").is_file()
    assert (copy / "nss_compare" / "nss_compare_harness.gd").is_file()
    assert (proj / "project.godot").read_text() == text  # the user's project is untouched
    assert C.config_set("[a]\n\nx=1\n\n[b]\n\ny=2\n", "a", "x", "3") == "[a]\n\nx=3\n\n[b]\n\ny=2\n"
    assert C.config_get(C.config_set("[b]\ny=2\n", "a", "z", '"q"'), "a", "z") == '"q"'


# --- real runs (Godot under Xvfb + lavapipe) ----------------------------------------------------------

def _level() -> tuple[Path, str]:
    """One evaluation level when they exist (eval_levels/), else the demo."""
    scenes = sorted(LEVELS.glob("*.tscn")) if (LEVELS / "project.godot").is_file() else []
    if scenes:
        pick = LEVELS / "thin_and_foliage.tscn"
        return LEVELS, "res://" + (pick if pick in scenes else scenes[0]).name
    return ROOT / "godot_project", "res://demo.tscn"


@pytest.mark.godot
@pytest.mark.slow
def test_every_method_runs_and_frames_line_up(godot, tmp_path):
    project, scene = _level()
    out = tmp_path / "cmp"
    rep = C.compare(project, scene, out, low=(160, 90), scale=2, frames=3, warmup=4, time_scale=4.0, ref_ss=1,
                    methods=C.METHODS, godot=godot, timeout=400)
    saved = json.loads((out / "report.json").read_text())
    assert saved["methods"].keys() == rep["methods"].keys() == set(C.METHODS) - {"native"}
    assert saved["output"] == [320, 180] and saved["reference"]["render_size"] == [320, 180]
    assert saved["godot"].startswith("4.") and saved["frames"] >= 3
    for m, v in saved["methods"].items():
        n = saved["frames"]
        assert len(v["psnr_frames"]) == len(v["ssim_frames"]) == len(v["flip_frames"]) == n, m  # n < 8: FLIP on all
        assert len(v["flicker_frames"]) == n - 1, m
        assert 10 < v["psnr"] < 60 and 0 < v["ssim"] <= 1 and 0 <= v["flip"] < 1, (m, v["psnr"])
        assert v["aligned"], (m, v["alignment"])  # frame i of every method is the reference's frame i
    assert saved["frames_aligned"]
    # the methods really differ (each one set up its own upscaler), FSR2 is not bilinear
    ps = {m: round(v["psnr"], 3) for m, v in saved["methods"].items()}
    assert len(set(ps.values())) == len(ps), ps
    assert saved["methods"]["fsr2"]["settings"]["scaling_3d_mode"] == 2  # Viewport.SCALING_3D_MODE_FSR2
    assert saved["methods"]["neural"]["render_size"] == [160, 90]
    assert saved["model"] and saved["methods"]["neural"]["model_info"]
    assert "| neural |" in (out / "report.md").read_text()
    assert (out / "side_by_side.png").stat().st_size > 20_000
    assert saved["error_map"]["file"] == "error_map.png" and (out / "error_map.png").is_file()
    cam = json.loads((out / "camera.json").read_text())
    assert len(cam["transforms"]) >= 4 + 3 and all(len(t) == 12 for t in cam["transforms"])


NO_CAMERA_SCENE = textwrap.dedent("""\
    [gd_scene load_steps=5 format=3]

    [sub_resource type="Curve3D" id="c"]
    _data = {"points": PackedVector3Array(0, 0, 0, 0, 0, 0, 0.5, 1, 6, 0, 0, 0, 0, 0, 0, 0.5, 1, 2), "tilts": PackedFloat32Array(0, 0)}
    point_count = 2

    [sub_resource type="BoxMesh" id="b"]

    [sub_resource type="Animation" id="a"]
    length = 4.0
    tracks/0/type = "value"
    tracks/0/path = NodePath("Cam:position")
    tracks/0/interp = 1
    tracks/0/keys = {"times": PackedFloat32Array(0, 4), "transitions": PackedFloat32Array(1, 1), "update": 0, "values": [Vector3(-1, 1, 6), Vector3(3, 1, 6)]}

    [sub_resource type="AnimationLibrary" id="l"]
    _data = {"pan": SubResource("a")}

    [node name="Main" type="Node3D"]

    [node name="Box" type="MeshInstance3D" parent="."]
    mesh = SubResource("b")

    [node name="Sun" type="DirectionalLight3D" parent="."]
    transform = Transform3D(1, 0, 0, 0, 0.7, 0.7, 0, -0.7, 0.7, 0, 4, 0)

    [node name="Track" type="Path3D" parent="."]
    curve = SubResource("c")

    [node name="Anim" type="AnimationPlayer" parent="."]
    libraries = {"": SubResource("l")}
    """)


@pytest.mark.godot
@pytest.mark.slow
def test_camera_options_and_a_scene_without_camera(godot, tmp_path):
    proj = _project(tmp_path, scene=None)
    (proj / "main.tscn").write_text(NO_CAMERA_SCENE)
    (proj / "anim.tscn").write_text(NO_CAMERA_SCENE + '\n[node name="Cam" type="Camera3D" parent="."]\n')
    prepared = C.prepare_and_import(godot, proj, tmp_path / "copy", timeout=300)
    kw = dict(low=(64, 36), scale=2, frames=3, warmup=2, ref_ss=1, methods="native", godot=godot, timeout=300,
              prepared=prepared, picture=False)
    with pytest.raises(ToolError) as e:
        C.compare(proj, "res://main.tscn", tmp_path / "o1", **kw)
    assert "res://main.tscn has no current Camera3D" in _one_line(e)
    with pytest.raises(ToolError) as e:
        C.compare(proj, "res://main.tscn", tmp_path / "o2", camera="path:Nope", **kw)
    assert "Nope" in _one_line(e) and "Path3D" in str(e.value)

    def cams(out):
        return np.array(json.loads((tmp_path / out / "camera.json").read_text())["transforms"])

    C.compare(proj, "res://main.tscn", tmp_path / "o3", camera="path:Track:1.5", **kw)
    c = cams("o3")
    assert len(c) >= 5
    # driven along the path (towards -z) at 1.5 units per second of scene time (1/30 s per frame; the first
    # 0.2 units of a baked Curve3D are not uniform in distance: measured from frame 3 on)
    assert c[3, 11] - c[-1, 11] == pytest.approx(1.5 * (len(c) - 4) / 30, rel=0.03)
    assert np.all(np.diff(c[1:, 11]) < 0)
    C.compare(proj, "res://anim.tscn", tmp_path / "o4", camera="anim:Anim:pan", **kw)
    a = cams("o4")
    assert a[-1, 9] - a[1, 9] == pytest.approx(1.0 * (len(a) - 2) / 30, rel=0.02)  # x: -1 -> 3 in 4 s
    # the recorded camera replays exactly
    C.compare(proj, "res://main.tscn", tmp_path / "o5", camera=f"replay:{tmp_path / 'o3' / 'camera.json'}", **kw)
    r = cams("o5")
    assert r[1:] == pytest.approx(c[1:len(r)], abs=1e-5)
