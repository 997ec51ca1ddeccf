"""The addon in the Godot editor (issue 21, item 2), in a real Godot 4 (headless):

- NeuralSSViewport's configuration warnings: a node in a 2D / UI scene, the Compatibility renderer, a scale
  the model does not have, a model file that is missing; none in a plain 3D scene;
- settings grouped under neural_ss/python/ for the Python runtime, old names still read (one warning each),
  no runtime token in a saved project.godot (it is given at run time: --nss-runtime-token / NSS_RUNTIME_TOKEN);
- the editor with the plugin enabled and a 3D scene holding the node open: one Add Node entry (class_name +
  @icon, no add_custom_type), the settings saved, and the network never started in the editor.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.godot

REPO = Path(__file__).resolve().parents[1]
ADDON = REPO / "addons" / "neural_ss"


@pytest.fixture(scope="module")
def project(godot, tmp_path_factory):
    p = tmp_path_factory.mktemp("editor_integration") / "project"
    shutil.copytree(REPO / "tests/godot", p, ignore=shutil.ignore_patterns(".godot"))
    shutil.copytree(ADDON, p / "addons/neural_ss", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    r = godot.import_project(p, timeout=300)
    assert not r.timed_out and not r.errors(), r.output[-3000:]
    return p


@pytest.fixture(scope="module")
def warnings(godot, project, tmp_path_factory):
    saved = tmp_path_factory.mktemp("saved") / "project.godot"
    r = godot.run(["--headless", "--path", str(project), "-s", "res://config_warnings.gd", "--", str(saved)], 120,
                  paths=[str(project), str(saved.parent)])
    assert not r.timed_out and not r.errors() and r.returncode == 0, r.output[-3000:]
    line = next(ln for ln in r.output.splitlines() if ln.startswith("CONFIG_WARNINGS "))
    return json.loads(line[len("CONFIG_WARNINGS "):]), r.output, saved


def test_no_warning_in_a_3d_scene_with_the_defaults(warnings):
    w, _, _ = warnings
    assert w["3d"] == [] and w["ui_with_3d"] == [], (w["3d"], w["ui_with_3d"])


@pytest.mark.parametrize("case", ["2d", "ui"])
def test_warns_in_a_2d_scene(warnings, case):
    w, _, _ = warnings
    assert len(w[case]) == 1 and "not in a 3D scene" in w[case][0], w[case]


def test_warns_under_the_compatibility_renderer(warnings):
    w, _, _ = warnings
    assert len(w["compatibility"]) == 1 and "Compatibility renderer" in w["compatibility"][0], w["compatibility"]
    assert "forward_plus" in w["compatibility"][0]


@pytest.mark.parametrize("case", ["scale_4_node", "scale_4_project"])
def test_warns_when_the_scale_has_no_model(warnings, case):
    w, _, _ = warnings
    assert len(w[case]) == 1 and "Scale 4 has no model" in w[case][0] and "x2" in w[case][0], w[case]


def test_warns_when_the_model_file_is_missing(warnings):
    w, _, _ = warnings
    assert len(w["no_model"]) == 1 and "res://no_such_model_x2.onnx': no such file" in w["no_model"][0]


def test_old_setting_names_are_read_with_one_warning(warnings):
    w, out, _ = warnings
    assert w["legacy_port"] == [4711, 4711] and w["new_port"] == 4712
    assert out.count("neural_ss/runtime_port is now neural_ss/python/port") == 1, out[-2000:]
    assert w["legacy_token"] == "old-secret"
    assert out.count("neural_ss/runtime_token keeps a secret") == 1


def test_saved_settings_are_grouped_and_hold_no_token(warnings):
    w, _, saved = warnings
    assert w["save"] == "OK"
    text = saved.read_text()
    assert re.search(r"^\[neural_ss\]$", text, re.M) and "python/port=47800" in text, text
    assert "token" not in text, text
    assert all(k.startswith("neural_ss/") for k in w["registered"])
    assert "neural_ss/python/command" in w["registered"] and "neural_ss/runtime_command" not in w["registered"]


def test_one_add_node_entry():
    # a script with class_name + @icon is listed in Add Node by Godot itself; add_custom_type would list it twice
    assert "add_custom_type" not in (ADDON / "plugin.gd").read_text()
    head = (ADDON / "neural_ss_viewport.gd").read_text().split("extends", 1)[0]
    assert "class_name NeuralSSViewport" in head and "@icon(" in head and "@tool" in head


SCENE = """[gd_scene load_steps=2 format=3]

[ext_resource type="Script" path="res://addons/neural_ss/neural_ss_viewport.gd" id="1"]

[node name="Main" type="Node3D"]

[node name="Camera3D" type="Camera3D" parent="."]

[node name="NeuralSSViewport" type="Node" parent="."]
script = ExtResource("1")
"""


def test_editor_with_the_node_open_starts_nothing_and_saves_no_token(godot, project, tmp_path):
    p = tmp_path / "editor_project"
    shutil.copytree(project, p, symlinks=True)
    (p / "ns_scene.tscn").write_text(SCENE)
    cfg = (p / "project.godot").read_text()
    (p / "project.godot").write_text(
        cfg + '\n[editor_plugins]\n\nenabled=PackedStringArray("res://addons/neural_ss/plugin.cfg")\n')
    r = godot.run(["--headless", "--editor", "--path", str(p), "res://ns_scene.tscn", "--quit-after", "30"],
                  timeout=180, paths=[str(p)])
    assert not r.timed_out and not r.errors(), r.output[-3000:]
    assert "neural_ss: plugin enabled" in r.output
    # the @tool node is loaded in the editor but starts no runtime there (no "GPU runtime"/"PYTHON runtime" line)
    assert not re.search(r"neural_ss: (GPU runtime|PYTHON runtime|BILINEAR)", r.output), r.output[-3000:]
    saved = (p / "project.godot").read_text()
    assert "token" not in saved, saved
    cache = (p / ".godot/global_script_class_cache.cfg").read_text()
    block = re.search(r'\{[^{}]*"class": &"NeuralSSViewport"[^{}]*\}', cache)
    assert block and '"icon": "res://addons/neural_ss/icons/neural_ss_viewport.svg"' in block.group(0)
