"""Image metrics on display values and the sRGB transfer curve (used by the in-engine comparison and the demo).

Images here are numpy float arrays (3, H, W). "Display" values are what the player sees: sRGB-encoded,
in [0, 1] (an 8-bit grab / 255). "Linear light" is the display value decoded with the sRGB curve.

Metrics (every one computed on display values against the reference):
  psnr_of_mean_mse   10 log10(1 / mean over frames of the per-frame MSE): one bad frame is not averaged away
                     in dB, as it is by a mean of per-frame PSNRs;
  ssim               nss_train.train.losses.ssim (11x11 Gaussian, sigma 1.5), mean over frames;
  flip               NVIDIA FLIP (flip-evaluator, LDR, 67 ppd; nss_train.eval.evaluate.flip_error), mean over frames;
  flicker            mean |(out_t - out_t-1) - (ref_t - ref_t-1)|: temporal change the reference does not have
                     (and change it has that the method misses), unwarped: the same camera path is on both sides.
"""
from __future__ import annotations

import numpy as np

# --- colour -----------------------------------------------------------------------------------

def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB display value (clamped to [0, 1] first: a Linear tonemap)."""
    c = np.clip(linear, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


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


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return psnr_of_mean_mse([mse(a, b)])


def psnr_of_mean_mse(mses: list[float]) -> float:
    """PSNR (dB, peak 1) of the mean of per-frame MSEs."""
    if not mses:
        raise ValueError("psnr_of_mean_mse: no frames")
    m = float(np.mean(mses))
    return float("inf") if m == 0 else float(10 * np.log10(1.0 / m))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    import torch

    from nss_train.train.losses import ssim as _ssim

    t = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]  # noqa: E731
    return float(_ssim(t(a), t(b)))


def flip(ref: np.ndarray, test: np.ndarray) -> float:
    import torch

    from nss_train.eval.evaluate import flip_error

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
