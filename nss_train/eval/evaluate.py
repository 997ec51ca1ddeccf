"""Evaluate a trained model against bilinear, bicubic and a TAA upscaler on held-out sequences.

    python -m nss_train.eval.evaluate --model models/accum_x2.pt --data data/blender_heldout
    python -m nss_train.eval.evaluate --model runs/default/best.pt          # the run's validation sequences

Every method runs in streaming order over each sequence (the model through its
`step`, exactly as the runtime runs it; resets at cuts). Metrics are computed on
display values (nss_train.train.losses.DISPLAY: Reinhard, sRGB curve, clipped [0, 1]):

  PSNR, SSIM     against the high-res target; PSNR of the MEAN MSE over all frames (as fit's
                 validation), per-frame PSNRs in the JSON and the plot;
  FLIP           NVIDIA FLIP (flip-evaluator, LDR mode, 67 ppd), lower is better;
  temporal       mean |(out_t - warp(out_t-1)) - (tgt_t - warp(tgt_t-1))|: flicker
                 the target does not have (warped with the target's own high-res
                 motion when the data has it), lower is better.

Writes PREFIX.json (all numbers, per frame too), PREFIX.md (a table),
PREFIX_crops/*.png (input | methods | target) and PREFIX_plot.png (metric vs frame);
PREFIX defaults to the model path without .pt plus ".eval".
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nss_train.eval import baselines as B
from nss_runtime import frames as FR
from nss_runtime.frames import atomic_write_bytes
from nss_train.eval.metrics import flip_error, psnr_from_mse, ssim
from nss_train.train.losses import DISPLAY, to_display
from nss_train.models.geometry import upsample_motion, warp
from nss_train.models.registry import CheckpointError, load_checkpoint

log = logging.getLogger("nss_train.eval.evaluate")


class EvalError(RuntimeError):
    """A one-line, user-facing evaluation failure."""


class ModelUpscaler:
    """The network in streaming mode (its `step` and recurrent history)."""

    def __init__(self, model):
        self.model = model
        self.hist = None
        self.size = None

    @torch.no_grad()
    def step(self, colour, depth, motion, jitter, reset):
        h, w = colour.shape[-2:]
        if self.hist is None or self.size != (h, w):
            self.hist, self.size = self.model.init_history(colour.shape[0], h, w), (h, w)
            reset = torch.ones_like(reset)
        out, *self.hist = self.model.step(colour, depth, motion, jitter, reset, *self.hist)
        return out


def load_sequence(seq: Path, multiple: int, max_frames: int = 0):
    """Yield (index, frame tensors dict, cut) for a sequence, trimmed to multiples of `multiple` (top-left)."""
    meta = FR.read_meta(seq)
    n = meta.frames if not max_frames else min(meta.frames, max_frames)
    w, h = meta.lowres
    w2, h2 = w - w % multiple, h - h % multiple
    if w2 < multiple or h2 < multiple:
        raise EvalError(f"{seq}: frames are {w}x{h}; the model needs at least {multiple}x{multiple}")
    s = meta.scale
    for i in range(n):
        fr = FR.read_frame(FR.frame_path(seq, i), expect_lowres=meta.lowres, scale=s)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a))[None]  # noqa: E731
        d = {"colour": t(fr.colour[:, :h2, :w2]), "depth": t(fr.depth[:, :h2, :w2]),
             "motion": t(fr.motion[:, :h2, :w2]), "jitter": t(np.asarray(meta.jitter[i], np.float32)),
             "target": t(fr.target[:, :h2 * s, :w2 * s]),
             "target_motion": None if fr.target_motion is None else t(fr.target_motion[:, :h2 * s, :w2 * s])}
        yield i, d, bool(meta.cuts[i]) or i == 0


def evaluate(model_path: str | None, data: list[str], prefix: str | None = None, max_frames: int = 0,
             crops: int = 4, crop_size: int = 96, methods: tuple[str, ...] = B.BASELINES,
             allow_train_data: bool = False) -> dict:
    model, cfg, ckpt = (None, None, {})
    if model_path:
        model, cfg, ckpt = load_checkpoint(model_path)
    seqs, s = resolve_sequences(data, ckpt, cfg, allow_train_data)
    names = (["model"] if model is not None else []) + list(methods)
    if prefix is None:
        if not model_path:
            raise EvalError("--out is required without --model")
        prefix = str(Path(model_path).with_suffix("")) + ".eval"
    crop_dir = Path(str(prefix) + "_crops")
    crop_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    run = score_sequences(model, seqs, s, names, cfg.multiple if cfg is not None else 1, max_frames, crops,
                          crop_size, crop_dir)
    result = summarise(run, names, methods, model_path, ckpt, seqs, s)
    result["seconds"] = time.time() - t_start
    atomic_write_bytes(str(prefix) + ".json", (json.dumps(result, indent=1) + "\n").encode())
    atomic_write_bytes(str(prefix) + ".md", markdown(result).encode())
    plot(result, run["seq_bounds"], str(prefix) + "_plot.png")
    log.info("wrote %s.json, %s.md, %s_plot.png and %d crop(s) in %s", prefix, prefix, prefix, len(run["crops"]),
             crop_dir)
    return result


def resolve_sequences(data: list[str], ckpt: dict, cfg, allow_train_data: bool) -> tuple[list[Path], int]:
    """(the sequences to evaluate, their scale): --data, else the checkpoint's validation sequences; never one the
    model was trained on (unless allowed), all of the model's scale."""
    if not data:
        data = list(ckpt.get("data", {}).get("val_sequences", []))
        if not data:
            raise EvalError("no --data given and the checkpoint names no validation sequences")
        log.info("no --data: evaluating on the checkpoint's %d validation sequences", len(data))
    seqs = []
    for d in data:
        p = Path(d)
        if not p.exists():
            raise EvalError(f"{p}: no such dataset or sequence directory")
        seqs += FR.list_sequences(p)
    if not seqs:
        raise EvalError(f"{', '.join(data)}: no sequences (no meta.json found)")
    trained = {str(Path(p).resolve()) for p in ckpt.get("data", {}).get("train_sequences", [])}
    leaked = [str(s) for s in seqs if str(s.resolve()) in trained]
    if leaked and not allow_train_data:
        raise EvalError(f"{leaked[0]} (and {len(leaked) - 1} more) was used to TRAIN this model; evaluate on "
                        "held-out sequences (or pass --allow-train-data to measure the training fit)")
    scales = {FR.read_meta(s).scale for s in seqs}
    if len(scales) != 1 or (cfg is not None and cfg.scale not in scales):
        raise EvalError(f"sequences have scale(s) {sorted(scales)}; the model is x{cfg.scale if cfg else '?'}")
    return seqs, scales.pop()


