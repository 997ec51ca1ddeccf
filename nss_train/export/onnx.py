"""Export a trained NSS checkpoint to ONNX for the runtime (nss_runtime.session), then prove parity.

    python tools/export_onnx.py                                  # models/accum_x2.pt -> models/accum_x2.onnx
    python tools/export_onnx.py --ckpt runs/x/ckpt.pt --out m.onnx --fp16
    python tools/export_onnx.py --init accum --scale 4 --out /tmp/a4.onnx  # freshly initialised weights

The graph is one recurrent step of the model (model.step): inputs are the raw
contract buffers of the current frame (colour, depth, motion in contract units,
jitter, reset) plus the history the network keeps between frames; outputs are
linear RGB at s x the input size plus the updated history. Height and width are
dynamic (multiples of the network's `multiple`). The colour transform and depth
normalisation are inside the graph, so the runtime feeds raw buffers.

After writing the file it runs ONNX Runtime and PyTorch on the same sequences
(random frames with a camera cut mid-sequence, plus real frames when a
dataset is found) and exits non-zero unless they agree: max abs error on the
[0, 1] colour (the contract's Reinhard map of the output) <= 1e-4 in fp32,
<= FP16_TOL in fp16.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import io
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from nss_runtime import contract
from nss_runtime.session import FORMAT, FORMAT_VERSION, FRAME_INPUTS, METADATA_KEY, RGB_OUTPUT, Session, SessionError

from nss_train.export.gpu import write_gpu_program

ROOT = Path(__file__).resolve().parents[2]  # the repository (models/, data/)

DEFAULT_CKPT = ROOT / "models" / "accum_x2.pt"  # the shipped default (addons/neural_ss/models/default_x2.onnx)
FP32_TOL = 1e-4
FP16_TOL = 2e-2  # fp16 has an 11-bit mantissa: ~5e-4 per op, accumulated over ~20 layers and the warps
OPSET = 18


class ExportError(Exception):
    """A clear, one-line reason the export cannot proceed or did not verify."""


# --- the graph ------------------------------------------------------------------------------

def _step_module(model, fp16: bool):
    import torch

    class Step(torch.nn.Module):
        """model.step with fixed, named positional I/O; fp16 graphs keep fp32 frame I/O."""

        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, colour, depth, motion, jitter, reset, *hist):
            if fp16:
                # Depth can exceed fp16's range (background = 1e10 or inf); clamp it where it is still fp32.
                # Anything past 6e4 normalises to ~0 either way.
                depth = torch.clamp(depth, max=6.0e4)
                colour, depth, motion, jitter = colour.half(), depth.half(), motion.half(), jitter.half()
            rgb, *new = self.model.step(colour, depth, motion, jitter, reset, *hist)
            return (rgb.float(), *new)

    return Step().eval()


def _history_shape_exprs(model, multiple: int) -> list[tuple[str, list]]:
    """history_spec as shapes in terms of the low-res h and w (checked at two sizes)."""
    h1, w1, h2, w2 = multiple * 3, multiple * 5, multiple * 7, multiple * 4
    s1, s2 = model.history_spec(h1, w1), model.history_spec(h2, w2)
    out = []
    for (n1, sh1), (n2, sh2) in zip(s1, s2):
        exprs = []
        for a, b in zip(sh1, sh2):
            a, b = int(a), int(b)
            if a == b:
                exprs.append(a)
                continue
            for base1, base2, name in ((h1, h2, "h"), (w1, w2, "w")):
                if a * base2 == b * base1:  # proportional to this axis
                    if a % base1 == 0:
                        k = a // base1
                        exprs.append(name if k == 1 else f"{name}*{k}")
                    else:
                        exprs.append(f"{name}/{base1 // a}")
                    break
            else:
                raise ExportError(f"history tensor {n1!r} dim {a}/{b} is not proportional to h or w")
        out.append((n1, exprs))
    return out


def export(model, cfg, out: Path, fp16: bool = False, opset: int = OPSET, meta_extra: dict | None = None,
           verbose: bool = False, gpu_program: bool = True) -> dict:
    """Write `model` (nss_train.models.registry) as an NSS ONNX graph with metadata (and, for fp32 exports of presets
    that have one, its GPU program beside it: write_gpu_program); returns the metadata."""
    import torch
    from torch.export import Dim

    if opset < 17:
        raise ExportError(f"--opset {opset}: expected >= 17 (GridSample needs 16; the runtime is tested on 17+)")
    model = copy.deepcopy(model).eval().float()  # never change the caller's model (its fp32 is the reference)
    if fp16:
        model = model.half()
    multiple = int(cfg.multiple)
    spec = _history_shape_exprs(model, multiple)
    hist_in = [n if n.startswith("hist") else f"hist_{n}" for n, _ in spec]
    hist_meta = [{"name": n, "input": i, "output": f"{i}_out", "shape": sh} for (n, sh), i in zip(spec, hist_in)]
    step = _step_module(model, fp16)

    # Example inputs at a size that is a multiple, but not a special one (dims must not equal the channels).
    h, w = -(-36 // multiple) * multiple, -(-64 // multiple) * multiple
    dtype = torch.float16 if fp16 else torch.float32
    args = _example_inputs(model, h, w, dtype)
    hd, wd = Dim("h_blocks", min=1, max=4096 // multiple), Dim("w_blocks", min=1, max=8192 // multiple)
    H, W = multiple * hd, multiple * wd

    def dyn(exprs):
        d = {}
        for i, e in enumerate(exprs):
            if isinstance(e, str):
                axis, _, k = e.partition("*") if "*" in e else e.partition("/")
                base = H if axis == "h" else W
                if "*" in e:
                    base = base * int(k)
                elif "/" in e:
                    raise ExportError(f"history dim {e!r}: down-scaled history is not supported by the exporter")
                d[i] = base
        return d or None

    frame_dyn = {2: H, 3: W}
    # torch.export sees *hist as one tuple argument
    dyn_shapes = (frame_dyn, frame_dyn, frame_dyn, None, None, tuple(dyn(sh) for _, sh in spec))
    names_in = list(FRAME_INPUTS) + [e["input"] for e in hist_meta]
    names_out = [RGB_OUTPUT] + [e["output"] for e in hist_meta]
    t0 = time.time()
    buf = io.StringIO()
    import logging
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stdout = sys.stdout
        if not verbose:
            sys.stdout = buf  # the exporter prints progress lines we do not need
        try:
            prog = torch.onnx.export(step, args, None, input_names=names_in, output_names=names_out,
                                     opset_version=opset, dynamo=True, dynamic_shapes=dyn_shapes,
                                     external_data=False, optimize=True)
        except Exception as e:
            sys.stdout = stdout
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ExportError(f"torch.onnx.export failed: {type(e).__name__}: {first}") from e
        finally:
            sys.stdout = stdout
    proto = prog.model_proto
    meta = _metadata(model, cfg, out, fp16, opset, names_in, names_out, hist_meta)
    meta.update(meta_extra or {})
    _set_meta(proto, meta)
    _save(proto, out)
    meta["_export_s"] = time.time() - t0
    if gpu_program and not fp16:
        meta["_gpu_program"] = write_gpu_program(model, out)
    return meta


def _metadata(model, cfg, out: Path, fp16: bool, opset: int, names_in: list, names_out: list, hist_meta: list) -> dict:
    """The NSS metadata of an exported graph (the runtime's Session reads and checks it)."""
    import torch

    multiple, scale = int(cfg.multiple), int(cfg.scale)
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "name": out.stem, "preset": str(cfg.name), "scale": scale, "n_prev": int(cfg.n_prev),
        "multiple": multiple, "contract_version": contract.CONTRACT_VERSION,
        "colour_transform": contract.COLOUR_TRANSFORM, "colour_transform_max": contract.COLOUR_TRANSFORM_MAX,
        "depth_ref": contract.DEPTH_REF, "fp16": bool(fp16), "opset": opset,
        "inputs": names_in, "outputs": names_out, "history": hist_meta,
        "config": _jsonable(_cfg_dict(cfg)),
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        # the game must render its low-res frames with sub-pixel jitter for this model (the node/bridge read it)
        "jitter": bool(getattr(model, "wants_jitter", False)),
    }


