"""The supersampling network of Xiao et al. 2020 ("Neural supersampling for real-time rendering").

Two presets share one pipeline (ModelConfig.preset):

  nsrr  the paper: per-frame feature extraction (the current frame with its own
        weights), zero-upsampling, bilinear motion upsampling with backward
        accumulation, grid_sample warping, feature reweighting on the warped
        RGB-D (tanh -> [0, 10]) and a U-Net at the OUTPUT resolution.
  fast  our real-time variant (after Mercier et al., ICCV 2023): 2 previous
        frames contribute only their RGB-D; the network runs at INPUT resolution
        on folded (space-to-depth) tensors, a depth-to-space finishes, and it
        predicts a residual over the bilinear upsample of the current frame.
        Its geometry is cheap on purpose (`gather_warp`): flows accumulate at
        low resolution, and the warp of a zero-upsampled frame is computed
        straight into the folded layout with one row lookup per output pixel
        (a zero-upsampled frame has at most one non-zero bilinear tap), so the
        time goes to convolutions, which CPUs and GPUs run near their peak.

The model takes raw contract buffers (linear colour, view depth, motion in
low-res pixels, jitter) and returns linear RGB: the colour transform (Reinhard)
and depth normalisation of nss_runtime.contract are inside the graph.

Frame t's motion points to frame t-1 (prev = p + motion). Windows are
[B, T, C, h, w] with T = n_prev + 1, index -1 the current frame. A frame with no
valid predecessor is preceded by copies of itself with zero motion (the
contract's reset semantics); `step` applies this itself when reset = 1.
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from nss_runtime.contract import COLOUR_TRANSFORM, COLOUR_TRANSFORM_MAX, DEPTH_REF, SCALES

CKPT_FORMAT = "nss_train.ckpt"
CKPT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is truncated, foreign, or does not match the expected config."""


# --- configuration -------------------------------------------------------------

