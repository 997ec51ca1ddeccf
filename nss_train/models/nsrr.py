"""`nsrr`: the network of Xiao et al. 2020, "Neural supersampling for real-time rendering" (SIGGRAPH).

1. feature extraction on each frame's RGB-D (4 ch): 3 conv3x3 (32, 32, 8) + ReLU, output concat(RGB-D,
   features) = 12 ch; the current frame has its own weights, the previous frames share one extractor;
2. zero-upsampling of every frame to the output size, each sample in the block cell of its jittered position;
3. motion upsampled bilinearly (x s), accumulated backwards so frame t-k is warped straight to t, every previous
   frame's zero-upsampled features backward-warped with grid_sample (bilinear, zeros outside);
4. feature reweighting on the current + WARPED previous RGB-D: conv3x3 32, 32, N, tanh -> [0, 10], previous
   frame k's 12 channels multiplied by weight k;
5. a U-Net at the OUTPUT resolution: 64, 32 | pool | 64, 64 | pool | 128, 128 | up, concat | 64, 64 | up,
   concat | 32, 3 (conv3x3 + ReLU, no batch norm, linear last layer).

No residual (the paper's network predicts the image itself), so its last layer keeps PyTorch's default
initialisation; an untrained nsrr outputs noise, not a baseline.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from nss_runtime.contract import DEPTH_REF, SCALES
from nss_train.models.geometry import accumulate_flows, upsample_motion, warp, zero_upsample
from nss_train.models.layers import FeatureExtractor, PrevFramesUpscaler, Reweighting, conv, unet_encode


@dataclass
class NSRRConfig:
    name: str = "nsrr"
    scale: int = 4  # per axis
    n_prev: int = 4  # previous frames
    feat_channels: tuple[int, ...] = (32, 32, 8)  # feature extractor convs; output = concat(RGB-D, last)
    cache_features: bool = True  # streaming history holds per-frame features (else RGB-D, recomputed each step)
    reweight_channels: tuple[int, ...] = (32, 32)  # hidden widths; a last conv gives n_prev weights
    reweight_max: float = 10.0  # tanh -> [0, reweight_max]
    unet_enc: tuple[tuple[int, ...], ...] = ((64, 32), (64, 64), (128, 128))  # per level, 2x2 max-pool between
    unet_dec: tuple[tuple[int, ...], ...] = ((64, 64), (32,))  # per level after upsample + skip concat
    depth_ref: float = DEPTH_REF

    @classmethod
    def preset(cls, scale: int = 4, n_prev: int | None = None) -> "NSRRConfig":
        if scale not in SCALES:
            raise ValueError(f"scale {scale} unsupported; expected one of {SCALES}")
        return cls(scale=scale, n_prev=n_prev or cls.n_prev)

    @property
    def multiple(self) -> int:
        """Low-res width and height must be multiples of this (the U-Net pools at the output resolution)."""
        return max(1, 2 ** (len(self.unet_enc) - 1) // self.scale)


class UNet(nn.Module):
    """enc levels (conv3x3 + ReLU, 2x2 max-pool between), dec levels (bilinear 2x up, concat skip, convs),
    a final linear conv3x3."""

    def __init__(self, cin: int, cout: int, enc, dec):
        super().__init__()
        assert len(dec) == len(enc) - 1, "one decoder level per pooling"
        self.enc = nn.ModuleList()
        c, skips = cin, []
        for lvl in enc:
            layers = nn.ModuleList()
            for w in lvl:
                layers.append(conv(c, w))
                c = w
            self.enc.append(layers)
            skips.append(c)
        self.dec = nn.ModuleList()
        for lvl, sc in zip(dec, reversed(skips[:-1])):
            layers = nn.ModuleList()
            c = c + sc
            for w in lvl:
                layers.append(conv(c, w))
                c = w
            self.dec.append(layers)
        self.out = conv(c, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = unet_encode(self.enc, x)
        x = skips[-1]
        for layers, skip in zip(self.dec, reversed(skips[:-1])):
            x = torch.cat([F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), skip], 1)
            for c in layers:
                x = F.relu(c(x))
        return self.out(x)


class NSRR(PrevFramesUpscaler):
    def __init__(self, cfg: NSRRConfig):
        super().__init__()
        self.cfg = cfg
        N = cfg.n_prev
        self.feat_prev = FeatureExtractor(cfg.feat_channels)
        self.feat_cur = FeatureExtractor(cfg.feat_channels)
        C = self.feat_prev.out_channels
        self.hist_channels = C if cfg.cache_features else 4
        self.reweight = Reweighting(4 * (N + 1), cfg.reweight_channels, N, cfg.reweight_max, False)
        self.recon = UNet(C * (N + 1), 3, cfg.unet_enc, cfg.unet_dec)

    def window_previous(self, rgbd):
        return self.feat_prev(rgbd)

    def as_previous(self, rgbd):
        return self.feat_prev(rgbd) if self.cfg.cache_features else rgbd

    def core(self, cur_rgbd, cur_jitter, prev_x, motions, prev_jitter) -> torch.Tensor:
        """cur_rgbd [B,4,h,w]; prev_x [B,N,C,h,w] previous frames t-1..t-N (features, or RGB-D: then the features
        are computed here); motions [B,N,2,h,w]: motion of frames t..t-N+1; prev_jitter [B,N,2].
        -> y [B,3,sh,sw] in the mapped (Reinhard) space, unclamped."""
        s, N = self.cfg.scale, self.cfg.n_prev
        B, _, h, w = cur_rgbd.shape
        H, W = h * s, w * s
        cur = self.feat_cur(cur_rgbd)
        if prev_x.shape[2] == 4:  # the history holds RGB-D: compute the previous frames' features
            prev_x = self.feat_prev(prev_x.reshape(B * N, 4, h, w)).reshape(B, N, -1, h, w)
        C = prev_x.shape[2]
        ups = upsample_motion(motions.reshape(B * N, 2, h, w), s).reshape(B, N, 2, H, W)
        flows = torch.stack(accumulate_flows([ups[:, k] for k in range(N)]), 1)  # [B,N,2,H,W] flow t -> t-k-1
        pz = zero_upsample(prev_x.reshape(B * N, C, h, w), prev_jitter.reshape(B * N, 2), s)
        pw = warp(pz, flows.reshape(B * N, 2, H, W)).reshape(B, N, C, H, W)
        cz_rgbd = zero_upsample(cur_rgbd, cur_jitter, s)
        wts = self.reweight(torch.cat([cz_rgbd, pw[:, :, :4].reshape(B, N * 4, H, W)], 1))  # [B,N,H,W]
        weighted = (pw * wts[:, :, None]).reshape(B, N * C, H, W)
        cz = zero_upsample(cur, cur_jitter, s)
        return self.recon(torch.cat([cz, weighted], 1))


CONFIG, MODEL = NSRRConfig, NSRR
