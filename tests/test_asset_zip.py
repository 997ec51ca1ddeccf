"""The Asset Library package (issue 21, item 5): tools/build_asset_zip.py zips addons/neural_ss/ with the
default model and nothing else; unpacked into a fresh Godot project (no other file of this repository),
the plugin enables in the editor and a scene with a NeuralSSViewport renders neural frames on the GPU
runtime (Xvfb + lavapipe)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nss_godot import asset_zip as Z

REPO = Path(__file__).resolve().parents[1]

SCENE = """[gd_scene load_steps=4 format=3]

[ext_resource type="Script" path="res://addons/neural_ss/neural_ss_viewport.gd" id="1"]

[sub_resource type="BoxMesh" id="b"]

[sub_resource type="StandardMaterial3D" id="m"]
albedo_color = Color(0.8, 0.3, 0.2, 1)

[node name="Main" type="Node3D"]

[node name="Camera3D" type="Camera3D" parent="."]
transform = Transform3D(1, 0, 0, 0, 1, 0, 0, 0, 1, 0.3, 0.4, 3)

[node name="Box" type="MeshInstance3D" parent="."]
transform = Transform3D(0.8, -0.6, 0, 0.6, 0.8, 0, 0, 0, 1, 0, 0, 0)
mesh = SubResource("b")
material_override = SubResource("m")

[node name="Sun" type="DirectionalLight3D" parent="."]
transform = Transform3D(1, 0, 0, 0, 0.7, 0.7, 0, -0.7, 0.7, 0, 4, 0)

[node name="NeuralSSViewport" type="Node" parent="."]
script = ExtResource("1")
"""

PROJECT = """config_version=5

[application]

config/name="fresh"
run/main_scene="res://main.tscn"

[display]

window/size/viewport_width=320
window/size/viewport_height=180

[editor_plugins]

enabled=PackedStringArray("res://addons/neural_ss/plugin.cfg")

[rendering]

renderer/rendering_method="forward_plus"
"""


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("asset_zip") / "neural_ss.zip"
    r = subprocess.run([sys.executable, str(REPO / "tools" / "build_asset_zip.py"), "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "build_asset_zip: " in r.stdout, r.stderr
    return out


def test_zip_holds_the_addon_and_the_default_model_only(package):
    names = zipfile.ZipFile(package).namelist()
    assert all(n.startswith("addons/neural_ss/") for n in names), names[:5]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/tests/" in n or "/." in n]
    models = sorted(n.split("/")[-1] for n in names if n.startswith("addons/neural_ss/models/"))
    assert models == ["README.md", "default_x2.nssgpu.bin", "default_x2.nssgpu.json", "default_x2.onnx"], models
    for need in ("plugin.cfg", "plugin.gd", "neural_ss_viewport.gd", "gpu/neural_ss_gpu_runner.gd",
                 "runtime/nss_runtime/server.py", "README.md"):
        assert f"addons/neural_ss/{need}" in names, need
    # everything tracked in the addon folder is in it (but other models)
    assert len(names) == len(Z.addon_files())


def test_zip_is_reproducible_and_skips_junk(tmp_path):
    addon = tmp_path / "neural_ss"
    shutil.copytree(Z.ADDON, addon, ignore=shutil.ignore_patterns("__pycache__"))
    (addon / "runtime" / "nss_runtime" / "__pycache__").mkdir()
    (addon / "runtime" / "nss_runtime" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"x")
    (addon / "models" / "other_x4.onnx").write_bytes(b"x")
    (addon / "tests").mkdir()
    (addon / "tests" / "t.gd").write_text("x")
    (addon / ".DS_Store").write_bytes(b"x")
    a, b = tmp_path / "a.zip", tmp_path / "b.zip"
    Z.build(a, addon)
    Z.build(b, addon)
    assert a.read_bytes() == b.read_bytes()
    names = zipfile.ZipFile(a).namelist()
    assert not [n for n in names if "pycache" in n or "other_x4" in n or "/tests/" in n or "DS_Store" in n]
    (addon / "models" / "default_x2.nssgpu.bin").unlink()
    with pytest.raises(Z.ZipError) as e:
        Z.build(tmp_path / "c.zip", addon)
    assert "default_x2.nssgpu.bin: missing" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.godot
def test_zip_in_a_fresh_project_enables_and_renders_neural_frames(godot, package, tmp_path):
    proj = tmp_path / "fresh"
    proj.mkdir()
    zipfile.ZipFile(package).extractall(proj)
    (proj / "project.godot").write_text(PROJECT)
    (proj / "main.tscn").write_text(SCENE)
    # the editor imports the project and enables the plugin
    r = godot.run(["--headless", "--editor", "--path", str(proj), "--quit-after", "20"], 240, paths=[str(proj)])
    assert not r.timed_out and not r.errors(), r.output[-3000:]
    assert "neural_ss: plugin enabled" in r.output, r.output[-2000:]
    rec = tmp_path / "rec"
    r = godot.run(["--path", str(proj), "--audio-driver", "Dummy", "--fixed-fps", "30", "--quit-after", "10", "--",
                   "--nss-runtime", "gpu", "--nss-record", str(rec)], 180, display=True, paths=[str(proj), str(tmp_path)])
    tail = "\n".join(r.output.splitlines()[-20:])
    assert not r.timed_out and not r.errors(), tail
    assert "neural_ss: GPU runtime (neural_ss/runtime = gpu" in r.output and "fallback" not in r.output, tail
    frames = sorted(rec.glob("neural_*.rgba"))
    assert len(frames) >= 3, tail
    img = np.fromfile(frames[-1], np.float32).reshape(180, 320, 4)
    assert np.isfinite(img).all()
    box = img[70:110, 140:180, :3].mean((0, 1))  # the red box in the middle
    assert box[0] > box[2] + 0.05 and float(img[..., :3].std()) > 0.01, box
