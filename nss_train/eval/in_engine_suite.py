"""The yardstick as one command: tools/compare_upscalers.py on the demo and the three evaluation levels at
time-scale 1 and 4, then one summary against Godot's own upscalers.

    python tools/compare_suite.py --out benchmarks/results/compare [--model M.onnx] [--jobs 2]
    python tools/compare_suite.py --out benchmarks/results/compare --summary-only   # rebuild the summary

Each run writes OUT/<scene>_ts<N>/ (report.json, report.md, side_by_side.png, camera.json; see
docs/compare.md). The summary (OUT/summary.md, OUT/summary.json) lists every run's PSNR (of the mean MSE), FLIP
and flicker per method, the neural model's differences to Godot's FSR2 and bilinear, their means over the runs,
and the bar of issue 13 (mean PSNR >= FSR2 + 0.5 dB and >= bilinear + 1.5 dB, mean FLIP below FSR2's, flicker no
worse than FSR2's on the mean, with the runs where it is counted), each with the margin by which it is met or
missed. A run whose frames are not aligned with the reference is reported, not averaged silently.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (name, project, scene): the demo and the evaluation levels (eval_levels/: no model trains on them)
SCENES = [
    ("demo", ROOT / "godot_project", "res://demo.tscn"),
    ("textures_and_text", ROOT / "eval_levels", "res://textures_and_text.tscn"),
    ("thin_and_foliage", ROOT / "eval_levels", "res://thin_and_foliage.tscn"),
    ("motion_and_effects", ROOT / "eval_levels", "res://motion_and_effects.tscn"),
]
TIME_SCALES = (1, 4)
METHODS = "native,bilinear,fsr1,fsr2,taa,neural"
BAR = {"psnr_over_fsr2": 0.5, "psnr_over_bilinear": 1.5}


class SuiteError(Exception):
    pass


def run_names(scenes=None, time_scales=TIME_SCALES) -> list[tuple[str, Path, str, float]]:
    known = {s[0]: s for s in SCENES}
    names = scenes or [s[0] for s in SCENES]
    bad = [n for n in names if n not in known]
    if bad:
        raise SuiteError(f"--scenes {','.join(bad)}: unknown; expected some of {','.join(known)}")
    return [(f"{n}_ts{ts:g}", known[n][1], known[n][2], float(ts)) for n in names for ts in time_scales]


def run_one(run: str, project: Path, scene: str, ts: float, out: Path, args) -> tuple[str, int, float, str]:
    cmd = [sys.executable, str(ROOT / "tools" / "compare_upscalers.py"), "--project", str(project), "--scene", scene,
           "--time-scale", f"{ts:g}", "--low", args.low, "--scale", str(args.scale), "--frames", str(args.frames),
           "--warmup", str(args.warmup), "--methods", args.methods, "--out", str(out / run), "--small-picture",
           "--flip-frames", str(args.flip_frames)]
    if args.model:
        cmd += ["--model", str(args.model)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    t = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    tail = (r.stderr.strip().splitlines() or [""])[-1] if r.returncode else ""
    return run, r.returncode, time.monotonic() - t, tail


def summarise(out: Path, runs: list[str]) -> dict:
    """Read OUT/<run>/report.json for each run -> the summary dict (also written as summary.json/.md)."""
    rows, missing = [], []
    for run in runs:
        p = out / run / "report.json"
        if not p.is_file():
            missing.append(run)
            continue
        try:
            rep = json.loads(p.read_text())
            meth = rep["methods"]
        except (ValueError, KeyError) as e:
            raise SuiteError(f"{p}: not a compare_upscalers report ({type(e).__name__}: {e})") from None
        rows.append({"run": run, "frames": len(rep.get("frame_ids") or []) or rep.get("frames"),
                     "model": rep.get("model"), "methods": {
                         m: {k: v.get(k) for k in ("psnr", "flip", "flicker", "aligned")} for m, v in meth.items()}})
    summ: dict = {"runs": rows, "missing": missing, "bar": BAR}
    full = [r for r in rows if all(m in r["methods"] for m in ("neural", "fsr2", "bilinear"))]
    if not full:
        return summ
    n = len(full)

    def mean(vals):
        vals = [v for v in vals if v is not None]
        return sum(vals) / len(vals) if vals else None

    flip_wins = sum(1 for r in full if None not in (r["methods"]["neural"]["flip"], r["methods"]["fsr2"]["flip"])
                    and r["methods"]["neural"]["flip"] < r["methods"]["fsr2"]["flip"])
    flick_ok = sum(1 for r in full if r["methods"]["neural"]["flicker"] <= r["methods"]["fsr2"]["flicker"])
    unaligned = [f"{r['run']}:{m}" for r in rows for m, v in r["methods"].items() if v.get("aligned") is False]
    summ["mean"] = {m: {k: mean([r["methods"][m][k] for r in full if m in r["methods"]])
                        for k in ("psnr", "flip", "flicker")}
                    for m in sorted({m for r in full for m in r["methods"]})}
    summ["checks"] = {}
    for other in ("fsr2", "bilinear"):  # mean PSNR difference against the bar, with its spread over the runs
        d = [r["methods"]["neural"]["psnr"] - r["methods"][other]["psnr"] for r in full]
        summ[f"neural_minus_{other}_db"] = {"mean": mean(d), "min": min(d), "max": max(d)}
        bar = BAR[f"psnr_over_{other}"]
        summ["checks"][f"psnr_over_{other}"] = {"value": mean(d), "bar": bar, "met": mean(d) >= bar,
                                                "margin": mean(d) - bar}
    mn, mf = summ["mean"]["neural"], summ["mean"]["fsr2"]
    summ["checks"]["flip_below_fsr2"] = {"value": mn["flip"], "fsr2": mf["flip"],
                                         "met": None if None in (mn["flip"], mf["flip"]) else mn["flip"] < mf["flip"],
                                         "runs_better": flip_wins, "runs": n}
    # on the mean over the runs, as PSNR and FLIP; runs_ok counts the runs where it holds
    summ["checks"]["flicker_no_worse_than_fsr2"] = {"value": mn["flicker"], "fsr2": mf["flicker"], "runs_ok": flick_ok,
                                                    "runs": n, "met": mn["flicker"] <= mf["flicker"]}
    summ["runs_averaged"] = n
    summ["unaligned"] = unaligned
    return summ


def fmt(v, p=2):
    return "–" if v is None else f"{v:.{p}f}"


def markdown(summ: dict) -> str:
    lines = ["# compare_suite: the neural default against Godot's own upscalers", "",
             "`python tools/compare_suite.py` (tools/compare_upscalers.py per run; PSNR of the mean MSE in dB / FLIP "
             "/ flicker; details and per-frame values in each run's report.md).", ""]
    order = ["neural", "fsr2", "bilinear", "taa", "fsr1"]
    lines += ["| run | frames | " + " | ".join(order) + " | neural − FSR2 | neural − bilinear | flicker neural / FSR2 |",
              "|---" * (len(order) + 5) + "|"]
    for r in summ["runs"]:
        m = r["methods"]
        cells = [f"{fmt(m[k]['psnr'])} / {fmt(m[k]['flip'], 3)}" if k in m else "–" for k in order]
        dn = (f"{m['neural']['psnr'] - m['fsr2']['psnr']:+.2f}" if "neural" in m and "fsr2" in m else "–")
        db = (f"{m['neural']['psnr'] - m['bilinear']['psnr']:+.2f}" if "neural" in m and "bilinear" in m else "–")
        fl = (f"{m['neural']['flicker']:.4f} / {m['fsr2']['flicker']:.4f}" if "neural" in m and "fsr2" in m else "–")
        lines.append(f"| {r['run']} | {r['frames']} | " + " | ".join(cells) + f" | {dn} | {db} | {fl} |")
    if summ.get("missing"):
        lines += ["", "Not run / no report: " + ", ".join(summ["missing"])]
    if "checks" in summ:
        c = summ["checks"]
        mm = summ["mean"]
        lines += ["", f"Mean over {summ['runs_averaged']} runs: " + ", ".join(
            f"{k} {fmt(v['psnr'])} dB / FLIP {fmt(v['flip'], 3)}" for k, v in mm.items() if k != "native"), ""]
        for other, label in (("fsr2", "PSNR over FSR2"), ("bilinear", "PSNR over Godot bilinear")):
            v, d = c[f"psnr_over_{other}"], summ[f"neural_minus_{other}_db"]
            lines.append(f"- {label}: {v['value']:+.2f} dB (bar +{v['bar']:g}): "
                         + ("met" if v["met"] else f"MISSED by {-v['margin']:.2f} dB")
                         + f" (per run {d['min']:+.2f} .. {d['max']:+.2f})")
        f = c["flip_below_fsr2"]
        lines.append(f"- FLIP: {fmt(f['value'], 4)} vs FSR2 {fmt(f['fsr2'], 4)}: "
                     + ("better" if f["met"] else "NOT better") + f" (better in {f['runs_better']} of {f['runs']} runs)")
        fk = c["flicker_no_worse_than_fsr2"]
        lines.append(f"- flicker: {fk['value']:.4f} vs FSR2 {fk['fsr2']:.4f} (mean): "
                     + ("no worse" if fk["met"] else "WORSE") + f"; no worse in {fk['runs_ok']} of {fk['runs']} runs")
        if summ.get("unaligned"):
            lines.append("- frames NOT aligned with the reference: " + ", ".join(summ["unaligned"]))
    return "\n".join(lines) + "\n"


def write_summary(out: Path, runs: list[str]) -> dict:
    from nss_runtime.frames import atomic_write_bytes
    summ = summarise(out, runs)
    atomic_write_bytes(out / "summary.json", (json.dumps(summ, indent=1) + "\n").encode())
    atomic_write_bytes(out / "summary.md", markdown(summ).encode())
    return summ


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="results folder: OUT/<scene>_ts<N>/ and OUT/summary.{md,json}")
    ap.add_argument("--model", default=None, help="ONNX model for neural (default: the addon's shipped default)")
    ap.add_argument("--scenes", default=None, help="comma-separated subset of " + ",".join(s[0] for s in SCENES))
    ap.add_argument("--time-scales", default="1,4")
    ap.add_argument("--methods", default=METHODS)
    ap.add_argument("--low", default="320x180")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--warmup", type=int, default=16)
    ap.add_argument("--flip-frames", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per run (neural)")
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (each is one Godot + one runtime process)")
    ap.add_argument("--summary-only", action="store_true", help="only rebuild the summary from existing reports")
    a = ap.parse_args(argv)
    out = Path(a.out)
    try:
        ts = tuple(float(t) for t in a.time_scales.split(","))
        runs = run_names(a.scenes.split(",") if a.scenes else None, ts)
        if a.model and not Path(a.model).is_file():
            raise SuiteError(f"--model {a.model}: no such file (expected an exported .onnx)")
        if not a.summary_only:
            out.mkdir(parents=True, exist_ok=True)
            failed = []
            with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
                futs = [ex.submit(run_one, r, p, s, t, out, a) for r, p, s, t in runs]
                for i, f in enumerate(futs):
                    run, rc, dt, tail = f.result()
                    print(f"compare_suite: [{i + 1}/{len(runs)}] {run}: " + ("ok" if rc == 0 else f"FAILED ({tail})")
                          + f" ({dt:.0f} s)", flush=True)
                    if rc:
                        failed.append(run)
        summ = write_summary(out, [r[0] for r in runs])
    except (SuiteError, ValueError) as e:
        print(f"compare_suite: {e}", file=sys.stderr)
        return 1
    print(markdown(summ))
    print(f"wrote {out / 'summary.md'}, {out / 'summary.json'}")
    return 1 if summ.get("missing") else 0


if __name__ == "__main__":
    sys.exit(main())
