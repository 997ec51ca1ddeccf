"""Measurements that run the real addon inside Godot (used by tests and benchmarks):

    run_gpu_runner          the addon's GPU program runner (a project holding res://gpu_runner_check.gd, e.g. a
                            copy of tests/godot) on given frames -> its outputs
    measure_godot_fps       upscaled frames/s of a model inside the running demo
    measure_godot_overhead  the bridge's own cost inside the demo, with the model replaced by identity
"""
from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import numpy as np

from nss_godot.toolchain import find_godot
from nss_runtime.gpu_program import load_program
from nss_train.eval import demo
from nss_train.eval.runtime_process import ToolError


def run_gpu_runner(godot, project: Path, prog_json: Path, frames: list[dict], out: Path, extra=()) -> list[np.ndarray]:
    """NeuralSSGpuRunner on `frames` (nss_train.export.onnx.random_sequence dicts) -> outputs (3, s*h, s*w)."""
    inp = out / "in"
    res = out / "res"
    inp.mkdir(parents=True)
    res.mkdir()
    h, w = frames[0]["colour"].shape[1:]
    for i, f in enumerate(frames):
        f["depth"] = np.where(np.isfinite(f["depth"]), f["depth"], 1e10).astype(np.float32)  # as the capture: 1e10
        np.concatenate([f["colour"], f["depth"]], 0).transpose(1, 2, 0).astype(np.float32).tofile(inp / f"{i:03d}.rgbd")
        f["motion"].transpose(1, 2, 0).astype(np.float32).tofile(inp / f"{i:03d}.motion")
    (inp / "frames.json").write_text(json.dumps({"w": w, "h": h, "frames": [
        {"jitter": [float(v) for v in f["jitter"]], "cut": bool(f["cut"])} for f in frames]}))
    dst = project / "progs" / prog_json.name
    dst.parent.mkdir(exist_ok=True)
    shutil.copy(prog_json, dst)
    shutil.copy(prog_json.with_name(load_program(prog_json)["weights"]["file"]), dst.parent)
    r = godot.run(["--path", str(project), "-s", "res://gpu_runner_check.gd", "--", "--program",
                   f"res://progs/{prog_json.name}", "--inputs", str(inp), "--out", str(res), *extra], 240,
                  display=True, paths=[str(project), str(out)])
    tail = "\n".join(r.output.splitlines()[-30:])
    if r.timed_out or r.errors() or r.returncode != 0 or "GPU_RUNNER_DONE" not in r.output:
        raise ToolError(f"gpu_runner_check.gd failed (exit {r.returncode}, timed out {r.timed_out}, "
                        f"errors {r.errors()[:3]}):\n{tail}")
    s = load_program(prog_json)["scale"]
    return [np.fromfile(res / f"{i:03d}.rgba", np.float32).reshape(h * s, w * s, 4)[..., :3].transpose(2, 0, 1)
            for i in range(len(frames))]


def measure_godot_fps(tmp: Path, model: str, frames: int = 60, low=(320, 180), threads: int = 2,
                      in_flight: int = 1) -> dict:
    """Upscaled frames/s of `model` inside the running demo (asynchronous, as a player sees it)."""
    g = find_godot()
    rt = demo.Runtime(model, tmp, threads)
    rec = tmp / f"fps{in_flight}"
    try:
        demo.run_godot(g, ["--low", f"{low[0]}x{low[1]}", "--scale", "2", "--mode", "neural", "--quit-after-frames",
                        str(frames), "--nss-runtime-port", str(rt.port), "--nss-runtime-token", rt.token,
                        "--nss-budget-ms", "100000", "--nss-in-flight", str(in_flight), "--nss-record", str(rec)],
                       600, "fps run")
    finally:
        rt.stop()
    rows = [json.loads(ln) for ln in (rec / "timings.jsonl").read_text().splitlines()][2:]
    span = (rows[-1]["t_ms"] - rows[0]["t_ms"]) / 1000.0
    return {"upscaled": len(rows) - 1, "seconds": round(span, 2),
            "upscaled_fps": round((len(rows) - 1) / span, 3) if span > 0 else 0.0,
            "game_frame_ms_median": float(statistics.median(r["frame_ms"] for r in rows)),
            "inference_ms_median": float(statistics.median(r["inference_ms"] for r in rows))}


def measure_godot_overhead(tmp: Path, frames: int = 30, low=(320, 180)) -> dict:
    """The bridge's own cost inside the real addon, with the model replaced by identity.

    Asynchronous run (as a player runs it): per frame, what the bridge costs the game thread: the capture
    readout plus the client's work (sending, receiving, decoding, the texture upload), against the frame
    time. Lock-step run: the round-trip latency (transfer both ways + the runtime's packing), which the
    one-frame pipelining hides from the game."""
    g = find_godot()
    r = g.import_project(demo.PROJECT, timeout=600)
    if r.errors():
        raise ToolError(f"importing {demo.PROJECT}: {r.errors()[0]}")
    out = tmp / "godot_overhead"
    demo.run_demo(g, "identity", out, frames=frames, low=low, scale=2, warmup=5, native=False,
               extra_runtime=("--scale", "2"))
    _, lock = demo.load_neural(out / "neural")
    lock = lock[3:]  # warm-up
    rt = demo.Runtime("identity", tmp, extra=("--scale", "2"))
    rec = tmp / "async"
    try:
        demo.run_godot(g, ["--low", f"{low[0]}x{low[1]}", "--scale", "2", "--mode", "neural", "--fixed-fps", "30",
                        "--quit-after-frames", str(frames + 10), "--nss-runtime-port", str(rt.port),
                        "--nss-runtime-token", rt.token, "--nss-record", str(rec)], 400, "async run")
    finally:
        rt.stop()
    rows = [ln.split() for ln in (rec / "presented.log").read_text().splitlines()]
    rows = [r for r in rows[10:] if r[2] == "READY"]
    capture = [float(r[3]) for r in rows]
    client = [float(r[4]) for r in rows]  # includes the texture upload (present)
    present = [float(r[5]) for r in rows]
    frame = [float(r[6]) for r in rows]
    med = statistics.median
    res = {"low_res": list(low), "output": [2 * low[0], 2 * low[1]], "frames": len(rows),
           "neural_frames_shown": sum(r[1] == "neural" for r in rows),
           "capture_ms_median": med(capture), "client_ms_median": med(client), "present_ms_median": med(present),
           "overhead_ms_median": med([c + k for c, k in zip(capture, client)]),
           "overhead_ms_p90": float(np.percentile([c + k for c, k in zip(capture, client)], 90)),
           "frame_ms_median": med(frame), "renderer": "lavapipe (CPU Vulkan) under Xvfb",
           "lockstep_transfer_ms_median": float(med(x["transfer_ms"] for x in lock)),
           "lockstep_runtime_packing_ms_median": float(med(x["runtime_ms"] - x["inference_ms"] for x in lock))}
    res["overhead_share_of_frame"] = res["overhead_ms_median"] / res["frame_ms_median"]
    return res
