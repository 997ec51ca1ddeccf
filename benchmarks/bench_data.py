"""Data pipeline throughput: Cycles renders (low-res + target) and the training-window loader.

    python benchmarks/bench_data.py                 # 2 frames at 480x270 (1 spp) + 960x540 target (16 spp)
    python benchmarks/bench_data.py --frames 1 --size 240x135 --spp-high 16   # quicker

The machine is shared and noisy, so the figures that matter are the RATIOS measured
in this one run (target vs low-res render cost, cached vs decoding loader, loading vs
rendering); absolute numbers are printed for context next to a matmul GFLOP/s probe.
Results go to benchmarks/results/data.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from nss_runtime import frames as F
from nss_train.sources import render as R


def gflops_probe(n: int = 512, reps: int = 5) -> float:
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    t = time.perf_counter()
    for _ in range(reps):
        a @ a
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e9


def bench_render(out: Path, cfg: R.RenderConfig, seed: int) -> dict:
    import bpy

    from nss_train.sources import scenes

    bpy.ops.wm.read_factory_settings(use_empty=True)
    desc = scenes.build_scene(seed, cfg.frames, cut_prob=0.0)
    desc.update(scene="builtin", group=f"bench{seed}")
    R._configure(bpy, cfg)
    numbers = list(range(1, cfg.frames + 1))
    meta = R._sequence_meta(bpy, cfg, numbers, desc)
    F.write_meta(out, meta)
    work = Path(tempfile.mkdtemp(dir=out))
    r = R._Renderer(bpy, cfg, work)
    w, h = cfg.size
    # warm-up (kernel load, scene sync) is not throughput: render frame 1 once untimed at low-res
    r._render(1, cfg.size, cfg.spp_low, True, (0.0, 0.0))
    t_low, t_high, t_write = [], [], []
    for k, fnum in enumerate(numbers):
        t0 = time.perf_counter()
        lo = r._render(fnum, (w, h), cfg.spp_low, True, meta.jitter[k])
        t1 = time.perf_counter()
        hi = r._render(fnum, (w * cfg.scale, h * cfg.scale), cfg.spp_high, False, (0.0, 0.0))
        t2 = time.perf_counter()
        F.write_frame(F.frame_path(out, k), F.Frame(colour=lo["colour"], depth=lo["depth"], motion=lo["motion"],
                                                    target=hi["colour"], target_depth=hi["depth"],
                                                    target_motion=hi["motion"]))
        t3 = time.perf_counter()
        t_low.append(t1 - t0)
        t_high.append(t2 - t1)
        t_write.append(t3 - t2)
        print(f"  frame {k}: low-res {t_low[-1]:.2f} s, target {t_high[-1]:.2f} s, write {t_write[-1]:.2f} s",
              flush=True)
    work.rmdir()
    lo_s, hi_s, wr_s = (float(np.mean(x)) for x in (t_low, t_high, t_write))
    total = lo_s + hi_s + wr_s
    return {"lowres": [w, h], "target": [w * cfg.scale, h * cfg.scale], "spp_low": cfg.spp_low,
            "spp_high": cfg.spp_high, "frames": cfg.frames, "threads": cfg.threads or os.cpu_count(),
            "seconds_per_frame": {"lowres": lo_s, "target": hi_s, "write": wr_s, "total": total},
            "frames_per_min": {"lowres_only": 60 / lo_s, "with_target": 60 / total},
            "ratio_target_vs_lowres_time": hi_s / lo_s,
            "frame_bytes": int(np.mean([F.frame_path(out, k).stat().st_size for k in range(cfg.frames)]))}


def bench_loader(seq: Path, crop, n_prev: int, reps: int) -> dict:
    import torch

    from nss_train.data.datasets import WindowDataset

    torch.set_num_threads(1)
    res = {}
    for name, cache in (("decode", False), ("cached", True)):
        ds = WindowDataset(seq, n_prev=n_prev, crop=crop, augment=True, cache=cache)
        ds[0]  # warm: imports, first decode (fills the cache in 'cached' mode)
        for i in range(len(ds)):
            ds[i]
        n = 0
        t = time.perf_counter()
        while n < reps:
            ds.set_epoch(n)
            for i in range(len(ds)):
                ds[i]
                n += 1
        res[name] = n / (time.perf_counter() - t)
    return {"n_prev": n_prev, "crop": list(crop) if crop else None, "windows_per_s": res,
            "ratio_cached_vs_decode": res["cached"] / res["decode"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=R.parse_size, default=(480, 270))
    p.add_argument("--scale", type=int, default=2, choices=F.SCALES)
    p.add_argument("--frames", type=int, default=2)
    p.add_argument("--spp-low", type=int, default=1)
    p.add_argument("--spp-high", type=int, default=16)
    p.add_argument("--threads", type=int, default=0, help="Cycles threads (0: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crop", type=int, default=64, help="loader crop (low-res px, square); 0: full frame")
    p.add_argument("--reps", type=int, default=40, help="windows to time per loader mode")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "data.json"))
    a = p.parse_args(argv)

    probe0 = gflops_probe()
    cfg = R.RenderConfig(size=a.size, scale=a.scale, frames=a.frames, spp_low=a.spp_low, spp_high=a.spp_high,
                         threads=a.threads, progress=False)
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        seq = Path(tmp) / "seq"
        seq.mkdir()
        print(f"render: {a.size[0]}x{a.size[1]} @ {a.spp_low} spp + target x{a.scale} @ {a.spp_high} spp, "
              f"{a.frames} frame(s)", flush=True)
        rend = bench_render(seq, cfg, a.seed)
        print("loader:", flush=True)
        crop = (a.crop, a.crop) if a.crop else None
        load = bench_loader(seq, crop, 4, a.reps)
    probe1 = gflops_probe()
    frames_per_s = 1 / rend["seconds_per_frame"]["total"]
    result = {"bench": "data", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(),
              "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "matmul_gflops": [probe0, probe1],
              "render": rend, "loader": load,
              "ratio_loader_windows_vs_rendered_frames": load["windows_per_s"]["decode"] / frames_per_s}
    out = Path(a.out)
    F.atomic_write_bytes(out, (json.dumps(result, indent=1) + "\n").encode())

    sp = rend["seconds_per_frame"]
    print(f"\nmatmul probe: {probe0:.1f} / {probe1:.1f} GFLOP/s (before / after; load avg {os.getloadavg()[0]:.1f})")
    print(f"render  low-res {rend['lowres'][0]}x{rend['lowres'][1]} @ {rend['spp_low']} spp: "
          f"{rend['frames_per_min']['lowres_only']:.1f} frames/min ({sp['lowres']:.2f} s)")
    print(f"render  + target {rend['target'][0]}x{rend['target'][1]} @ {rend['spp_high']} spp: "
          f"{rend['frames_per_min']['with_target']:.2f} training frames/min ({sp['total']:.2f} s, "
          f"{rend['frame_bytes'] / 1e6:.1f} MB/frame)")
    print(f"RATIO   target / low-res render time: {rend['ratio_target_vs_lowres_time']:.1f}x")
    print(f"loader  windows/s (n_prev 4, crop {a.crop or 'full'}): decode {load['windows_per_s']['decode']:.1f}, "
          f"cached {load['windows_per_s']['cached']:.1f}")
    print(f"RATIO   cached / decoding loader: {load['ratio_cached_vs_decode']:.1f}x")
    print(f"RATIO   loader windows/s (decoding) / rendered training frames/s: "
          f"{result['ratio_loader_windows_vs_rendered_frames']:.0f}x")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
