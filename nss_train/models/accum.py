"""`accum`: learned temporal accumulation at the output resolution (a TAA upsampler whose rules a network predicts).

Production temporal upscalers (FSR2, DLSS, Arm's neural super sampling) rebuild detail over many frames:
every frame renders one jittered sample per low-res pixel, and an OUTPUT-resolution history accumulates
them. `accum` does that, and a small network at the INPUT resolution decides per pixel how:

    per frame t (contract units: colour linear, depth view z, motion prev = p + m in low-res px, jitter):
      1. dilate_motion   m_dil(p) = motion of the closest-depth pixel of p's 3x3 neighbourhood (edges move
                         with the foreground object, FSR2's rule)
      2. warp_history    H_w(P) = H(P + s * m_dil(block(P))), bilinear, plus a validity mask (0 where the
                         previous position falls outside the frame)
      3. fold            space_to_depth(H_w, s): the history as s*s channels per low-res pixel
      4. neigh_stats     3x3 mean / std of the current colour (Reinhard space): the rectification box
      5. network         small U-Net at low res (one pool level) -> per output sub-pixel:
                           alpha   blend weight of the history (sigmoid, on top of a running-mean prior)
                           kern    3x3 reconstruction kernel over the current samples (softmax over the taps)
                           gamma   box scale: history clamped to mean +- gamma * std (softplus)
                           resid   small residual (zero at init)
                           sharp   signed 3x3 kernel added to kern (zero at init): negative lobes sharpen
      6. apply           cur = (kern + sharp) * colour ; H_rect = clamp(H_w, box) ; a = alpha * valid * (1 - reset)
                         O = a * H_rect + (1 - a) * cur + resid
      7. new history     H = (O, T) at the output resolution; rgb = inverse Reinhard of O

History H has 4 channels at s*h x s*w: the output in Reinhard space, and the accumulated sample weight T
(FSR2's accumulation state, stored as T / weight_cap). This frame's samples weigh w_q at sub-pixel q (a
Gaussian of their distance to it, from the jitter: `sample_weight`); the prior blend weight is T / (T + w_q)
(a running mean when w is constant), the network corrects its logit, and the new T is w_q / (1 - a). So the
untrained network is already a jitter-aware TAA upsampler: weighted accumulation capped at `weight_cap`, a
Gaussian reconstruction kernel centred on each output sub-pixel given the jitter (logits linear in the jitter,
so the head's initial weights express it exactly), variance-box rectification with gamma = `gamma_init`, no
residual. Training only has to improve on that. (`weighted=False`: the plain running mean, channel 4 = a.)

Op list and cost: `cost_table` (every op, FLOPs per output pixel); design, figures and ablations: docs/accum.md.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from nss_runtime.contract import DEPTH_REF, SCALES
from nss_train.models.geometry import colour_forward, colour_inverse, depth_normalise

PRESET = "accum"
HIST_CHANNELS = 4  # Reinhard RGB + accumulation weight
WARP_MODE = "bicubic"  # torch/ONNX cubic convolution, a = -0.75, 4x4 taps: bilinear blurs a moving history every frame


# --- configuration -------------------------------------------------------------------------

@dataclass
class AccumConfig:
    name: str = PRESET
    scale: int = 2
    n_prev: int = 16  # not a window: frames the runtime replays to rebuild the history (upscale_sequence)
    enc: int = 16  # full-res (low-res grid) encoder width
    mid: int = 32  # width after the one pool
    dec: int = 16  # decoder width (the head reads it)
    residual: bool = True  # zero-initialised residual head
    sharpen: bool = True  # zero-initialised signed 3x3 kernel added to the softmax one (negative lobes: sharpening)
    kernel_sigma: float = 0.35  # initial reconstruction kernel: Gaussian, sigma in low-res px (bilinear ~ 0.41)
    alpha_cap: float = 0.95  # cap of the running-mean prior (about 20 frames of memory)
    weighted: bool = True  # accumulate with per-sub-pixel sample weights (distance of the jittered samples)
    weight_sigma: float = 0.25  # sample weight: Gaussian of the distance, low-res px
    weight_cap: float = 24.0  # cap of the accumulated weight, in mean frame weights
    gamma_init: float = 1.25  # initial rectification box scale (in std)
    depth_ref: float = DEPTH_REF
    # ablation switches (the shipped model has all on; docs/model.md)
    use_jitter: bool = True
    use_motion: bool = True
    use_history: bool = True
    dilate: bool = True

    @property
    def multiple(self) -> int:
        return 2  # one pool level at low res

    @classmethod
    def preset(cls, scale: int = 2, n_prev: int | None = None) -> "AccumConfig":
        if scale not in SCALES:
            raise ValueError(f"scale {scale} unsupported; expected one of {SCALES}")
        return cls(scale=scale, **({"n_prev": int(n_prev)} if n_prev else {}))



# --- the geometric ops (each one GPU kernel; see the module docstring) -------------------------

# 3x3 taps, row-major (dy, dx); the centre is tap 4
TAPS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]


def shifted3x3(x: torch.Tensor, pad: str = "replicate", value: float = 0.0) -> list[torch.Tensor]:
    """The 9 neighbours of every pixel, row-major taps, as a list of [B,C,h,w] (border: replicate or constant)."""
    h, w = x.shape[-2:]
    xp = F.pad(x, (1, 1, 1, 1), mode=pad) if pad == "replicate" else F.pad(x, (1, 1, 1, 1), value=value)
    return [xp[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in TAPS]


def dilate_motion(motion: torch.Tensor, dnorm: torch.Tensor) -> torch.Tensor:
    """Motion of the closest pixel (largest normalised depth) of each 3x3 neighbourhood; ties: centre first, then
    row-major. motion [B,2,h,w], dnorm [B,1,h,w] -> [B,2,h,w]. Outside the frame never wins (depth -1)."""
    order = [4, 0, 1, 2, 3, 5, 6, 7, 8]  # centre first
    d9 = shifted3x3(dnorm, pad="constant", value=-1.0)
    m9 = shifted3x3(motion, pad="replicate")
    d = torch.cat([d9[k] for k in order], 1)  # [B,9,h,w]
    best = torch.argmax(d, dim=1, keepdim=True)  # first maximum = the tie rule
    m = torch.stack([m9[k] for k in order], 2)  # [B,2,9,h,w]
    idx = best[:, None].expand(-1, 2, -1, -1, -1)
    return torch.gather(m, 2, idx)[:, :, 0]


def warp_history(hist: torch.Tensor, motion_lr: torch.Tensor, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """H_w(P) = H(P + s * m(block(P))) bilinear (border values), and valid [B,1,sH,sW] = 1 where P + s*m lies
    inside the frame. hist [B,C,s*h,s*w], motion_lr [B,2,h,w] in low-res px (constant over each s x s block)."""
    B, C, H, W = hist.shape
    m = motion_lr.float()
    m = F.interpolate(m, scale_factor=s, mode="nearest") * s  # [B,2,H,W] output px
    xs = torch.arange(W, device=hist.device, dtype=torch.float32)[None, None, :] + 0.5
    ys = torch.arange(H, device=hist.device, dtype=torch.float32)[None, :, None] + 0.5
    px, py = xs + m[:, 0], ys + m[:, 1]  # previous position, output px, edges at 0 and W
    valid = ((px >= 0) & (px <= W) & (py >= 0) & (py <= H)).to(hist.dtype)[:, None]
    # coordinates and the resample in fp32 also in fp16 models (fp16 grid steps are ~0.3 px at 640 px)
    grid = torch.stack([px * (2.0 / W) - 1.0, py * (2.0 / H) - 1.0], -1)
    out = F.grid_sample(hist.float(), grid, mode=WARP_MODE, padding_mode="border", align_corners=False)
    return out.to(hist.dtype), valid


def neigh_stats(y: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """3x3 mean and std per channel (replicate border) of y [B,C,h,w] -> ([B,C,h,w], [B,C,h,w])."""
    taps = shifted3x3(y)
    mean = sum(taps) / 9.0
    sq = sum(t * t for t in taps) / 9.0
    return mean, torch.sqrt(torch.clamp(sq - mean * mean, min=0.0) + eps)


def apply_kernel3x3(y: torch.Tensor, kern: torch.Tensor) -> torch.Tensor:
    """y [B,C,h,w], kern [B,Q,9,h,w] (Q = s*s sub-pixels, weights over the row-major taps) -> [B,C,Q,h,w]."""
    taps = torch.stack(shifted3x3(y), 1)  # [B,9,C,h,w]
    return (kern[:, None] * taps.transpose(1, 2)[:, :, None]).sum(3)


def _tap_offsets(s: int) -> torch.Tensor:
    """e_kq [Q, 9, 2]: tap k's sample position (jitter 0) minus sub-pixel q's centre, low-res px."""
    e = torch.zeros(s * s, 9, 2)
    for qy in range(s):
        for qx in range(s):
            for k, (dy, dx) in enumerate(TAPS):
                e[qy * s + qx, k, 0] = dx + 0.5 - (qx + 0.5) / s
                e[qy * s + qx, k, 1] = dy + 0.5 - (qy + 0.5) / s
    return e


def _sample_weight_raw(jitter: torch.Tensor, s: int, sigma: float) -> torch.Tensor:
    e = _tap_offsets(s).to(jitter.device, jitter.dtype)  # [Q,9,2]
    d = e[None] + jitter[:, None, None, :]  # [B,Q,9,2]
    return torch.exp(-(d * d).sum(-1) / (2 * sigma * sigma)).sum(-1)  # [B,Q]


def sample_weight(jitter: torch.Tensor, s: int, sigma: float) -> torch.Tensor:
    """How close this frame's jittered samples fall to each output sub-pixel: sum over the 3x3 taps of a
    Gaussian of the distance, normalised to mean 1 over uniform jitter. jitter [B,2] -> [B,Q] (per frame: the
    samples of every low-res pixel sit at the same offset)."""
    return _sample_weight_raw(jitter, s, sigma) / _sample_weight_mean(s, sigma)


@functools.lru_cache(maxsize=None)
def _sample_weight_mean(s: int, sigma: float) -> float:
    """The normaliser of sample_weight, in plain Python (a constant of the graph, not traced)."""
    g = [(i + 0.5) / 16 - 0.5 for i in range(16)]
    tot = 0.0
    for jy in g:
        for jx in g:
            for qy in range(s):
                for qx in range(s):
                    for dy, dx in TAPS:
                        ex, ey = dx + 0.5 - (qx + 0.5) / s + jx, dy + 0.5 - (qy + 0.5) / s + jy
                        tot += math.exp(-(ex * ex + ey * ey) / (2 * sigma * sigma))
    return tot / (len(g) ** 2 * s * s)


def softmax_taps(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 2 (the 9 taps) written out: ONNX Runtime's Softmax on an inner axis transposes (slow)."""
    e = torch.exp(logits - logits.amax(dim=2, keepdim=True))
    return e / e.sum(dim=2, keepdim=True)


