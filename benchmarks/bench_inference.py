"""Inference benchmark: ONNX Runtime (the shipped runtime Session) vs PyTorch eager, on this CPU.

    python benchmarks/bench_inference.py                  # both presets, 2x -> 640x360 and 4x -> 1280x720
    python benchmarks/bench_inference.py --presets fast --reps 5

Absolute times on a shared machine are noise, so every figure that matters is
a ratio measured in this one run, with the two sides interleaved frame by frame:
  - ORT (CPU provider, fp32, all graph optimisations) vs PyTorch eager on the same frames;
  - achieved GFLOP/s (convolution FLOPs / ORT time) vs a matmul GFLOP/s probe run in this process;
  - the history the exporter ships (cached per-frame data of the previous frames) vs a window graph that takes
    the raw n_prev + 1 frames and recomputes everything every frame;
  - frames/s of `fast` at 2x -> 640x360 (the real-time bar: 20 frames/s on 2 cores).
Peak memory of the Session is measured in a fresh process (numpy + onnxruntime only, like the game's runtime).
Writes benchmarks/results/inference.json and inference.md (the README table). No GPU was available: CPU only.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nss_runtime.session import Session
from nss_train.export import onnx as E
from probe import matmul_probe  # benchmarks/probe.py, beside this file (python puts the script's folder on the path)

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "benchmarks" / "results"
BARS = {"ort_vs_torch": 1.2, "matmul_fraction": 0.5, "fast_x2_fps": 20.0}
CASES = [(2, (640, 360)), (4, (1280, 720))]  # scale, output size


def _ort_session(path: Path, threads: int):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the Session does
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def export_window(model, path: Path, h: int, w: int) -> None:
    """The non-recurrent graph: raw window of n_prev + 1 frames -> current frame (model.forward)."""
    import contextlib
    import io
    import logging
    import warnings

    import torch
    from torch.export import Dim

    T, m = model.cfg.n_prev + 1, model.cfg.multiple
    args = (torch.rand(1, T, 3, h, w), 1 + torch.rand(1, T, 1, h, w), torch.randn(1, T, 2, h, w), torch.zeros(1, T, 2))
    H, W = m * Dim("h_blocks", min=1, max=4096 // m), m * Dim("w_blocks", min=1, max=8192 // m)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(model, args, None, input_names=["colour", "depth", "motion", "jitter"],
                                 dynamo=True, opset_version=E.OPSET, external_data=False,
                                 dynamic_shapes=({3: H, 4: W}, {3: H, 4: W}, {3: H, 4: W}, None))
    from nss_runtime.frames import atomic_write_bytes
    atomic_write_bytes(path, prog.model_proto.SerializeToString())


def peak_memory_mb(model: Path, w: int, h: int, threads: int, frames: int = 3) -> dict:
    """Peak RSS growth of a fresh process that loads the Session and upscales `frames` frames."""
    code = f"""
import numpy as np, json, sys
from nss_runtime.session import Session
def rss(key):
    for line in open('/proc/self/status'):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
rng = np.random.default_rng(0)
c = rng.random((3, {h}, {w}), dtype=np.float32); d = 1 + 9 * rng.random((1, {h}, {w}), dtype=np.float32)
m = rng.standard_normal((2, {h}, {w}), dtype=np.float32)
base = rss('VmRSS:')
s = Session({str(model)!r}, providers=['CPUExecutionProvider'], threads={threads})
loaded = rss('VmRSS:')
for i in range({frames}):
    s.upscale(c, d, m)
