"""Target quality of the world generator's supersampled targets: the same frames captured with
ss=2 (+ MSAA 0 / 4) against ss=4 + MSAA 4 (the reference), PSNR of the mean MSE in Reinhard space,
plus the low-res input against the reference (bilinear-free: box-downsampled reference to low-res).

    python benchmarks/bench_worldgen_target.py --out /tmp/wg_quality [--frames 3] [--low 320x180]
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from nss_train.sources.godot_pairs import LAST_RUN, capture
from nss_runtime.frames import frame_path, read_frame
from nss_runtime.contract import colour_forward as reinhard
from nss_runtime.display import psnr_from_mse as psnr
from nss_train.sources.worldgen import WorldgenConfig, capture_config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--low", default="320x180")
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--configs", default="2:4,2:0,4:4", help="ss:msaa list; the last is the reference")
    a = ap.parse_args()
    confs = [tuple(int(v) for v in c.split(":")) for c in a.configs.split(",")]
    wc = WorldgenConfig(out=a.out, frames=a.frames, low=a.low, seed=a.seed, val_seed=a.seed + 1)
    dirs, secs = {}, {}
    for ss, msaa in confs:
        cc = replace(capture_config(wc, "train", 0, 1), out=str(Path(a.out) / f"ss{ss}_msaa{msaa}"), ss=ss, msaa=msaa)
        LAST_RUN.clear()
        t0 = time.time()
        dirs[(ss, msaa)] = capture(cc, progress=False)[0]
        secs[(ss, msaa)] = {"wall_s": round(time.time() - t0, 1), **{k: round(v, 1) for k, v in LAST_RUN.items()}}
    ref = confs[-1]
    rows = {}
    for c in confs[:-1]:
        mse = [float(np.mean((reinhard(read_frame(frame_path(dirs[c], i)).target)
                              - reinhard(read_frame(frame_path(dirs[ref], i)).target)) ** 2)) for i in range(a.frames)]
        rows[f"ss{c[0]}_msaa{c[1]}"] = {"psnr_vs_ref_db": round(psnr(float(np.mean(mse))), 2),
                                        "per_frame_db": [round(psnr(m), 2) for m in mse]}
    res = {"reference": f"ss{ref[0]}_msaa{ref[1]}", "low": a.low, "frames": a.frames, "seed": a.seed,
           "results": rows, "timing": {f"ss{k[0]}_msaa{k[1]}": v for k, v in secs.items()}}
    print(json.dumps(res, indent=1))
    Path(a.out, "target_quality.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
