"""Network pieces the architectures share: convolutions, the U-Net encoder pass, the per-frame feature extractor,
the reweighting network, and the streaming interface every preset implements (`Upscaler`, `PrevFramesUpscaler`).

Every model takes raw contract buffers (linear colour, view depth, motion in low-res pixels, jitter) and
returns linear RGB; the colour transform (Reinhard) and the depth normalisation are inside the graph.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from nss_train.models.geometry import colour_forward, colour_inverse, depth_normalise


def conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2)


def unet_encode(enc: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
    """A U-Net's encoder: per level (a ModuleList of convs) a 2x2 max-pool (not before the first level), then
    each conv + ReLU; returns every level's output, the last being the bottleneck."""
    skips = []
    for i, layers in enumerate(enc):
        if i > 0:
            x = F.max_pool2d(x, 2)
        for c in layers:
            x = F.relu(c(x))
        skips.append(x)
    return skips


def exporting() -> bool:
    """True while torch.onnx / torch.export / torch.compile traces the model (no data-dependent checks then)."""
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling() or torch.jit.is_tracing()


class FeatureExtractor(nn.Module):
    """RGB-D (4 ch) -> convs with ReLU -> concat(RGB-D, features) (`features` alone: without the concat)."""

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
    """Per-pixel weight for each previous frame from the current + warped previous RGB-D; tanh -> [0, wmax]."""

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


