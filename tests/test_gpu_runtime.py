"""The GPU runtime (addons/neural_ss/gpu/) in real Godot under Xvfb + lavapipe.

- kernels: NeuralSSGpuRunner on given frames (tests/godot/gpu_runner_check.gd) equals ONNX Runtime on
  `accum` (tiny, random head weights: every path reaches the output); a `fast` program is refused in one line;
- the node: a NeuralSSViewport in GPU mode on real captured frames (tests/godot/gpu_runtime_scene.gd) over a
  sequence with history and a camera cut equals ONNX Runtime run on the same captured frames (display
  values, max error <= 2/255); then, in plain GPU mode (no listener, no recording), the capture makes no
  readback, the runner keeps presenting, no runtime bridge exists and the configured runtime command is
  never started (the same command IS started in python mode: the check can see a start).
"""
from __future__ import annotations

import json
import shutil
import time
import stat
from pathlib import Path

import numpy as np
import pytest

from nss_runtime.display import srgb_encode
from nss_runtime.gpu_program import load_program, program_path_for
from nss_runtime.session import Session
from nss_train.eval.godot_runs import run_gpu_runner

pytestmark = pytest.mark.godot

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "addons" / "neural_ss" / "models" / "default_x2.onnx"  # what the node runs by default
FAST_MODEL = REPO / "models" / "fast_x2_godot.onnx"
LOW = (64, 36)
DISPLAY_TOL = 2.0 / 255.0


srgb = srgb_encode  # display values: clamp, then sRGB encoding (what the Linear tonemapper shows)


def _check(r, marker):
    tail = "\n".join(r.output.splitlines()[-30:])
    assert not r.timed_out, f"timed out:\n{tail}"
    assert not r.errors(), "Godot errors:\n" + "\n".join(r.errors()) + f"\n---\n{tail}"
    assert r.returncode == 0 and marker in r.output, f"exit {r.returncode}:\n{tail}"
    return r.output


@pytest.fixture(scope="module")
def gpu_project(addon_project):
    """tests/godot + a copy of the addon (with its default model and GPU program), imported."""
    return addon_project("gpu_runtime")


def ort_outputs(onnx: Path, frames: list[dict]) -> list[np.ndarray]:
    sess = Session(onnx, providers=["CPUExecutionProvider"])
    return [sess.upscale(f["colour"], f["depth"], f["motion"], f["jitter"], f["cut"]) for f in frames]


def test_runner_refuses_a_fast_program_in_one_line(godot, gpu_project, tmp_path):
    """The GPU runtime runs the fused accum passes only: a `fast` program (generic ops) is refused with one
    line naming the file, the op and the way out (the python runtime), never a crash."""
    dst = gpu_project / "progs"
    dst.mkdir(exist_ok=True)
    prog = program_path_for(FAST_MODEL)
    shutil.copy(prog, dst)
    shutil.copy(prog.with_name(load_program(prog)["weights"]["file"]), dst)
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "frames.json").write_text(json.dumps({"w": 8, "h": 8, "frames": []}))
    r = godot.run(["--path", str(gpu_project), "-s", "res://gpu_runner_check.gd", "--", "--program",
                   f"res://progs/{prog.name}", "--inputs", str(inp), "--out", str(tmp_path)], 120,
                  display=True, paths=[str(gpu_project), str(tmp_path)])
    lines = [ln for ln in r.output.splitlines() if "gpu_runner_check: ERROR:" in ln]
    assert r.returncode != 0 and len(lines) == 1, r.output[-2000:]
    assert "fast_x2_godot.nssgpu.json" in lines[0] and "neural_ss/runtime = python" in lines[0], lines[0]


def test_runner_equals_onnxruntime_on_accum(godot, gpu_project, export_onnx, tiny_accum_onnx, tmp_path):
    """Kernel parity on the temporal preset (dilation, bicubic history warp + validity, box stats, softmax
    kernels, clamp, alpha prior, blend, recurrent history) over history, a cut and history again."""
    frames = export_onnx.random_sequence(6, LOW[1], LOW[0], seed=12, cut_at=3)
    got = run_gpu_runner(godot, gpu_project, program_path_for(tiny_accum_onnx), frames, tmp_path)
    ref = ort_outputs(tiny_accum_onnx, frames)
    for i, (a, b) in enumerate(zip(ref, got)):
        assert np.all(np.isfinite(b)), f"frame {i}: NaN/Inf from the GPU"
        err = float(np.abs(a / (1 + a) - b / (1 + b)).max())
        assert err <= 1e-4, f"frame {i}: GPU vs ONNX Runtime max error {err:.2e} on the [0, 1] colour"