@dataclass
class ModelConfig:
    name: str = "nsrr"
    scale: int = 4  # per axis
    n_prev: int = 4  # previous frames
    feat_channels: tuple[int, ...] = (32, 32, 8)  # feature extractor convs; output = concat(RGB-D, last)
    separate_current_extractor: bool = True  # the paper: current frame has its own weights
    warp_features: bool = True  # previous frames bring their full features (paper) or RGB-D only (fast)
    cache_features: bool = True  # streaming history holds per-frame features (else RGB-D, recomputed)
    reweight_channels: tuple[int, ...] = (32, 32)  # hidden widths; a last conv gives n_prev weights
    reweight_max: float = 10.0  # tanh -> [0, reweight_max]
    lowres_recon: bool = False  # reconstruct at input resolution on folded tensors (fast)
    unet_enc: tuple[tuple[int, ...], ...] = ((64, 32), (64, 64), (128, 128))  # per level, pool between
    unet_dec: tuple[tuple[int, ...], ...] = ((64, 64), (32,))  # per level after upsample + skip concat
    unet_fuse_1x1: bool = False  # the first conv after each skip concat is a 1x1 fusion (fast)
    residual: bool = False  # predict a residual over the bilinear upsample of the current frame
    depth_ref: float = DEPTH_REF
    jitter_aware: bool = True  # zero-upsampling puts each sample where its jittered position falls
    gather_warp: bool = False  # low-res flow accumulation + direct folded warp by row lookup (needs lowres_recon)
    unet_split_fuse: bool = False  # the 1x1 fusion after a skip as two 1x1 convs + add (no concat; fast)

    @staticmethod
    def preset(name: str, scale: int = 4, n_prev: int | None = None) -> "ModelConfig":
        """A preset's config; n_prev None (or 0) = the preset's own default (nsrr 4, fast 2)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
        if scale not in SCALES:
            raise ValueError(f"scale {scale} unsupported; expected one of {SCALES}")
        n_prev = n_prev or PRESETS[name].get("n_prev", ModelConfig.n_prev)
        if n_prev < 1:
            raise ValueError(f"n_prev {n_prev} invalid; expected >= 1 previous frame")
        return ModelConfig(**{**PRESETS[name], **SCALE_OVERRIDES.get((name, scale), {}), "name": name,
                              "scale": scale, "n_prev": n_prev})

    @staticmethod
    def from_dict(d: dict, where: str = "config") -> "ModelConfig":
        known = {f.name for f in fields(ModelConfig)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise CheckpointError(f"{where}: unknown model config field(s) {unknown}; expected a subset of {sorted(known)}")
        d = dict(d)
        for k in ("feat_channels", "reweight_channels"):
            if k in d:
                d[k] = tuple(int(v) for v in d[k])
        for k in ("unet_enc", "unet_dec"):
            if k in d:
                d[k] = tuple(tuple(int(v) for v in lvl) for lvl in d[k])
        return ModelConfig(**d)

    @property
    def multiple(self) -> int:
        """Low-res width and height must be multiples of this."""
        pools = len(self.unet_enc) - 1
        if self.lowres_recon:
            return 2 ** pools
        return max(1, 2 ** pools // self.scale)


PRESETS: dict[str, dict] = {
    "nsrr": dict(),  # the dataclass defaults are the paper's sizes
    "fast": dict(
        n_prev=2,
        feat_channels=(16,),
        separate_current_extractor=False,
        warp_features=False,
        cache_features=True,
        reweight_channels=(16,),
        lowres_recon=True,
        unet_enc=((32, 32), (64, 64)),  # level 0: a 1x1 squeeze of the folded input, then a 3x3
        unet_dec=((32, 32),),
        unet_fuse_1x1=True,
        residual=True,
        gather_warp=True,
        unet_split_fuse=True,
    ),
}


# fast x4 reconstructs 16 output pixels (48 values) per low-res pixel from a 208-channel folded input: its
# full-resolution levels are wider than x2's 32
SCALE_OVERRIDES: dict[tuple[str, int], dict] = {
    ("fast", 4): dict(unet_enc=((48, 48), (64, 64)), unet_dec=((48, 48),)),
}


# --- contract transforms (torch versions of nss_runtime.contract) ---------------

assert COLOUR_TRANSFORM == "reinhard", "model.py implements the Reinhard colour transform only"


def colour_forward(x: torch.Tensor) -> torch.Tensor:
    x = torch.clamp(x, min=0.0)
    return x / (1.0 + x)


def colour_inverse(y: torch.Tensor) -> torch.Tensor:
    y = torch.clamp(y, 0.0, COLOUR_TRANSFORM_MAX)
    return y / (1.0 - y)


def depth_normalise(d: torch.Tensor, ref: float = DEPTH_REF) -> torch.Tensor:
    d = torch.where(torch.isnan(d), torch.zeros_like(d), torch.clamp(d, min=0.0))
    return 1.0 / (1.0 + d / ref)  # +inf -> 0


# --- geometric building blocks ----------------------------------------------------

def block_offset(jitter: torch.Tensor, s: int, jitter_aware: bool = True) -> torch.Tensor:
    """[..., 2] jitter (low-res px) -> [..., 2] (x, y) position of the pixel's sample in its s x s output block:
    floor(s * (0.5 + jitter)) clamped to [0, s-1] (jitter 0 -> s // 2; ignored unless jitter_aware)."""
    if not jitter_aware:
        jitter = torch.zeros_like(jitter)
    return torch.clamp(torch.floor(s * (0.5 + jitter)), 0, s - 1)


def zero_upsample(x: torch.Tensor, jitter: torch.Tensor, s: int, jitter_aware: bool = True) -> torch.Tensor:
    """[B,C,h,w] -> [B,C,s*h,s*w]: low-res pixel (i, j) goes to one position of its s x s block, zeros elsewhere.

    The position is where the pixel's sample lies: offset floor(s * (0.5 + jitter)) in the block, clamped to
    [0, s-1], per axis (jitter 0 -> offset s // 2). Built from comparisons so it exports without control flow.
    """
    B, C, h, w = x.shape
    off = block_offset(jitter, s, jitter_aware)  # [B, 2] (x, y)
    ar = torch.arange(s, device=x.device, dtype=x.dtype)
    mx = (ar[None, :] == off[:, 0:1]).to(x.dtype)  # [B, s]
    my = (ar[None, :] == off[:, 1:2]).to(x.dtype)
    mask = (my[:, :, None] * mx[:, None, :]).reshape(B, 1, 1, s, 1, s)  # one-hot position in the block
    return (x[:, :, :, None, :, None] * mask).reshape(B, C, h * s, w * s)


def base_grid(H: int, W: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    ys = torch.arange(H, device=like.device, dtype=like.dtype) + 0.5
    xs = torch.arange(W, device=like.device, dtype=like.dtype) + 0.5
    return xs[None, None, :], ys[None, :, None]  # [1,1,W], [1,H,1]


def warp(x: torch.Tensor, flow: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Backward warp: out(p) = x(p + flow(p)), flow [B,2,H,W] in pixels of x, bilinear."""
    B, C, H, W = x.shape
    gx, gy = base_grid(H, W, flow)
    px = (gx + flow[:, 0]) * (2.0 / W) - 1.0  # align_corners=False: pixel centres at (i + 0.5)
    py = (gy + flow[:, 1]) * (2.0 / H) - 1.0
    grid = torch.stack([px, py], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def upsample_motion(m: torch.Tensor, s: int) -> torch.Tensor:
    """Low-res motion [B,2,h,w] (low-res px) -> high-res motion [B,2,sh,sw] (high-res px)."""
    return F.interpolate(m, scale_factor=s, mode="bilinear", align_corners=False) * s


def accumulate_flows(motions: list[torch.Tensor]) -> list[torch.Tensor]:
    """motions[k] = high-res motion of frame t-k (to t-k-1). Returns flow(t -> t-k-1) for k = 0..N-1:
    flow(t->t-k) = flow(t->t-k+1) + warp(motion(t-k+1 -> t-k), flow(t->t-k+1))."""
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
    cheapest resample there is; fast uses it where a low-res approximation is enough (flow accumulation, the
    reweighting's view of the previous frames)."""
    B, C, h, w = x.shape
    flow = flow.float()  # coordinates and indices in fp32/int64 also in fp16 models (fp16 integers end at 2048)
    gx, gy = base_grid(h, w, flow)
    u = torch.clamp(torch.round(gx - 0.5 + flow[:, 0]), 0.0, w - 1.0).to(torch.int64)
    v = torch.clamp(torch.round(gy - 0.5 + flow[:, 1]), 0.0, h - 1.0).to(torch.int64)
    return lookup_rows(x, v * w + u).transpose(1, 2).reshape(B, C, h, w)


def accumulate_flows_lowres(motions: torch.Tensor) -> torch.Tensor:
    """motions [B,N,2,h,w] (low-res px, frames t..t-N+1) -> flows t->t-k-1 [B,N,2,h,w], accumulated at LOW
    resolution with nearest lookups: flow_k = flow_{k-1} + motion_k(nearest(p + flow_{k-1}))."""
    flows = [motions[:, 0]]
    for k in range(1, motions.shape[1]):
        flows.append(flows[-1] + sample_nearest(motions[:, k], flows[-1]))
    return torch.stack(flows, 1)


def warp_zero_upsampled_folded(x: torch.Tensor, jitter: torch.Tensor, flow: torch.Tensor, s: int,
                               jitter_aware: bool = True, weight: torch.Tensor | None = None) -> torch.Tensor:
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
    # positions in fp32 and indices in int64, also in fp16 models: fp16 has 4-pixel steps at 4096
    flow = flow.reshape(M, 2, h, w).float()
    off = block_offset(jitter.reshape(M, 2).float(), s, jitter_aware)  # [M, 2]
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


def bilinear_up_folded_kernel(s: int, channels: int = 3) -> torch.Tensor:
    """Depthwise 3x3 kernel [channels*s*s, 1, 3, 3] with pixel_shuffle(conv(pad_replicate(x)), s) ==
    F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False): the upsample as a low-res conv."""
    k1 = torch.zeros(s, 3, dtype=torch.float64)
    for p in range(s):
        t = (p + 0.5) / s - 0.5  # source offset of phase p from its cell centre, in (-0.5, 0.5)
        if t >= 0:
            k1[p, 1], k1[p, 2] = 1 - t, t
        else:
            k1[p, 0], k1[p, 1] = -t, 1 + t
    k2 = k1[:, None, :, None] * k1[None, :, None, :]  # [s(py), s(px), 3, 3]
    return k2.reshape(1, s * s, 3, 3).expand(channels, s * s, 3, 3).reshape(channels * s * s, 1, 3, 3).float()


def fold_zero_upsampled(x: torch.Tensor, jitter: torch.Tensor, s: int, jitter_aware: bool = True) -> torch.Tensor:
    """pixel_unshuffle(zero_upsample(x, jitter), s) directly: x times a one-hot of the sample's block position."""
    B, C, h, w = x.shape
    off = block_offset(jitter, s, jitter_aware)
    pos = off[:, 1:2] * s + off[:, 0:1]  # [B, 1]
    onehot = (torch.arange(s * s, device=x.device, dtype=x.dtype)[None, :] == pos).to(x.dtype)
    return (x[:, :, None] * onehot.reshape(B, 1, s * s, 1, 1)).reshape(B, C * s * s, h, w)


# --- networks ---------------------------------------------------------------------------

def conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class FeatureExtractor(nn.Module):
    """RGB-D (4 ch) -> convs with ReLU -> concat(RGB-D, features)."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        chans = (4,) + tuple(widths)
        self.convs = nn.ModuleList(conv(a, b) for a, b in zip(chans[:-1], chans[1:]))
        self.out_channels = 4 + chans[-1]

    def features(self, rgbd: torch.Tensor) -> torch.Tensor:
        x = rgbd
        for c in self.convs:
            x = F.relu(c(x))
        return x

    def forward(self, rgbd: torch.Tensor) -> torch.Tensor:
        return torch.cat([rgbd, self.features(rgbd)], 1)


class Reweighting(nn.Module):
    """Per-pixel weight for each previous frame from the current + warped previous RGB-D; tanh -> [0, max]."""

    def __init__(self, cin: int, hidden: tuple[int, ...], n_prev: int, wmax: float, first_1x1: bool):
        super().__init__()
        chans = (cin,) + tuple(hidden) + (n_prev,)
        ks = [1 if (first_1x1 and i == 0) else 3 for i in range(len(chans) - 1)]
        self.convs = nn.ModuleList(conv(a, b, k) for a, b, k in zip(chans[:-1], chans[1:], ks))
        self.wmax = wmax

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c in self.convs[:-1]:
            x = F.relu(c(x))
        return (torch.tanh(self.convs[-1](x)) + 1.0) * (0.5 * self.wmax)


class UNet(nn.Module):
    """enc levels (convs, 2x2 max-pool between), dec levels (bilinear 2x up, concat skip, convs), final conv.

    With first_1x1 the very first conv is a 1x1 squeeze (the fast preset's wide folded input); with fuse_1x1
    the first conv after each skip concat is a 1x1."""

    def __init__(self, cin: int, cout: int, enc, dec, first_1x1: bool = False, fuse_1x1: bool = False,
                 split_fuse: bool = False):
        super().__init__()
        assert len(dec) == len(enc) - 1, "one decoder level per pooling"
        assert fuse_1x1 or not split_fuse, "split_fuse splits the 1x1 fusion conv"
        self.split_fuse = split_fuse
        self.enc = nn.ModuleList()
        c = cin
        first = True
        skips = []
        for lvl in enc:
            layers = nn.ModuleList()
            for w in lvl:
                layers.append(conv(c, w, 1 if (first and first_1x1) else 3))
                c, first = w, False
            self.enc.append(layers)
            skips.append(c)
        self.dec = nn.ModuleList()
        self.skip_proj = nn.ModuleList()
        for lvl, sc in zip(dec, reversed(skips[:-1])):
            layers = nn.ModuleList()
            if split_fuse:  # 1x1(cat(up(x), skip)) == up(1x1_a(x)) + 1x1_b(skip): no concat, fewer channels up
                self.skip_proj.append(nn.Conv2d(sc, lvl[0], 1, bias=False))
            else:
                c = c + sc
            for i, w in enumerate(lvl):
                layers.append(conv(c, w, 1 if (fuse_1x1 and i == 0) else 3))
                c = w
            self.dec.append(layers)
        self.out = conv(c, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, layers in enumerate(self.enc):
            if i > 0:
                x = F.max_pool2d(x, 2)
            for c in layers:
                x = F.relu(c(x))
            skips.append(x)
        for i, (layers, skip) in enumerate(zip(self.dec, reversed(skips[:-1]))):
            if self.split_fuse:
                x = layers[0](x)
                x = F.relu(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
                           + self.skip_proj[i](skip))
                layers = layers[1:]
            else:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
                x = torch.cat([x, skip], 1)
            for c in layers:
                x = F.relu(c(x))
        return self.out(x)


class NSRR(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.gather_warp and not cfg.lowres_recon:
            raise ValueError("gather_warp needs lowres_recon (it warps straight into the folded layout)")
        if cfg.gather_warp and cfg.scale < 2:
            raise ValueError("gather_warp needs scale >= 2")
        self.cfg = cfg
        s, N = cfg.scale, cfg.n_prev
        self.feat_prev = FeatureExtractor(cfg.feat_channels)
        self.feat_cur = FeatureExtractor(cfg.feat_channels) if cfg.separate_current_extractor else self.feat_prev
        C = self.feat_prev.out_channels
        self.prev_channels = C if cfg.warp_features else 4  # channels each previous frame contributes
        self.hist_channels = C if (cfg.warp_features and cfg.cache_features) else 4
        if cfg.gather_warp:
            self.register_buffer("up_kernel", bilinear_up_folded_kernel(s), persistent=False)
        if cfg.lowres_recon:
            rw_in = 4 * (N + 1) if cfg.gather_warp else 4 * s * s * (N + 1)
            self.reweight = Reweighting(rw_in, cfg.reweight_channels, N, cfg.reweight_max, True)
            cur_ch = C - 4 if cfg.gather_warp else C  # gather_warp: features only (the folded cz_f has the RGB-D)
            cin = cur_ch + 4 * s * s + self.prev_channels * s * s * N
            self.recon = UNet(cin, 3 * s * s, cfg.unet_enc, cfg.unet_dec, first_1x1=True,
                              fuse_1x1=cfg.unet_fuse_1x1, split_fuse=cfg.unet_split_fuse)
        else:
            self.reweight = Reweighting(4 * (N + 1), cfg.reweight_channels, N, cfg.reweight_max, False)
            self.recon = UNet(C + self.prev_channels * N, 3, cfg.unet_enc, cfg.unet_dec, fuse_1x1=cfg.unet_fuse_1x1)

    # ---- shared core ----
    def _rgbd(self, colour: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return torch.cat([colour_forward(colour), depth_normalise(depth, self.cfg.depth_ref)], 1)

    def _core(self, cur_rgbd, cur_jitter, prev_x, motions, prev_jitter) -> torch.Tensor:
        """Reconstruct the current frame in the mapped (Reinhard) space.

        cur_rgbd [B,4,h,w]; prev_x [B,N,Cp,h,w] previous frames t-1..t-N (features, or RGB-D when
        features are not cached / not warped); motions [B,N,2,h,w]: motion of frames t..t-N+1;
        prev_jitter [B,N,2]. Returns y [B,3,sh,sw] (not clamped, for the loss)."""
        cfg = self.cfg
        s, N = cfg.scale, cfg.n_prev
        B, _, h, w = cur_rgbd.shape
        cur = None if cfg.gather_warp else self.feat_cur(cur_rgbd)
        Cx = prev_x.shape[2]
        if cfg.warp_features and Cx == 4:  # history holds RGB-D: recompute the previous frames' features
            prev_x = self.feat_prev(prev_x.reshape(B * N, 4, h, w)).reshape(B, N, -1, h, w)
        elif not cfg.warp_features:
            prev_x = prev_x[:, :, :4]
        Cp = prev_x.shape[2]
        if cfg.gather_warp:
            flows = accumulate_flows_lowres(motions)  # [B,N,2,h,w]
            # reweighting sees the current RGB-D and each previous one at its nearest low-res pixel: disocclusions
            # show at low res as well, and it keeps the weights off the high-res data path
            prev_lr = sample_nearest(prev_x[:, :, :4].reshape(B * N, 4, h, w), flows.reshape(B * N, 2, h, w))
            wts = self.reweight(torch.cat([cur_rgbd, prev_lr.reshape(B, N * 4, h, w)], 1))  # [B,N,h,w]
            weighted = warp_zero_upsampled_folded(prev_x, prev_jitter, flows, s, cfg.jitter_aware, weight=wts)
            cz_f = fold_zero_upsampled(cur_rgbd, cur_jitter, s, cfg.jitter_aware)
            feats = self.feat_cur.features(cur_rgbd)  # cz_f holds the RGB-D; 64 input channels, no NCHWc padding
            y = self.recon(torch.cat([feats, cz_f, weighted], 1))
            if cfg.residual:  # the bilinear upsample as a fixed low-res depthwise conv: no high-res Resize/Add
                y = y + F.conv2d(F.pad(cur_rgbd[:, :3], (1, 1, 1, 1), mode="replicate"), self.up_kernel, groups=3)
            return F.pixel_shuffle(y, s)
        ups = upsample_motion(motions.reshape(B * N, 2, h, w), s).reshape(B, N, 2, h * s, w * s)
        flows = torch.stack(accumulate_flows([ups[:, k] for k in range(N)]), 1)  # [B,N,2,H,W]
        pz = zero_upsample(prev_x.reshape(B * N, Cp, h, w), prev_jitter.reshape(B * N, 2), s, cfg.jitter_aware)
        pw = warp(pz, flows.reshape(B * N, 2, h * s, w * s)).reshape(B, N, Cp, h * s, w * s)
        cz_rgbd = zero_upsample(cur_rgbd, cur_jitter, s, cfg.jitter_aware)
        if cfg.lowres_recon:
            fold = lambda t: F.pixel_unshuffle(t, s)  # noqa: E731
            pw_f = fold(pw.reshape(B * N, Cp, h * s, w * s)).reshape(B, N, Cp * s * s, h, w)
            rgbd_f = pw_f.reshape(B, N, Cp, s * s, h, w)[:, :, :4].reshape(B, N * 4 * s * s, h, w)
            cz_f = fold(cz_rgbd)
            wts = self.reweight(torch.cat([cz_f, rgbd_f], 1))  # [B,N,h,w]
            weighted = (pw_f * wts[:, :, None]).reshape(B, N * Cp * s * s, h, w)
            y = F.pixel_shuffle(self.recon(torch.cat([cur, cz_f, weighted], 1)), s)
        else:
            wts = self.reweight(torch.cat([cz_rgbd, pw[:, :, :4].reshape(B, N * 4, h * s, w * s)], 1))
            weighted = (pw * wts[:, :, None]).reshape(B, N * Cp, h * s, w * s)
            cz = zero_upsample(cur, cur_jitter, s, cfg.jitter_aware)
            y = self.recon(torch.cat([cz, weighted], 1))
        if cfg.residual:
            y = y + F.interpolate(cur_rgbd[:, :3], scale_factor=s, mode="bilinear", align_corners=False)
        return y

    def check_size(self, h: int, w: int) -> None:
        m = self.cfg.multiple
        if h % m or w % m or h < m or w < m:
            raise ValueError(f"low-res size {w}x{h}: width and height must be positive multiples of {m} "
                             f"for preset {self.cfg.name!r} at scale {self.cfg.scale}")

    # ---- training: a window ----
    def forward_mapped(self, colour, depth, motion, jitter) -> torch.Tensor:
        """Window -> current frame in the mapped space (unclamped). colour [B,T,3,h,w], depth [B,T,1,h,w],
        motion [B,T,2,h,w], jitter [B,T,2], T = n_prev + 1, index -1 = current."""
        B, T, _, h, w = colour.shape
        N = self.cfg.n_prev
        if T != N + 1:
            raise ValueError(f"window has {T} frames; this model needs n_prev + 1 = {N + 1}")
        if not _exporting():
            self.check_size(h, w)
        rgbd = self._rgbd(colour.reshape(B * T, 3, h, w), depth.reshape(B * T, 1, h, w)).reshape(B, T, 4, h, w)
        prev_rgbd = rgbd[:, :-1].flip(1)  # t-1 .. t-N
        prev_x = prev_rgbd
        if self.cfg.warp_features:
            prev_x = self.feat_prev(prev_rgbd.reshape(B * N, 4, h, w)).reshape(B, N, -1, h, w)
        motions = motion[:, 1:].flip(1)  # motion of frames t .. t-N+1
        return self._core(rgbd[:, -1], jitter[:, -1], prev_x, motions, jitter[:, :-1].flip(1))

    def forward(self, colour, depth, motion, jitter) -> torch.Tensor:
        return colour_inverse(self.forward_mapped(colour, depth, motion, jitter))

    # ---- streaming: one frame ----
    def history_spec(self, h: int, w: int) -> list[tuple[str, tuple[int, ...]]]:
        """Recurrent state for batch 1: previous frames t-1..t-N (features or RGB-D), their motions, jitters."""
        N = self.cfg.n_prev
        return [("hist_x", (1, N, self.hist_channels, h, w)), ("hist_motion", (1, N, 2, h, w)),
                ("hist_jitter", (1, N, 2))]

    def init_history(self, batch: int, h: int, w: int, device=None) -> tuple[torch.Tensor, ...]:
        return tuple(torch.zeros((batch,) + shape[1:], device=device) for _, shape in self.history_spec(h, w))

    def step_mapped(self, colour, depth, motion, jitter, reset, hist_x, hist_motion, hist_jitter):
        B, _, h, w = colour.shape
        if not _exporting():
            self.check_size(h, w)
        cut = reset.reshape(B, 1, 1, 1) > 0.5
        rgbd = self._rgbd(colour, depth)
        motion = torch.where(cut, torch.zeros_like(motion), motion)  # a reset frame's predecessors are itself
        cur_x = rgbd
        if self.cfg.warp_features and self.cfg.cache_features:
            cur_x = self.feat_prev(rgbd)  # what this frame will be as a previous frame
        cut5 = cut[:, :, :, :, None]
        hist_x = torch.where(cut5, cur_x[:, None].expand_as(hist_x), hist_x)
        hist_motion = torch.where(cut5, torch.zeros_like(hist_motion), hist_motion)
        hist_jitter = torch.where(cut.reshape(B, 1, 1), jitter[:, None].expand_as(hist_jitter), hist_jitter)
        N = self.cfg.n_prev
        motions = torch.cat([motion[:, None], hist_motion[:, : N - 1]], 1)
        y = self._core(rgbd, jitter, hist_x, motions, hist_jitter)
        new_x = torch.cat([cur_x[:, None], hist_x[:, : N - 1]], 1)
        new_m = torch.cat([motion[:, None], hist_motion[:, : N - 1]], 1)
        new_j = torch.cat([jitter[:, None], hist_jitter[:, : N - 1]], 1)
        return y, new_x, new_m, new_j

    def step(self, colour, depth, motion, jitter, reset, hist_x, hist_motion, hist_jitter):
        """One streaming frame: [B,3,h,w], [B,1,h,w], [B,2,h,w], [B,2], reset [B] (1 = cut / first frame),
        history -> (linear rgb [B,3,sh,sw], *new history)."""
        y, *hist = self.step_mapped(colour, depth, motion, jitter, reset, hist_x, hist_motion, hist_jitter)
        return (colour_inverse(y), *hist)

    # ---- cost ----
    def count_macs(self, h: int, w: int) -> dict[str, int]:
        """Multiply-accumulates of the convolutions in one streaming step at low-res h x w, per module."""
        macs: dict[str, int] = {}
        hooks = []
        for name, mod in self.named_modules():
            if isinstance(mod, nn.Conv2d):
                def hook(m, inp, out, name=name):
                    k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
                    macs[name.split(".")[0]] = macs.get(name.split(".")[0], 0) + out.numel() * k
                hooks.append(mod.register_forward_hook(hook))
        try:
            with torch.no_grad():
                z = lambda *s: torch.zeros(1, *s)  # noqa: E731
                self.step(z(3, h, w), z(1, h, w), z(2, h, w), z(2), torch.ones(1), *self.init_history(1, h, w))
        finally:
            for hk in hooks:
                hk.remove()
        return macs

    def flops_per_output_pixel(self, h: int = 180, w: int = 320) -> float:
        """Convolution FLOPs (2 x MACs) of one streaming step per output pixel (grid_sample etc. not counted)."""
        s = self.cfg.scale
        return 2.0 * sum(self.count_macs(h, w).values()) / (h * s * w * s)


def _exporting() -> bool:
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling() or torch.jit.is_tracing()


def build_model(cfg: ModelConfig) -> NSRR:
    return NSRR(cfg)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- checkpoints --------------------------------------------------------------------

def save_checkpoint(path, model: NSRR, optimizer=None, step: int = 0, rng=None, data=None, metrics=None,
                    extra=None) -> None:
    """Write {"format", "version", "config", "model", ...} atomically (temp file + rename)."""
    from nss_train.frames import atomic_write_bytes

    ckpt = {"format": CKPT_FORMAT, "version": CKPT_VERSION, "config": asdict(model.cfg),
            "model": model.state_dict(), "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "step": int(step), "rng": rng, "data": data or {}, "metrics": metrics or {}}
    if extra:
        ckpt.update(extra)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_checkpoint(path) -> dict:
    """Load and validate the checkpoint dict (weights_only); raises CheckpointError with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle of foreign objects, not a torch file at all
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: unreadable or truncated checkpoint ({type(e).__name__}: {msg[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{path}: not an nss_train checkpoint (expected format {CKPT_FORMAT!r})")
    if ckpt.get("version") != CKPT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')!r}; this nss_train reads "
                              f"version {CKPT_VERSION}")
    for k in ("config", "model"):
        if not isinstance(ckpt.get(k), dict):
            raise CheckpointError(f"{path}: field {k!r} missing or not a dict")
    return ckpt


def load_checkpoint(path, expect: ModelConfig | None = None) -> tuple[NSRR, ModelConfig, dict]:
    """-> (model in eval mode, cfg, ckpt dict). With `expect`, a different config raises CheckpointError."""
    ckpt = read_checkpoint(path)
    cfg = ModelConfig.from_dict(ckpt["config"], where=f"{path}: config")
    if expect is not None and asdict(expect) != asdict(cfg):
        diff = {k: (v, asdict(expect)[k]) for k, v in asdict(cfg).items() if asdict(expect)[k] != v}
        raise CheckpointError(f"{path}: checkpoint config differs from the requested one "
                              f"(field: (checkpoint, requested)) {diff}")
    model = build_model(cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{path}: weights do not match its config ({' '.join(first[:2])[:300]})") from None
    model.eval()
    return model, cfg, ckpt


if __name__ == "__main__":  # python -m nss_train.model: cost of both presets
    for name in PRESETS:
        for s in SCALES:
            m = build_model(ModelConfig.preset(name, scale=s))
            h, w = (360 // s, 640 // s)
            h -= h % m.cfg.multiple
            w -= w % m.cfg.multiple
            f = m.flops_per_output_pixel(h, w)
            print(f"{name:5s} x{s}: {param_count(m):9,d} params  {f:9,.0f} FLOPs/output px  "
                  f"{f * 640 * 360 / 1e9:6.2f} GFLOP per 640x360 frame")
