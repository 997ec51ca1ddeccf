"""The NSS GPU program: an exported network as a flat list of layers plus one weights blob, and the numpy
reference interpreter of it (numpy only; it ships inside the addon).

    prog = load_program("models/fast_x2_godot.nssgpu.json")   # + fast_x2_godot.nssgpu.bin beside it
    sess = ProgramSession(prog)
    rgb = sess.upscale(colour, depth, motion, jitter=(0, 0), cut=False)   # (3, s*h, s*w) linear RGB

tools/export_onnx.py writes the program next to the .onnx (same stem, `.nssgpu.json` + `.nssgpu.bin`);
the GDScript/GLSL runtime (addons/neural_ss/gpu/) runs the same program (accum; fast programs only run here)
with RenderingDevice compute shaders, and this interpreter is the executable definition of every op
(docs/runtime.md, "The format").

Format (JSON, version 2; version 1 files, which have no fused ops, are read too):
  format "nss-gpu-program", version 2, name, preset, scale, multiple, depth_ref, colour_transform_max,
  weights  {"file": "<stem>.nssgpu.bin", "dtype": "float32", "count": N}   little-endian float32 blob
  tensors  {name: {"c": channels, "res": "low"|"half"|"high"|"one"}}   planar [c, H, W], batch 1;
           low = h x w (the capture), half = h/2 x w/2, high = s*h x s*w, one = 1 x 1 (per-frame values)
  inputs   ["colour", "depth", "motion", "jitter", "reset"]   tensors the host fills every frame
           (colour 3 low, depth 1 low, motion 2 low, jitter 2 one, reset 1 one)
  history  [{"name": t, "from": u}]   recurrent state: tensor t starts at zeros (the reset frame
           overwrites it through `where_reset` ops) and after every frame takes the value of tensor u
  output   the tensor holding linear RGB (3 high)
  ops      executed in order; each {"op", "in": [tensor names], "out": name, attrs}; every op may carry
           "act" (see ACTS) and "mul"/"add" (y = act(x) * mul + add) applied to its result.
Weights of conv2d: "w": [offset, count] into the blob, OIHW order [cout, cin, k, k]; "b": [offset, cout]
or null. Version 2 adds the fused passes the Godot runtime executes (one compute dispatch each):
  conv2d with 2 inputs (channel concat; "up": [0|1, 0|1] reads an input nearest-upsampled x2) and "pool":
  a second output, the 2x2 average pool of the result;
  accum_prepare  in [colour, depth, motion, jitter, reset, hist] -> the accum network input (ACCUM_IN_LAYOUT);
  accum_output   in [dec, net_in, jitter] -> linear rgb, and "hist_out": the new history (1x1 head, softmax
                 kernels, kernel apply, rectification, blend weights, blend, inverse Reinhard).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

FORMAT = "nss-gpu-program"
VERSION = 2
READ_VERSIONS = (1, 2)
RES = ("low", "half", "high", "one")
ACTS = ("none", "relu", "sigmoid", "tanh", "softplus", "reinhard", "inv_reinhard", "depth_norm", "abs", "clamp01")
INPUTS = {"colour": (3, "low"), "depth": (1, "low"), "motion": (2, "low"), "jitter": (2, "one"),
          "reset": (1, "one")}


class ProgramError(ValueError):
    """The program file is unusable; the message names the file, the field and what was expected."""


# --- op table: name -> (number of inputs or None = variable, required attrs) -------------------------------

OPS: dict[str, tuple[int | None, tuple[str, ...]]] = {
    "map": (1, ()),                       # act/mul/add only
    "concat": (None, ()),                 # channel concat
    "add": (2, ()),
    "mul": (2, ()),                       # a * b; b's channel = a's channel % b.c (b may have fewer channels)
    "broadcast": (1, ()),                 # a 'one' tensor repeated over the output's resolution
    "where_reset": (3, ()),               # in [reset, a, b]: reset > 0.5 ? a : b ; a may be "" = zeros
    "gather_nearest": (2, ()),            # in [x, flow]: x[clamp(round_half_even(p + flow))]
    "conv2d": (None, ("k", "cin", "cout", "pad", "w", "b")),  # 1 input, or 2 (concat; "up", "pool": v2)
    "maxpool2": (1, ()),
    "avgpool2": (1, ()),
    "upsample2": (1, ("mode",)),          # "bilinear" (align_corners=False) | "nearest"
    "fold_onehot": (2, ("s",)),           # in [x, jitter]
    "fold_warp": (None, ("s", "frames")),  # in [x_0..x_{N-1}, jitter_0.., flow_0.., weight]
    "up_folded_jittered": (2, ("s",)),    # in [x, jitter]: bilinear upsample of the jittered samples, folded
    "depth_to_space": (1, ("s",)),
    "space_to_depth": (1, ("s",)),
    "slice": (1, ("start", "count")),     # channels [start, start + count)
    # the temporal preset (accum)
    "dilate_motion": (2, ()),             # in [motion, dnorm]: motion of the closest (largest dnorm) 3x3 pixel
    "warp_history": (2, ("s", "mode")),   # in [x (high), motion (low)] -> x warped (c) + validity (1)
    "neigh_stats3x3": (1, ("eps",)),      # in [x]: mean (c) then std (c), 3x3 replicate border
    "softmax_groups": (1, ("groups",)),   # softmax over each of `groups` consecutive channel groups
    "apply_kernel3x3": (2, ("s",)),       # in [kern (s*s*9), x (c)]: per sub-pixel 3x3 kernel over x
    "clamp_box": (3, ()),                 # in [x (c*s*s folded), stats (2c), gamma (1)]
    "alpha_prior": (3, ("hi",)),          # in [logit, acc, valid]: sigmoid(logit - log(1 - clamp(acc, 0, hi))) * valid
    "sample_weight": (1, ("s", "sigma", "norm")),  # in [jitter] -> [s*s, one]: closeness of the jittered samples
    "alpha_weighted": (4, ("cap",)),      # in [logit, acc, valid, w]: sigmoid(logit + log(clamp(acc,0,1) cap + 1e-3) - log w) valid
    "total_weight": (2, ("cap",)),        # in [a, w]: min(w / (1 - a + 1e-4), cap) / cap
    "blend": (3, ()),                     # in [a, x, y]: a * x + (1 - a) * y; a's channel = channel % a.c
    # version 2: the fused passes of accum (accum_prepare, accum_output below)
    "accum_prepare": (6, ("s", "mode", "dilate", "eps")),
    "accum_output": (3, ("s", "hist_out", "w", "b", "n_resid", "n_sharp", "weighted", "sigma", "norm", "cap",
                         "hi")),
}
# ops with a second output tensor: the attribute naming it
EXTRA_OUT = {"conv2d": "pool", "accum_output": "hist_out"}


def accum_in_layout(s: int) -> list[tuple[str, int]]:
    """Channels of accum_prepare's output, in order (Accum.step_mapped's network input)."""
    q = s * s
    return [("y", 3), ("dn", 1), ("jit", 2), ("hw_f", 4 * q), ("valid_f", q), ("m_abs", 2), ("stats", 6)]


def _split(x: np.ndarray, layout: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    out, c = {}, 0
    for name, n in layout:
        out[name] = x[c:c + n]
        c += n
    return out


def _err(where: str, msg: str) -> ProgramError:
    return ProgramError(f"{where}: {msg}")


def validate(prog: dict, where: str = "program") -> dict:
    """Check structure, names, shapes of weights; returns prog. One-line ProgramError on the first problem."""
    if not isinstance(prog, dict) or prog.get("format") != FORMAT:
        raise _err(where, f"field 'format' is {prog.get('format') if isinstance(prog, dict) else prog!r}; "
                          f"expected {FORMAT!r}")
    if prog.get("version") not in READ_VERSIONS:
        raise _err(where, f"field 'version' is {prog.get('version')!r}; this runtime reads versions "
                          f"{list(READ_VERSIONS)}")
    for k in ("scale", "tensors", "inputs", "history", "output", "ops", "weights"):
        if k not in prog:
            raise _err(where, f"field {k!r} missing")
    s = prog["scale"]
    if not isinstance(s, int) or s < 1:
        raise _err(where, f"field 'scale' is {s!r}; expected a positive integer")
    tensors = prog["tensors"]
    for name, t in tensors.items():
        if not isinstance(t, dict) or not isinstance(t.get("c"), int) or t["c"] < 1 or t.get("res") not in RES:
            raise _err(where, f"tensors[{name!r}] is {t!r}; expected {{'c': int >= 1, 'res': one of {RES}}}")
    for name, (c, res) in INPUTS.items():
        t = tensors.get(name)
        if t is None or (t["c"], t["res"]) != (c, res):
            raise _err(where, f"input tensor {name!r} is {t!r}; expected {{'c': {c}, 'res': {res!r}}}")
    defined = set(prog["inputs"]) | {h["name"] for h in prog["history"]}
    for i, op in enumerate(prog["ops"]):
        w = f"{where}: ops[{i}]"
        kind = op.get("op")
        if kind not in OPS:
            raise ProgramError(f"{w}: unknown op {kind!r}; expected one of {sorted(OPS)}")
        n_in, attrs = OPS[kind]
        ins = op.get("in", [])
        if n_in is not None and len(ins) != n_in:
            raise ProgramError(f"{w} ({kind}): {len(ins)} inputs; expected {n_in}")
        for a in attrs:
            if a not in op:
                raise ProgramError(f"{w} ({kind}): attribute {a!r} missing")
        for t in ins:
            if t == "" and kind == "where_reset":
                continue
            if t not in tensors:
                raise ProgramError(f"{w} ({kind}): input {t!r} is not in 'tensors'")
            if t not in defined:
                raise ProgramError(f"{w} ({kind}): input {t!r} is read before any op writes it")
        if op.get("out") not in tensors:
            raise ProgramError(f"{w} ({kind}): output {op.get('out')!r} is not in 'tensors'")
        extra = op.get(EXTRA_OUT.get(kind, ""))
        if extra is not None and extra not in tensors:
            raise ProgramError(f"{w} ({kind}): {EXTRA_OUT[kind]} {extra!r} is not in 'tensors'")
        if op.get("act", "none") not in ACTS:
            raise ProgramError(f"{w} ({kind}): act {op['act']!r}; expected one of {ACTS}")
        if kind == "conv2d":
            k, cin, cout = op["k"], op["cin"], op["cout"]
            if len(ins) not in (1, 2) or len(op.get("up", [0] * len(ins))) != len(ins):
                raise ProgramError(f"{w} (conv2d): {len(ins)} inputs, 'up' {op.get('up')}; expected 1 or 2 inputs "
                                   f"and one 'up' flag per input")
            if sum(tensors[t]["c"] for t in ins) != cin or tensors[op["out"]]["c"] != cout:
                raise ProgramError(f"{w} (conv2d): cin/cout {cin}/{cout} do not match tensors "
                                   f"{ins} ({[tensors[t]['c'] for t in ins]}) / {op['out']!r} "
                                   f"({tensors[op['out']]['c']})")
            if op["w"][1] != cout * cin * k * k or (op["b"] is not None and op["b"][1] != cout):
                raise ProgramError(f"{w} (conv2d): weight/bias counts {op['w'][1]}/{op['b']} do not match "
                                   f"[{cout}, {cin}, {k}, {k}]")
            if op["pad"] not in ("zeros", "replicate"):
                raise ProgramError(f"{w} (conv2d): pad {op['pad']!r}; expected 'zeros' or 'replicate'")
        defined.add(op["out"])
        if extra is not None:
            defined.add(extra)
    for h in prog["history"]:
        if h.get("name") not in tensors or h.get("from") not in defined:
            raise _err(where, f"history entry {h!r}: 'name' must be a tensor and 'from' a tensor some op writes")
        if h["from"] in {x["name"] for x in prog["history"]}:
            raise _err(where, f"history entry {h!r}: 'from' must not itself be a history tensor")
        if tensors[h["name"]] != tensors[h["from"]]:
            raise _err(where, f"history entry {h!r}: shapes differ ({tensors[h['name']]} vs {tensors[h['from']]})")
    if prog["output"] not in defined or tensors[prog["output"]] != {"c": 3, "res": "high"}:
        raise _err(where, f"field 'output' {prog['output']!r}: expected a 3-channel 'high' tensor some op writes")
    return prog


def weights_path(json_path: str | os.PathLike, prog: dict) -> Path:
    return Path(json_path).with_name(prog["weights"]["file"])


def load_program(path: str | os.PathLike) -> dict:
    """Read and validate `<name>.nssgpu.json` and its weights blob; returns the program with prog['_w']
    (float32 numpy array)."""
    path = Path(path)
    try:
        prog = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProgramError(f"{path}: no such GPU program file (export it with tools/export_onnx.py)") from None
    except (OSError, ValueError) as e:
        raise ProgramError(f"{path}: not readable JSON ({e})") from None
    validate(prog, str(path))
    wp = weights_path(path, prog)
    if prog["weights"].get("dtype") != "float32":
        raise ProgramError(f"{path}: weights.dtype {prog['weights'].get('dtype')!r}; expected 'float32'")
    try:
        raw = wp.read_bytes()
    except OSError as e:
        raise ProgramError(f"{wp}: weights blob not readable ({e.strerror})") from None
    n = int(prog["weights"]["count"])
    if len(raw) != 4 * n:
        raise ProgramError(f"{wp}: {len(raw)} bytes; expected weights.count {n} x 4 bytes (float32)")
    prog["_w"] = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    for i, op in enumerate(prog["ops"]):
        for key in ("w", "b"):
            r = op.get(key) if op["op"] in ("conv2d", "accum_output") else None
            if r is not None and (r[0] < 0 or r[0] + r[1] > n):
                raise ProgramError(f"{path}: ops[{i}].{key} = {r} lies outside the {n}-float weights blob")
    return prog


def write_program(json_path: str | os.PathLike, prog: dict, weights: np.ndarray) -> None:
    """Validate and write the JSON and the blob atomically (blob first, JSON last)."""
    from .atomic import atomic_write_bytes

    json_path = Path(json_path)
    prog = dict(prog)
    prog["weights"] = {"file": json_path.name.replace(".nssgpu.json", "") + ".nssgpu.bin", "dtype": "float32",
                       "count": int(weights.size)}
    validate(prog, str(json_path))
    atomic_write_bytes(weights_path(json_path, prog), np.ascontiguousarray(weights, dtype="<f4").tobytes())
    atomic_write_bytes(json_path, (json.dumps(prog, indent=1) + "\n").encode())


def program_path_for(onnx_path: str | os.PathLike) -> Path:
    """models/x.onnx -> models/x.nssgpu.json"""
    p = Path(onnx_path)
    return p.with_name(p.stem + ".nssgpu.json")


# --- the interpreter -------------------------------------------------------------------------------------

def res_size(res: str, h: int, w: int, s: int) -> tuple[int, int]:
    return {"low": (h, w), "half": (h // 2, w // 2), "high": (h * s, w * s), "one": (1, 1)}[res]


def apply_act(x: np.ndarray, op: dict, prog: dict) -> np.ndarray:
    a = op.get("act", "none")
    if a == "relu":
        x = np.maximum(x, 0.0)
    elif a == "sigmoid":
        x = 1.0 / (1.0 + np.exp(-x))
    elif a == "tanh":
        x = np.tanh(x)
    elif a == "softplus":
        x = np.logaddexp(0.0, x)
    elif a == "reinhard":
        x = np.maximum(x, 0.0)
        x = x / (1.0 + x)
    elif a == "inv_reinhard":
        x = np.clip(x, 0.0, float(prog.get("colour_transform_max", 0.999)))
        x = x / (1.0 - x)
    elif a == "abs":
        x = np.abs(x)
    elif a == "clamp01":
        x = np.clip(x, 0.0, 1.0)
    elif a == "depth_norm":
        x = np.where(np.isnan(x), 0.0, np.maximum(x, 0.0))
        with np.errstate(over="ignore"):
            x = 1.0 / (1.0 + x / float(prog.get("depth_ref", 10.0)))
    if "mul" in op:
        x = x * np.float32(op["mul"])
    if "add" in op:
        x = x + np.float32(op["add"])
    return x.astype(np.float32, copy=False)


def block_offset(jitter: np.ndarray, s: int) -> np.ndarray:
    """(x, y) position of the jittered sample in its s x s output block: clamp(floor(s (0.5 + j)), 0, s-1)."""
    return np.clip(np.floor(s * (0.5 + jitter.reshape(2).astype(np.float32))), 0, s - 1).astype(np.int64)


def _pad(x: np.ndarray, p: int, mode: str) -> np.ndarray:
    return np.pad(x, ((0, 0), (p, p), (p, p)), mode="edge" if mode == "replicate" else "constant")


def conv2d(x: np.ndarray, wt: np.ndarray, b: np.ndarray | None, pad: str) -> np.ndarray:
    cout, cin, k, _ = wt.shape
    _, H, W = x.shape
    xp = _pad(x, k // 2, pad)
    cols = np.empty((cin, k, k, H, W), np.float32)
    for dy in range(k):
        for dx in range(k):
            cols[:, dy, dx] = xp[:, dy:dy + H, dx:dx + W]
    y = wt.reshape(cout, -1) @ cols.reshape(-1, H * W)
    if b is not None:
        y += b[:, None]
    return y.reshape(cout, H, W)


def _nearest_idx(flow: np.ndarray, H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    u = np.clip(np.round(xs + flow[0]), 0, W - 1).astype(np.int64)  # np.round: half to even, as torch
    v = np.clip(np.round(ys + flow[1]), 0, H - 1).astype(np.int64)
    return v, u


def upsample2(x: np.ndarray, mode: str) -> np.ndarray:
    if mode == "nearest":
        return x.repeat(2, 1).repeat(2, 2)
    _, H, W = x.shape

    def axis(n):
        src = np.maximum((np.arange(2 * n, dtype=np.float32) + 0.5) / 2 - 0.5, 0.0)
        i0 = np.floor(src).astype(np.int64)
        i1 = np.minimum(i0 + 1, n - 1)
        return i0, i1, (src - i0).astype(np.float32)

    y0, y1, fy = axis(H)
    x0, x1, fx = axis(W)
    top = x[:, y0][:, :, x0] * (1 - fx) + x[:, y0][:, :, x1] * fx
    bot = x[:, y1][:, :, x0] * (1 - fx) + x[:, y1][:, :, x1] * fx
    return top * (1 - fy[:, None]) + bot * fy[:, None]


def fold_warp(xs: list[np.ndarray], jits: list[np.ndarray], flows: list[np.ndarray], weight: np.ndarray,
              s: int) -> np.ndarray:
    """The warp of each zero-upsampled previous frame by s * flow, computed straight into the folded layout;
    channels (c, n, py, px). A zero-upsampled frame has one sample per s x s block, so one bilinear tap is
    non-zero: the nearest sample times its tent weight (0 outside the frame)."""
    N = len(xs)
    C, h, w = xs[0].shape
    out = np.zeros((C, N, s, s, h, w), np.float32)
    ys, xg = np.mgrid[0:h, 0:w].astype(np.float32)
    ph = np.arange(s, dtype=np.float32)
    for n in range(N):
        off = block_offset(jits[n], s).astype(np.float32)

        def axis(g, f, o, size):
            pos = s * g[None] + ph[:, None, None] + s * f[None]  # [s, h, w]
            cell = np.round((pos - o) / s)
            wt = np.maximum(1.0 - np.abs(pos - (s * cell + o)), 0.0) * ((cell >= 0) & (cell <= size - 1))
            return np.clip(cell, 0, size - 1).astype(np.int64), wt.astype(np.float32)

        cx, wx = axis(xg, flows[n][0], off[0], w)
        cy, wy = axis(ys, flows[n][1], off[1], h)
        for py in range(s):
            for px in range(s):
                got = xs[n][:, cy[py], cx[px]]
                out[:, n, py, px] = got * (wy[py] * wx[px] * weight[n])[None]
    return out.reshape(C * N * s * s, h, w)


def up_folded_jittered(x: np.ndarray, jitter: np.ndarray, s: int) -> np.ndarray:
    """The bilinear interpolation of x's samples (at i + 0.5 + jitter) at each output pixel centre, border
    clamped, in the folded layout: channel c*s*s + py*s + px = sum over 3x3 taps (replicate padding) of
    wy[py, i] * wx[px, j] * x(y + i - 1, x + j - 1), w[p, k] = relu(1 - |(p + 0.5) / s - 0.5 - jitter - (k - 1)|)."""
    c, h, w = x.shape
    j = jitter.reshape(2).astype(np.float32)
    ph = (np.arange(s, dtype=np.float32) + 0.5) / s - 0.5
    k = np.arange(-1, 2, dtype=np.float32)
    wx = np.maximum(1.0 - np.abs(ph[:, None] - j[0] - k[None]), 0.0)  # [s, 3]
    wy = np.maximum(1.0 - np.abs(ph[:, None] - j[1] - k[None]), 0.0)
    xp = _pad(x, 1, "replicate")
    out = np.zeros((c, s, s, h, w), np.float32)
    for py in range(s):
        for px in range(s):
            for i in range(3):
                for jj in range(3):
                    out[:, py, px] += wy[py, i] * wx[px, jj] * xp[:, i:i + h, jj:jj + w]
    return out.reshape(c * s * s, h, w)


def depth_to_space(x: np.ndarray, s: int) -> np.ndarray:
    C, h, w = x.shape
    c = C // (s * s)
    return x.reshape(c, s, s, h, w).transpose(0, 3, 1, 4, 2).reshape(c, h * s, w * s)


def space_to_depth(x: np.ndarray, s: int) -> np.ndarray:
    c, H, W = x.shape
    h, w = H // s, W // s
    return x.reshape(c, h, s, w, s).transpose(0, 2, 4, 1, 3).reshape(c * s * s, h, w)


def dilate_motion(motion: np.ndarray, dnorm: np.ndarray) -> np.ndarray:
    """Per pixel, the motion of the 3x3 neighbour with the largest normalised depth (the closest surface);
    ties: the centre first, then row-major order; pixels outside the frame never win."""
    _, h, w = motion.shape
    dn = dnorm[0]
    best = dn.copy()
    out = motion.copy()
    dp = np.pad(dn, 1, mode="constant", constant_values=-np.inf)
    mp = _pad(motion, 1, "replicate")
    for dy in range(3):
        for dx in range(3):
            if dy == 1 and dx == 1:
                continue
            cand = dp[dy:dy + h, dx:dx + w]
            better = cand > best
            best = np.where(better, cand, best)
            out = np.where(better[None], mp[:, dy:dy + h, dx:dx + w], out)
    return out


def _cubic_weights(t: np.ndarray, a: float = -0.75) -> list[np.ndarray]:
    """Cubic convolution (Keys, a = -0.75, as torch/ONNX bicubic) weights of the taps at -1, 0, 1, 2."""
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def warp_history(x: np.ndarray, motion: np.ndarray, s: int, mode: str = "bicubic") -> np.ndarray:
    """x [c, s*h, s*w] sampled at P + s * motion(block(P)) (pixel P's centre at P + 0.5), as torch grid_sample
    (align_corners=False, padding border: every tap index clamped into the frame), bicubic (a = -0.75) or
    bilinear; -> [c + 1]: the warped x, then validity (1 where the sample position lies inside [0, W] x [0, H])."""
    c, H, W = x.shape
    m = motion.repeat(s, 1).repeat(s, 2) * np.float32(s)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    px, py = xs + 0.5 + m[0], ys + 0.5 + m[1]
    valid = ((px >= 0) & (px <= W) & (py >= 0) & (py <= H)).astype(np.float32)
    ix, iy = px - 0.5, py - 0.5
    x0, y0 = np.floor(ix), np.floor(iy)
    tx, ty = (ix - x0).astype(np.float32), (iy - y0).astype(np.float32)
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    if mode == "bicubic":
        wx, wy, offs = _cubic_weights(tx), _cubic_weights(ty), (-1, 0, 1, 2)
    else:
        wx, wy, offs = [1 - tx, tx], [1 - ty, ty], (0, 1)
    out = np.zeros((c + 1, H, W), np.float32)
    for j, oy in enumerate(offs):
        yi = np.clip(y0 + oy, 0, H - 1)
        row = np.zeros((c, H, W), np.float32)
        for i, ox in enumerate(offs):
            xi = np.clip(x0 + ox, 0, W - 1)
            row += x[:, yi, xi] * wx[i][None]
        out[:c] += row * wy[j][None]
    out[c] = valid
    return out


def neigh_stats3x3(x: np.ndarray, eps: float = 0.0) -> np.ndarray:
    c, h, w = x.shape
    p = _pad(x, 1, "replicate")
    acc = np.zeros_like(x)
    acc2 = np.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            v = p[:, dy:dy + h, dx:dx + w]
            acc += v
            acc2 += v * v
    mean = acc / 9.0
    std = np.sqrt(np.maximum(acc2 / 9.0 - mean * mean, 0.0) + np.float32(eps))
    return np.concatenate([mean, std], 0)


def softmax_groups(x: np.ndarray, groups: int) -> np.ndarray:
    C, h, w = x.shape
    g = x.reshape(groups, C // groups, h, w)
    e = np.exp(g - g.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).reshape(C, h, w)


def apply_kernel3x3(kern: np.ndarray, x: np.ndarray, s: int) -> np.ndarray:
    """kern [s*s*9, h, w] (sub-pixel q major, tap k = 3*dy + dx minor), x [c, h, w] -> [c*s*s, h, w] folded
    (channel c*s*s + q): sum_k kern[q, k] * x(p + off_k), border-clamped."""
    c, h, w = x.shape
    p = _pad(x, 1, "replicate")
    k = kern.reshape(s * s, 9, h, w)
    out = np.zeros((c, s * s, h, w), np.float32)
    for dy in range(3):
        for dx in range(3):
            v = p[:, dy:dy + h, dx:dx + w]
            out += v[:, None] * k[None, :, 3 * dy + dx]
    return out.reshape(c * s * s, h, w)


def tap_offsets(s: int) -> np.ndarray:
    """[s*s, 9, 2]: 3x3 tap k's sample position (jitter 0) minus sub-pixel q's centre, low-res px (x, y)."""
    e = np.zeros((s * s, 9, 2), np.float32)
    for qy in range(s):
        for qx in range(s):
            for k in range(9):
                dy, dx = k // 3 - 1, k % 3 - 1
                e[qy * s + qx, k] = (dx + 0.5 - (qx + 0.5) / s, dy + 0.5 - (qy + 0.5) / s)
    return e


def sample_weight(jitter: np.ndarray, s: int, sigma: float) -> np.ndarray:
    """[s*s, 1, 1]: sum over the 3x3 taps of exp(-|e_kq + jitter|^2 / (2 sigma^2)) (not normalised)."""
    d = tap_offsets(s) + jitter.reshape(1, 1, 2).astype(np.float32)
    return np.exp(-(d * d).sum(-1) / np.float32(2 * sigma * sigma)).sum(-1).reshape(s * s, 1, 1)


def clamp_box(x: np.ndarray, stats: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """x [c*s*s] folded, stats [2c] (mean, std), gamma [1]: clamp to mean +- gamma * std per channel."""
    c = stats.shape[0] // 2
    ss = x.shape[0] // c
    mean, std = stats[:c, None], stats[c:, None]
    xr = x.reshape(c, ss, *x.shape[1:])
    lo, hi = mean - gamma[None] * std, mean + gamma[None] * std
    return np.minimum(np.maximum(xr, lo), hi).reshape(x.shape)


def run_op(op: dict, env: dict[str, np.ndarray], prog: dict) -> np.ndarray:
    kind = op["op"]
    ins = [env[t] if t else None for t in op["in"]]
    w = prog.get("_w")
    if kind == "map":
        y = ins[0]
    elif kind == "concat":
        y = np.concatenate(ins, 0)
    elif kind == "add":
        y = ins[0] + ins[1]
    elif kind == "mul":
        a, b = ins
        y = a * np.tile(b, (a.shape[0] // b.shape[0], 1, 1))
    elif kind == "broadcast":
        t = prog["tensors"][op["out"]]
        H, W = res_size(t["res"], *env["colour"].shape[1:], prog["scale"])
        y = np.broadcast_to(ins[0], (ins[0].shape[0], H, W)).copy()
    elif kind == "where_reset":
        y = ins[1] if ins[0].reshape(-1)[0] > 0.5 else ins[2]
        if y is None:
            y = np.zeros_like(ins[2])
    elif kind == "gather_nearest":
        x, f = ins
        v, u = _nearest_idx(f, x.shape[1], x.shape[2])
        y = x[:, v, u]
    elif kind == "conv2d":
        k, cin, cout = op["k"], op["cin"], op["cout"]
        wt = w[op["w"][0]:op["w"][0] + op["w"][1]].reshape(cout, cin, k, k)
        b = None if op["b"] is None else w[op["b"][0]:op["b"][0] + cout]
        xs = [upsample2(x, "nearest") if u else x for x, u in zip(ins, op.get("up", [0] * len(ins)))]
        y = apply_act(conv2d(np.concatenate(xs, 0) if len(xs) > 1 else xs[0], wt, b, op["pad"]), op, prog)
        if op.get("pool"):
            c, H, W = y.shape
            env[op["pool"]] = y.reshape(c, H // 2, 2, W // 2, 2).mean((2, 4))
        return y
    elif kind == "accum_prepare":
        y = accum_prepare(op, ins, prog)
    elif kind == "accum_output":
        y, env[op["hist_out"]] = accum_output(op, ins, prog)
    elif kind in ("maxpool2", "avgpool2"):
        x = ins[0]
        c, H, W = x.shape
        r = x.reshape(c, H // 2, 2, W // 2, 2)
        y = r.max((2, 4)) if kind == "maxpool2" else r.mean((2, 4))
    elif kind == "upsample2":
        y = upsample2(ins[0], op["mode"])
    elif kind == "fold_onehot":
        x, j = ins
        s = op["s"]
        off = block_offset(j, s)
        y = np.zeros((x.shape[0], s * s) + x.shape[1:], np.float32)
        y[:, off[1] * s + off[0]] = x
        y = y.reshape(-1, *x.shape[1:])
    elif kind == "up_folded_jittered":
        y = up_folded_jittered(ins[0], ins[1], op["s"])
    elif kind == "fold_warp":
        n = op["frames"]
        y = fold_warp(ins[:n], ins[n:2 * n], ins[2 * n:3 * n], ins[3 * n], op["s"])
    elif kind == "depth_to_space":
        y = depth_to_space(ins[0], op["s"])
    elif kind == "space_to_depth":
        y = space_to_depth(ins[0], op["s"])
    elif kind == "slice":
        y = ins[0][op["start"]:op["start"] + op["count"]]
    elif kind == "dilate_motion":
        y = dilate_motion(ins[0], ins[1])
    elif kind == "warp_history":
        y = warp_history(ins[0], ins[1], op["s"], op["mode"])
    elif kind == "neigh_stats3x3":
        y = neigh_stats3x3(ins[0], op["eps"])
    elif kind == "alpha_prior":
        logit, acc, valid = ins
        prior = -np.log(1.0 - np.clip(acc, 0.0, np.float32(op["hi"])))
        y = 1.0 / (1.0 + np.exp(-(logit + prior))) * valid
    elif kind == "softmax_groups":
        y = softmax_groups(ins[0], op["groups"])
    elif kind == "apply_kernel3x3":
        y = apply_kernel3x3(ins[0], ins[1], op["s"])
    elif kind == "clamp_box":
        y = clamp_box(*ins)
    elif kind == "sample_weight":
        y = sample_weight(ins[0], op["s"], op["sigma"]) / np.float32(op["norm"])
    elif kind == "alpha_weighted":
        logit, acc, valid, wq = ins
        prior = np.log(np.clip(acc, 0.0, 1.0) * np.float32(op["cap"]) + np.float32(1e-3)) - np.log(wq)
        y = 1.0 / (1.0 + np.exp(-(logit + prior))) * valid
    elif kind == "total_weight":
        a, wq = ins
        y = np.minimum(wq / (1.0 - a + np.float32(1e-4)), np.float32(op["cap"])) / np.float32(op["cap"])
    elif kind == "blend":
        a, x, z = ins
        a = np.tile(a, (x.shape[0] // a.shape[0], 1, 1))
        y = a * x + (1.0 - a) * z
    else:  # validate() rejects unknown ops
        raise ProgramError(f"op {kind!r} not implemented")
    return apply_act(np.asarray(y, np.float32), op, prog)


def accum_prepare(op: dict, ins: list, prog: dict) -> np.ndarray:
    """The accum pre-pass: Reinhard colour, normalised depth, closest-depth motion dilation, the bicubic history
    warp with its validity (zero on reset), folded to the low-res grid, |motion|, the 3x3 box statistics;
    concatenated in accum_in_layout order."""
    colour, depth, motion, jitter, reset, hist = ins
    s = op["s"]
    y = apply_act(colour, {"act": "reinhard"}, prog)
    dn = apply_act(depth, {"act": "depth_norm"}, prog)
    m = dilate_motion(motion, dn) if op["dilate"] else motion
    warped = warp_history(hist, m, s, op["mode"])
    c = hist.shape[0]
    valid = np.zeros_like(warped[c:]) if reset.reshape(-1)[0] > 0.5 else warped[c:]
    hw = warped[:c] * valid
    h, w = colour.shape[1:]
    jit = np.broadcast_to(jitter.reshape(2, 1, 1), (2, h, w))
    return np.concatenate([y, dn, jit, space_to_depth(hw, s), space_to_depth(valid, s), np.abs(m),
                           neigh_stats3x3(y, op["eps"])], 0).astype(np.float32)


def accum_output(op: dict, ins: list, prog: dict) -> tuple[np.ndarray, np.ndarray]:
    """The accum final pass: the 1x1 head on [dec, jitter], per output sub-pixel the softmax 3x3 kernel (+ the
    signed one) applied to the current colour, the history clamped to the box, the blend weight (FSR2-style total
    weight, or the running-mean prior), blend + residual; -> (linear rgb, new history [clamp01(O), weight])."""
    dec, net_in, jitter = ins
    s = op["s"]
    q = s * s
    h, w = dec.shape[1:]
    x = np.concatenate([dec, np.broadcast_to(jitter.reshape(2, 1, 1), (2, h, w))], 0)
    wts = prog["_w"]
    cin = x.shape[0]
    cout = op["w"][1] // cin
    head = conv2d(x, wts[op["w"][0]:op["w"][0] + op["w"][1]].reshape(cout, cin, 1, 1),
                  wts[op["b"][0]:op["b"][0] + cout], "zeros")
    nr, ns = op["n_resid"], op["n_sharp"]
    logit, kern = head[:q], softmax_groups(head[q:10 * q], q)
    gamma = np.logaddexp(0.0, head[10 * q:10 * q + 1]).astype(np.float32)
    resid = head[10 * q + 1:10 * q + 1 + nr]
    if ns:
        kern = kern + head[10 * q + 1 + nr:10 * q + 1 + nr + ns]
    n = _split(net_in, accum_in_layout(s))
    cur = apply_kernel3x3(kern, n["y"], s)
    h_rect = clamp_box(n["hw_f"][:3 * q], n["stats"], gamma)
    h_acc, valid = n["hw_f"][3 * q:], n["valid_f"]
    if op["weighted"]:
        wq = sample_weight(jitter, s, op["sigma"]) / np.float32(op["norm"])
        prior = np.log(np.clip(h_acc, 0.0, 1.0) * np.float32(op["cap"]) + np.float32(1e-3)) - np.log(wq)
        a = 1.0 / (1.0 + np.exp(-(logit + prior))) * valid
        acc = np.minimum(wq / (1.0 - a + np.float32(1e-4)), np.float32(op["cap"])) / np.float32(op["cap"])
    else:
        a = 1.0 / (1.0 + np.exp(-(logit - np.log(1.0 - np.clip(h_acc, 0.0, np.float32(op["hi"])))))) * valid
        acc = a
    at = np.tile(a, (3, 1, 1))
    o = at * h_rect + (1.0 - at) * cur
    if nr:
        o = o + resid
    o_img = depth_to_space(o.astype(np.float32), s)
    rgb = apply_act(o_img, {"act": "inv_reinhard"}, prog)
    new_hist = np.concatenate([np.clip(o_img, 0.0, 1.0), depth_to_space(acc.astype(np.float32), s)], 0)
    return rgb, new_hist.astype(np.float32)


class ProgramSession:
    """Runs a GPU program frame by frame in numpy, with the same reset rules as nss_runtime.session.Session."""

    def __init__(self, prog: dict | str | os.PathLike):
        self.prog = prog if isinstance(prog, dict) else load_program(prog)
        self.scale = int(self.prog["scale"])
        self.multiple = int(self.prog.get("multiple", 1))
        self._hist: dict[str, np.ndarray] | None = None
        self._size: tuple[int, int] | None = None

    def reset(self) -> None:
        self._hist = None

    def _zeros(self, name: str, h: int, w: int) -> np.ndarray:
        t = self.prog["tensors"][name]
        return np.zeros((t["c"],) + res_size(t["res"], h, w, self.scale), np.float32)

    def upscale(self, colour: np.ndarray, depth: np.ndarray, motion: np.ndarray,
                jitter: Sequence[float] = (0.0, 0.0), cut: bool = False) -> np.ndarray:
        _, h, w = colour.shape
        m = self.multiple
        if h % m or w % m:
            raise ProgramError(f"frame size {w}x{h}: width and height must be multiples of {m}")
        reset = bool(cut) or self._hist is None or self._size != (w, h)
        if self._hist is None or self._size != (w, h):
            self._hist = {e["name"]: self._zeros(e["name"], h, w) for e in self.prog["history"]}
            self._size = (w, h)
        env: dict[str, Any] = dict(self._hist)
        env.update(colour=np.asarray(colour, np.float32), depth=np.asarray(depth, np.float32),
                   motion=np.asarray(motion, np.float32),
                   jitter=np.asarray(jitter, np.float32).reshape(2, 1, 1),
                   reset=np.full((1, 1, 1), 1.0 if reset else 0.0, np.float32))
        for op in self.prog["ops"]:
            env[op["out"]] = run_op(op, env, self.prog)  # a fused op also sets its second output in env
        self._hist = {e["name"]: env[e["from"]] for e in self.prog["history"]}
        return env[self.prog["output"]]


def conv_flops(prog: dict, h: int, w: int) -> dict[str, float]:
    """FLOPs (2 x MACs) of each conv2d op at low-res h x w, keyed by the op's output tensor."""
    out = {}
    for op in prog["ops"]:
        if op["op"] == "conv2d":
            H, W = res_size(prog["tensors"][op["out"]]["res"], h, w, prog["scale"])
            out[op["out"]] = 2.0 * H * W * op["cout"] * op["cin"] * op["k"] ** 2
    return out


def pass_flops(prog: dict, h: int, w: int) -> dict[str, float]:
    """FLOPs of every op of a version-2 accum program at low-res h x w, keyed by the op's output tensor, counting
    every op as nss_train.models.accum.cost_table does (a multiply-add = 2; compare, min, max, exp, log, sqrt, division
    = 1): conv2d = MACs + bias + activation (+ the fused pool), the fused passes = the sum of the rows they fuse."""
    s = prog["scale"]
    q = s * s
    n_lr, n_out = h * w, h * w * q
    out = {}
    for op in prog["ops"]:
        kind = op["op"]
        if kind == "conv2d":
            H, W = res_size(prog["tensors"][op["out"]]["res"], h, w, s)
            f = H * W * op["cout"] * (2.0 * op["cin"] * op["k"] ** 2 + 2)
            if op.get("pool"):
                f += H * W * op["cout"]
        elif kind == "accum_prepare":
            f = (n_lr * (3 * 3 + 4) + n_lr * (9 + 2) + n_out * (2 * 2 + 4 + 2 * 2)
                 + n_out * (4 * 16 * 2 + 2 * 4 * 8) + n_out * 4 + n_lr * 3 * (9 + 9 * 2 + 4) + n_lr * 4)
        elif kind == "accum_output":
            cin = prog["tensors"][op["in"][0]]["c"] + 2
            cout = op["w"][1] // cin
            f = (n_lr * cout * (2 * cin + 1) + n_lr * 3 + n_out * (9 * 3 + 9) + (n_out * 9 if op["n_sharp"] else 0)
                 + n_out * 3 * 9 * 2 + n_lr * 3 * 4 + n_out * 3 * 2 + n_out * (2 + 2 + 4 + 1) + n_out * 3 * 4
                 + n_out * 3 * (2 + 4))
        else:
            continue
        out[op["out"]] = float(f)
    return out

