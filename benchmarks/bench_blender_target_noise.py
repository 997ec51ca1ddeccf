"""Noise of nss_train.sources.render's Blender targets: two renders of one target frame with different noise
seeds (PSNR between them), each against a high-sample reference, with and without the Cycles
denoiser (--denoise-high). PSNR of the MSE in Reinhard space (the loss space), like the issue's figure.

    python benchmarks/bench_blender_target_noise.py [--size 128x72] [--spp 32] [--ref-spp 1024] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from nss_runtime.display import psnr_reinhard as psnr
from nss_train.sources import render, scenes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="128x72")
    ap.add_argument("--spp", type=int, default=render.DEFAULT_SPP_HIGH)
    ap.add_argument("--ref-spp", type=int, default=1024)
    ap.add_argument("--scene-seed", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/results/blender_target_noise.json")
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    bpy = render._bpy()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scenes.build_scene(a.scene_seed, 4, cut_prob=0.0)
    res: dict = {"size_target": [2 * w, 2 * h], "spp": a.spp, "ref_spp": a.ref_spp, "scene_seed": a.scene_seed}
    imgs: dict = {}
    with tempfile.TemporaryDirectory() as work:
        for denoise in (False, True):
            cfg = render.RenderConfig(size=(w, h), spp_high=a.spp, threads=a.threads, denoise_high=denoise)
            render._configure(bpy, cfg)
            r = render._Renderer(bpy, cfg, Path(work))
            for seed in (0, 1):
                bpy.context.scene.cycles.seed = seed
                t0 = time.time()
                imgs[(denoise, seed)] = r._render(2, (2 * w, 2 * h), a.spp, False, (0.0, 0.0))["colour"]
                res[f"seconds_{'denoised' if denoise else 'plain'}"] = round(time.time() - t0, 2)
        cfg = render.RenderConfig(size=(w, h), spp_high=a.ref_spp, threads=a.threads, adaptive_threshold=0.001)
        render._configure(bpy, cfg)
        r = render._Renderer(bpy, cfg, Path(work))
        bpy.context.scene.cycles.seed = 7
        t0 = time.time()
        ref = r._render(2, (2 * w, 2 * h), a.ref_spp, False, (0.0, 0.0))["colour"]
        res["seconds_ref"] = round(time.time() - t0, 2)
    for denoise in (False, True):
        k = "denoised" if denoise else "plain"
        res[f"{k}_two_renders_db"] = round(psnr(imgs[(denoise, 0)], imgs[(denoise, 1)]), 2)
        res[f"{k}_vs_ref_db"] = round(np.mean([psnr(imgs[(denoise, s)], ref) for s in (0, 1)]), 2)
    print(json.dumps(res, indent=1))
    Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
