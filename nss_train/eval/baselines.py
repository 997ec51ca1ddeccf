"""Classic upscalers the network is measured against: bilinear, bicubic and a TAA-style temporal upscaler.

All work in the Reinhard-mapped space (so HDR highlights do not ring or dominate
the blend) and return linear RGB, like the model. All compensate the camera
jitter (each low-res sample lies at pixel centre + jitter), so a jittered input is
not penalised by a sub-pixel misalignment: the spatial ones resample ONCE, at the output pixels' positions
among the jittered samples. Every upscaler has the streaming
interface `step(colour, depth, motion, jitter, reset) -> rgb` on [B,C,h,w] tensors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from nss_train.models.geometry import colour_forward, colour_inverse, upsample_motion, warp


def jittered_grid(jitter: torch.Tensor, h: int, w: int, s: int) -> torch.Tensor:
    """grid_sample grid [B, s*h, s*w, 2] (align_corners=False) of the output pixel centres on a jittered low-res
    frame, whose sample (i, j) lies at (i + 0.5 + jx, j + 0.5 + jy): low-res position (P + 0.5) / s - jitter."""
    j = jitter.float()
    B = j.shape[0]
    xs = (torch.arange(w * s, device=j.device, dtype=torch.float32) + 0.5) / s
    ys = (torch.arange(h * s, device=j.device, dtype=torch.float32) + 0.5) / s
    gx = (xs[None, None, :] - j[:, 0, None, None]) * (2.0 / w) - 1.0
    gy = (ys[None, :, None] - j[:, 1, None, None]) * (2.0 / h) - 1.0
    return torch.stack([gx.expand(B, h * s, w * s), gy.expand(B, h * s, w * s)], -1)


def upsample(colour: torch.Tensor, jitter: torch.Tensor, s: int, mode: str) -> torch.Tensor:
    """Jitter-aligned single-frame upsample in the mapped space -> mapped [B,3,sh,sw] in [0, 1]: ONE bilinear or
    bicubic resample at the output pixels' positions among the jittered samples (border-clamped; with jitter 0
    it equals F.interpolate(..., align_corners=False))."""
    m = colour_forward(colour)
    grid = jittered_grid(jitter, m.shape[-2], m.shape[-1], s)
    return F.grid_sample(m.float(), grid, mode=mode, padding_mode="border", align_corners=False).clamp(0, 1)


class Spatial:
    """Bilinear or bicubic upsampling of the current frame alone."""

    def __init__(self, scale: int, mode: str):
        self.scale, self.mode = scale, mode

    def step(self, colour, depth, motion, jitter, reset) -> torch.Tensor:
        return colour_inverse(upsample(colour, jitter, self.scale, self.mode))


class TAAUpscaler:
    """Temporal accumulation upscaler (TAAU-style, as in game engines).

    Each frame: the high-res history is reprojected with the upsampled motion
    (bilinear) and clamped to the min/max of the 3x3 low-res neighbourhood of the
    nearest current sample (rejects disocclusions and lighting changes); then the
    nearest current sample is blended in with weight alpha * exp(-d^2 / (2 sigma^2)),
    d the distance from the output pixel to that sample's jittered position (low-res
    px), so over jittered frames each output pixel accumulates the samples that land
    on it. A reset (cut, first frame) restarts from the jitter-aligned bilinear upsample.
    """

    def __init__(self, scale: int, alpha: float = 0.25, sigma: float = 0.3):
        self.scale, self.alpha, self.sigma = scale, alpha, sigma
        self.history: torch.Tensor | None = None

    def _nearest(self, x: torch.Tensor, jitter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per output pixel: x at the nearest jittered low-res sample, and the squared distance to it."""
        B, _, h, w = x.shape
        s = self.scale
        ys = (torch.arange(h * s, dtype=x.dtype) + 0.5) / s  # output pixel centres, low-res units
        xs = (torch.arange(w * s, dtype=x.dtype) + 0.5) / s
        px = xs[None, None, :] - jitter[:, 0, None, None]  # position on the sample grid
        py = ys[None, :, None] - jitter[:, 1, None, None]
        ix = torch.clamp(torch.floor(px), 0, w - 1)
        iy = torch.clamp(torch.floor(py), 0, h - 1)
        d2 = (px - ix - 0.5) ** 2 + (py - iy - 0.5) ** 2  # [B, H, W]
        grid = torch.stack([((ix + 0.5) * (2.0 / w) - 1).expand(B, h * s, w * s),
                            ((iy + 0.5) * (2.0 / h) - 1).expand(B, h * s, w * s)], -1)
        return F.grid_sample(x, grid, mode="nearest", align_corners=False), d2[:, None]

    def step(self, colour, depth, motion, jitter, reset) -> torch.Tensor:
        s = self.scale
        spatial = upsample(colour, jitter, s, "bilinear")
        m = colour_forward(colour)
        if self.history is None or self.history.shape != spatial.shape:
            reset = torch.ones_like(reset)
            self.history = spatial
        lo = -F.max_pool2d(-m, 3, stride=1, padding=1)
        hi = F.max_pool2d(m, 3, stride=1, padding=1)
        cur, d2 = self._nearest(torch.cat([m, lo, hi], 1), jitter)
        cur, lo, hi = cur[:, :3], cur[:, 3:6], cur[:, 6:]
        hist = warp(self.history, upsample_motion(motion, s), padding="border")
        hist = torch.minimum(torch.maximum(hist, lo), hi)
        a = self.alpha * torch.exp(-d2 / (2 * self.sigma ** 2))
        out = a * cur + (1 - a) * hist
        out = torch.where((reset > 0.5).view(-1, 1, 1, 1), spatial, out)
        self.history = out
        return colour_inverse(out)


def make(name: str, scale: int):
    if name == "bilinear":
        return Spatial(scale, "bilinear")
    if name == "bicubic":
        return Spatial(scale, "bicubic")
    if name == "taa":
        return TAAUpscaler(scale)
    raise ValueError(f"unknown baseline {name!r}; expected bilinear, bicubic or taa")


BASELINES = ("bilinear", "bicubic", "taa")