def _set_meta(proto, meta: dict) -> None:
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps({k: v for k, v in meta.items() if not k.startswith("_")})
    proto.producer_name = "nss_train tools/export_onnx.py"
    proto.doc_string = (f"NSS neural supersampling, preset {meta['preset']}, x{meta['scale']}; "
                        f"metadata key '{METADATA_KEY}' (see addons/neural_ss/runtime/README.md)")


def _save(proto, out: Path) -> None:
    from nss_runtime.frames import atomic_write_bytes
    atomic_write_bytes(out, proto.SerializeToString())


def _cfg_dict(cfg) -> dict:
    import dataclasses
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(vars(cfg))


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, Path):
        return str(x)
    return repr(x)


# --- inputs ---------------------------------------------------------------------------------

def _example_inputs(model, h: int, w: int, dtype):
    import torch
    g = torch.Generator().manual_seed(0)
    colour = torch.rand(1, 3, h, w, generator=g) * 2
    depth = 1 + torch.rand(1, 1, h, w, generator=g) * 50
    motion = torch.randn(1, 2, h, w, generator=g)
    jitter = torch.rand(1, 2, generator=g) - 0.5
    reset = torch.ones(1)
    hist = [x.to(dtype) for x in model.init_history(1, h, w)]
    return (colour, depth, motion, jitter, reset, *hist)


