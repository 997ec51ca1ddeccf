"""What a player sees, and the project's one PSNR (numpy only; nss_train.eval.metrics builds on these).

    srgb_encode(linear)   linear light -> sRGB display value, clamped to [0, 1] first (a Linear tonemap)
    psnr_reinhard(a, b)   PSNR of two linear-light images compared in the contract's [0, 1] colour space (Reinhard)
    psnr_from_mse(mse)    10 log10(range^2 / MSE), MSE over every pixel of every frame it covers: the PSNR of the
                          mean MSE, never a mean of per-frame PSNRs (a frame where a method is exact would read
                          ~120 dB and outweigh every other frame); MSE floored at 1e-12 (120 dB)

The differentiable twin of srgb_encode for training is nss_train.train.losses.srgb_encode (tested equal).
"""
from __future__ import annotations

import math

import numpy as np

from .contract import colour_forward


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB display value (clamped to [0, 1] first: a Linear tonemap)."""
    c = np.clip(linear, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """THE PSNR of this project, for one image or many (see the module docstring)."""
    return 10.0 * math.log10(data_range ** 2 / max(float(mse), 1e-12))


def psnr_reinhard(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two linear-light (HDR) images in the contract's bounded colour space (colour_forward: Reinhard)."""
    return psnr_from_mse(float(np.mean((colour_forward(a) - colour_forward(b)) ** 2)))
