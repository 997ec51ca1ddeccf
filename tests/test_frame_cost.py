"""benchmarks/bench_frame_cost.py: the per-repetition arithmetic of its tables and its one-line errors, and
(marker godot) one tiny end-to-end run in Godot: bilinear, neural on the GPU runtime and neural with the
network skipped, with the per-dispatch timestamps. No timing is asserted, only that every figure was measured
and that the skip mode really skips the network."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from nss_train.eval.runtime_process import ToolError

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_frame_cost", ROOT / "benchmarks" / "bench_frame_cost.py")
B = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(B)


def _run(wall: float, gpu: float, n: int = 3) -> dict:
    return {"frames": [{"wall_ms": wall, "gpu_ms": gpu} for _ in range(n)], "render_size": [8, 8]}


def test_added_cost_and_ratio_are_taken_within_each_repetition():
    # rep 0 runs on a quiet machine, rep 1 on one twice as slow: within each, neural adds 4x FSR2's cost
    runs = {("demo", (16, 16)): {
        "bilinear": [_run(10, 5), _run(20, 10)],
        "fsr2": [_run(15, 6), _run(30, 12)],
        "neural": [_run(30, 9), _run(60, 18)],
        "neural_skip": [_run(12, 6), _run(24, 12)],
    }}
    (b,) = B.summarise(runs, ["bilinear", "fsr2", "neural", "neural_skip"], {})
    m = b["methods"]
    assert m["bilinear"]["added_wall_ms"] == {"min": 0, "median": 0, "max": 0}
    assert m["neural"]["added_wall_ms_reps"] == [20, 40]
    assert m["neural"]["ratio_to_fsr2_wall_ms"] == {"min": 4.0, "median": 4.0, "max": 4.0}
    assert m["neural"]["ratio_to_fsr2_gpu_ms"] == {"min": 4.0, "median": 4.0, "max": 4.0}
    assert m["fsr2"]["wall_ms"] == {"min": 15, "median": 22.5, "max": 30}
    assert b["network"]["wall_ms"] == {"min": 18, "median": 27.0, "max": 36}  # neural - neural_skip
    assert b["network"]["share_of_neural_added_wall_ms"]["median"] == pytest.approx(0.9)
    md = B.markdown({"adapter": "x", "command": "c", "engine": "e", "cpu_count": 2, "scale": 2, "warmup": 1,
                     "frames": 3, "reps": 2, "methods": list(m), "note": "n", "blocks": [b]})
    assert "| neural | 45.0 (30.0..60.0) | 30.0 (20.0..40.0) | 4.00x (4.00..4.00) |" in md


def test_bad_arguments_get_one_line_errors():
    with pytest.raises(ToolError, match="needs bilinear"):
        B.parse_methods("fsr2,neural")
    with pytest.raises(ToolError, match="unknown"):
        B.parse_methods("bilinear,fsr3")
    with pytest.raises(ToolError, match="multiples of 4"):
        B.parse_sizes("1280x722", 2)
    with pytest.raises(ToolError, match="unknown"):
        B.parse_scenes("demo,nowhere")
    assert B.parse_sizes("1280x720,1920x1080", 2) == [(1280, 720), (1920, 1080)]


@pytest.mark.godot
def test_tiny_run_measures_every_method_and_skips_the_network(godot, tmp_path):
    out = tmp_path / "frame_cost"
    rc = B.main(["--out", str(out), "--scenes", "demo", "--sizes", "320x180", "--methods",
                 "bilinear,neural,neural_skip", "--warmup", "2", "--frames", "2", "--reps", "1", "--kernels",
                 "--timeout", "300"])
    assert rc == 0
    res = json.loads(out.with_suffix(".json").read_text())
    md = out.with_suffix(".md").read_text()
    (b,) = res["blocks"]
    assert (b["scene"], b["output"], b["render"]) == ("demo", [320, 180], [160, 90])
    assert list(b["methods"]) == ["bilinear", "neural", "neural_skip"]
    for m, v in b["methods"].items():
        assert v["wall_ms"]["min"] > 0 and v["gpu_ms"]["min"] > 0, (m, v)
        assert set(v["added_wall_ms"]) == {"min", "median", "max"}
    assert "network" in b and "wall_ms" in b["network"]
    runs = res["runs"]["demo_320x180"]
    assert all(len(r["frames"]) == 2 for rs in runs.values() for r in rs)
    # the network ran every frame in neural, never in neural_skip, and both presented their own image
    assert runs["neural"][0]["network_frames_run"] >= 2
    assert runs["neural_skip"][0]["network_frames_run"] == 0
    assert runs["neural"][0]["fresh_frames"] == runs["neural_skip"][0]["fresh_frames"] == 2
    assert "network skipped" in runs["neural_skip"][0]["runtime"]
    # the per-dispatch timestamps of the profiled neural run: every op of the program, non-zero in total
    k = b["kernels"]
    assert k["network_gpu_ms"]["min"] > 0
    from nss_runtime.gpu_program import load_program
    prog = load_program(Path(__file__).resolve().parents[1] / "addons/neural_ss/models/default_x2.nssgpu.json")
    assert {name.split(" ")[-1] for name in k["dispatch_ms"]} >= {op["out"] for op in prog["ops"]}, k["dispatch_ms"]
    assert "## demo: 160x90 -> 320x180" in md and "| neural_skip |" in md and "Network (neural - neural_skip)" in md
