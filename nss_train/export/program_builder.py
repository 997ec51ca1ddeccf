"""Building an NSS GPU program (nss_runtime.gpu_program) op by op: ProgramBuilder (tensors, ops, the weights blob)
and the `fast` preset's program (fast_program). The entry point for any preset is nss_train.export.gpu.to_program.

The program is emitted from the model's own modules (its convs in the order `step` runs them) and mirrors
`step` op for op; tests/test_gpu_program.py checks that the interpreter equals ONNX Runtime on the exported
graph over a sequence with history and a camera cut.
"""
from __future__ import annotations

import numpy as np

from nss_runtime import contract
from nss_runtime.gpu_program import FORMAT, VERSION


class ProgramBuilder:
    def __init__(self, name: str, preset: str, scale: int, multiple: int, depth_ref: float):
        self.prog = {"format": FORMAT, "version": VERSION, "name": name, "preset": preset, "scale": int(scale),
                     "multiple": int(multiple), "depth_ref": float(depth_ref),
                     "colour_transform_max": float(contract.COLOUR_TRANSFORM_MAX),
                     "tensors": {}, "inputs": ["colour", "depth", "motion", "jitter", "reset"],
                     "history": [], "output": None, "ops": []}
        self.chunks: list[np.ndarray] = []
        self.n = 0
        for n, c, r in (("colour", 3, "low"), ("depth", 1, "low"), ("motion", 2, "low"), ("jitter", 2, "one"),
                        ("reset", 1, "one")):
            self.tensor(n, c, r)

    def tensor(self, name: str, c: int, res: str) -> str:
        if name in self.prog["tensors"]:
            raise ValueError(f"tensor {name!r} defined twice")
        self.prog["tensors"][name] = {"c": int(c), "res": res}
        return name

    def c(self, name: str) -> int:
        return self.prog["tensors"][name]["c"]

    def res(self, name: str) -> str:
        return self.prog["tensors"][name]["res"]

    def history(self, name: str, c: int, res: str) -> str:
        self.tensor(name, c, res)
        self.prog["history"].append({"name": name, "from": None})
        return name

    def set_history(self, name: str, src: str) -> None:
        next(h for h in self.prog["history"] if h["name"] == name)["from"] = src

    def blob(self, a) -> list[int]:
        a = np.asarray(a, np.float32).reshape(-1)
        self.chunks.append(a)
        off = self.n
        self.n += a.size
        return [off, int(a.size)]

    def op(self, kind: str, ins: list[str], out: str, c: int | None = None, res: str | None = None,
           **attrs) -> str:
        if out not in self.prog["tensors"]:
            main = ins[2] if kind == "where_reset" else ins[0]
            self.tensor(out, c if c is not None else self.c(main), res or self.res(main))
        d = {"op": kind, "in": list(ins), "out": out}
        d.update({k: v for k, v in attrs.items() if (v is not None or k == "b") and not (k == "act" and v == "none")})
        self.prog["ops"].append(d)
        return out

    def conv(self, x: str | list[str], out: str, weight, bias=None, act: str = "none", pad: str = "zeros", res=None,
             **post) -> str:
        """x: one tensor, or two (channel concat; post may carry up=[0|1, 0|1] and pool=<tensor>)."""
        w = weight.detach().float().cpu().numpy() if hasattr(weight, "detach") else np.asarray(weight, np.float32)
        cout, cin, k, _ = w.shape
        b = None
        if bias is not None:
            b = self.blob(bias.detach().float().cpu().numpy() if hasattr(bias, "detach") else bias)
        ins = [x] if isinstance(x, str) else list(x)
        return self.op("conv2d", ins, out, cout, res, k=int(k), cin=int(cin), cout=int(cout), pad=pad,
                       w=self.blob(w), b=b, act=act, **post)

    def conv_mod(self, x: str, out: str, mod, act: str = "none", **post) -> str:
        return self.conv(x, out, mod.weight, mod.bias, act, **post)

    def build(self, output: str, jitter: bool = False) -> tuple[dict, np.ndarray]:
        self.prog["output"] = output
        self.prog["jitter"] = bool(jitter)  # the model wants a jittered low-res render (the node switches it on)
        missing = [h["name"] for h in self.prog["history"] if h["from"] is None]
        if missing:
            raise ValueError(f"history tensors {missing} never get a next value")
        w = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        return self.prog, w


# --- fast ------------------------------------------------------------------------------------------------