def score_sequences(model, seqs: list[Path], s: int, names: list[str], multiple: int, max_frames: int, crops: int,
                    crop_size: int, crop_dir: Path) -> dict:
    """Every method over every sequence in streaming order: per-frame metrics, frame ids, where each sequence
    starts, and the crop pictures written."""
    from tqdm import tqdm

    total = sum(min(FR.read_meta(q).frames, max_frames or 10**9) for q in seqs)
    bar = tqdm(total=total, desc="evaluate", unit="frame", dynamic_ncols=True)
    run = {"per_frame": {n: {"psnr": [], "mse": [], "ssim": [], "flip": [], "temporal": []} for n in names},
           "frame_ids": [], "seq_bounds": [], "crops": []}
    for qi, seq in enumerate(seqs):
        ups = {n: (ModelUpscaler(model) if n == "model" else B.make(n, s)) for n in names}
        prev = {}
        n_frames = min(FR.read_meta(seq).frames, max_frames or 10**9)
        run["seq_bounds"].append(len(run["frame_ids"]))
        for i, d, cut in load_sequence(seq, multiple, max_frames):
            tgt = to_display(d["target"])[0]
            run["frame_ids"].append(f"{seq.name}/{i}")
            outs = score_frame(ups, d, cut, tgt, prev, s, run["per_frame"])
            if crops and i == n_frames // 2 and len(run["crops"]) < crops:
                inp = F.interpolate(to_display(d["colour"]), scale_factor=s, mode="nearest")[0]
                run["crops"].append(str(save_crops(crop_dir / f"{qi:02d}_{seq.name}_f{i:03d}.png",
                                                   ["input"] + names + ["target"],
                                                   [inp] + [outs[n] for n in names] + [tgt], crop_size)))
            prev = dict(outs, target=tgt)
            bar.update(1)
    bar.close()
    return run


