"""Ablations of the `accum` preset on held-out sequences (PyTorch, CPU): the full model against history off,
jitter off, motion off, dilation off, and the jitter-aligned bilinear/bicubic baselines, all in the metrics'
display space (Reinhard + sRGB), PSNR of the mean MSE over every frame of every sequence.

    python tools/accum_ablation.py --ckpt models/accum_x2.pt --data DIR [DIR ...] --out models/accum_x2.ablation.json

The ablations switch one input of the SAME trained weights off at run time (AccumConfig flags): what the model
loses without it, not what a model trained without it would reach.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from nss_runtime import frames as FR
from nss_train.eval.baselines import upsample
from nss_train.models.geometry import colour_inverse
from nss_train.eval.metrics import psnr_from_mse, ssim
from nss_train.train.losses import to_display

VARIANTS = {"full": {}, "history off": {"use_history": False}, "jitter off": {"use_jitter": False},
            "motion off": {"use_motion": False}, "dilation off": {"dilate": False}}


def load_sequence(seq: Path, max_frames: int = 0) -> list[dict]:
    meta = FR.read_meta(seq)
    n = meta.frames if not max_frames else min(meta.frames, max_frames)
    out = []
    for i in range(n):
        fr = FR.read_frame(FR.frame_path(seq, i), expect_lowres=meta.lowres, scale=meta.scale)
        d = np.minimum(np.nan_to_num(fr.depth, nan=FR.DEPTH_BACKGROUND, posinf=FR.DEPTH_BACKGROUND),
                       np.float32(FR.DEPTH_BACKGROUND))
        out.append({"colour": torch.from_numpy(fr.colour)[None], "depth": torch.from_numpy(d)[None],
                    "motion": torch.from_numpy(fr.motion)[None], "target": torch.from_numpy(fr.target)[None],
                    "jitter": torch.tensor([meta.jitter[i]], dtype=torch.float32),
                    "reset": torch.tensor([1.0 if (i == 0 or meta.cuts[i]) else 0.0])})
    return out


@torch.no_grad()
def run_model(model, frames) -> list[torch.Tensor]:
    (hist,) = model.init_history(1, frames[0]["colour"].shape[2], frames[0]["colour"].shape[3])
    outs = []
    for f in frames:
        rgb, hist = model.step(f["colour"], f["depth"], f["motion"], f["jitter"], f["reset"], hist)
        outs.append(rgb)
    return outs


def main(argv=None) -> int:
    from nss_train.models.accum import Accum
    from nss_train.models.registry import CheckpointError, load_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpt", type=Path, required=True)
    ap.add_argument("--data", nargs="+", required=True, help="dataset roots or sequence directories")
    ap.add_argument("--max-frames", type=int, default=0)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from nss_train.data.datasets import sequence_dirs
    base, cfg, _ = load_checkpoint(a.ckpt)
    if not isinstance(base, Accum):
        raise CheckpointError(f"{a.ckpt}: preset {cfg.name!r}; expected an 'accum' checkpoint")
    models = {}
    for name, kw in VARIANTS.items():
        m = Accum(dataclasses.replace(cfg, **kw)).eval()
        m.load_state_dict(base.state_dict())
        models[name] = m
    acc = {k: [] for k in list(VARIANTS) + ["bilinear (jitter-aligned)", "bicubic (jitter-aligned)"]}
    per_seq = {}
    t0 = time.time()
    for seq in sequence_dirs(a.data):
        frames = load_sequence(seq, a.max_frames)
        tg = [to_display(f["target"]).clamp(0, 1) for f in frames]
        outs = {k: run_model(m, frames) for k, m in models.items()}
        for mode in ("bilinear", "bicubic"):
            outs[f"{mode} (jitter-aligned)"] = [colour_inverse(upsample(f["colour"], f["jitter"], cfg.scale, mode))
                                                for f in frames]
        row = {}
        for k, o in outs.items():
            mses = [float(((to_display(x).clamp(0, 1) - t) ** 2).mean()) for x, t in zip(o, tg)]
            ss = [float(ssim(to_display(x).clamp(0, 1), t)) for x, t in zip(o, tg)]
            acc[k] += list(zip(mses, ss))
            row[k] = {"psnr": psnr_from_mse(float(np.mean(mses))), "ssim": float(np.mean(ss))}
        per_seq[str(seq)] = row
        print(f"{seq}: " + ", ".join(f"{k} {v['psnr']:.2f}" for k, v in row.items()), flush=True)
    total = {k: {"psnr": psnr_from_mse(float(np.mean([m for m, _ in v]))), "ssim": float(np.mean([s for _, s in v])),
                 "frames": len(v)} for k, v in acc.items()}
    for k, v in total.items():
        print(f"{k:28s} PSNR {v['psnr']:6.2f} dB  SSIM {v['ssim']:.4f}  ({v['frames']} frames)")
    doc = {"checkpoint": str(a.ckpt), "data": a.data, "space": "display (Reinhard + sRGB), PSNR of the mean MSE",
           "note": "ablations switch an input of the same trained weights off at run time", "total": total,
           "per_sequence": per_seq, "seconds": time.time() - t0}
    if a.out:
        from nss_runtime.frames import atomic_write_bytes
        atomic_write_bytes(a.out, (json.dumps(doc, indent=1) + "\n").encode())
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
