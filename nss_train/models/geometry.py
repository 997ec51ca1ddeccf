"""The geometry every architecture shares: contract transforms, zero-upsampling, warps, flow accumulation, folding.

Conventions (the frame contract, nss_runtime.contract): motion is in low-res pixels, x right, y down, and
points to the previous frame (prev = p + motion); the sample of low-res pixel (i, j) lies at
(i + 0.5 + jx, j + 0.5 + jy). Pixel centres are at (i + 0.5) (align_corners=False everywhere). Positions and
indices are computed in fp32 / int64 even inside fp16 models: fp16 integers end at 2048 and its steps are
0.25-4 px wide at the sizes games render.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from nss_runtime.contract import COLOUR_TRANSFORM, COLOUR_TRANSFORM_MAX, DEPTH_REF

# --- contract transforms (torch versions of nss_runtime.contract; tests/test_model.py compares them) ------------

assert COLOUR_TRANSFORM == "reinhard", "geometry.py implements the Reinhard colour transform only"


def colour_forward(x: torch.Tensor) -> torch.Tensor:
    """Linear HDR colour -> [0, 1): Reinhard y = x / (1 + x)."""
    x = torch.clamp(x, min=0.0)
    return x / (1.0 + x)


def colour_inverse(y: torch.Tensor) -> torch.Tensor:
    """Inverse Reinhard x = y / (1 - y), y clamped to [0, COLOUR_TRANSFORM_MAX]."""
    y = torch.clamp(y, 0.0, COLOUR_TRANSFORM_MAX)
    return y / (1.0 - y)


def depth_normalise(d: torch.Tensor, ref: float = DEPTH_REF) -> torch.Tensor:
    """View depth -> (0, 1]: 1 / (1 + d / ref); +inf (sky) -> 0, NaN -> 1."""
    d = torch.where(torch.isnan(d), torch.zeros_like(d), torch.clamp(d, min=0.0))
    return 1.0 / (1.0 + d / ref)


# --- zero-upsampling ----------------------------------------------------------------------------------------------

def block_offset(jitter: torch.Tensor, s: int) -> torch.Tensor:
    """[..., 2] jitter (low-res px) -> [..., 2] (x, y) position of the pixel's sample in its s x s output block:
    floor(s * (0.5 + jitter)) clamped to [0, s-1] (jitter 0 -> s // 2)."""
    return torch.clamp(torch.floor(s * (0.5 + jitter)), 0, s - 1)


def zero_upsample(x: torch.Tensor, jitter: torch.Tensor, s: int) -> torch.Tensor:
    """[B,C,h,w] -> [B,C,s*h,s*w]: low-res pixel (i, j) goes to one position of its s x s block, zeros elsewhere.

    The position is the block cell holding the pixel's jittered sample (`block_offset`). Built from comparisons
    so it exports without control flow."""
    B, C, h, w = x.shape
    off = block_offset(jitter, s)  # [B, 2] (x, y)
    ar = torch.arange(s, device=x.device, dtype=x.dtype)
    mx = (ar[None, :] == off[:, 0:1]).to(x.dtype)  # [B, s]
    my = (ar[None, :] == off[:, 1:2]).to(x.dtype)
    mask = (my[:, :, None] * mx[:, None, :]).reshape(B, 1, 1, s, 1, s)  # one-hot position in the block
    return (x[:, :, :, None, :, None] * mask).reshape(B, C, h * s, w * s)


def fold_zero_upsampled(x: torch.Tensor, jitter: torch.Tensor, s: int) -> torch.Tensor:
    """pixel_unshuffle(zero_upsample(x, jitter), s) directly: x times a one-hot of the sample's block position."""
    B, C, h, w = x.shape
    off = block_offset(jitter, s)
    pos = off[:, 1:2] * s + off[:, 0:1]  # [B, 1]
    onehot = (torch.arange(s * s, device=x.device, dtype=x.dtype)[None, :] == pos).to(x.dtype)
    return (x[:, :, None] * onehot.reshape(B, 1, s * s, 1, 1)).reshape(B, C * s * s, h, w)


# --- warps and flows --------------------------------------------------------------------------------------------

def base_grid(H: int, W: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates (i + 0.5) in like's dtype: [1,1,W] (x), [1,H,1] (y)."""
    ys = torch.arange(H, device=like.device, dtype=like.dtype) + 0.5
    xs = torch.arange(W, device=like.device, dtype=like.dtype) + 0.5
    return xs[None, None, :], ys[None, :, None]


def warp(x: torch.Tensor, flow: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Backward warp: out(p) = x(p + flow(p)), flow [B,2,H,W] in pixels of x, bilinear.

    The sampling grid is built in fp32 whatever the dtype of x and flow, and an fp16/bf16 x is sampled in fp32
    and cast back: a grid in fp16 is off by up to 0.75 px at 1280 px, even with zero flow."""
    B, C, H, W = x.shape
    f = flow.float()
    gx, gy = base_grid(H, W, f)
    px = (gx + f[:, 0]) * (2.0 / W) - 1.0  # align_corners=False: pixel centres at (i + 0.5)
    py = (gy + f[:, 1]) * (2.0 / H) - 1.0
    grid = torch.stack([px, py], dim=-1)
    if x.dtype == torch.float32:
        return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode=padding, align_corners=False).to(x.dtype)


def upsample_motion(m: torch.Tensor, s: int) -> torch.Tensor:
    """Low-res motion [B,2,h,w] (low-res px) -> high-res motion [B,2,sh,sw] (high-res px), bilinear."""
    return F.interpolate(m, scale_factor=s, mode="bilinear", align_corners=False) * s


def accumulate_flows(motions: list[torch.Tensor]) -> list[torch.Tensor]:
    """motions[k] = motion of frame t-k (to t-k-1), one resolution. Returns flow(t -> t-k-1) for k = 0..N-1:
    flow(t->t-k) = flow(t->t-k+1) + warp(motion(t-k+1 -> t-k), flow(t->t-k+1)) (bilinear, border-clamped)."""
    flows = [motions[0]]
    for k in range(1, len(motions)):
        flows.append(flows[-1] + warp(motions[k], flows[-1], padding="border"))
    return flows


def lookup_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """x [M,C,h,w], idx [M,...] int64 pixel indices (y * w + x) into each item's own frame -> [M, K, C] (K
    indices per item): one ONNX Gather of C-value rows, the cheap way to resample on a CPU."""
    M, C, h, w = x.shape
    base = (torch.arange(M, device=x.device, dtype=torch.int64) * (h * w)).reshape((M,) + (1,) * (idx.dim() - 1))
    rows = x.permute(0, 2, 3, 1).reshape(M * h * w, C)  # low-res, cheap
    return torch.index_select(rows, 0, (idx + base).reshape(-1)).reshape(M, -1, C)


def sample_nearest(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """out(p) = x(nearest pixel to p + flow), border-clamped: one row lookup per pixel (ONNX Gather), the
    cheapest resample there is (fast's flow accumulation and its reweighting's view of the previous frames)."""
    B, C, h, w = x.shape
    flow = flow.float()  # coordinates and indices in fp32/int64 also in fp16 models
    gx, gy = base_grid(h, w, flow)
    u = torch.clamp(torch.round(gx - 0.5 + flow[:, 0]), 0.0, w - 1.0).to(torch.int64)
    v = torch.clamp(torch.round(gy - 0.5 + flow[:, 1]), 0.0, h - 1.0).to(torch.int64)
    return lookup_rows(x, v * w + u).transpose(1, 2).reshape(B, C, h, w)


def accumulate_flows_lowres(motions: torch.Tensor) -> torch.Tensor:
    """motions [B,N,2,h,w] (low-res px, motion of frames t..t-N+1) -> flows t->t-k-1 [B,N,2,h,w], accumulated at
    LOW resolution with nearest lookups: flow_k = flow_{k-1} + motion_k(nearest(p + flow_{k-1}))."""
    flows = [motions[:, 0]]
    for k in range(1, motions.shape[1]):
        flows.append(flows[-1] + sample_nearest(motions[:, k], flows[-1]))
    return torch.stack(flows, 1)


def warp_zero_upsampled_folded(x: torch.Tensor, jitter: torch.Tensor, flow: torch.Tensor, s: int,
                               weight: torch.Tensor | None = None) -> torch.Tensor:
    """pixel_unshuffle(warp(zero_upsample(x_n, jitter_n), s * flow_n), s) for N frames at once, without building
    any high-res tensor but the result: x [B,N,C,h,w], jitter [B,N,2], flow [B,N,2,h,w] in low-res px (held
    constant over each s x s block); optional per-pixel weight [B,N,h,w]. -> [B, C*N*s*s, h, w], channels
    ordered (c, n, py, px).

    A zero-upsampled frame has one sample per s x s block, so of the 4 bilinear taps of a warp at most one is
    non-zero (s >= 2): output = the nearest real sample times its bilinear tent weight (0 outside the frame,
    like grid_sample's zero padding). One row lookup of C values per output pixel; the weights are applied
    after a transpose to channel-first, where ONNX Runtime broadcasts them fast."""
    B, N, C, h, w = x.shape
    M = B * N
    flow = flow.reshape(M, 2, h, w).float()
    off = block_offset(jitter.reshape(M, 2).float(), s)  # [M, 2]
    ar = torch.arange(s, device=x.device, dtype=torch.float32).reshape(1, s, 1, 1)
    gx, gy = base_grid(h, w, flow)  # cell centres (i + 0.5)

    def axis(g, f, o, n):
        # high-res index coordinate of each output phase (s*i + phase) moved by s*flow; its nearest sample's cell
        pos = s * (g - 0.5)[:, None] + ar + s * f[:, None]  # [M, s, h, w]
        o = o.reshape(M, 1, 1, 1)
        cell = torch.round((pos - o) / s)
        wt = torch.relu(1.0 - torch.abs(pos - (s * cell + o))) * ((cell >= 0) & (cell <= n - 1)).float()
        return torch.clamp(cell, 0, n - 1).to(torch.int64), wt

    cx, wx = axis(gx, flow[:, 0], off[:, 0], w)  # [M, s(px), h, w]
    cy, wy = axis(gy, flow[:, 1], off[:, 1], h)  # [M, s(py), h, w]
    wt = (wy[:, :, None] * wx[:, None, :]).to(x.dtype)  # [M, s, s, h, w]
    if weight is not None:
        wt = wt * weight.reshape(M, 1, 1, h, w)
    got = lookup_rows(x.reshape(M, C, h, w), cy[:, :, None] * w + cx[:, None, :])  # [M, s*s*h*w, C]
    got = got.reshape(B, N * s * s * h * w, C).transpose(1, 2)
    return (got * wt.reshape(B, 1, N * s * s * h * w)).reshape(B, C * N * s * s, h, w)


def bilinear_up_folded_jittered(x: torch.Tensor, jitter: torch.Tensor, s: int) -> torch.Tensor:
    """The jitter-aligned bilinear upsample, folded: [B,C,h,w] + jitter [B,2] -> [B, C*s*s, h, w] with
    pixel_shuffle(result, s)(P) = bilinear interpolation of x's samples (which lie at i + 0.5 + jitter) at output
    pixel P's centre, border-clamped, i.e. F.grid_sample(x, position (P + 0.5) / s - jitter, border).

    Phase p of a cell sits t = (p + 0.5) / s - 0.5 - jitter low-res px from the cell's sample, |t| < 1, so three
    taps per axis suffice, with tent weights relu(1 - |t - k|), k = -1, 0, 1: two separable 3-tap passes over
    the replicate-padded frame, all at the input resolution. With jitter 0 it equals
    F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)."""
    B, C, h, w = x.shape
    j = jitter.float()
    ph = (torch.arange(s, device=x.device, dtype=torch.float32) + 0.5) / s - 0.5  # [s]
    k = torch.arange(-1, 2, device=x.device, dtype=torch.float32)  # [3]
    t = ph[None, :, None] - j[:, :, None, None]  # [B, 2(x, y), 1... ] -> [B, 2, s, 1]
    wts = torch.relu(1.0 - torch.abs(t - k)).to(x.dtype)  # [B, 2, s, 3]
    wx, wy = wts[:, 0], wts[:, 1]  # [B, s, 3]
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")  # [B, C, h+2, w+2]
    # horizontal pass: [B, C, s(px), h+2, w]
    hx = sum(xp[:, :, None, :, i:i + w] * wx[:, None, :, i, None, None] for i in range(3))
    # vertical pass: [B, C, s(py), s(px), h, w]
    vy = sum(hx[:, :, None, :, i:i + h, :] * wy[:, None, :, i, None, None, None] for i in range(3))
    return vy.reshape(B, C * s * s, h, w)
