"""Model benchmark: cost of the two presets in PyTorch on this CPU, as ratios measured in one run.

    python benchmarks/bench_model.py                 # 2x -> 640x360, both presets
    python benchmarks/bench_model.py --reps 5 --scale 4

Absolute times on a shared machine are noise; what this reports is measured in
one process with the cases interleaved rep by rep:
  - parameters, convolution FLOPs per output pixel and GFLOP per frame (counted, exact);
  - streaming-step time of nsrr / fast (vs their FLOP ratio);
  - each preset's step time vs the bilinear and TAA baselines on the same frame;
  - achieved GFLOP/s vs a matmul GFLOP/s probe;
  - a training step (forward + backward, batch 8, 48x48 crops) of nsrr / fast.
Writes benchmarks/results/model.json. (ONNX Runtime figures: benchmarks/bench_inference.py.)
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

from nss_train.eval import baselines as B
from nss_runtime.frames import atomic_write_bytes
from nss_train.models.registry import build_model, param_count, preset_config
from probe import matmul_probe

RESULTS = ROOT / "benchmarks" / "results"


def frame(h: int, w: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(1, 3, h, w, generator=g) * 2, torch.rand(1, 1, h, w, generator=g) * 20,
            torch.randn(1, 2, h, w, generator=g), torch.rand(1, 2, generator=g) - 0.5, torch.zeros(1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=int, default=2, choices=(2, 4))
    p.add_argument("--out-size", default="640x360", help="output WxH")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(RESULTS / "model.json"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    W, H = (int(v) for v in a.out_size.split("x"))
    s = a.scale
    h, w = H // s, W // s
    torch.manual_seed(0)
    models = {n: build_model(preset_config(n, scale=s)).eval() for n in ("fast", "nsrr")}
    for m in models.values():
        m.check_size(h, w)
    base = {"bilinear": B.make("bilinear", s), "taa": B.make("taa", s)}
    x = frame(h, w)
    times: dict[str, list[float]] = {k: [] for k in list(models) + list(base)}
    probes = []
    with torch.no_grad():
        hists = {n: m.init_history(1, h, w) for n, m in models.items()}
        for n, m in models.items():  # warm-up
            m.step(*x, *hists[n])
        for b in base.values():
            b.step(*x)
        for r in range(a.reps):
            probes.append(matmul_probe())
            for n, m in models.items():
                t = time.perf_counter()
                m.step(*x, *hists[n])
                times[n].append(time.perf_counter() - t)
            for n, b in base.items():
                t = time.perf_counter()
                b.step(*x)
                times[n].append(time.perf_counter() - t)
            print(f"rep {r + 1}/{a.reps}: " + ", ".join(f"{k} {v[-1] * 1e3:.1f} ms" for k, v in times.items()),
                  flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    probe = statistics.median(probes)

    # training step: forward + backward on a batch of 8 crops of 48x48 low-res
    train_t: dict[str, list[float]] = {n: [] for n in models}
    g = torch.Generator().manual_seed(1)
    T = max(m.cfg.n_prev for m in models.values()) + 1  # each preset takes its own last n_prev + 1 frames
    bx = (torch.rand(8, T, 3, 48, 48, generator=g), torch.rand(8, T, 1, 48, 48, generator=g) * 20,
          torch.randn(8, T, 2, 48, 48, generator=g), torch.rand(8, T, 2, generator=g) - 0.5)
    for r in range(max(1, a.reps - 1)):
        for n, m in models.items():
            m.train()
            win = tuple(x[:, T - m.cfg.n_prev - 1:] for x in bx)
            t = time.perf_counter()
            m.forward_mapped(*win).mean().backward()
            train_t[n].append(time.perf_counter() - t)
            m.zero_grad(set_to_none=True)
    tmed = {k: statistics.median(v) for k, v in train_t.items()}

    res = {"machine": platform.processor() or platform.machine(), "threads": a.threads, "scale": s,
           "lowres": [w, h], "output": [W, H], "reps": a.reps, "matmul_gflops": probe, "presets": {}}
    for n, m in models.items():
        f = m.flops_per_output_pixel(h, w)
        gflop = f * W * H / 1e9
        res["presets"][n] = {
            "params": param_count(m), "flops_per_output_px": f, "gflop_per_frame": gflop,
            "step_ms": med[n] * 1e3, "fps": 1 / med[n], "achieved_gflops": gflop / med[n],
            "fraction_of_matmul": gflop / med[n] / probe,
            "step_vs_bilinear": med[n] / med["bilinear"], "step_vs_taa": med[n] / med["taa"],
            "train_step_ms": tmed[n] * 1e3}
    fa, ns = res["presets"]["fast"], res["presets"]["nsrr"]
    res["ratios"] = {"flops_nsrr_over_fast": ns["flops_per_output_px"] / fa["flops_per_output_px"],
                     "step_time_nsrr_over_fast": ns["step_ms"] / fa["step_ms"],
                     "train_time_nsrr_over_fast": ns["train_step_ms"] / fa["train_step_ms"]}
    res["baselines_ms"] = {k: med[k] * 1e3 for k in base}
    atomic_write_bytes(a.out, (json.dumps(res, indent=1) + "\n").encode())
    print(f"x{s} {w}x{h} -> {W}x{H}, {a.threads} threads, matmul probe {probe:.1f} GFLOP/s")
    print("| preset | params | FLOPs/output px | GFLOP/frame | step / bilinear | step / TAA | % of matmul GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for n, r in res["presets"].items():
        print(f"| {n} | {r['params']:,} | {r['flops_per_output_px']:,.0f} | {r['gflop_per_frame']:.2f} | "
              f"{r['step_vs_bilinear']:.1f}x | {r['step_vs_taa']:.1f}x | {100 * r['fraction_of_matmul']:.0f}% |")
    print(", ".join(f"{k} {v:.1f}" for k, v in res["ratios"].items()))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