def _marker_command(tmp: Path) -> tuple[Path, Path]:
    marker = tmp / "runtime_started"
    cmd = tmp / "fake_runtime.sh"
    cmd.write_text(f"#!/bin/sh\necho started > '{marker}'\nsleep 5\n")
    cmd.chmod(cmd.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return cmd, marker


def test_node_gpu_mode_equals_onnxruntime_and_stays_on_the_gpu(godot, gpu_project, tmp_path):
    from nss_train.sources.godot_raw import raw_frames, read_raw_frame

    cap, rec = tmp_path / "cap", tmp_path / "rec"
    cmd, marker = _marker_command(tmp_path)
    n, cut_at = 6, 3
    r = godot.run(["--path", str(gpu_project), "-s", "res://gpu_runtime_scene.gd", "--", "--out", str(cap),
                   "--frames", str(n), "--cut-at", str(cut_at), "--gpu-only-frames", "4",
                   "--low", f"{LOW[0]}x{LOW[1]}", "--scale", "2", "--nss-runtime", "gpu",
                   "--nss-record", str(rec), "--nss-runtime-command", str(cmd)], 300, display=True,
                  paths=[str(gpu_project), str(tmp_path)])
    out = _check(r, "GPU_SCENE_DONE")
    assert "neural_ss: GPU runtime (neural_ss/runtime = gpu" in out  # the one line
    res = json.loads(out.split("GPU_SCENE_DONE ", 1)[1].splitlines()[0])
    # --- parity on the captured frames (the capture's own floats), history + a cut
    raw = cap / "raw"
    seqs = raw_frames(raw)
    assert len(seqs) == n
    frames = []
    for s in seqs:
        fr, info = read_raw_frame(raw, s)
        frames.append({"colour": fr.colour, "depth": fr.depth, "motion": fr.motion,
                       "jitter": np.asarray(info["jitter"], np.float32), "cut": bool(info["cut"]),
                       "index": int(info["index"])})
    assert [f["index"] for f in frames] == list(range(n)), "the runner must see exactly the captured sequence"
    assert frames[0]["cut"] and frames[cut_at]["cut"] and not any(f["cut"] for f in frames[1:cut_at])
    assert float(np.abs(frames[cut_at]["colour"] - frames[cut_at - 1]["colour"]).mean()) > 0.02, "no real cut"
    assert max(float(np.abs(f["motion"]).max()) for f in frames[1:]) > 0.2, "no motion: history untested"
    ref = ort_outputs(DEFAULT_MODEL, frames)
    timings = [json.loads(ln) for ln in (rec / "timings.jsonl").read_text().splitlines() if ln.strip()]
    assert {t["frame"] for t in timings} >= set(range(n))
    for i, a in enumerate(ref):
        t = next(t for t in timings if t["frame"] == i)
        b = np.fromfile(rec / f"neural_{i:05d}.rgba", np.float32).reshape(t["h"], t["w"], 4)[..., :3]
        b = b.transpose(2, 0, 1)
        assert b.shape == a.shape
        err = float(np.abs(srgb(a) - srgb(b)).max())
        assert err <= DISPLAY_TOL, f"frame {i}: GPU mode vs ONNX Runtime max display error {err * 255:.2f}/255"
    # --- plain GPU mode: no readback, no process, still presenting
    assert res["backend"], res
    assert res["readbacks_end"] == res["readbacks_phase1"], f"GPU mode read frames back: {res}"
    assert res["effect_readback_flag"] is False, res
    assert res["runner_readbacks_end"] == res["runner_readbacks_phase1"] >= n, f"the runner read back: {res}"
    assert res["runs_phase2"] >= 3 and res["fresh_phase2"] >= 3, f"GPU mode stopped upscaling: {res}"
    assert res["texture_class"] == "Texture2DRD", res
    assert not [x for x in res["nodes"] if "Bridge" in x or "RuntimeClient" in x], res["nodes"]
    assert res["runtime_stat"].startswith("GPU "), res
    assert not marker.exists(), "GPU mode started the runtime process"


def test_python_mode_does_start_the_runtime_command(godot, gpu_project, tmp_path):
    """Control for the no-process check: with neural_ss/runtime = python the same command is started."""
    cmd, marker = _marker_command(tmp_path)
    r = godot.run(["--headless", "--path", str(gpu_project), "-s", "res://gpu_runtime_scene.gd", "--",
                   "--out", str(tmp_path / "cap"), "--frames", "2", "--gpu-only-frames", "1",
                   "--nss-runtime", "python", "--nss-runtime-command", str(cmd)], 120,
                  paths=[str(gpu_project), str(tmp_path)])
    assert "neural_ss: PYTHON runtime (neural_ss/runtime = python)" in r.output, r.output[-2000:]
    for _ in range(50):  # the command runs in its own process: give it a moment
        if marker.exists():
            break
        time.sleep(0.1)
    assert marker.exists(), "python mode did not start the runtime command: the no-process check is blind"


def test_no_rendering_device_falls_back_to_bilinear_without_a_process(godot, gpu_project, tmp_path):
    """auto without a RenderingDevice (--headless): BILINEAR, said once, and no runtime process."""
    model = tmp_path / "only_onnx.onnx"
    shutil.copy(DEFAULT_MODEL, model)
    r = godot.run(["--headless", "--path", str(gpu_project), "-s", "res://gpu_runtime_scene.gd", "--",
                   "--out", str(tmp_path / "cap"), "--frames", "1", "--gpu-only-frames", "1",
                   "--nss-runtime", "auto", "--nss-model", str(model)], 120, paths=[str(gpu_project), str(tmp_path)])
    assert r.output.count("no RenderingDevice") == 1, r.output[-2000:]  # said once (by the node)
    assert "BILINEAR fallback: no RenderingDevice" in r.output, r.output[-2000:]
    assert "PYTHON runtime" not in r.output and "started runtime" not in r.output, r.output[-2000:]
