"""The `accum` preset (nss_train.models.accum) as an NSS GPU program (format version 2): Accum.step_mapped as the six
fused passes the Godot runtime dispatches (see nss_train.export.gpu; docs/runtime.md):

    accum_prepare   colour, depth, motion, jitter, reset, history -> net_in (the network input)
    conv2d e1       net_in -> e1, and its 2x2 average pool
    conv2d e2, e3   at half resolution
    conv2d d1       [nearest-upsampled e3, e1] (the decoder's upsample + concat read in place)
    accum_output    [d1, net_in, jitter] -> linear rgb and the new history
"""
from __future__ import annotations

import numpy as np
import torch

from nss_runtime.gpu_program import accum_in_layout
from nss_train.export.program_builder import ProgramBuilder


def accum_program(model, name: str = "model") -> tuple[dict, np.ndarray]:
    cfg = model.cfg
    for flag in ("use_jitter", "use_motion", "use_history"):
        if not getattr(cfg, flag, True):
            raise ValueError(f"to_program: accum with {flag}=False (an ablation) has no GPU program")
    from nss_train.models import accum as A

    s = int(cfg.scale)
    net = model.net
    b = ProgramBuilder(name, "accum", s, cfg.multiple, cfg.depth_ref)
    hist = b.history("hist", A.HIST_CHANNELS, "high")
    cin = sum(n for _, n in accum_in_layout(s))
    x = b.op("accum_prepare", ["colour", "depth", "motion", "jitter", "reset", hist], "net_in", cin, "low", s=s,
             mode=A.WARP_MODE, dilate=bool(cfg.dilate), eps=1e-6)
    b.tensor("pool", net.e1.out_channels, "half")
    e1 = b.conv_mod(x, "e1", net.e1, "relu", pool="pool")
    e2 = b.conv_mod("pool", "e2", net.e2, "relu", res="half")
    e3 = b.conv_mod(e2, "e3", net.e3, "relu", res="half")
    d1 = b.conv([e3, e1], "d1", net.d1.weight, net.d1.bias, "relu", res="low", up=[1, 0])
    b.tensor("new_hist", A.HIST_CHANNELS, "high")
    weighted = bool(getattr(cfg, "weighted", False))
    norm = 1.0
    if weighted:  # sample_weight = raw / norm (Accum.step_mapped)
        norm = float(A._sample_weight_raw(torch.zeros(1, 2), s, cfg.weight_sigma)[0, 0]
                     / A.sample_weight(torch.zeros(1, 2), s, cfg.weight_sigma)[0, 0])
    head = net.head
    b.op("accum_output", [d1, x, "jitter"], "rgb", 3, "high", s=s, hist_out="new_hist",
         w=b.blob(head.weight.detach().float().cpu().numpy()), b=b.blob(head.bias.detach().float().cpu().numpy()),
         n_resid=int(net.n_resid), n_sharp=int(net.n_sharp), weighted=weighted,
         sigma=float(getattr(cfg, "weight_sigma", 0.0)), norm=norm, cap=float(getattr(cfg, "weight_cap", 1.0)),
         hi=float(2.0 - 1.0 / cfg.alpha_cap))
    b.set_history(hist, "new_hist")
    return b.build("rgb", jitter=bool(getattr(model, "wants_jitter", True)))