def kernel_init(s: int, sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Head weights that make softmax(logits) a Gaussian (sigma low-res px) centred on each output sub-pixel,
    given the jitter: tap k of sub-pixel q sits at e_kq + j from the sub-pixel centre, with
    e_kq = (tap offset + 0.5) - (q + 0.5) / s, and -|e + j|^2 / (2 sigma^2) = -(|e|^2 + 2 e.j) / (2 sigma^2) - |j|^2 /
    (2 sigma^2); the last term is the same for every tap, so the logits are linear in j.
    -> (bias [s*s*9], jitter weight [s*s*9, 2]), channel q*9 + k, q = qy*s + qx."""
    bias = torch.zeros(s * s * 9)
    wj = torch.zeros(s * s * 9, 2)
    for qy in range(s):
        for qx in range(s):
            q = qy * s + qx
            for k, (dy, dx) in enumerate(TAPS):
                ex, ey = dx + 0.5 - (qx + 0.5) / s, dy + 0.5 - (qy + 0.5) / s
                bias[q * 9 + k] = -(ex * ex + ey * ey) / (2 * sigma ** 2)
                wj[q * 9 + k, 0] = -ex / sigma ** 2
                wj[q * 9 + k, 1] = -ey / sigma ** 2
    return bias, wj


# --- the network ---------------------------------------------------------------------------------

class AccumNet(nn.Module):
    """Low-res U-Net with one pool level; the 1x1 head also reads the jitter directly (for the kernel prior)."""

    def __init__(self, cin: int, cfg: AccumConfig):
        super().__init__()
        s = cfg.scale
        self.n_alpha, self.n_kern, self.n_resid = s * s, 9 * s * s, (3 * s * s if cfg.residual else 0)
        self.n_sharp = 9 * s * s if cfg.sharpen else 0
        self.e1 = nn.Conv2d(cin, cfg.enc, 3, padding=1)
        self.e2 = nn.Conv2d(cfg.enc, cfg.mid, 3, padding=1)
        self.e3 = nn.Conv2d(cfg.mid, cfg.mid, 3, padding=1)
        self.d1 = nn.Conv2d(cfg.mid + cfg.enc, cfg.dec, 3, padding=1)
        self.head = nn.Conv2d(cfg.dec + 2, self.n_alpha + self.n_kern + 1 + self.n_resid + self.n_sharp, 1)
        self.cfg = cfg
        with torch.no_grad():  # the TAA-upsampler start (module docstring)
            self.head.weight.zero_()
            self.head.bias.zero_()
            kb, kw = kernel_init(s, cfg.kernel_sigma)
            k0 = self.n_alpha
            self.head.bias[k0:k0 + self.n_kern] = kb
            self.head.weight[k0:k0 + self.n_kern, cfg.dec:cfg.dec + 2, 0, 0] = kw
            g = k0 + self.n_kern
            self.head.bias[g] = math.log(math.expm1(cfg.gamma_init))  # softplus^-1

    def forward(self, x: torch.Tensor, jit: torch.Tensor):
        e1 = F.relu(self.e1(x))
        e = F.relu(self.e2(F.avg_pool2d(e1, 2)))
        e = F.relu(self.e3(e))
        d = F.relu(self.d1(torch.cat([F.interpolate(e, scale_factor=2, mode="nearest"), e1], 1)))
        o = self.head(torch.cat([d, jit], 1))
        a, k, g = self.n_alpha, self.n_kern, 1
        alpha_logit = o[:, :a]
        kern_logit = o[:, a:a + k]
        gamma = F.softplus(o[:, a + k:a + k + g])
        r0 = a + k + g
        resid = o[:, r0:r0 + self.n_resid] if self.n_resid else None
        sharp = o[:, r0 + self.n_resid:] if self.n_sharp else None
        return alpha_logit, kern_logit, gamma, resid, sharp


class Accum(nn.Module):
    """The recurrent model. step(): one frame (streaming, export); forward_sequence(): a window (training)."""

    recurrent = True  # fit trains it on sequences with truncated back-propagation through time
    wants_jitter = True  # exported metadata "jitter": the game must jitter its low-res render (Halton 2,3)

    def __init__(self, cfg: AccumConfig):
        super().__init__()
        if cfg.scale not in SCALES:
            raise ValueError(f"scale {cfg.scale} unsupported; expected one of {SCALES}")
        self.cfg = cfg
        s = cfg.scale
        # reinhard(c) 3, depth 1, jitter 2, folded history 4*s*s, folded validity s*s, |m_dil| 2, box stats 6
        cin = 3 + 1 + 2 + HIST_CHANNELS * s * s + s * s + 2 + 6
        self.net = AccumNet(cin, cfg)

    # ---- one frame ----
    def step_mapped(self, colour, depth, motion, jitter, reset, hist):
        """colour [B,3,h,w] linear, depth [B,1,h,w], motion [B,2,h,w], jitter [B,2], reset [B], hist [B,4,sh,sw]
        -> (O [B,3,sh,sw] Reinhard space, unclamped for the loss; new hist [B,4,sh,sw])."""
        cfg = self.cfg
        s = cfg.scale
        B, _, h, w = colour.shape
        y = colour_forward(colour)
        dn = depth_normalise(depth, cfg.depth_ref)
        jitter = jitter.reshape(B, 2).to(y.dtype)
        if not cfg.use_jitter:
            jitter = torch.zeros_like(jitter)
        keep = (1.0 - reset.reshape(B, 1, 1, 1).to(y.dtype))  # 0 on a cut / first frame
        # 1. closest-depth motion dilation
        m = dilate_motion(motion, dn) if cfg.dilate else motion
        if not cfg.use_motion:
            m = torch.zeros_like(m)
        # 2. warp the output-resolution history, 3. fold it to the low-res grid
        hw, valid = warp_history(hist, m, s)
        valid = valid * keep
        if not cfg.use_history:
            valid = torch.zeros_like(valid)
        hw = hw * valid
        hw_f = F.pixel_unshuffle(hw, s)  # [B,4*s*s,h,w], channel c*s*s + q
        valid_f = F.pixel_unshuffle(valid, s)  # [B,s*s,h,w]
        # 4. rectification box of the current samples
        mean, std = neigh_stats(y)
        # 5. the network
        jit = jitter[:, :, None, None].expand(B, 2, h, w)
        x = torch.cat([y, dn, jit, hw_f, valid_f, m.abs(), mean, std], 1)
        alpha_logit, kern_logit, gamma, resid, sharp = self.net(x, jit)
        Q = s * s
        # 6. apply: current estimate per sub-pixel, rectified history, blend
        kern = softmax_taps(kern_logit.reshape(B, Q, 9, h, w))
        if sharp is not None:  # softmax (positive, sums to 1) + a signed kernel: negative lobes can sharpen
            kern = kern + sharp.reshape(B, Q, 9, h, w)
        cur = apply_kernel3x3(y, kern)  # [B,3,Q,h,w]
        h_rgb = hw_f[:, : 3 * Q].reshape(B, 3, Q, h, w)
        h_acc = hw_f[:, 3 * Q:]  # [B,Q,h,w] accumulation weight a of the previous frame
        lo, hi = (mean - gamma * std)[:, :, None], (mean + gamma * std)[:, :, None]  # [B,3,1,h,w]
        h_rect = torch.minimum(torch.maximum(h_rgb, lo), hi)
        if cfg.weighted:  # FSR2's rule: a = T / (T + w), T accumulated weight, w this frame's sample weight
            wq = sample_weight(jitter, s, cfg.weight_sigma)[:, :, None, None]  # [B,Q,1,1], mean 1 over jitter
            t_w = torch.clamp(h_acc, 0.0, 1.0) * cfg.weight_cap  # the bicubic warp may overshoot
            prior = torch.log(t_w + 1e-3) - torch.log(wq)
        else:
            prior = -torch.log(1.0 - torch.clamp(h_acc, 0.0, 2.0 - 1.0 / cfg.alpha_cap))  # logit of 1 / (2 - a)
        a = torch.sigmoid(alpha_logit + prior) * valid_f  # [B,Q,h,w]
        if cfg.weighted:  # the total weight consistent with the blend used: a = T/(T+w) <=> T + w = w/(1-a)
            acc = torch.clamp(wq / (1.0 - a + 1e-4), max=cfg.weight_cap) / cfg.weight_cap
        else:
            acc = a
        o = a[:, None] * h_rect + (1.0 - a[:, None]) * cur
        if resid is not None:
            o = o + resid.reshape(B, 3, Q, h, w)
        o = o.reshape(B, 3 * Q, h, w)
        o_img = F.pixel_shuffle(o, s)
        # 7. new history: clamped output + the blend weight used. Clamped before its own pixel shuffle (the same
        # values): two Clips on one tensor made the fp16 ONNX export drop one Clip's bound (ORT refused the file)
        new_hist = torch.cat([F.pixel_shuffle(torch.clamp(o, 0.0, 1.0), s), F.pixel_shuffle(acc, s)], 1)
        return o_img, new_hist

    def step(self, colour, depth, motion, jitter, reset, hist):
        """Streaming frame (the exported graph): -> (linear rgb [B,3,sh,sw], new hist)."""
        o, new = self.step_mapped(colour, depth, motion, jitter, reset, hist)
        return colour_inverse(o), new

    def history_spec(self, h: int, w: int) -> list[tuple[str, tuple[int, ...]]]:
        s = self.cfg.scale
        return [("hist_accum", (1, HIST_CHANNELS, h * s, w * s))]

    def init_history(self, batch: int, h: int, w: int, device=None) -> tuple[torch.Tensor, ...]:
        s = self.cfg.scale
        return (torch.zeros(batch, HIST_CHANNELS, h * s, w * s, device=device),)

    def check_size(self, h: int, w: int) -> None:
        m = self.cfg.multiple
        if h % m or w % m or h < m or w < m:
            raise ValueError(f"low-res size {w}x{h}: width and height must be positive multiples of {m} "
                             f"for preset {PRESET!r}")

    # ---- a window (training) ----
    def forward_sequence(self, colour, depth, motion, jitter, reset=None, detach_every: int = 0) -> torch.Tensor:
        """colour [B,T,3,h,w], depth [B,T,1,h,w], motion [B,T,2,h,w], jitter [B,T,2], reset [B,T] (frame 0 always
        resets) -> outputs in Reinhard space [B,T,3,sh,sw] (unclamped). Back-propagation runs through the whole
        window (truncated at its start); detach_every > 0 cuts the graph every that many frames."""
        B, T, _, h, w = colour.shape
        self.check_size(h, w)
        if reset is None:
            reset = torch.zeros(B, T, device=colour.device)
        reset = reset.clone()
        reset[:, 0] = 1.0
        (hist,) = self.init_history(B, h, w, colour.device)
        outs = []
        for t in range(T):
            if detach_every and t and t % detach_every == 0:
                hist = hist.detach()
            o, hist = self.step_mapped(colour[:, t], depth[:, t], motion[:, t], jitter[:, t], reset[:, t], hist)
            outs.append(o)
        return torch.stack(outs, 1)

    def forward_mapped(self, colour, depth, motion, jitter, reset=None) -> torch.Tensor:
        """A window -> its LAST frame in Reinhard space (the interface validation uses)."""
        return self.forward_sequence(colour, depth, motion, jitter, reset)[:, -1]

    def forward(self, colour, depth, motion, jitter, reset=None) -> torch.Tensor:
        return colour_inverse(self.forward_mapped(colour, depth, motion, jitter, reset))

    # ---- cost ----
    def cost_table(self, h: int = 180, w: int = 320) -> list[tuple[str, float]]:
        """FLOPs per OUTPUT pixel of one streaming step, op by op (a multiply-add = 2 FLOPs; a compare, min,
        max, exp, log, sqrt, division = 1 each). Convolutions count their MACs exactly (bias included)."""
        return cost_table(self.cfg, h, w)

    def flops_per_output_pixel(self, h: int = 180, w: int = 320) -> float:
        return sum(v for _, v in self.cost_table(h, w))


def cost_table(cfg: AccumConfig, h: int = 180, w: int = 320) -> list[tuple[str, float]]:
    s = cfg.scale
    Q = s * s
    n_lr = h * w
    n_out = n_lr * Q
    cin = 3 + 1 + 2 + HIST_CHANNELS * Q + Q + 2 + 6
    head_out = Q + 9 * Q + 1 + (3 * Q if cfg.residual else 0) + (9 * Q if cfg.sharpen else 0)

    def conv(ci, co, k, n):  # MACs + bias add + relu
        return n * co * (2 * ci * k * k + 2)

    rows = [
        ("reinhard(colour) + depth_norm", n_lr * (3 * 3 + 4)),
        ("dilate_motion (9 compares, 2-ch select)", n_lr * (9 + 2)),
        ("warp_history: coords + validity", n_out * (2 * 2 + 4 + 2 * 2)),
        ("warp_history: bicubic 4x4 taps x 4 ch (+ weights)", n_out * (HIST_CHANNELS * 16 * 2 + 2 * 4 * 8)),
        ("history * validity", n_out * HIST_CHANNELS),
        ("neigh_stats 3x3 mean/std, 3 ch", n_lr * 3 * (9 + 9 * 2 + 4)),
        ("|m_dil|, jitter planes", n_lr * 4),
        ("conv e1 3x3", conv(cin, cfg.enc, 3, n_lr)),
        ("avgpool2", n_lr * cfg.enc * 1.0),
        ("conv e2 3x3 (1/4 res)", conv(cfg.enc, cfg.mid, 3, n_lr / 4)),
        ("conv e3 3x3 (1/4 res)", conv(cfg.mid, cfg.mid, 3, n_lr / 4)),
        ("upsample2 nearest (copy)", 0.0),
        ("conv d1 3x3 on concat", conv(cfg.mid + cfg.enc, cfg.dec, 3, n_lr)),
        ("head conv 1x1", n_lr * head_out * (2 * (cfg.dec + 2) + 1)),
        ("softplus (gamma)", n_lr * 3),
        ("softmax over 9 taps per sub-pixel", n_out * (9 * 3 + 9)),
        *([("signed kernel: softmax + sharp (add)", n_out * 9)] if cfg.sharpen else []),
        ("apply_kernel3x3: 9 taps x 3 ch", n_out * 3 * 9 * 2),
        ("box lo/hi + clamp history", n_lr * 3 * 4 + n_out * 3 * 2),
        ("alpha: prior (clamp, log) + sigmoid + validity", n_out * (2 + 2 + 4 + 1)),
        ("blend a*H + (1-a)*cur + resid", n_out * 3 * 4),
        ("history clamp + inverse reinhard", n_out * 3 * (2 + 4)),
    ]
    return [(k, float(v) / n_out) for k, v in rows]


# the registry's interface (nss_train.models.registry): the config dataclass and the module
CONFIG = AccumConfig
MODEL = Accum


def tiny_config(cfg: AccumConfig) -> AccumConfig:
    """The same ops with a few channels (nss_train.export.onnx.export_tiny: exports and runs in seconds)."""
    import dataclasses
    return dataclasses.replace(cfg, enc=6, mid=8, dec=6)


if __name__ == "__main__":  # python -m nss_train.models.accum: the cost, op by op
    for s in SCALES:
        cfg = AccumConfig(scale=s)
        m = Accum(cfg)
        h, w = 360 // s, 640 // s
        print(f"accum x{s}: {sum(p.numel() for p in m.parameters()):,} params")
        tot = 0.0
        for k, v in m.cost_table(h, w):
            tot += v
            print(f"  {k:50s} {v:9.1f}")
        print(f"  {'total FLOPs per output pixel':50s} {tot:9.1f}")
