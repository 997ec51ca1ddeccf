"""GPU runtime benchmark: the network as RenderingDevice compute shaders (addons/neural_ss/gpu/) against ONNX
Runtime on the CPU, in the same run, on the same frames; optionally against the GPU runtime of an earlier
commit (--baseline REV: its addon and its GPU program, e.g. the 44-op runtime (56 dispatches) before the fused passes).

    python benchmarks/bench_gpu_runtime.py                                   # default_x2 (accum), 320x180 -> 640x360
    python benchmarks/bench_gpu_runtime.py --baseline 0c40c8b --rounds 2     # + the old runtime, interleaved
    python benchmarks/bench_gpu_runtime.py --low 640x360 --frames 4

On this machine the only Vulkan device is lavapipe (Mesa's CPU rasteriser/compute, llvmpipe), which runs the
compute shaders on the same 2 CPU cores ONNX Runtime uses: the ratio is like-for-like (same silicon, two
implementations of the same network), NOT a GPU figure.

Figures (per round: one Godot run per runtime and one ONNX Runtime pass, interleaved; each side's first pass
over the sequence is warm-up; medians over the timed frames, then the median over rounds):
  - per frame: GPU time of the runtime (RenderingDevice timestamps around every dispatch, summed) and ONNX
    Runtime's Session.upscale (CPU provider, 2 threads);
  - per pass: GPU ms and GFLOP/s counting every op the pass fuses (nss_runtime.gpu_program.pass_flops: the
    rows of nss_train.models.accum.cost_table); the baseline's kernels are summed into the same passes;
  - ONNX Runtime's convolutions (its profiler: Conv node times, same FLOPs) against the conv passes;
  - parity: max |GPU - ORT| on the [0, 1] colour over the frames;
  - "fastest frame": the minimum over all timed frames instead of the median, on both sides (on a shared
    machine the least-disturbed frame is the closer estimate of what each implementation costs).
Writes benchmarks/results/gpu_runtime.json and gpu_runtime.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nss_runtime.gpu_program import load_program, pass_flops, program_path_for
from nss_runtime.session import Session
from nss_train.export import onnx as E

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "benchmarks" / "results"
DEFAULT = ROOT / "addons/neural_ss/models/default_x2.onnx"


def project(godot, where: Path, src: Path = ROOT) -> Path:
    p = where / "project"
    shutil.copytree(src / "tests/godot", p, ignore=shutil.ignore_patterns(".godot"))
    shutil.copytree(src / "addons/neural_ss", p / "addons/neural_ss",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    r = godot.import_project(p, timeout=600)
    if r.timed_out or r.errors():
        raise SystemExit(f"bench_gpu_runtime: import failed: {r.errors() or 'timeout'}")
    return p


def baseline_tree(rev: str, where: Path) -> Path:
    """The addon, the Godot test scripts and the default model's program of commit `rev` (git archive)."""
    where.mkdir(parents=True)
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "addons/neural_ss", "tests/godot"],
                         capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=tar, check=True)
    return where


def run_gpu(godot, proj: Path, prog_json: Path, frames: list[dict], out: Path, repeat: int) -> dict:
    from nss_train.eval.godot_runs import run_gpu_runner as run_runner

    outs = run_runner(godot, proj, prog_json, [dict(f) for f in frames], out,
                      extra=["--repeat", str(repeat), "--profile"])
    res = json.loads((out / "res" / "result.json").read_text())
    res["outputs"] = outs
    kms = res["kernel_ms"][len(frames):] or res["kernel_ms"]  # after the warm-up pass
    res["kernels"] = {k: statistics.median(float(x.get(k, 0.0)) for x in kms) for k in kms[0]}
    res["kernels_min"] = {k: min(float(x.get(k, 0.0)) for x in kms) for k in kms[0]}
    return res


def old_pass_of(prog: dict) -> dict[str, str]:
    """Kernel label of a version-1 (one op per dispatch) accum program -> the fused pass that now does it."""
    ops = prog["ops"]
    conv = {op["out"]: i for i, op in enumerate(ops) if op["op"] == "conv2d"}
    out = {"input": "net_in", "output": "rgb"}
    for i, op in enumerate(ops):
        if i < conv["e1"]:
            p = "net_in"
        elif i < conv["e2"]:
            p = "e1"
        elif i < conv["e3"]:
            p = "e2"
        elif i == conv["e3"]:
            p = "e3"
        elif i <= conv["d1"]:
            p = "d1"
        else:
            p = "rgb"
        out[f"{i:02d} {op['op']} {op['out']}"] = p
    for h in prog["history"]:
        out[f"history {h['name']}"] = "rgb"
    return out


