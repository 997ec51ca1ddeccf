"""Fine-tune the shipped model on Godot captures and measure it on held-out captured sequences.

    python -m nss_train.sources.godot_pairs --project godot_project --scene res://demo.tscn --out data/godot_demo/train \\
        --sequences 8 --frames 24 --stride 54 --low 128x72 --time-scale 2
    python -m nss_train.sources.godot_pairs ... --out data/godot_demo/test --first 8 --sequences 3   # held out
    python benchmarks/bench_finetune.py --shipped models/fast_x2.pt --train data/godot_demo/train \\
        --test data/godot_demo/test [--also data/ship/test_nojit] [--steps 300 --lr 1e-4]

Runs `nss_train.train.fit --init SHIPPED` (resumable: rerun continues the run in --run), then
`nss_train.eval.evaluate` for the shipped and the fine-tuned model on the held-out captures (and on
--also, e.g. held-out Blender data, to see what the fine-tune costs there), and writes
benchmarks/results/finetune.json: PSNR / SSIM / FLIP / temporal of fine-tuned vs shipped vs
bicubic (and bilinear), all measured in this one run on the same frames.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from nss_runtime import frames as FR
from nss_train.eval.evaluate import evaluate
from nss_train.train.fit import TrainConfig, train
from nss_runtime.frames import atomic_write_bytes
from nss_train.models.registry import read_checkpoint

METRICS = ("psnr", "ssim", "flip", "temporal")


def describe(root: str) -> dict:
    seqs = FR.list_sequences(root)
    m = FR.read_meta(seqs[0])
    src = {k: m.source.get(k) for k in ("tool", "scene", "target_ss", "msaa", "taa", "time_scale", "fps")}
    return {"dir": root, "sequences": len(seqs), "frames": sum(FR.read_meta(s).frames for s in seqs),
            "lowres": list(m.lowres), "scale": m.scale, "source": src}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shipped", default="models/fast_x2.pt")
    ap.add_argument("--train", nargs="+", default=["data/godot_demo/train"], help="captured training sequences")
    ap.add_argument("--test", default="data/godot_demo/test", help="held-out captured sequences")
    ap.add_argument("--also", nargs="*", default=[], help="more held-out datasets to evaluate both models on")
    ap.add_argument("--run", default="runs/finetune_demo", help="fine-tune run directory")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=48)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--max-frames", type=int, default=0, help="evaluate only the first N frames per sequence")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/finetune.json"))
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run = Path(a.run)

    t0 = time.time()
    last = run / "last.pt"
    cfg = TrainConfig(data=list(a.train), out=str(run), init=a.shipped, steps=a.steps, lr=a.lr, batch=a.batch,
                      crop=a.crop, val_every=max(1, a.steps // 4), warmup=min(20, a.steps // 10),
                      threads=a.threads)
    if last.is_file() and read_checkpoint(last)["step"] >= a.steps:
        logging.info("%s is already at step %d: evaluating it", last, a.steps)
    else:
        train(cfg, resume="last" if last.is_file() else None)
    train_minutes = (time.time() - t0) / 60
    tuned = run / "best.pt" if (run / "best.pt").is_file() else last

    results: dict = {}
    named = [("test", [a.test])] + [("/".join(Path(d).parts[-2:]), [d]) for d in a.also]  # e.g. clean/test
    for name, data in named:
        ev = {}
        for label, ckpt in (("shipped", a.shipped), ("finetuned", str(tuned))):
            r = evaluate(ckpt, data, prefix=str(run / f"eval_{name.replace('/', '_')}_{label}"), crops=2,
                         methods=("bilinear", "bicubic", "taa"), max_frames=a.max_frames)
            ev[label] = r["summary"]["model"]
            ev.setdefault("bicubic", r["summary"]["bicubic"])
            ev.setdefault("bilinear", r["summary"]["bilinear"])
            ev.setdefault("taa", r["summary"]["taa"])
        ev["finetuned_vs_shipped"] = {"psnr_gain_db": ev["finetuned"]["psnr"] - ev["shipped"]["psnr"],
                                      "flip_ratio": ev["finetuned"]["flip"] / ev["shipped"]["flip"]}
        ev["finetuned_vs_bicubic"] = {"psnr_gain_db": ev["finetuned"]["psnr"] - ev["bicubic"]["psnr"],
                                      "flip_ratio": ev["finetuned"]["flip"] / ev["bicubic"]["flip"]}
        ev["data"] = describe(data[0])
        ev["frames_evaluated"] = r["frames"]
        results[name] = ev

    ck = read_checkpoint(tuned)
    out = {
        "what": "shipped model fine-tuned on paired Godot captures of the demo, evaluated on held-out "
                "captured sequences (other stretches of the camera path)",
        "shipped": a.shipped, "shipped_step": read_checkpoint(a.shipped).get("step"),
        "finetuned": str(tuned), "finetune": {"steps": a.steps, "lr": a.lr, "batch": a.batch, "crop": a.crop,
                                              "best_step": ck.get("metrics", {}).get("best_step"),
                                              "minutes_this_run": round(train_minutes, 2)},
        "train_data": [describe(t) for t in a.train], "results": results,
        "metrics": "display values (Reinhard + sRGB, [0,1]); PSNR/SSIM higher is better; FLIP (LDR) and "
                   "temporal lower is better",
    }
    atomic_write_bytes(a.out, (json.dumps(out, indent=1) + "\n").encode())
    print(table(out))
    print(f"wrote {a.out}")
    return 0


def table(out: dict) -> str:
    lines = []
    for name, ev in out["results"].items():
        d = ev["data"]
        lines += [f"\n{name}: {d['sequences']} sequences, {ev.get('frames_evaluated', d['frames'])} frames evaluated, {d['lowres'][0]}x{d['lowres'][1]} "
                  f"x{d['scale']}", "", "| method | PSNR dB | SSIM | FLIP | temporal |", "|---|---|---|---|---|"]
        for m in ("finetuned", "shipped", "bilinear", "bicubic", "taa"):
            s = ev[m]
            tmp = "-" if s["temporal"] is None else f"{s['temporal']:.4f}"
            lines.append(f"| {m} | {s['psnr']:.2f} | {s['ssim']:.4f} | {s['flip']:.4f} | {tmp} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
