"""The project's image metrics (training validation, offline evaluation, the in-engine comparison, the demo) and
the sRGB transfer curve. The PSNR formula and the numpy sRGB encoding are nss_runtime.display's (the runtime uses
them too); every PSNR here is psnr_from_mse of a mean squared error.

Images here are numpy float arrays (3, H, W). "Display" values are what the player sees: sRGB-encoded,
in [0, 1] (an 8-bit grab / 255). "Linear light" is the display value decoded with the sRGB curve.

Metrics (every one computed on display values against the reference):
  psnr_of_mean_mse   10 log10(1 / mean over frames of the per-frame MSE): one bad frame is not averaged away
                     in dB, as it is by a mean of per-frame PSNRs;
  ssim               ssim (11x11 Gaussian, sigma 1.5), mean over frames;
  flip               NVIDIA FLIP (flip-evaluator, LDR, 67 ppd; flip_error), mean over frames;
  flicker            mean |(out_t - out_t-1) - (ref_t - ref_t-1)|: temporal change the reference does not have
                     (and change it has that the method misses), unwarped: the same camera path is on both sides.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nss_runtime.display import psnr_from_mse, srgb_encode  # noqa: F401  (the one PSNR and sRGB curve, here too)

# --- colour -----------------------------------------------------------------------------------

def srgb_decode(display: np.ndarray) -> np.ndarray:
    """sRGB display value in [0, 1] -> linear light."""
    d = np.clip(display, 0.0, 1.0)
    return np.where(d <= 0.04045, d / 12.92, np.power((d + 0.055) / 1.055, 2.4))


def box_down(x: np.ndarray, k: int) -> np.ndarray:
    """(C, k*h, k*w) -> (C, h, w), mean of each k x k block (of whatever x holds)."""
    if k == 1:
        return x
    c, h, w = x.shape
    if h % k or w % k:
        raise ValueError(f"box_down: {w}x{h} is not a multiple of {k}")
    return x.reshape(c, h // k, k, w // k, k).mean(axis=(2, 4))


def box_down_display(display: np.ndarray, k: int) -> np.ndarray:
    """A display image rendered at k x the size -> display image at 1x, averaged in LINEAR light
    (decode sRGB, mean of each k x k block, encode): what k x k samples per pixel look like on screen."""
    if k == 1:
        return display.astype(np.float32)
    return srgb_encode(box_down(srgb_decode(display.astype(np.float64)), k)).astype(np.float32)


# --- metrics ----------------------------------------------------------------------------------

def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr(a, b, data_range: float = 1.0, reduce: bool = True):
    """PSNR (psnr_from_mse) of two numpy images (-> float), or of [B,C,H,W] tensors: reduce=True the PSNR of the
    mean MSE over the batch (-> 0-d tensor), reduce=False one per image [B]."""
    if isinstance(a, np.ndarray):
        return psnr_from_mse(mse(a, b), data_range)
    per_image = ((a - b) ** 2).flatten(1).mean(1)
    if reduce:
        return torch.tensor(psnr_from_mse(float(per_image.mean()), data_range))
    return torch.tensor([psnr_from_mse(m, data_range) for m in per_image.tolist()])


def psnr_of_mean_mse(mses: list[float]) -> float:
    """PSNR (dB, peak 1) of the mean of per-frame MSEs."""
    if not mses:
        raise ValueError("psnr_of_mean_mse: no frames")
    return psnr_from_mse(float(np.mean(mses)))


def _gaussian(size: int = 11, sigma: float = 1.5, device=None, dtype=torch.float32) -> torch.Tensor:
    ax = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(ax ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim(x, y, data_range: float = 1.0, reduce: bool = True):
    """SSIM (Wang et al. 2004; 11x11 Gaussian window, sigma 1.5, valid region) of [B,C,H,W] tensors in
    [0, data_range] (differentiable: the training loss uses it); reduce=False gives one value per image [B].
    Two numpy (C, H, W) images -> float."""
    if isinstance(x, np.ndarray):
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None]  # noqa: E731
        return float(ssim(t(x), t(y), data_range))
    C = x.shape[1]
    g = _gaussian(device=x.device, dtype=x.dtype)
    size = g.numel()
    if min(x.shape[-2:]) < size:  # tiny crops: shrink the window rather than fail
        size = min(x.shape[-2:])
        size -= 1 - size % 2
        g = _gaussian(size, 1.5 * size / 11, x.device, x.dtype)
    kx = g.view(1, 1, 1, -1).expand(C, 1, 1, -1)
    ky = g.view(1, 1, -1, 1).expand(C, 1, -1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kx, groups=C), ky, groups=C)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean() if reduce else s.flatten(1).mean(1)


def flip_error(ref: torch.Tensor, test: torch.Tensor) -> float:
    """Mean LDR FLIP of two display images [3,H,W] in [0, 1]."""
    import flip_evaluator

    r = np.ascontiguousarray(ref.permute(1, 2, 0).numpy().astype(np.float32))
    t = np.ascontiguousarray(test.permute(1, 2, 0).numpy().astype(np.float32))
    _, mean, _ = flip_evaluator.evaluate(r, t, "LDR", inputsRGB=True, applyMagma=False, computeMeanError=True)
    return float(mean)


def flip(ref: np.ndarray, test: np.ndarray) -> float:
    """flip_error of two numpy (3, H, W) display images."""
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # noqa: E731
    return flip_error(t(ref), t(test))


def flicker(out: list[np.ndarray], ref: list[np.ndarray]) -> list[float]:
    """Per consecutive pair t-1, t: mean |(out_t - out_t-1) - (ref_t - ref_t-1)| (len(out) - 1 values)."""
    if len(out) != len(ref):
        raise ValueError(f"flicker: {len(out)} frames vs {len(ref)} reference frames")
    return [float(np.mean(np.abs((out[t] - out[t - 1]) - (ref[t] - ref[t - 1])))) for t in range(1, len(out))]


def temporal_change(ref: list[np.ndarray]) -> list[float]:
    """Per consecutive pair: mean |ref_t - ref_t-1| (the reference's own change, for scale)."""
    return [float(np.mean(np.abs(ref[t] - ref[t - 1]))) for t in range(1, len(ref))]


def alignment(out: list[np.ndarray], ref: list[np.ndarray]) -> dict:
    """Is each frame i closer to reference frame i than to i-1 and i+1? (frames that have both neighbours
    on one side are checked against the one they have). A method that renders other frames than the
    reference (off by one in time, or a different camera path) fails here."""
    bad: list[dict] = []
    checked = 0
    for i, o in enumerate(out):
        own = mse(o, ref[i])
        for j in (i - 1, i + 1):
            if 0 <= j < len(ref):
                checked += 1
                other = mse(o, ref[j])
                if not own < other:
                    bad.append({"frame": i, "neighbour": j, "mse_own": own, "mse_neighbour": other})
    return {"aligned": not bad, "comparisons": checked, "failures": bad}