def random_sequence(n: int, h: int, w: int, seed: int = 0, cut_at: int | None = None) -> list[dict]:
    """Frames with HDR colour, depth with a sky region (+inf and 1e10), smooth + noisy motion, jitter."""
    rng = np.random.default_rng(seed)
    frames = []
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(n):
        colour = (np.exp(rng.normal(-1.0, 1.2, (3, h, w))) * (rng.random((1, h, w)) > 0.02)).astype(np.float32)
        depth = (1 + 60 * rng.random((1, h, w))).astype(np.float32)
        depth[0, : h // 5] = np.inf
        depth[0, : h // 5, : w // 3] = 1e10
        motion = np.stack([1.5 * np.sin(yy / 7 + i) + 0.3 * rng.normal(size=(h, w)),
                           -2.0 + 0.5 * np.cos(xx / 5) + 0.3 * rng.normal(size=(h, w))]).astype(np.float32)
        frames.append({"colour": colour, "depth": depth, "motion": motion,
                       "jitter": (rng.random(2) - 0.5).astype(np.float32) * 0.98,
                       "cut": i == 0 or i == cut_at})
    return frames


def real_sequence(data: Path | None, scale: int, max_frames: int = 6) -> tuple[list[dict], str]:
    """Up to max_frames frames of the first complete sequence under `data` with this scale; ([], why) when none.

    Without `data` it looks in data/ and skips sequences that are unreadable or still being rendered."""
    from nss_runtime import frames as F

    roots = [Path(data)] if data else [ROOT / "data"]
    why = "no dataset found (pass --data DIR)"
    for root in roots:
        if not root.is_dir():
            if data:
                raise ExportError(f"--data {root}: not a directory")
            continue
        why = f"no readable sequence with scale {scale} under {root}"
        for seq in F.list_sequences(root):
            try:
                meta = F.read_meta(seq)
                if meta.scale != scale:
                    continue
                out = []
                for i in range(min(meta.frames, max_frames)):
                    fr = F.read_frame(F.frame_path(seq, i), expect_lowres=meta.lowres, with_target=False)
                    out.append({"colour": fr.colour, "depth": fr.depth, "motion": fr.motion,
                                "jitter": np.asarray(meta.jitter[i], np.float32), "cut": i == 0 or meta.cuts[i]})
            except F.FrameError as e:
                if data:
                    raise ExportError(str(e)) from None
                continue  # e.g. a sequence still being rendered
            return out, str(seq)
    return [], why


# --- parity ---------------------------------------------------------------------------------

def torch_sequence(model, frames: list[dict], fp16: bool = False) -> list[np.ndarray]:
    """Run the PyTorch model over frames exactly as the runtime does (reset on the first frame and on cuts)."""
    import torch

    outs, hist = [], None
    with torch.no_grad():
        for fr in frames:
            c, d, m = (torch.from_numpy(np.ascontiguousarray(fr[k]))[None] for k in ("colour", "depth", "motion"))
            if hist is None:
                hist = model.init_history(1, c.shape[2], c.shape[3])
            j = torch.from_numpy(np.asarray(fr["jitter"], np.float32)).view(1, 2)
            r = torch.tensor([1.0 if fr["cut"] or not outs else 0.0])
            rgb, *hist = model.step(c, d, m, j, r, *hist)
            outs.append(rgb[0].float().numpy())
    return outs


def session_sequence(sess: Session, frames: list[dict]) -> list[np.ndarray]:
    sess.reset()
    return [sess.upscale(f["colour"], f["depth"], f["motion"], f["jitter"], f["cut"]) for f in frames]


def parity(model, onnx_path: Path, frames: list[dict], threads: int | None = None) -> dict:
    """Max abs errors between PyTorch and ONNX Runtime over one sequence, in [0, 1] and in linear colour."""
    ref = torch_sequence(model, frames)
    got = session_sequence(Session(onnx_path, providers=["CPUExecutionProvider"], threads=threads), frames)
    err01 = max(float(np.abs(contract.colour_forward(a) - contract.colour_forward(b)).max()) for a, b in zip(ref, got))
    lin = max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
    bad = [i for i, g in enumerate(got) if not np.all(np.isfinite(g))]
    if bad:
        raise ExportError(f"{onnx_path}: ONNX Runtime produced NaN/Inf in frame(s) {bad}")
    return {"max_abs_err_01": err01, "max_abs_err_linear": lin, "frames": len(frames),
            "size": [int(frames[0]["colour"].shape[2]), int(frames[0]["colour"].shape[1])]}


# --- checkpoint -----------------------------------------------------------------------------

def load_model(ckpt: Path | None, init: str | None, scale: int, n_prev: int | None, seed: int = 0):
    """(model, cfg, summary dict) from a checkpoint, or freshly initialised weights with --init."""
    import torch
    from nss_train.models.registry import CheckpointError, build_model, load_checkpoint, preset_config

    if init:
        torch.manual_seed(seed)
        kw = {"scale": scale} | ({"n_prev": n_prev} if n_prev else {})
        try:
            cfg = preset_config(init, **kw)
        except (KeyError, ValueError) as e:
            raise ExportError(f"--init {init!r}: {e}") from None
        return build_model(cfg).eval(), cfg, {"init": "fresh random weights (not trained)", "seed": seed}
    if not ckpt.is_file():
        hint = (" (the shipped model is not trained yet: use --init accum to export fresh weights)"
                if ckpt == DEFAULT_CKPT else "")
        raise ExportError(f"{ckpt}: checkpoint not found{hint}")
    try:
        model, cfg, raw = load_checkpoint(ckpt)
    except CheckpointError as e:
        raise ExportError(str(e)) from None
    except Exception as e:  # a corrupt zip/pickle raises many types; name the file
        raise ExportError(f"{ckpt}: unreadable checkpoint ({type(e).__name__}: {e})") from None
    summary = {k: raw[k] for k in ("step", "epoch", "data", "dataset", "train_data", "metrics", "val", "loss",
                                   "git", "created") if isinstance(raw, dict) and k in raw}
    summary["checkpoint"] = ckpt.name
    return model.eval(), cfg, _jsonable(summary)


# --- tiny models for tests ----------------------------------------------------------------

def tiny_config(preset: str, scale: int, n_prev: int = 2):
    """The preset's structure (same ops, same `multiple`) with a few channels: exports and runs in seconds."""
    import dataclasses
    from nss_train.models.registry import architecture, preset_config

    cfg = preset_config(preset, scale=scale, n_prev=n_prev)
    if hasattr(architecture(preset), "tiny_config"):  # an architecture with other knobs says how to shrink itself
        return architecture(preset).tiny_config(cfg)
    n_feat = len(cfg.feat_channels)
    return dataclasses.replace(cfg, feat_channels=(6,) * (n_feat - 1) + (4,),
                               reweight_channels=(6,) * len(cfg.reweight_channels),
                               unet_enc=tuple((8,) * len(lvl) for lvl in cfg.unet_enc),
                               unet_dec=tuple((8,) * len(lvl) for lvl in cfg.unet_dec))


def export_tiny(out: Path, preset: str = "fast", scale: int = 2, n_prev: int = 2, fp16: bool = False,
                seed: int = 0, fill_zero_init: bool = False):
    """Export a freshly initialised tiny model to `out`; returns (torch model, metadata).

    fill_zero_init: give the parameters a model initialises to zero (e.g. fast's last layer, which makes an
    untrained model exactly its bilinear base) small seeded random values, so that every input, the history
    included, changes the output (tests of parity and of the history need that)."""
    import torch
    from nss_train.models.registry import build_model

    torch.manual_seed(seed)
    cfg = tiny_config(preset, scale, n_prev)
    model = build_model(cfg).eval()
    if fill_zero_init:
        with torch.no_grad():
            for p in model.parameters():
                if p.numel() and not p.any():
                    p.copy_(0.05 * torch.randn_like(p))
    meta = export(model, cfg, Path(out), fp16=fp16, meta_extra={"training": {"init": "tiny random (tests)"}})
    return model, meta


# --- CLI ------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", type=Path, default=DEFAULT_CKPT, help="checkpoint (default %(default)s)")
    ap.add_argument("--out", type=Path, help="ONNX file (default: the checkpoint's path with .onnx)")
    ap.add_argument("--init", metavar="PRESET", help="export freshly initialised weights of PRESET (accum|fast|nsrr) "
                    "instead of a checkpoint")
    ap.add_argument("--scale", type=int, default=2, choices=contract.SCALES, help="with --init")
    ap.add_argument("--n-prev", type=int, help="with --init: previous frames (default: the preset's)")
    ap.add_argument("--fp16", action="store_true", help="half-precision weights and history (GPU providers); "
                    f"frame I/O stays fp32; parity bound {FP16_TOL}")
    ap.add_argument("--opset", type=int, default=OPSET)
    ap.add_argument("--data", type=Path, help="dataset or sequence directory for the real-frame parity check "
                    "(default: data/ if present)")
    ap.add_argument("--check-size", default="64x36", help="low-res WxH of the random parity sequence")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads for the parity check")
    ap.add_argument("--no-check", action="store_true", help="skip the parity check (not recommended)")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    try:
        return _run(a)
    except (ExportError, SessionError) as e:
        print(f"export_onnx: error: {e}", file=sys.stderr)
        return 1


def _run(a) -> int:
    import torch

    torch.set_num_threads(a.threads or torch.get_num_threads())
    model, cfg, summary = load_model(None if a.init else a.ckpt, a.init, a.scale, a.n_prev)
    out = a.out or (Path(f"/tmp/nss_{a.init}_x{a.scale}.onnx") if a.init else a.ckpt.with_suffix(".onnx"))
    if a.fp16 and out.suffix == ".onnx" and not a.out:
        out = out.with_name(out.stem + "_fp16.onnx")
    try:
        cw, ch = (int(v) for v in a.check_size.lower().split("x"))
    except ValueError:
        raise ExportError(f"--check-size {a.check_size!r}; expected WxH such as 64x36") from None
    multiple = int(cfg.multiple)
    if cw % multiple or ch % multiple:
        raise ExportError(f"--check-size {cw}x{ch}: width and height must be multiples of {multiple}")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: preset {cfg.name}, x{cfg.scale}, {cfg.n_prev} previous frames, {n_params / 1e3:.1f}k params"
          f"{' (fresh weights)' if a.init else ''}")
    meta = export(model, cfg, out, fp16=a.fp16, opset=a.opset, meta_extra={"training": summary},
                  verbose=a.verbose)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, opset {a.opset}, export {meta['_export_s']:.1f} s); "
          f"history: " + ", ".join(f"{e['name']}{e['shape']}" for e in meta["history"]))
    if meta.get("_gpu_program"):
        print(f"wrote {meta['_gpu_program']} (+ .nssgpu.bin): the GPU program (addons/neural_ss/gpu/)")
    if a.no_check:
        print("parity check skipped (--no-check)")
        return 0
    tol = FP16_TOL if a.fp16 else FP32_TOL
    model = model.float()  # the reference is always the fp32 PyTorch model
    seqs = [("random", random_sequence(6, ch, cw, seed=1, cut_at=3), f"{cw}x{ch}, cut at frame 3"),
            ("random", random_sequence(3, ch // multiple * multiple + multiple, cw + 2 * multiple, seed=2),
             "second size (dynamic shape)")]
    real, where = real_sequence(a.data, int(cfg.scale))
    if real:
        seqs.append(("real", real, where))
    results = {}
    for kind, frames, desc in seqs:
        r = parity(model, out, frames, a.threads)
        ok = r["max_abs_err_01"] <= tol
        results[f"{kind}:{desc}"] = r
        print(f"parity {kind:6s} {r['size'][0]}x{r['size'][1]} x{r['frames']} frames ({desc}): "
              f"max |err| {r['max_abs_err_01']:.2e} on [0,1] colour, {r['max_abs_err_linear']:.2e} linear "
              f"-> {'OK' if ok else 'FAIL'} (bound {tol:g})")
    if not real:
        print(f"parity real: skipped, {where}")
    worst = max(r["max_abs_err_01"] for r in results.values())
    if worst > tol:
        raise ExportError(f"{out}: ONNX Runtime and PyTorch disagree (max abs error {worst:.2e} > {tol:g}); "
                          "the file was written but must not be used")
    # Record the verified figures in the file itself.
    import onnx
    proto = onnx.load(str(out))
    meta = json.loads(next(p.value for p in proto.metadata_props if p.key == METADATA_KEY))
    meta["parity"] = {"bound_01": tol, "max_abs_err_01": worst, "real_frames": bool(real)}
    _set_meta(proto, meta)
    _save(proto, out)
    print(f"ok: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
