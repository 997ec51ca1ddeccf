"""Golden test: the shipped checkpoint, run through the MODEL CODE (nss_train, its streaming `step`, as
nss_train.eval.evaluate and the runtime run it), on a small held-out clip, must beat jitter-aligned bilinear.

tests/data/golden_blender_seed300_64x36.npz: 8 frames of the built-in Blender scene of seed 300 (never in any
training or validation set: fast_x2 trained on seeds 0-7, its test set is seeds 100-101), 64x36 -> 128x72,
point-sampled jittered 16-spp inputs, 32-spp targets, rendered with the command in its `source` field.
"""
import json
from pathlib import Path

import numpy as np
import torch

from nss_train.eval import baselines as B
from nss_train.eval.metrics import psnr_from_mse
from nss_train.train.losses import to_display
from nss_train.models.registry import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "golden_blender_seed300_64x36.npz"
MARGIN_DB = 0.15  # measured: fast_x2 31.09 dB, jitter-aligned bilinear 30.85, bicubic 30.60 (+0.24 / +0.49 dB;
# a short retrain, docs/model.md): the margin is what the shipped model holds, not what we want it to hold


def clip():
    z = np.load(CLIP)
    src = json.loads(str(z["source"]))
    assert src["seed"] == 300 and src["jitter"], src
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a.astype(np.float32)))  # noqa: E731
    return [{"colour": t(z["colour"][i])[None], "depth": t(z["depth"][i])[None], "motion": t(z["motion"][i])[None],
             "jitter": t(z["jitter"][i])[None], "reset": torch.tensor([1.0 if (i == 0 or z["cuts"][i]) else 0.0]),
             "target": t(z["target_display_u8"][i])[None] / 255.0} for i in range(len(z["colour"]))]


def psnr_of(upscaler, frames) -> float:
    """PSNR of the mean MSE over the clip, on display values (the project's one PSNR definition)."""
    mse = []
    with torch.no_grad():
        for f in frames:
            o = upscaler.step(f["colour"], f["depth"], f["motion"], f["jitter"], f["reset"])
            mse.append(float(((to_display(o) - f["target"]) ** 2).mean()))
    return psnr_from_mse(float(np.mean(mse)))


class Streaming:
    def __init__(self, model):
        self.model, self.hist = model, None

    def step(self, colour, depth, motion, jitter, reset):
        if self.hist is None:
            self.hist = self.model.init_history(1, *colour.shape[-2:])
        out, *self.hist = self.model.step(colour, depth, motion, jitter, reset, *self.hist)
        return out


def test_shipped_fast_x2_beats_jitter_aligned_bilinear_on_a_held_out_clip():
    model, cfg, ckpt = load_checkpoint(ROOT / "models" / "fast_x2.pt")
    frames = clip()
    assert all(str(s).find("300") < 0 for s in ckpt["data"].get("train_sequences", []))
    p_model = psnr_of(Streaming(model), frames)
    p_bil = psnr_of(B.make("bilinear", cfg.scale), frames)
    p_bic = psnr_of(B.make("bicubic", cfg.scale), frames)
    assert p_model > p_bil + MARGIN_DB, (p_model, p_bil, p_bic)
    assert p_model > p_bic, (p_model, p_bic)