def score_frame(ups: dict, d: dict, cut: bool, tgt: torch.Tensor, prev: dict, s: int, per_frame: dict) -> dict:
    """One frame through every method; appends its metrics to per_frame; returns the display outputs."""
    reset = torch.tensor([1.0 if cut else 0.0])
    flow = d["target_motion"] if d["target_motion"] is not None else upsample_motion(d["motion"], s)
    outs = {}
    for n, up in ups.items():
        o = to_display(up.step(d["colour"], d["depth"], d["motion"], d["jitter"], reset))[0]
        outs[n] = o
        pf = per_frame[n]
        mse = float(((o - tgt) ** 2).mean())
        pf["mse"].append(mse)
        pf["psnr"].append(psnr_from_mse(mse))
        pf["ssim"].append(float(ssim(o[None], tgt[None])))
        pf["flip"].append(flip_error(tgt, o))
        if cut or "target" not in prev:
            pf["temporal"].append(None)
        else:
            dt_o = o - warp(prev[n][None], flow)[0]
            dt_t = tgt - warp(prev["target"][None], flow)[0]
            pf["temporal"].append(float((dt_o - dt_t).abs().mean()))
    return outs


def _mean(v):
    v = [x for x in v if x is not None]
    return float(np.mean(v)) if v else None


def summarise(run: dict, names: list[str], methods, model_path, ckpt: dict, seqs: list[Path], s: int) -> dict:
    """The result document: summary per method, the spread per sequence, per-frame figures, the model's gains."""
    per_frame, frame_ids = run["per_frame"], run["frame_ids"]
    summary = {n: {k: _mean(v) for k, v in per_frame[n].items()} for n in names}
    for n in names:  # ONE PSNR definition (fit's too): the PSNR of the mean MSE over all frames, not a mean of PSNRs
        summary[n]["psnr"] = psnr_from_mse(summary[n]["mse"])
        summary[n]["psnr_mean_of_frames"] = _mean(per_frame[n]["psnr"])
    # the spread: the same PSNR per sequence (frames of one sequence are correlated; sequences less so)
    bounds = run["seq_bounds"] + [len(frame_ids)]
    per_sequence = [{"sequence": str(q), "frames": bounds[k + 1] - bounds[k],
                     "psnr": {n: psnr_from_mse(float(np.mean(per_frame[n]["mse"][bounds[k]:bounds[k + 1]])))
                              for n in names}} for k, q in enumerate(seqs)]
    result = {
        "model": model_path, "config": ckpt.get("config"), "step": ckpt.get("step"),
        "train_data": ckpt.get("data", {}).get("root"),
        "data": [str(q) for q in seqs], "frames": len(frame_ids), "scale": s,
        "display": DISPLAY, "flip": "flip-evaluator LDR, 67 ppd, mean over pixels",
        "psnr": "10 log10(1 / mean over frames of the per-frame MSE) on display values",
        "loss": ckpt.get("loss"),
        "temporal": "mean |(out_t - warp(out_t-1)) - (tgt_t - warp(tgt_t-1))| on display values",
        "summary": summary, "per_sequence": per_sequence, "per_frame": per_frame, "frame_ids": frame_ids,
        "crops": run["crops"], "seconds": None,
    }
    if "model" in summary:
        for b in methods:
            result.setdefault("model_vs", {})[b] = {
                "psnr_gain_db": summary["model"]["psnr"] - summary[b]["psnr"],
                "flip_ratio": summary["model"]["flip"] / summary[b]["flip"]}
    return result


