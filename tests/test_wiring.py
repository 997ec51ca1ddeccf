"""Tests that see the networks' wiring: hand-set nsrr and fast models whose output depends on the temporal path
(warps, flow accumulation, reweighting, jitter placement, residual base), run through the real model code on
synthetic sequences where the right answer is known exactly.

The hand-set weights make each network a plain temporal accumulator: every previous frame's sample that its
(accumulated) motion and jitter put on an output pixel replaces the running estimate there,

    fast:  y = jitter-aligned bilinear base + sum_n cov_n * (prev_n - m)
    nsrr:  y = m + cov_cur * (cur - m) + sum_n cov_n * (prev_n - m)

(cov = the bilinear tent weight of the sample on that output pixel, m = the pattern's mean). All inputs of the
U-Nets are >= 0 and a bias keeps every hidden value positive, so the ReLUs pass them unchanged: the U-Net is an
exact linear map, its pooled levels set to zero. The reweighting outputs 0.5 for every frame and the U-Net
multiplies by 2, so a reweighting forced to 1 or dropped doubles the temporal term. The pattern is white noise
at the OUTPUT resolution (sub-pixel detail), sampled where the jitter puts each low-res sample (jitter +-0.25
at x2 lands exactly on output pixel centres), so a sample placed on the wrong output pixel, taken from the
wrong frame or warped the wrong way, adds an uncorrelated error.
"""
import math

import numpy as np
import pytest
import torch

from nss_train.models.fast import Fast, FastConfig
from nss_train.models.geometry import colour_forward
from nss_train.models.nsrr import NSRR, NSRRConfig

S, N = 2, 2
H, W = 8, 12  # low-res
M = 0.5  # pattern mean (mapped space)
JITTERS = [(-0.25, -0.25), (0.25, 0.25), (0.25, -0.25), (-0.25, 0.25)]  # the 4 output pixels of a block, in turn
K = 2.0  # bias that keeps hidden values positive through the ReLUs


def _identity3x3(conv: torch.nn.Conv2d, src: list[int] | None = None) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_() if conv.bias is not None else None
        c = conv.kernel_size[0] // 2
        for o, i in enumerate(src if src is not None else range(conv.out_channels)):
            conv.weight[o, i, c, c] = 1.0


