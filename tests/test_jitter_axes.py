"""The jitter's x and y, checked against the frame contract rather than against the code's own formulas.

Contract (docs/frame_contract.md): the sample of low-res pixel (i, j) lies at (i + 0.5 + jx, j + 0.5 + jy); output
sub-pixel (qx, qy) of an s x s block has its centre at (i + (qx + 0.5) / s, j + (qy + 0.5) / s). Each test works
out the expected values from those positions with asymmetric jitters (jx != jy, opposite signs), so a swap of the
jitter's axes, a flipped sign or a transposed sub-pixel order anywhere in the output stage turns it red.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nss_runtime import gpu_program as gp
from nss_train.models import accum as A

TAPS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
JITTERS = [(0.31, -0.12), (-0.4, 0.22), (0.05, 0.45), (-0.27, -0.08)]


def contract_weights(jx: float, jy: float, s: int, sigma: float) -> np.ndarray:
    """[s*s], q = qy*s + qx: sum over the 3x3 neighbourhood's samples of a Gaussian of their distance to the
    sub-pixel centre, from the contract's positions (pixel (0, 0) and its neighbours)."""
    w = np.zeros(s * s)
    for qy in range(s):
        for qx in range(s):
            cx, cy = (qx + 0.5) / s, (qy + 0.5) / s
            for dy, dx in TAPS:
                sx, sy = dx + 0.5 + jx, dy + 0.5 + jy
                w[qy * s + qx] += math.exp(-((sx - cx) ** 2 + (sy - cy) ** 2) / (2 * sigma * sigma))
    return w


def nearest_subpixel(jx: float, jy: float, s: int) -> int:
    """The sub-pixel of pixel (0, 0) whose centre is closest to that pixel's own jittered sample."""
    sx, sy = 0.5 + jx, 0.5 + jy
    qx, qy = min(int(sx * s), s - 1), min(int(sy * s), s - 1)
    return qy * s + qx


@pytest.mark.parametrize("s", [2, 3, 4])
def test_sample_weight_follows_the_contract_positions(s):
    sigma = 0.5
    jit = torch.tensor(JITTERS, dtype=torch.float64)
    got = A.sample_weight(jit, s, sigma).numpy()
    want = np.stack([contract_weights(jx, jy, s, sigma) for jx, jy in JITTERS])
    want = want / A._sample_weight_mean(s, sigma)
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("s", [2, 4])
def test_gpu_program_sample_weight_follows_the_contract_positions(s):
    sigma = 0.5
    for jx, jy in JITTERS:
        got = gp.sample_weight(np.array([jx, jy], np.float32), s, sigma).reshape(-1)
        np.testing.assert_allclose(got, contract_weights(jx, jy, s, sigma), rtol=1e-5)


@pytest.mark.parametrize("s", [2, 4])
def test_kernel_prior_peaks_on_the_tap_nearest_each_subpixel(s):
    """The head's initial kernel (softmax over the 9 taps of bias + W . jitter) is a Gaussian of the distance from
    each tap's jittered sample to the sub-pixel centre: its weights must equal that Gaussian, normalised."""
    sigma = 0.6
    bias, wj = A.kernel_init(s, sigma)
    for jx, jy in JITTERS:
        logits = bias + wj @ torch.tensor([jx, jy])
        k = A.softmax_taps(logits.view(1, s * s, 9, 1, 1).double()).view(s * s, 9).numpy()
        for qy in range(s):
            for qx in range(s):
                cx, cy = (qx + 0.5) / s, (qy + 0.5) / s
                g = np.array([math.exp(-((dx + 0.5 + jx - cx) ** 2 + (dy + 0.5 + jy - cy) ** 2) / (2 * sigma ** 2))
                              for dy, dx in TAPS])
                np.testing.assert_allclose(k[qy * s + qx], g / g.sum(), rtol=1e-5, atol=1e-7)


def test_the_sample_lands_on_its_own_subpixel():
    """A plain reading of the same fact: with jitter (+0.2, -0.2) at 2x the sample of pixel (0, 0) sits at
    (0.7, 0.3): sub-pixel (qx=1, qy=0) gets the largest weight (a swap would pick (0, 1))."""
    for jx, jy in [(0.2, -0.2), (-0.2, 0.2), (0.3, 0.1), (-0.1, -0.35)]:
        w = A.sample_weight(torch.tensor([[jx, jy]]), 2, 0.35)[0]
        assert int(w.argmax()) == nearest_subpixel(jx, jy, 2), (jx, jy, w)


def test_untrained_accum_puts_an_impulse_where_its_sample_lies():
    """End to end through the model's own step (a fresh Accum is a jitter-aware TAA upsampler: its head starts as
    the Gaussian prior): one bright low-res pixel on a reset frame lands, in the output, around its sample's
    contract position ((i + 0.5 + jx) * s, (j + 0.5 + jy) * s) in output pixels (measured within 0.02 px). Swapping
    the jitter's axes where the network reads it moves the centroid by |jx - jy| * s (1.2 output px here)."""
    torch.manual_seed(0)
    s, h, w, (i, j) = 2, 8, 10, (4, 3)
    model = A.Accum(A.AccumConfig.preset(scale=s)).eval()
    for jx, jy in [(0.3, -0.3), (-0.25, 0.35)]:
        colour = torch.zeros(1, 3, h, w)
        colour[0, :, j, i] = 1.0
        depth, motion = torch.full((1, 1, h, w), 5.0), torch.zeros(1, 2, h, w)
        with torch.no_grad():
            o, _ = model.step_mapped(colour, depth, motion, torch.tensor([[jx, jy]]), torch.ones(1),
                                     model.init_history(1, h, w)[0])
        m = o[0].mean(0).clamp(min=0).numpy()  # [s*h, s*w], Reinhard space, zero but for the impulse
        ys, xs = np.mgrid[0:s * h, 0:s * w] + 0.5
        cx, cy = float((m * xs).sum() / m.sum()), float((m * ys).sum() / m.sum())
        want_x, want_y = (i + 0.5 + jx) * s, (j + 0.5 + jy) * s
        assert abs(cx - want_x) < 0.25 and abs(cy - want_y) < 0.25, ((jx, jy), (cx, cy), (want_x, want_y))