def save_crops(path: Path, labels: list[str], images: list[torch.Tensor], size: int) -> Path:
    """One PNG: the same centre crop of each image side by side, labelled."""
    from PIL import Image, ImageDraw

    H, W = images[0].shape[-2:]
    ch, cw = min(size, H), min(size, W)
    y0, x0 = (H - ch) // 2, (W - cw) // 2
    tiles = [(im[:, y0:y0 + ch, x0:x0 + cw].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
             for im in images]
    zoom = max(1, 192 // ch)  # small crops are hard to see: nearest-neighbour zoom
    pad, label_h = 4, 14
    canvas = Image.new("RGB", (len(tiles) * (cw * zoom + pad) + pad, ch * zoom + label_h + 2 * pad), (32, 32, 32))
    draw = ImageDraw.Draw(canvas)
    for k, (lab, t) in enumerate(zip(labels, tiles)):
        x = pad + k * (cw * zoom + pad)
        canvas.paste(Image.fromarray(t).resize((cw * zoom, ch * zoom), Image.NEAREST), (x, label_h + pad))
        draw.text((x + 2, 2), lab, fill=(255, 255, 255))
    buf = __import__("io").BytesIO()
    canvas.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path


def plot(result: dict, seq_bounds: list[int], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    for ax, key, label in zip(axes, ("psnr", "flip", "temporal"),
                              ("PSNR (dB, higher better)", "FLIP (lower better)", "temporal error (lower better)")):
        for n, pf in result["per_frame"].items():
            v = [np.nan if x is None else x for x in pf[key]]
            ax.plot(v, label=n, lw=1)
        for b in seq_bounds[1:]:
            ax.axvline(b - 0.5, color="grey", lw=0.5, ls=":")
        ax.set_ylabel(label, fontsize=8)
    axes[0].legend(fontsize=8, ncol=len(result["per_frame"]))
    axes[-1].set_xlabel("frame (sequences concatenated, dotted lines between them)")
    fig.suptitle(f"{result['model'] or 'baselines'}: {result['frames']} held-out frames, x{result['scale']}",
                 fontsize=9)
    fig.tight_layout()
    buf = __import__("io").BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def markdown(r: dict) -> str:
    lines = [f"# Evaluation: {r['model'] or 'baselines'}", "",
             f"{r['frames']} frames of {len(r['data'])} held-out sequence(s), x{r['scale']}; "
             f"checkpoint step {r['step']}.", "",
             f"Metrics on display values: {r['display']}. PSNR: {r['psnr']}. FLIP: {r['flip']}. "
             f"Temporal: {r['temporal']}.", ""] + ([f"Trained with: {r['loss']}.", ""] if r.get("loss") else []) + [
             "| method | PSNR (dB) ↑ | SSIM ↑ | FLIP ↓ | temporal ↓ |", "|---|---|---|---|---|"]
    for n, m in r["summary"].items():
        t = "n/a" if m["temporal"] is None else f"{m['temporal']:.4f}"
        lines.append(f"| {n} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['flip']:.4f} | {t} |")
    if "model_vs" in r:
        lines += ["", "Model vs baselines: " + ", ".join(
            f"{b}: {v['psnr_gain_db']:+.2f} dB, FLIP x{v['flip_ratio']:.3f}" for b, v in r["model_vs"].items())]
    if len(r.get("per_sequence", [])) > 1:
        names = list(r["summary"])
        lines += ["", "PSNR (dB) per sequence:", "", "| sequence | frames | " + " | ".join(names) + " |",
                  "|---|---|" + "---|" * len(names)]
        lines += [f"| `{Path(q['sequence']).parent.name}/{Path(q['sequence']).name}` | {q['frames']} | " + " | ".join(f"{q['psnr'][n]:.2f}" for n in names)
                  + " |" for q in r["per_sequence"]]
    lines += ["", "Sequences: " + ", ".join(f"`{d}`" for d in r["data"]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nss_train.eval.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="models/accum_x2.pt", help="checkpoint; '' for the baselines only")
    p.add_argument("--data", nargs="*", default=[], help="held-out dataset(s)/sequence(s); default: the "
                   "checkpoint's validation sequences")
    p.add_argument("--out", default=None, help="output prefix (default: MODEL without .pt + '.eval')")
    p.add_argument("--max-frames", type=int, default=0, help="per sequence (0: all)")
    p.add_argument("--crops", type=int, default=4, help="side-by-side crop PNGs (one per sequence)")
    p.add_argument("--crop-size", type=int, default=96, help="crop size in output pixels")
    p.add_argument("--baselines", default=",".join(B.BASELINES), help="comma-separated subset of bilinear,bicubic,taa")
    p.add_argument("--allow-train-data", action="store_true", help="allow sequences the model was trained on")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if a.threads:
        torch.set_num_threads(a.threads)
    methods = tuple(m for m in a.baselines.split(",") if m)
    try:
        for m in methods:
            B.make(m, 2)
        r = evaluate(a.model or None, a.data, a.out, a.max_frames, a.crops, a.crop_size, methods,
                     a.allow_train_data)
    except (EvalError, CheckpointError, FR.FrameError, ValueError) as e:
        print(f"nss_train.eval.evaluate: error: {e}", file=sys.stderr)
        return 1
    print(markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