class Upscaler(nn.Module):
    """The interface fit, evaluate, export_onnx and the runtime use. A subclass sets `cfg` (with name, scale,
    n_prev, depth_ref, multiple) and implements `forward_mapped` (training window -> mapped output, unclamped),
    `history_spec` and `step_mapped` (one streaming frame in the mapped space + new history)."""

    cfg = None
    # False: trained on windows of n_prev + 1 frames (forward_mapped -> the last frame). True (accum): trained on
    # windows of consecutive frames through its own history (forward_sequence -> every frame). fit asks the model.
    recurrent = False

    def rgbd(self, colour: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """[B,3,h,w] linear colour + [B,1,h,w] depth -> [B,4,h,w] (Reinhard colour, normalised depth)."""
        return torch.cat([colour_forward(colour), depth_normalise(depth, self.cfg.depth_ref)], 1)

    def check_size(self, h: int, w: int) -> None:
        m = self.cfg.multiple
        if h % m or w % m or h < m or w < m:
            raise ValueError(f"low-res size {w}x{h}: width and height must be positive multiples of {m} "
                             f"for preset {self.cfg.name!r} at scale {self.cfg.scale}")

    def forward(self, colour, depth, motion, jitter) -> torch.Tensor:
        """Window [B,T,...] -> linear rgb [B,3,sh,sw] of its last frame."""
        return colour_inverse(self.forward_mapped(colour, depth, motion, jitter))

    def init_history(self, batch: int, h: int, w: int, device=None) -> tuple[torch.Tensor, ...]:
        return tuple(torch.zeros((batch,) + shape[1:], device=device) for _, shape in self.history_spec(h, w))

    def step(self, colour, depth, motion, jitter, reset, *hist):
        """One streaming frame: [B,3,h,w], [B,1,h,w], [B,2,h,w], [B,2], reset [B] (1 = cut / first frame),
        history -> (linear rgb [B,3,sh,sw], *new history)."""
        y, *new = self.step_mapped(colour, depth, motion, jitter, reset, *hist)
        return (colour_inverse(y), *new)

    # ---- cost ----
    def count_macs(self, h: int, w: int) -> dict[str, int]:
        """Multiply-accumulates of the convolutions in one streaming step at low-res h x w, per top-level module."""
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
        """Convolution FLOPs (2 x MACs) of one streaming step per output pixel (gathers, resampling and
        element-wise ops not counted)."""
        s = self.cfg.scale
        return 2.0 * sum(self.count_macs(h, w).values()) / (h * s * w * s)


class PrevFramesUpscaler(Upscaler):
    """A network that looks at the current frame and its N previous low-res frames (nsrr, fast).

    Frame t's motion points to frame t-1. Windows are [B, T, C, h, w] with T = n_prev + 1, index -1 the current
    frame. A frame with no valid predecessor is preceded by copies of itself with zero motion (the contract's
    reset semantics); `step` applies this itself when reset = 1. The streaming history holds the previous N
    frames, newest first: their `as_previous` tensors (C = `hist_channels`), motions and jitters.

    Subclasses implement `as_previous(rgbd)` (what a frame is kept as in the history), `window_previous(rgbd)`
    (the same for the previous frames of a training window) and `core(cur_rgbd, cur_jitter, prev_x, motions,
    prev_jitter)` -> mapped output."""

    hist_channels = 4

    def forward_mapped(self, colour, depth, motion, jitter) -> torch.Tensor:
        """Window -> current frame in the mapped space (unclamped). colour [B,T,3,h,w], depth [B,T,1,h,w],
        motion [B,T,2,h,w], jitter [B,T,2], T = n_prev + 1, index -1 = current."""
        B, T, _, h, w = colour.shape
        N = self.cfg.n_prev
        if T != N + 1:
            raise ValueError(f"window has {T} frames; this model needs n_prev + 1 = {N + 1}")
        if not exporting():
            self.check_size(h, w)
        rgbd = self.rgbd(colour.reshape(B * T, 3, h, w), depth.reshape(B * T, 1, h, w)).reshape(B, T, 4, h, w)
        prev_rgbd = rgbd[:, :-1].flip(1)  # t-1 .. t-N
        prev_x = self.window_previous(prev_rgbd.reshape(B * N, 4, h, w)).reshape(B, N, -1, h, w)
        motions = motion[:, 1:].flip(1)  # motion of frames t .. t-N+1
        return self.core(rgbd[:, -1], jitter[:, -1], prev_x, motions, jitter[:, :-1].flip(1))

    def window_previous(self, rgbd: torch.Tensor) -> torch.Tensor:
        return rgbd

    def as_previous(self, rgbd: torch.Tensor) -> torch.Tensor:
        return rgbd

    def history_spec(self, h: int, w: int) -> list[tuple[str, tuple[int, ...]]]:
        """Recurrent state for batch 1: previous frames t-1..t-N, their motions, their jitters."""
        N = self.cfg.n_prev
        return [("hist_x", (1, N, self.hist_channels, h, w)), ("hist_motion", (1, N, 2, h, w)),
                ("hist_jitter", (1, N, 2))]

    def step_mapped(self, colour, depth, motion, jitter, reset, hist_x, hist_motion, hist_jitter):
        B, _, h, w = colour.shape
        if not exporting():
            self.check_size(h, w)
        cut = reset.reshape(B, 1, 1, 1) > 0.5
        rgbd = self.rgbd(colour, depth)
        motion = torch.where(cut, torch.zeros_like(motion), motion)  # a reset frame's predecessors are itself
        cur_x = self.as_previous(rgbd)  # what this frame will be as a previous frame
        cut5 = cut[:, :, :, :, None]
        hist_x = torch.where(cut5, cur_x[:, None].expand_as(hist_x), hist_x)
        hist_motion = torch.where(cut5, torch.zeros_like(hist_motion), hist_motion)
        hist_jitter = torch.where(cut.reshape(B, 1, 1), jitter[:, None].expand_as(hist_jitter), hist_jitter)
        N = self.cfg.n_prev
        motions = torch.cat([motion[:, None], hist_motion[:, : N - 1]], 1)
        y = self.core(rgbd, jitter, hist_x, motions, hist_jitter)
        new_x = torch.cat([cur_x[:, None], hist_x[:, : N - 1]], 1)
        new_m = torch.cat([motion[:, None], hist_motion[:, : N - 1]], 1)
        new_j = torch.cat([jitter[:, None], hist_jitter[:, : N - 1]], 1)
        return y, new_x, new_m, new_j