def fast_program(model, name: str = "model") -> tuple[dict, np.ndarray]:
    cfg = model.cfg
    s, N = int(cfg.scale), int(cfg.n_prev)
    b = ProgramBuilder(name, "fast", s, cfg.multiple, cfg.depth_ref)
    feat = getattr(model, "feat", None) or model.feat_cur
    hx = [b.history(f"hist_x{k}", 4, "low") for k in range(N)]
    hm = [b.history(f"hist_m{k}", 2, "low") for k in range(N - 1)]
    hj = [b.history(f"hist_j{k}", 2, "one") for k in range(N)]
    # rgbd = [reinhard(colour), depth_norm(depth)]
    b.op("map", ["colour"], "rgb_r", act="reinhard")
    b.op("map", ["depth"], "dn", act="depth_norm")
    b.op("concat", ["rgb_r", "dn"], "rgbd", 4)
    # reset: the predecessors of a reset frame are copies of itself with zero motion
    b.op("where_reset", ["reset", "", "motion"], "m0")
    xs = [b.op("where_reset", ["reset", "rgbd", hx[k]], f"x{k}") for k in range(N)]
    ms = [b.op("where_reset", ["reset", "", hm[k]], f"m{k + 1}") for k in range(N - 1)]
    js = [b.op("where_reset", ["reset", "jitter", hj[k]], f"j{k}") for k in range(N)]
    motions = ["m0"] + ms
    # flows accumulate at low res with nearest lookups
    flows = ["m0"]
    for k in range(1, N):
        g = b.op("gather_nearest", [motions[k], flows[-1]], f"mg{k}")
        flows.append(b.op("add", [flows[-1], g], f"flow{k}"))
    # reweighting on the current RGB-D and each previous one at its nearest low-res pixel
    prev_lr = [b.op("gather_nearest", [xs[k], flows[k]], f"prev_lr{k}") for k in range(N)]
    b.op("concat", ["rgbd"] + prev_lr, "rw_in", 4 * (N + 1))
    rw = model.reweight
    x = "rw_in"
    for i, c in enumerate(rw.convs[:-1]):
        x = b.conv_mod(x, f"rw{i}", c, "relu")
    wts = b.conv_mod(x, "rw_w", rw.convs[-1], "tanh", mul=0.5 * rw.wmax, add=0.5 * rw.wmax)
    weighted = b.op("fold_warp", xs + js + flows + [wts], "weighted", 4 * N * s * s, s=s, frames=N)
    cz = b.op("fold_onehot", ["rgbd", "jitter"], "cz_f", 4 * s * s, s=s)
    x = "rgbd"
    for i, c in enumerate(feat.convs):
        x = b.conv_mod(x, f"feat{i}", c, "relu")
    b.op("concat", [x, cz, weighted], "unet_in", b.c(x) + b.c(cz) + b.c(weighted))
    y = _fast_unet(b, model.recon, "unet_in")
    if hasattr(model, "up_kernel"):
        # + the bilinear upsample of the current colour: the fixed depthwise 3x3 kernel as a dense conv
        up = model.up_kernel.detach().float().cpu().numpy()  # [3*s*s, 1, 3, 3], groups = 3
        dense = np.zeros((3 * s * s, 3, 3, 3), np.float32)
        for o in range(3 * s * s):
            dense[o, o // (s * s)] = up[o, 0]
        base = b.conv("rgb_r", "up_base", dense, None, pad="replicate")
    else:  # + the bilinear interpolation of the current samples at their jittered positions
        base = b.op("up_folded_jittered", ["rgb_r", "jitter"], "up_base", 3 * s * s, "low", s=s)
    b.op("add", [y, base], "y_f")
    b.op("depth_to_space", ["y_f"], "rgb", 3, "high", s=s, act="inv_reinhard")
    # new history: this frame first, then the older ones (after the reset rule)
    for k in range(N):
        b.set_history(hx[k], "rgbd" if k == 0 else xs[k - 1])
        b.set_history(hj[k], "jitter" if k == 0 else js[k - 1])
    for k in range(N - 1):
        b.set_history(hm[k], "m0" if k == 0 else ms[k - 1])
    return b.build("rgb", jitter=bool(getattr(model, "wants_jitter", False)))


def _fast_unet(b: ProgramBuilder, net, x: str) -> str:
    res_of = ["low", "half", "quarter"]
    skips = []
    for li, layers in enumerate(net.enc):
        if li > 0:
            x = b.op("maxpool2", [x], f"pool{li}", res=res_of[li])
        for i, c in enumerate(layers):
            x = b.conv_mod(x, f"enc{li}_{i}", c, "relu")
        skips.append(x)
    split = hasattr(net, "skip_proj") and len(net.skip_proj) > 0
    for li, (layers, skip) in enumerate(zip(net.dec, reversed(skips[:-1]))):
        if not split:
            raise ValueError("to_program: only the split-fuse U-Net of `fast` is supported")
        d = b.conv_mod(x, f"dec{li}_fuse", layers[0])
        u = b.op("upsample2", [d], f"dec{li}_up", res=b.res(skip), mode="bilinear")
        p = b.conv(skip, f"dec{li}_skip", net.skip_proj[li].weight, None)
        x = b.op("add", [u, p], f"dec{li}_0", act="relu")
        for i, c in enumerate(layers[1:]):
            x = b.conv_mod(x, f"dec{li}_{i + 1}", c, "relu")
    return b.conv_mod(x, "unet_out", net.out)
