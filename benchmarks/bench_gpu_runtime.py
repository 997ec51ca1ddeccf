"""GPU runtime benchmark: the network as RenderingDevice compute shaders (addons/neural_ss/gpu/) against ONNX
Runtime on the CPU, in the same run, on the same frames.

    python benchmarks/bench_gpu_runtime.py                       # shipped fast x2 + accum, 320x180 -> 640x360
    python benchmarks/bench_gpu_runtime.py --low 160x90 --frames 6 --repeat 2

On this machine the only Vulkan device is lavapipe (Mesa's CPU rasteriser/compute, llvmpipe), which runs the
compute shaders on the same 2 CPU cores ONNX Runtime uses: the ratio is like-for-like (same silicon, two
implementations of the same network), NOT a GPU figure. No GPU machine was lent to this task: no GPU figures.

Figures (medians over the timed frames; the first pass over the sequence is warm-up):
  - per frame: GPU-runtime GPU time (RenderingDevice timestamps around every dispatch, summed) and CPU time
    to record the commands, vs ONNX Runtime Session.upscale (CPU provider, 2 threads) on the same frames;
  - per kernel: GPU ms from the timestamps and, for convolutions, GFLOP/s (2 x MACs / time);
  - parity: max |GPU - ORT| on the [0, 1] colour over the frames.
Writes benchmarks/results/gpu_runtime.json and gpu_runtime.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nss_runtime.gpu_program import conv_flops, load_program, program_path_for
from nss_runtime.session import Session
from nss_train.export import onnx as E

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "benchmarks" / "results"


def project(godot, where: Path) -> Path:
    p = where / "project"
    shutil.copytree(ROOT / "tests/godot", p, ignore=shutil.ignore_patterns(".godot"))
    shutil.copytree(ROOT / "addons/neural_ss", p / "addons/neural_ss",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    r = godot.import_project(p, timeout=600)
    if r.timed_out or r.errors():
        raise SystemExit(f"bench_gpu_runtime: import failed: {r.errors() or 'timeout'}")
    return p


def run_gpu(godot, proj: Path, prog_json: Path, frames: list[dict], out: Path, repeat: int) -> dict:
    from nss_train.eval.godot_runs import run_gpu_runner as run_runner

    outs = run_runner(godot, proj, prog_json, frames, out, extra=["--repeat", str(repeat), "--profile"])
    res = json.loads((out / "res" / "result.json").read_text())
    res["outputs"] = outs
    return res


def bench_model(godot, proj: Path, onnx: Path, label: str, low: tuple[int, int], n: int, repeat: int,
                tmp: Path) -> dict:
    w, h = low
    frames = E.random_sequence(n, h, w, seed=7, cut_at=None)
    for f in frames:
        f["depth"] = np.where(np.isfinite(f["depth"]), f["depth"], 1e10).astype(np.float32)
    prog_json = program_path_for(onnx)
    prog = load_program(prog_json)
    gpu = run_gpu(godot, proj, prog_json, frames, tmp / label, repeat)
    # ONNX Runtime on the same frames: warm-up pass, then timed passes (as the GPU side)
    sess = Session(onnx, providers=["CPUExecutionProvider"], threads=2)
    ort_ms, ref = [], []
    for p in range(repeat):
        sess.reset()
        for f in frames:
            t0 = time.perf_counter()
            y = sess.upscale(f["colour"], f["depth"], f["motion"], f["jitter"], f["cut"])
            dt = (time.perf_counter() - t0) * 1e3
            if p == repeat - 1:
                ref.append(y)
            if p > 0:
                ort_ms.append(dt)
    err = max(float(np.abs(a / (1 + a) - b / (1 + b)).max()) for a, b in zip(ref, gpu["outputs"]))
    kms = gpu["kernel_ms"][len(frames):] or gpu["kernel_ms"]  # after the warm-up pass
    total = [float(k["total"]) for k in kms if "total" in k]
    cpu = gpu["cpu_ms"][len(frames):] or gpu["cpu_ms"]
    flops = conv_flops(prog, h, w)
    kernels = {}
    for name in kms[0]:
        if name == "total":
            continue
        t = statistics.median(float(k.get(name, 0.0)) for k in kms)
        out_t = name.split(" ")[-1].split("[")[0]
        op = name.split(" ")[1] if " " in name else name
        f = flops.get(out_t) if op == "conv2d" else None
        kernels[name] = {"ms": round(t, 3), "gflops": round(f / (t * 1e6), 2) if f and t > 0 else None}
    conv_ms = sum(v["ms"] for k, v in kernels.items() if " conv2d " in k)
    gpu_ms, ort_med = statistics.median(total), statistics.median(ort_ms)
    return {
        "model": label, "onnx": str(onnx.relative_to(ROOT)) if onnx.is_relative_to(ROOT) else str(onnx),
        "preset": prog["preset"], "ops": len(prog["ops"]), "low": [w, h], "scale": prog["scale"],
        "frames_timed": len(total), "gpu_runtime_gpu_ms": round(gpu_ms, 2),
        "gpu_runtime_record_cpu_ms": round(statistics.median(cpu), 2), "ort_cpu_ms": round(ort_med, 2),
        "ort_over_gpu_runtime": round(ort_med / gpu_ms, 3),
        "conv_gflop_per_frame": round(sum(flops.values()) / 1e9, 3),
        "conv_share_of_gpu_time": round(conv_ms / gpu_ms, 3) if gpu_ms else None,
        "conv_gflops_overall": round(sum(flops.values()) / (conv_ms * 1e6), 2) if conv_ms else None,
        "max_abs_err_01": err, "kernels": kernels,
        "adapter": gpu["adapter"], "engine": gpu["engine"],
    }


def table(rows: list[dict]) -> str:
    lines = ["| model | low -> out | GPU runtime (lavapipe) ms/frame | ONNX Runtime CPU ms/frame | ORT / GPU runtime "
             "| conv GFLOP/s (GPU runtime) | max err |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        w, h = r["low"]
        s = r["scale"]
        lines.append(f"| {r['model']} ({r['preset']}) | {w}x{h} -> {w * s}x{h * s} | {r['gpu_runtime_gpu_ms']:.1f} "
                     f"| {r['ort_cpu_ms']:.1f} | {r['ort_over_gpu_runtime']:.2f}x | {r['conv_gflops_overall']} "
                     f"| {r['max_abs_err_01']:.1e} |")
    lines.append("")
    for r in rows:
        lines.append(f"Per kernel, {r['model']} (GPU ms from RenderingDevice timestamps; GFLOP/s for convolutions):")
        lines.append("")
        lines.append("| kernel | ms | GFLOP/s |")
        lines.append("|---|---|---|")
        for k, v in sorted(r["kernels"].items(), key=lambda kv: -kv[1]["ms"])[:12]:
            lines.append(f"| {k} | {v['ms']:.3f} | {v['gflops'] if v['gflops'] is not None else '-'} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--low", default="320x180")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=3, help="passes over the sequence (the first is warm-up)")
    ap.add_argument("--models", default="fast,default",
                    help="comma list: 'fast' (models/fast_x2_godot.onnx), 'default' (the addon's default model), "
                         "'accum' (models/accum_x2.onnx if present, else a freshly initialised accum x2), or .onnx paths")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.low.lower().split("x"))
    from nss_godot.toolchain import ensure

    godot = ensure(verbose=False)
    tmp = Path(tempfile.mkdtemp(prefix="nss_bench_gpu_"))
    try:
        proj = project(godot, tmp)
        rows = []
        for m in [x.strip() for x in a.models.split(",") if x.strip()]:
            if m == "fast":
                onnx, label = ROOT / "models/fast_x2_godot.onnx", "fast_x2_godot"
            elif m == "default":
                onnx, label = ROOT / "addons/neural_ss/models/default_x2.onnx", "default_x2"
            elif m == "accum":
                onnx = ROOT / "models" / "accum_x2.onnx"
                label = "accum_x2"
                if not program_path_for(onnx).is_file():
                    import torch
                    from nss_train.models.registry import build_model, preset_config
                    torch.manual_seed(0)
                    cfg = preset_config("accum", scale=2)
                    onnx, label = tmp / "accum_x2_init.onnx", "accum_x2 (fresh weights)"
                    E.export(build_model(cfg).eval(), cfg, onnx)
            else:
                onnx, label = Path(m), Path(m).stem
            print(f"bench_gpu_runtime: {label} ...", flush=True)
            rows.append(bench_model(godot, proj, onnx, label, (w, h), a.frames, a.repeat, tmp))
            r = rows[-1]
            print(f"  GPU runtime {r['gpu_runtime_gpu_ms']:.1f} ms/frame on {r['adapter']}, ONNX Runtime CPU "
                  f"{r['ort_cpu_ms']:.1f} ms/frame: ORT / GPU runtime = {r['ort_over_gpu_runtime']:.2f}x; "
                  f"max err {r['max_abs_err_01']:.1e}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res = {"what": "GPU runtime (RenderingDevice compute shaders) vs ONNX Runtime CPU, same frames, same run",
           "note": "lavapipe (llvmpipe) runs the compute shaders on the same 2 CPU cores: a like-for-like ratio, "
                   "not a GPU figure; no GPU machine was lent to this task",
           "cpu_count": os.cpu_count(), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gpu_runtime.json").write_text(json.dumps(res, indent=1) + "\n")
    md = "# GPU runtime vs ONNX Runtime (this machine)\n\n" + res["note"] + ".\n\n" + table(rows) + "\n"
    (RESULTS / "gpu_runtime.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
