"""`fast`: our real-time variant of NSRR (after Mercier et al., ICCV 2023), the same geometry computed where
it is cheap, and a U-Net at the INPUT resolution on folded (space-to-depth) tensors.

1. 2 previous frames, contributing only their RGB-D (no per-frame features to warp);
2. their flows accumulate at the input resolution (`accumulate_flows_lowres`: nsrr's backward recurrence with a
   nearest, border-clamped row lookup) and are held constant over each s x s block of output pixels;
3. the zero-upsampled, warped previous frames are computed straight into the folded layout
   (`warp_zero_upsampled_folded`: one row lookup per output pixel and frame, equal to
   pixel_unshuffle(grid_sample(zero_upsample(x))) within float rounding);
4. reweighting (1x1 conv 16, conv3x3 N, tanh -> [0, 10]) on the current RGB-D and each previous RGB-D at its
   nearest low-res pixel; its weights multiply the folded warped frames together with the tent weights;
5. a U-Net at the input resolution on concat(current frame's conv3x3 features, its folded zero-upsample, the
   weighted folded previous frames): 1x1 squeeze, conv3x3 | pool | 2 conv3x3 | up + skip as
   `up(1x1(x)) + 1x1(skip)` (a 1x1 fusion after a concat, without the concat), conv3x3 | conv3x3 to 3 s^2;
6. plus the residual base: the bilinear interpolation of the current frame's samples at their real, jittered
   positions (`bilinear_up_folded_jittered`: two 3-tap passes in the folded layout); the U-Net's last layer is
   zero-initialised, so an untrained model IS that base; one depth-to-space at the end.
Nothing but the depth-to-space and the row lookups touches the output resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from nss_runtime.contract import DEPTH_REF, SCALES
from nss_train.models.geometry import (accumulate_flows_lowres, bilinear_up_folded_jittered, fold_zero_upsampled,
                                sample_nearest, warp_zero_upsampled_folded)
from nss_train.models.layers import FeatureExtractor, PrevFramesUpscaler, Reweighting, conv, unet_encode


@dataclass
class FastConfig:
    name: str = "fast"
    scale: int = 2  # per axis
    n_prev: int = 2  # previous frames
    feat_channels: tuple[int, ...] = (16,)  # current-frame feature convs (3x3 + ReLU)
    reweight_channels: tuple[int, ...] = (16,)  # hidden widths (the first conv is 1x1); a last conv3x3 -> n_prev
    reweight_max: float = 10.0  # tanh -> [0, reweight_max]
    unet_enc: tuple[tuple[int, ...], ...] = ((32, 32), (64, 64))  # level 0 starts with a 1x1 squeeze
    unet_dec: tuple[tuple[int, ...], ...] = ((32, 32),)  # the first conv of a level is the 1x1 skip fusion
    depth_ref: float = DEPTH_REF

    @classmethod
    def preset(cls, scale: int = 2, n_prev: int | None = None) -> "FastConfig":
        if scale not in SCALES:
            raise ValueError(f"scale {scale} unsupported; expected one of {SCALES}")
        cfg = cls(scale=scale, n_prev=n_prev or cls.n_prev)
        if scale == 4:  # 16 output pixels (48 values) per low-res pixel from a 208-channel input: wider levels
            cfg.unet_enc, cfg.unet_dec = ((48, 48), (64, 64)), ((48, 48),)
        return cfg

    @property
    def multiple(self) -> int:
        """Low-res width and height must be multiples of this (the U-Net pools at the input resolution)."""
        return 2 ** (len(self.unet_enc) - 1)


class FastUNet(nn.Module):
    """A U-Net for wide folded inputs: the very first conv is a 1x1 squeeze; after each 2x upsample the skip
    joins as relu(up(1x1_a(x)) + 1x1_b(skip)) (== a 1x1 conv of the concat, without building the concat,
    and fewer channels to upsample); conv3x3 + ReLU elsewhere; a final linear conv3x3."""

    def __init__(self, cin: int, cout: int, enc, dec):
        super().__init__()
        assert len(dec) == len(enc) - 1, "one decoder level per pooling"
        self.enc = nn.ModuleList()
        c, skips = cin, []
        for li, lvl in enumerate(enc):
            layers = nn.ModuleList()
            for i, w in enumerate(lvl):
                layers.append(conv(c, w, 1 if li == 0 and i == 0 else 3))
                c = w
            self.enc.append(layers)
            skips.append(c)
        self.dec = nn.ModuleList()
        self.skip_proj = nn.ModuleList()
        for lvl, sc in zip(dec, reversed(skips[:-1])):
            layers = nn.ModuleList()
            self.skip_proj.append(nn.Conv2d(sc, lvl[0], 1, bias=False))
            for i, w in enumerate(lvl):
                layers.append(conv(c, w, 1 if i == 0 else 3))
                c = w
            self.dec.append(layers)
        self.out = conv(c, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = unet_encode(self.enc, x)
        x = skips[-1]
        for layers, proj, skip in zip(self.dec, self.skip_proj, reversed(skips[:-1])):
            x = F.relu(F.interpolate(layers[0](x), scale_factor=2, mode="bilinear", align_corners=False)
                       + proj(skip))
            for c in layers[1:]:
                x = F.relu(c(x))
        return self.out(x)


class Fast(PrevFramesUpscaler):
    def __init__(self, cfg: FastConfig):
        super().__init__()
        if cfg.scale < 2:
            raise ValueError("fast needs scale >= 2 (its folded warp assumes one sample per block)")
        self.cfg = cfg
        s, N = cfg.scale, cfg.n_prev
        self.feat = FeatureExtractor(cfg.feat_channels)
        self.reweight = Reweighting(4 * (N + 1), cfg.reweight_channels, N, cfg.reweight_max, True)
        cin = cfg.feat_channels[-1] + 4 * s * s + 4 * s * s * N
        self.recon = FastUNet(cin, 3 * s * s, cfg.unet_enc, cfg.unet_dec)
        # the network predicts a residual over the jitter-aligned bilinear base: a zero last layer makes the
        # untrained model exactly that base, so training starts at it, not below it
        nn.init.zeros_(self.recon.out.weight)
        nn.init.zeros_(self.recon.out.bias)

    def core(self, cur_rgbd, cur_jitter, prev_x, motions, prev_jitter) -> torch.Tensor:
        """cur_rgbd [B,4,h,w]; prev_x [B,N,4,h,w] previous RGB-D t-1..t-N; motions [B,N,2,h,w]: motion of frames
        t..t-N+1; prev_jitter [B,N,2]. -> y [B,3,sh,sw] in the mapped (Reinhard) space, unclamped."""
        s, N = self.cfg.scale, self.cfg.n_prev
        B, _, h, w = cur_rgbd.shape
        flows = accumulate_flows_lowres(motions)  # [B,N,2,h,w] flow t -> t-k-1, low-res px
        # reweighting sees the current RGB-D and each previous one at its nearest low-res pixel: disocclusions
        # show at low res as well, and it keeps the weights off the high-res data path
        prev_lr = sample_nearest(prev_x.reshape(B * N, 4, h, w), flows.reshape(B * N, 2, h, w))
        wts = self.reweight(torch.cat([cur_rgbd, prev_lr.reshape(B, N * 4, h, w)], 1))  # [B,N,h,w]
        weighted = warp_zero_upsampled_folded(prev_x, prev_jitter, flows, s, weight=wts)
        cz_f = fold_zero_upsampled(cur_rgbd, cur_jitter, s)
        feats = self.feat.features(cur_rgbd)  # cz_f holds the RGB-D; 64 input channels at x2, no NCHWc padding
        y = self.recon(torch.cat([feats, cz_f, weighted], 1))
        # the residual base: the bilinear interpolation of the current samples AT THEIR JITTERED POSITIONS,
        # evaluated in the folded layout at the input resolution (no high-res Resize/Add)
        y = y + bilinear_up_folded_jittered(cur_rgbd[:, :3], cur_jitter, s)
        return F.pixel_shuffle(y, s)


CONFIG, MODEL = FastConfig, Fast