def _zero(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.zero_()


def _constant_reweighting(rw, value: float = 0.5) -> None:
    """Every previous frame gets weight `value` (tanh -> [0, wmax]: z = atanh(2 value / wmax - 1))."""
    _zero(rw)
    with torch.no_grad():
        rw.convs[-1].bias.fill_(math.atanh(2 * value / rw.wmax - 1))


def hand_set_fast() -> Fast:
    cfg = FastConfig(scale=S, n_prev=N, feat_channels=(4,), reweight_channels=(4,),
                     unet_enc=((12, 12), (4, 4)), unet_dec=((12, 12),))
    m = Fast(cfg).eval()
    _zero(m)
    _constant_reweighting(m.reweight)
    ss = S * S
    off_w = 4 + 4 * ss  # U-Net input: feats (4), folded current RGB-D (4 s^2), weighted (c, n, py, px)
    sq = m.recon.enc[0][0]  # the 1x1 squeeze computes the temporal term per (colour, phase), + K
    with torch.no_grad():
        for c in range(3):
            for p in range(ss):
                o = c * ss + p
                for n in range(N):
                    # weighted[c] = prev_c * cov * 0.5 and weighted[D] = 0.5 (depth 10) * cov * 0.5
                    sq.weight[o, off_w + c * N * ss + n * ss + p] = 2.0
                    sq.weight[o, off_w + 3 * N * ss + n * ss + p] = -4.0 * M
                sq.bias[o] = K
    _identity3x3(m.recon.enc[0][1])
    _identity3x3(m.recon.dec[0][1])
    with torch.no_grad():
        m.recon.skip_proj[0].weight.copy_(torch.eye(12)[:, :, None, None])
    _identity3x3(m.recon.out)  # output channel c * s^2 + phase: depth-to-space order
    with torch.no_grad():
        m.recon.out.bias.fill_(-K)
    return m


def hand_set_nsrr() -> NSRR:
    cfg = NSRRConfig(scale=S, n_prev=N, feat_channels=(4,), reweight_channels=(4,),
                     unet_enc=((3, 3), (3, 3)), unet_dec=((3, 3),))
    m = NSRR(cfg).eval()
    _zero(m)
    _constant_reweighting(m.reweight)
    C = m.feat_cur.out_channels  # 8: RGB-D first
    first = m.recon.enc[0][0]
    with torch.no_grad():
        for c in range(3):
            # current: zero-upsampled RGB-D, cz[c] = cur * cov, cz[D] = 0.5 cov
            first.weight[c, c, 1, 1] = 1.0
            first.weight[c, 3, 1, 1] = -2.0 * M
            for n in range(N):  # weighted[n, c] = prev * cov * 0.5, weighted[n, D] = 0.25 cov
                first.weight[c, C * (n + 1) + c, 1, 1] = 2.0
                first.weight[c, C * (n + 1) + 3, 1, 1] = -4.0 * M
            first.bias[c] = M + K
    _identity3x3(m.recon.enc[0][1])
    _identity3x3(m.recon.dec[0][0], src=[3, 4, 5])  # the skip half of concat(up(x), skip)
    _identity3x3(m.recon.dec[0][1])
    _identity3x3(m.recon.out)
    with torch.no_grad():
        m.recon.out.bias.fill_(-K)
    return m


def sequence(n: int, velocity: tuple[int, int] = (0, 0), seed: int = 0, cuts=(0,)):
    """White noise at the output resolution moving `velocity` OUTPUT px per frame; the contract motion is
    -velocity / S low-res px. -> list of dicts (colour, depth, motion, jitter, reset, target mapped)."""
    g = np.random.default_rng(seed)
    vx, vy = velocity
    pad = 2 * n * max(abs(vx), abs(vy)) + 4
    field = g.uniform(0.15, 0.85, (3, H * S + 2 * pad, W * S + 2 * pad)).astype(np.float32)
    frames = []
    for t in range(n):
        y0, x0 = pad - vy * t, pad - vx * t
        tgt = field[:, y0:y0 + H * S, x0:x0 + W * S]  # mapped values at the output pixels
        jx, jy = JITTERS[t % len(JITTERS)]
        ox, oy = int(math.floor(S * (0.5 + jx))), int(math.floor(S * (0.5 + jy)))
        low = tgt[:, oy::S, ox::S]  # each low-res sample lands on one output pixel centre
        frames.append({
            "colour": torch.from_numpy(low / (1 - low))[None], "depth": torch.full((1, 1, H, W), 10.0),
            "motion": torch.tensor([-vx / S, -vy / S], dtype=torch.float32).view(1, 2, 1, 1).expand(1, 2, H, W).clone(),
            "jitter": torch.tensor([[jx, jy]]), "reset": torch.tensor([1.0 if t in cuts else 0.0]),
            "target": torch.from_numpy(np.ascontiguousarray(tgt))[None]})
    return frames


def run(model, frames, motion_sign: float = 1.0) -> list[float]:
    """Per-frame PSNR (mapped space) of the model run in streaming mode (`step`, as the runtime runs it)."""
    hist = model.init_history(1, H, W)
    out = []
    with torch.no_grad():
        for f in frames:
            y, *hist = model.step(f["colour"], f["depth"], motion_sign * f["motion"], f["jitter"], f["reset"], *hist)
            mse = float(((colour_forward(y) - f["target"]) ** 2).mean())
            out.append(10 * math.log10(1 / mse))
    return out


def bilinear(frames) -> list[float]:
    from nss_train.eval.baselines import upsample
    return [10 * math.log10(1 / float(((upsample(f["colour"], f["jitter"], S, "bilinear") - f["target"]) ** 2).mean()))
            for f in frames]


MODELS = {"fast": hand_set_fast, "nsrr": hand_set_nsrr}


def ideal_static(name, frames, t) -> torch.Tensor:
    """What the hand-set model must output at frame t of a STATIC sequence, computed independently of the model
    code: the history holds frames t-1..t-N, or copies of the last cut frame (the contract's reset rule); each
    of those frames' samples lies on its jitter's output pixel of every block."""
    c = max(i for i, f in enumerate(frames) if i <= t and f["reset"].item() > 0.5)
    tgt = frames[t]["target"][0]
    sources = [max(t - k, c) for k in range(1, N + 1)]  # previous frames
    if name == "nsrr":
        y, sources = torch.full_like(tgt, M), [t] + sources  # the current frame is a source too
    else:
        from nss_train.eval.baselines import upsample
        y = upsample(frames[t]["colour"], frames[t]["jitter"], S, "bilinear")[0]
    for i in sources:
        jx, jy = frames[i]["jitter"][0].tolist()
        ox, oy = int(math.floor(S * (0.5 + jx))), int(math.floor(S * (0.5 + jy)))
        y[:, oy::S, ox::S] += tgt[:, oy::S, ox::S] - M
    return y.clamp(0, 0.999)  # the colour inverse's clamp


def outputs(model, frames) -> list[torch.Tensor]:
    hist = model.init_history(1, H, W)
    out = []
    with torch.no_grad():
        for f in frames:
            y, *hist = model.step(f["colour"], f["depth"], f["motion"], f["jitter"], f["reset"], *hist)
            out.append(colour_forward(y)[0])
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_static_jittered_scene_accumulates_and_resets_at_cut(name):
    """A static scene with sub-pixel detail and jitter: PSNR rises over the first frames as the previous frames'
    samples fill in the other output pixels, drops back at a cut (history reset) and rises again."""
    frames = sequence(9, cuts=(0, 5))
    p = run(MODELS[name](), frames)
    base = bilinear(frames)
    steady = [p[t] for t in (2, 3, 4, 7, 8)]
    assert min(steady) > max(base) + 1.5, (p, base)  # the temporal path adds real detail
    assert p[0] < min(steady) - 1.5 and p[5] < min(steady) - 1.5, p  # the first frame and the cut frame cannot
    assert p[1] < min(steady) and p[6] < min(steady), p  # one previous frame is not yet two
    # and exactly: every sample where its frame's jitter put it, each frame once, the cut honoured
    for t, y in enumerate(outputs(MODELS[name](), frames)):
        err = float((y - ideal_static(name, frames, t)).abs().max())
        assert err < 1e-4, (t, err)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("velocity", [(2, 0), (-1, 2)])  # output px per frame: 1 low-res px right; a diagonal
def test_moving_pattern_needs_the_right_motion_sign(name, velocity):
    frames = sequence(8, velocity=velocity, seed=1)
    m = MODELS[name]()
    right, flipped, still = run(m, frames), run(m, frames, -1.0), run(m, frames, 0.0)
    r, f, z = (float(np.mean(x[2:])) for x in (right, flipped, still))
    assert r > f + 2.0 and r > z + 2.0, (r, f, z)  # warping with the contract's sign is what aligns the history
    assert r > float(np.mean(bilinear(frames)[2:])) + 1.0, (r, bilinear(frames))
