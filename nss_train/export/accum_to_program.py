"""The `accum` preset (nss_train.models.accum) as an NSS GPU program: Accum.step_mapped op for op (see nss_train.export.gpu)."""
from __future__ import annotations

import numpy as np
import torch

from nss_train.export.program_builder import ProgramBuilder


def _concat(b: ProgramBuilder, parts: list[str], out: str) -> str:
    """Channel concat of any number of parts as a chain of <= 4-input concats (the GPU kernel's limit)."""
    k = 0
    while len(parts) > 4:
        head = b.op("concat", parts[:4], f"{out}_p{k}", sum(b.c(p) for p in parts[:4]))
        parts = [head] + parts[4:]
        k += 1
    return b.op("concat", parts, out, sum(b.c(p) for p in parts))


def accum_program(model, name: str = "model") -> tuple[dict, np.ndarray]:
    cfg = model.cfg
    for flag in ("use_jitter", "use_motion", "use_history"):
        if not getattr(cfg, flag, True):
            raise ValueError(f"to_program: accum with {flag}=False (an ablation) has no GPU program")
    from nss_train.models import accum as A

    s = int(cfg.scale)
    Q = s * s
    net = model.net
    b = ProgramBuilder(name, "accum", s, cfg.multiple, cfg.depth_ref)
    hist = b.history("hist", A.HIST_CHANNELS, "high")
    y = b.op("map", ["colour"], "y", act="reinhard")
    dn = b.op("map", ["depth"], "dn", act="depth_norm")
    m = b.op("dilate_motion", ["motion", dn], "m_dil") if cfg.dilate else "motion"
    warped = b.op("warp_history", [hist, m], "warped", A.HIST_CHANNELS + 1, "high", s=s, mode=A.WARP_MODE)
    hw_raw = b.op("slice", [warped], "hw_raw", A.HIST_CHANNELS, start=0, count=A.HIST_CHANNELS)
    v_raw = b.op("slice", [warped], "valid_raw", 1, start=A.HIST_CHANNELS, count=1)
    valid = b.op("where_reset", ["reset", "", v_raw], "valid")  # valid * (1 - reset)
    hw = b.op("mul", [hw_raw, valid], "hw")
    hw_f = b.op("space_to_depth", [hw], "hw_f", A.HIST_CHANNELS * Q, "low", s=s)
    valid_f = b.op("space_to_depth", [valid], "valid_f", Q, "low", s=s)
    stats = b.op("neigh_stats3x3", [y], "stats", 6, eps=1e-6)
    jit = b.op("broadcast", ["jitter"], "jit", 2, "low")
    mabs = b.op("map", [m], "m_abs", act="abs")
    x = _concat(b, [y, dn, jit, hw_f, valid_f, mabs, stats], "net_in")
    e1 = b.conv_mod(x, "e1", net.e1, "relu")
    p = b.op("avgpool2", [e1], "pool", res="half")
    e2 = b.conv_mod(p, "e2", net.e2, "relu")
    e3 = b.conv_mod(e2, "e3", net.e3, "relu")
    up = b.op("upsample2", [e3], "up", res="low", mode="nearest")
    d1 = b.conv_mod(_concat(b, [up, e1], "d_in"), "d1", net.d1, "relu")
    head = b.conv_mod(_concat(b, [d1, jit], "head_in"), "head", net.head)
    na, nk = net.n_alpha, net.n_kern
    alpha_logit = b.op("slice", [head], "alpha_logit", na, start=0, count=na)
    kern_logit = b.op("slice", [head], "kern_logit", nk, start=na, count=nk)
    gamma = b.op("slice", [head], "gamma", 1, start=na + nk, count=1, act="softplus")
    kern = b.op("softmax_groups", [kern_logit], "kern", groups=Q)
    if net.n_sharp:  # the signed kernel added to the softmax one (Accum.step_mapped)
        r0 = na + nk + 1 + net.n_resid
        sharp = b.op("slice", [head], "kern_sharp", nk, start=r0, count=nk)
        kern = b.op("add", [kern, sharp], "kern_signed")
    cur = b.op("apply_kernel3x3", [kern, y], "cur", 3 * Q, s=s)
    h_rgb = b.op("slice", [hw_f], "h_rgb", 3 * Q, start=0, count=3 * Q)
    h_acc = b.op("slice", [hw_f], "h_acc", Q, start=3 * Q, count=Q)
    h_rect = b.op("clamp_box", [h_rgb, stats, gamma], "h_rect")
    if getattr(cfg, "weighted", False):  # FSR2's total-weight rule (Accum.step_mapped)
        norm = float(A.sample_weight(torch.zeros(1, 2), s, cfg.weight_sigma)[0, 0]
                     / A._sample_weight_raw(torch.zeros(1, 2), s, cfg.weight_sigma)[0, 0])
        norm = 1.0 / norm  # sample_weight = raw / norm
        wq = b.op("sample_weight", ["jitter"], "wq", Q, "one", s=s, sigma=float(cfg.weight_sigma), norm=norm)
        a = b.op("alpha_weighted", [alpha_logit, h_acc, valid_f, wq], "alpha", cap=float(cfg.weight_cap))
        acc = b.op("total_weight", [a, wq], "acc", Q, cap=float(cfg.weight_cap))
    else:
        a = b.op("alpha_prior", [alpha_logit, h_acc, valid_f], "alpha", hi=2.0 - 1.0 / cfg.alpha_cap)
        acc = a
    o = b.op("blend", [a, h_rect, cur], "o_blend", 3 * Q)
    if net.n_resid:
        resid = b.op("slice", [head], "resid", 3 * Q, start=na + nk + 1, count=3 * Q)
        o = b.op("add", [o, resid], "o")
    o_img = b.op("depth_to_space", [o], "o_hist", 3, "high", s=s, act="clamp01")
    a_img = b.op("depth_to_space", [acc], "a_img", 1, "high", s=s)
    new_hist = b.op("concat", [o_img, a_img], "new_hist", A.HIST_CHANNELS)
    b.op("depth_to_space", [o], "rgb", 3, "high", s=s, act="inv_reinhard")
    b.set_history(hist, new_hist)
    return b.build("rgb", jitter=bool(getattr(model, "wants_jitter", True)))