print(json.dumps({{'base_mb': base, 'after_load_mb': loaded - base, 'peak_mb': rss('VmHWM:') - base}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    if out.returncode:
        raise RuntimeError(f"memory probe failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_case(preset: str, scale: int, out_size: tuple[int, int], reps: int, threads: int, tmp: Path,
               log) -> dict:
    import torch
    from nss_train.models.registry import build_model, preset_config

    W, H = out_size
    w, h = W // scale, H // scale
    torch.manual_seed(0)
    cfg = preset_config(preset, scale=scale)
    model = build_model(cfg).eval()
    path = tmp / f"{preset}_x{scale}.onnx"
    E.export(model, cfg, path, gpu_program=False)
    frames = E.random_sequence(3, h, w, seed=0)
    recurrent = bool(getattr(model, "recurrent", False))  # accum: its history IS the model; no window variant
    # as the server runs it: it validates frames itself, cheaper than per-element masks
    sess = Session(path, providers=["CPUExecutionProvider"], threads=threads, validate=False)
    hist = [None]

    def run_ort(f):
        sess.upscale(f["colour"], f["depth"], f["motion"], f["jitter"], cut=False)

    def run_torch(f):
        with torch.no_grad():
            c, d, m = (torch.from_numpy(f[k])[None] for k in ("colour", "depth", "motion"))
            j = torch.from_numpy(np.asarray(f["jitter"], np.float32)).view(1, 2)
            if hist[0] is None:
                hist[0] = model.init_history(1, h, w)
            _, *hist[0] = model.step(c, d, m, j, torch.zeros(1), *hist[0])

    # the alternative to a history: a window graph that takes the raw n_prev + 1 frames and recomputes everything
    runners = {"ort": run_ort, "torch": run_torch}
    if not recurrent:
        path_w = tmp / f"{preset}_x{scale}_window.onnx"
        export_window(model, path_w, h, w)
        window = _ort_session(path_w, threads)
        T = cfg.n_prev + 1
        win = {k: np.stack([frames[i % len(frames)][k] for i in range(T)])[None]
               for k in ("colour", "depth", "motion")}
        win["jitter"] = np.stack([frames[i % len(frames)]["jitter"] for i in range(T)])[None].astype(np.float32)
        win["depth"] = np.minimum(win["depth"], 1e10)

        def run_window(f):
            window.run(None, win)

        runners["ort_window"] = run_window
    times = {k: [] for k in runners}
    mm = []
    for k, fn in runners.items():  # warm-up: first-run allocations, history set-up
        fn(frames[0])
    for r in range(reps):
        f = frames[r % len(frames)]
        for k, fn in runners.items():
            t = time.perf_counter()
            fn(f)
            times[k].append(time.perf_counter() - t)
        mm.append(matmul_probe())
    ms = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    matmul = statistics.median(mm)
    flops_px = model.flops_per_output_pixel(h, w)
    gflop = flops_px * W * H / 1e9
    res = {
        "preset": preset, "scale": scale, "input": [w, h], "output": [W, H], "params": sum(
            p.numel() for p in model.parameters()),
        "ort_ms": ms["ort"], "torch_ms": ms["torch"], "ort_vs_torch": ms["torch"] / ms["ort"],
        "ort_fps": 1e3 / ms["ort"], "flops_per_output_px": flops_px, "gflop_per_frame": gflop,
        "ort_gflops": gflop / (ms["ort"] / 1e3), "torch_gflops": gflop / (ms["torch"] / 1e3),
        "matmul_gflops": matmul, "matmul_fraction": gflop / (ms["ort"] / 1e3) / matmul,
        "history_variant": ", ".join(f"{n} {list(sh[1:])}" for n, sh in model.history_spec(h, w)),
        "window_ms": ms.get("ort_window"), "history_vs_window": ms["ort_window"] / ms["ort"] if not recurrent else None,
        "flops_counted": "every op (model.cost_table)" if hasattr(model, "cost_table") else "convolutions only",
        "reps": reps, "times_ms": {k: [1e3 * t for t in v] for k, v in times.items()},
    }
    res["memory"] = peak_memory_mb(path, w, h, threads)
    res["loadavg"] = list(os.getloadavg())  # the machine is shared: say how busy it was
    res["measured"] = time.strftime("%Y-%m-%d %H:%M:%S")
    res["model_mb"] = path.stat().st_size / 1e6
    log(f"{preset} x{scale} {w}x{h}->{W}x{H}: ORT {ms['ort']:.1f} ms ({res['ort_fps']:.1f} fps), torch "
        f"{ms['torch']:.1f} ms -> ORT {res['ort_vs_torch']:.2f}x; {flops_px / 1e3:.1f} kFLOP/px, "
        f"{res['ort_gflops']:.1f} GFLOP/s = {100 * res['matmul_fraction']:.0f}% of matmul {matmul:.1f}; "
        f"peak {res['memory']['peak_mb']:.0f} MB"
        + (f"; history {res['history_vs_window']:.2f}x faster than recomputing the window" if not recurrent else
           "; recurrent (no window variant)"))
    return res


def markdown(results: list[dict], env: dict) -> str:
    rows = ["| preset | scale | in -> out | ORT ms (fps) | PyTorch ms | ORT / PyTorch speed-up | kFLOP / out px | "
            "ORT GFLOP/s (% of matmul) | peak MB | history vs recompute window |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r['preset']} | {r['scale']}x | {r['input'][0]}x{r['input'][1]} -> {r['output'][0]}x"
                    f"{r['output'][1]} | {r['ort_ms']:.1f} ({r['ort_fps']:.1f}) | {r['torch_ms']:.1f} | "
                    f"{r['ort_vs_torch']:.2f}x | {r['flops_per_output_px'] / 1e3:.1f} | {r['ort_gflops']:.1f} "
                    f"({100 * r['matmul_fraction']:.0f}%) | {r['memory']['peak_mb']:.0f} | "
                    + (f"{r['history_vs_window']:.2f}x |" if r.get("history_vs_window") else "recurrent: n/a |"))
    rows.append("")
    loads = ", ".join(f"{r['preset']} x{r['scale']} {r['loadavg'][0]:.1f}" for r in results if "loadavg" in r)
    rows.append(f"CPU only ({env['cpu']}, {env['threads']} threads, onnxruntime {env['onnxruntime']}, torch "
                f"{env['torch']}, {env['cores']} cores shared with other jobs; 1-min load average when measured: "
                f"{loads}); no GPU machine was available to this task. Matmul probe: fp32 1024x1024 "
                "torch.mm in the same process. FLOPs: accum counts every op (nss_train.models.accum.cost_table: warps, "
                "gathers, element-wise, convolutions); the other presets count convolutions only (grid_sample, "
                "resize and element-wise ops not counted). Ratios are medians of interleaved runs in one process.")
    return "\n".join(rows) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", default="fast,nsrr")
    ap.add_argument("--scales", default="2,4", help="2 -> 640x360 output, 4 -> 1280x720 output")
    ap.add_argument("--reps", type=int, default=5, help="timed frames per side (nsrr uses at most 3)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS / "inference.json")
    a = ap.parse_args(argv)
    import onnxruntime
    import torch

    torch.set_num_threads(a.threads)
    env = {"cpu": platform.processor() or platform.machine(), "threads": a.threads, "cores": os.cpu_count(),
           "onnxruntime": onnxruntime.__version__, "torch": torch.__version__, "gpu": None,
           "note": "no GPU machine was available to this task; all figures are CPU (CPUExecutionProvider, fp32)",
           "loadavg_start": list(os.getloadavg())}
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    cases = [(p, s, o) for p in a.presets.split(",") for s, o in CASES if str(s) in a.scales.split(",")]
    results = []
    bar = tqdm(cases, desc="bench_inference", unit="case") if tqdm else cases
    log = (bar.write if tqdm else print)
    with tempfile.TemporaryDirectory(prefix="nss_bench_") as tmp:
        for preset, scale, out in bar:
            reps = a.reps if preset == "fast" else min(a.reps, 3)
            results.append(bench_case(preset, scale, out, reps, a.threads, Path(tmp), log))
    # a partial run (--presets/--scales) replaces its own rows and keeps the others
    if a.out.is_file():
        try:
            old = json.loads(a.out.read_text()).get("results", [])
        except (json.JSONDecodeError, AttributeError):
            old = []
        done = {(r["preset"], r["scale"]) for r in results}
        results = [r for r in old if (r.get("preset"), r.get("scale")) not in done] + results
        results.sort(key=lambda r: (r["preset"] != "fast", r["preset"], r["scale"]))
    bars = {}
    for r in results:
        key = f"{r['preset']}_x{r['scale']}"
        bars[f"{key}: ORT >= {BARS['ort_vs_torch']}x PyTorch"] = r["ort_vs_torch"] >= BARS["ort_vs_torch"]
        bars[f"{key}: ORT >= {BARS['matmul_fraction']:.0%} of matmul GFLOP/s"] = \
            r["matmul_fraction"] >= BARS["matmul_fraction"]
        if r["preset"] == "fast" and r["scale"] == 2:
            bars[f"{key}: >= {BARS['fast_x2_fps']:g} frames/s"] = r["ort_fps"] >= BARS["fast_x2_fps"]
    for k, v in bars.items():
        print(f"{'PASS' if v else 'MISS'}  {k}")
    env["loadavg_end"] = list(os.getloadavg())
    doc = {"benchmark": "inference", "env": env, "bars": bars, "results": results}
    from nss_runtime.frames import atomic_write_bytes
    atomic_write_bytes(a.out, (json.dumps(doc, indent=1) + "\n").encode())
    atomic_write_bytes(a.out.with_suffix(".md"), markdown(results, env).encode())
    print(f"wrote {a.out} and {a.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