def ort_run(onnx: Path, frames: list[dict], repeat: int, conv_names: list[str]) -> dict:
    """ONNX Runtime on the frames (warm-up pass, then timed passes) with its profiler on: per-frame ms and the
    Conv nodes' time (profiled in the last pass)."""
    import onnxruntime as ort

    sess = Session(onnx, providers=["CPUExecutionProvider"], threads=2)
    ms, outs = [], []
    for p in range(repeat):
        sess.reset()
        for f in frames:
            t0 = time.perf_counter()
            y = sess.upscale(f["colour"], f["depth"], f["motion"], f["jitter"], f["cut"])
            dt = (time.perf_counter() - t0) * 1e3
            if p == repeat - 1:
                outs.append(y)
            if p > 0:
                ms.append(dt)
    # profiler pass (not timed above: profiling adds overhead): a second session with the same options
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads, so.inter_op_num_threads = 2, 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.enable_profiling = True
    so.profile_file_prefix = str(Path(tempfile.mkdtemp(prefix="nss_ort_prof_")) / "ort")
    prof = Session(onnx, providers=["CPUExecutionProvider"], threads=2)
    prof._sess = ort.InferenceSession(str(onnx), sess_options=so, providers=["CPUExecutionProvider"])
    for f in frames:
        prof.upscale(f["colour"], f["depth"], f["motion"], f["jitter"], f["cut"])
    events = json.loads(Path(prof._sess.end_profiling()).read_text())
    runs: list[list[float]] = []
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            runs.append([])
    per_frame, cur = [], []
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            if e.get("args", {}).get("op_name") in ("Conv", "FusedConv"):
                cur.append(float(e["dur"]) / 1e3)
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            per_frame.append(cur)
            cur = []
    per_frame = [f for f in per_frame if f][1:] or [f for f in per_frame if f]  # drop the first (warm-up)
    conv, conv_min = {}, {}
    if per_frame and all(len(f) == len(conv_names) for f in per_frame):
        for i, n in enumerate(conv_names):
            conv[n] = statistics.median(f[i] for f in per_frame)
            conv_min[n] = min(f[i] for f in per_frame)
    conv_total = statistics.median(sum(f) for f in per_frame) if per_frame else None
    return {"ms": statistics.median(ms), "ms_min": min(ms), "outputs": outs, "conv_ms": conv,
            "conv_ms_min": conv_min, "conv_total_ms": conv_total}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--low", default="320x180")
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=2, help="passes over the sequence per run (the first is warm-up)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds (GPU runtime, baseline, ORT)")
    ap.add_argument("--model", default=str(DEFAULT), help="an exported accum .onnx with its GPU program beside it")
    ap.add_argument("--baseline", default="", help="git revision whose GPU runtime and default_x2 program to "
                                                   "compare with (e.g. 0c40c8b: the 44-op, 56-dispatch runtime)")
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.low.lower().split("x"))
    from nss_godot.toolchain import ensure

    godot = ensure(verbose=False)
    onnx = Path(a.model)
    prog_json = program_path_for(onnx)
    prog = load_program(prog_json)
    flops = pass_flops(prog, h, w)
    conv_names = [op["out"] for op in prog["ops"] if op["op"] == "conv2d"] + ["head"]
    conv_flops = {op["out"]: 2.0 * np.prod(_res(prog, op["out"], h, w)) * op["cout"] * op["cin"] * op["k"] ** 2
                  for op in prog["ops"] if op["op"] == "conv2d"}
    head = next(op for op in prog["ops"] if op["op"] == "accum_output")
    conv_flops["head"] = 2.0 * h * w * head["w"][1]
    frames = E.random_sequence(a.frames, h, w, seed=7, cut_at=None)
    for f in frames:
        f["depth"] = np.where(np.isfinite(f["depth"]), f["depth"], 1e10).astype(np.float32)
    tmp = Path(tempfile.mkdtemp(prefix="nss_bench_gpu_"))
    rows: dict[str, list] = {"new": [], "old": [], "ort": []}
    try:
        proj = project(godot, tmp / "new")
        old_proj = old_prog = None
        if a.baseline:
            src = baseline_tree(a.baseline, tmp / "old_src")
            old_proj = project(godot, tmp / "old", src)
            old_prog = src / "addons/neural_ss/models/default_x2.nssgpu.json"
        for r in range(a.rounds):
            print(f"bench_gpu_runtime: round {r + 1}/{a.rounds} ...", flush=True)
            rows["new"].append(run_gpu(godot, proj, prog_json, frames, tmp / f"run_new_{r}", a.repeat))
            if old_proj is not None:
                rows["old"].append(run_gpu(godot, old_proj, old_prog, frames, tmp / f"run_old_{r}", a.repeat))
            rows["ort"].append(ort_run(onnx, frames, a.repeat, conv_names))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    ref = rows["ort"][-1]["outputs"]
    err = max(float(np.abs(x / (1 + x) - y / (1 + y)).max()) for x, y in zip(ref, rows["new"][-1]["outputs"]))
    psnr = [10 * np.log10(1.0 / max(float(np.mean((x / (1 + x) - y / (1 + y)) ** 2)), 1e-20))
            for x, y in zip(ref, rows["new"][-1]["outputs"])]
    passes = {}
    for op in prog["ops"]:
        label = next(k for k in rows["new"][0]["kernels"] if k.endswith(" " + op["out"]))
        t = med(run["kernels"][label] for run in rows["new"])
        tm = min(run["kernels_min"][label] for run in rows["new"])
        passes[op["out"]] = {"label": label, "ms": round(t, 2), "gflops": round(flops[op["out"]] / (t * 1e6), 2),
                             "min_ms": round(tm, 2), "min_gflops": round(flops[op["out"]] / (tm * 1e6), 2)}
    if rows["old"]:
        old_of = old_pass_of(_load_v1(a.baseline))
        for name in passes:
            t = med(sum(v for k, v in run["kernels"].items() if old_of.get(k) == name) for run in rows["old"])
            passes[name]["old_ms"] = round(t, 2)
            passes[name]["old_gflops"] = round(flops[name] / (t * 1e6), 2) if t > 0 else None
    ort_conv = {}
    for n in conv_names:
        ts = [o["conv_ms"][n] for o in rows["ort"] if n in o["conv_ms"]]
        if ts:
            tm = min(o["conv_ms_min"][n] for o in rows["ort"] if n in o["conv_ms_min"])
            ort_conv[n] = {"ms": round(med(ts), 2), "gflops": round(conv_flops[n] / (med(ts) * 1e6), 2),
                           "min_ms": round(tm, 2), "min_gflops": round(conv_flops[n] / (tm * 1e6), 2)}
    new_total = med(run["kernels"]["total"] for run in rows["new"])
    conv3 = [n for n in conv_names if n != "head"]
    new_conv_ms = sum(passes[n]["ms"] for n in conv3)
    new_conv_min = sum(passes[n]["min_ms"] for n in conv3)
    have_ort = all(n in ort_conv for n in conv3)
    ort_conv_ms = sum(ort_conv[n]["ms"] for n in conv3) if have_ort else None
    ort_conv_min = sum(ort_conv[n]["min_ms"] for n in conv3) if have_ort else None
    res = {
        "what": "GPU runtime (RenderingDevice compute shaders) vs ONNX Runtime CPU (and --baseline), same frames, "
                "interleaved rounds",
        "note": "lavapipe (llvmpipe) runs the compute shaders on the same 2 CPU cores ONNX Runtime uses: a "
                "like-for-like ratio, not a GPU figure",
        "model": str(onnx.relative_to(ROOT)) if onnx.is_relative_to(ROOT) else str(onnx), "low": [w, h],
        "scale": prog["scale"], "frames": a.frames, "rounds": a.rounds, "cpu_count": os.cpu_count(),
        "adapter": rows["new"][0]["adapter"], "engine": rows["new"][0]["engine"],
        "dispatches": len(prog["ops"]), "baseline": a.baseline or None,
        "baseline_dispatches": (len(rows["old"][0]["kernels"]) - 1) if rows["old"] else None,
        "gpu_ms": round(new_total, 2),
        "gpu_ms_min": round(min(run["kernels_min"]["total"] for run in rows["new"]), 2),
        "ort_ms_min": round(min(o["ms_min"] for o in rows["ort"]), 2),
        "baseline_gpu_ms": round(med(run["kernels"]["total"] for run in rows["old"]), 2) if rows["old"] else None,
        "ort_ms": round(med(o["ms"] for o in rows["ort"]), 2),
        "gflop_per_frame": round(sum(flops.values()) / 1e9, 3),
        "kflop_per_output_pixel": round(sum(flops.values()) / (w * h * prog["scale"] ** 2) / 1e3, 2),
        "passes": passes, "ort_conv": ort_conv,
        "conv_gflops": round(sum(conv_flops[n] for n in conv3) / (new_conv_ms * 1e6), 2),
        "ort_conv_gflops": round(sum(conv_flops[n] for n in conv3) / (ort_conv_ms * 1e6), 2) if ort_conv_ms else None,
        "conv_gflops_min": round(sum(conv_flops[n] for n in conv3) / (new_conv_min * 1e6), 2),
        "ort_conv_gflops_min": (round(sum(conv_flops[n] for n in conv3) / (ort_conv_min * 1e6), 2)
                                if ort_conv_min else None),
        "max_abs_err_01": err, "psnr_vs_ort_db": round(min(psnr), 1),
    }
    if res["ort_conv_gflops"]:
        res["conv_over_ort"] = round(res["conv_gflops"] / res["ort_conv_gflops"], 3)
        res["conv_over_ort_min"] = round(res["conv_gflops_min"] / res["ort_conv_gflops_min"], 3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gpu_runtime.json").write_text(json.dumps(res, indent=1) + "\n")
    md = table(res)
    (RESULTS / "gpu_runtime.md").write_text(md)
    print(md)
    return 0


def _load_v1(rev: str) -> dict:
    """The baseline's default_x2 program (read from git: its tree was deleted with the temp dir)."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:addons/neural_ss/models/default_x2.nssgpu.json"],
                          capture_output=True, check=True, text=True).stdout
    return json.loads(text)


def _res(prog: dict, name: str, h: int, w: int) -> tuple[int, int]:
    from nss_runtime.gpu_program import res_size
    return res_size(prog["tensors"][name]["res"], h, w, prog["scale"])


def table(r: dict) -> str:
    w, h = r["low"]
    s = r["scale"]
    old = r["baseline"] is not None
    lines = ["# GPU runtime vs ONNX Runtime (this machine)", "", r["note"] + f"; {r['adapter']}, {r['engine']}.", "",
             f"{r['model']}, {w}x{h} -> {w * s}x{h * s}, {r['frames']} frames, {r['rounds']} interleaved rounds: "
             f"{r['gflop_per_frame']} GFLOP per frame ({r['kflop_per_output_pixel']} kFLOP per output pixel, "
             "every op counted).", "",
             "| | dispatches | GPU ms/frame | ONNX Runtime CPU ms/frame | ORT / GPU runtime |", "|---|---|---|---|---|",
             f"| GPU runtime | {r['dispatches']} | {r['gpu_ms']:.1f} | {r['ort_ms']:.1f} | "
             f"{r['ort_ms'] / r['gpu_ms']:.2f}x |"]
    if old:
        lines.append(f"| baseline {r['baseline']} | {r['baseline_dispatches']} | {r['baseline_gpu_ms']:.1f} | "
                     f"{r['ort_ms']:.1f} | {r['ort_ms'] / r['baseline_gpu_ms']:.2f}x |")
    lines.append(f"| GPU runtime, fastest frame | {r['dispatches']} | {r['gpu_ms_min']:.1f} | {r['ort_ms_min']:.1f} | "
                 f"{r['ort_ms_min'] / r['gpu_ms_min']:.2f}x |")
    lines += ["", "Per pass (GFLOP/s counting every op the pass fuses; the baseline's kernels summed into the same "
              "passes; ONNX Runtime's Conv nodes from its profiler):", "",
              "| pass | ms | GFLOP/s | fastest frame ms | GFLOP/s |" + (" baseline ms | baseline GFLOP/s |" if old else "")
              + " ORT conv ms | ORT conv GFLOP/s | ORT fastest ms | GFLOP/s |",
              "|---|---|---|---|---|" + ("---|---|" if old else "") + "---|---|---|---|"]
    for name, p in r["passes"].items():
        oc = r["ort_conv"].get(name if name != "rgb" else "head")
        row = f"| {p['label']} | {p['ms']:.1f} | {p['gflops']} | {p['min_ms']:.1f} | {p['min_gflops']} |"
        if old:
            row += f" {p.get('old_ms', '-')} | {p.get('old_gflops', '-')} |"
        row += (f" {oc['ms']:.1f}{' (head)' if name == 'rgb' else ''} | {oc['gflops']} | {oc['min_ms']:.1f} | "
                f"{oc['min_gflops']} |" if oc else " - | - | - | - |")
        lines.append(row)
    lines += ["", f"3x3 convolutions (e1, e2, e3, d1): GPU runtime {r['conv_gflops']} GFLOP/s, ONNX Runtime "
              f"{r['ort_conv_gflops']} GFLOP/s" + (f" (ratio {r['conv_over_ort']}; fastest frames "
                                                 f"{r['conv_gflops_min']} vs {r['ort_conv_gflops_min']}, ratio "
                                                 f"{r['conv_over_ort_min']})" if r.get("conv_over_ort") else "")
              + f". Parity on these frames: max |GPU - ORT| {r['max_abs_err_01']:.1e} on the [0, 1] colour, PSNR "
              f"{r['psnr_vs_ort_db']} dB (worst frame).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
