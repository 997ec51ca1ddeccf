"""Run the Godot demo end to end with the neural upscaler and show what it does.

    python tools/run_demo.py [--model addons/neural_ss/models/default_x2.onnx] [--frames 8] [--low 320x180] [--out out/demo]

1. gets a Godot 4 (tools/godot_env.py: $GODOT / PATH, else the cached Debian-sid chroot),
2. starts the runtime (`python -m nss_runtime.server`) with the shipped model on 127.0.0.1,
3. runs godot_project/ in NEURAL mode (real rendering; under Xvfb when there is no display) for a
   fixed number of frames with deterministic scene time, recording every upscaled frame and the
   low-res frames it came from (lock-step: every frame is upscaled),
4. runs the same frames again rendered natively (the reference): at the output size times --ref-ss
   (default 2) and box-filtered down to the output size, i.e. a 4-samples-per-pixel native render; the
   network is trained towards supersampled targets, and a 1-sample raster is itself aliased (--ref-ss 1),
5. writes OUT/side_by_side.png (native | bilinear | neural, and 3x zooms of the most detailed regions),
   OUT/report.json (PSNR of neural and the addon's bilinear against native per frame, per-stage timings),
6. measures neural against Godot's OWN upscalers on the same frames (--godot-baselines, default
   bilinear,fsr2: Godot's viewport scaling at 1/scale and FSR 2.2) with tools/compare_upscalers.py
   (OUT/godot_compare/, figures under "godot" in OUT/report.json), and prints the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from nss_train.eval.metrics import box_down, mse, psnr_of_mean_mse
from nss_train.eval.metrics import srgb_encode as srgb
from nss_train.eval.runtime_process import Runtime, ToolError

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ROOT / "godot_project"
DEFAULT_MODEL = ROOT / "addons" / "neural_ss" / "models" / "default_x2.onnx"  # the addon's default (neural_ss/model_path)


DemoError = ToolError  # one-line reason the demo could not run (the runtime process: nss_train.eval.runtime_process)


# --- running the demo -------------------------------------------------------------------------

def demo_args(low: tuple[int, int], scale: int, frames: int, warmup: int, capture: Path, mode: str,
              time_scale: float) -> list[str]:
    return ["--low", f"{low[0]}x{low[1]}", "--scale", str(scale), "--mode", mode, "--fixed-fps", "30",
            "--time-scale", str(time_scale), "--capture", str(capture), "--frames", str(frames),
            "--warmup", str(warmup)]


def run_godot(godot, args: list[str], timeout: float, what: str):
    r = godot.render(PROJECT, ["--audio-driver", "Dummy", "--", *args], timeout=timeout)
    if r.timed_out:
        raise DemoError(f"{what}: Godot did not finish within {timeout:.0f} s: {r.output[-800:]}")
    errs = r.errors()
    if r.returncode != 0 or errs:
        raise DemoError(f"{what}: Godot failed (exit {r.returncode}): {(errs or r.output.splitlines()[-5:])}")
    return r


def run_demo(godot, model: str, out: Path, frames: int = 8, low: tuple[int, int] = (320, 180), scale: int = 2,
             warmup: int = 3, time_scale: float = 4.0, threads: int | None = None, timeout: float = 400,
             extra_runtime: tuple[str, ...] = (), native: bool = True, ref_ss: int = 2) -> dict:
    """Neural run + native reference run. Returns the run's facts (paths, Godot output, runtime log)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rt = Runtime(model, out, threads, extra_runtime)
    try:
        t0 = time.monotonic()
        neural = run_godot(godot, demo_args(low, scale, frames, warmup, out / "lowres", "neural", time_scale)
                           + rt.game_args() + ["--nss-record", str(out / "neural")], timeout, "neural run")
        neural_s = time.monotonic() - t0
    finally:
        rt.stop()
    res = {"out": out, "neural_output": neural.output, "neural_seconds": neural_s,
           "runtime_log": rt.log_path.read_text()}
    if native:
        ref = (low[0] * scale * ref_ss, low[1] * scale * ref_ss)
        nat = run_godot(godot, demo_args(ref, 1, frames, warmup, out / "native", "bilinear", time_scale), timeout,
                        "native reference run")
        res["native_output"] = nat.output
    return res


def run_demo_gpu(godot, model: str, out: Path, frames: int = 8, low: tuple[int, int] = (320, 180), scale: int = 2,
                 warmup: int = 3, time_scale: float = 4.0, timeout: float = 400, ref_ss: int = 2) -> dict:
    """The neural run with the GPU runtime (addons/neural_ss/gpu/: the network as compute shaders inside
    Godot, no process) + the native reference run. Every frame from the first one is captured (the ONNX
    Runtime comparison replays the same sequence from its start), figures use frames >= warmup."""
    out = out.resolve()  # Godot runs elsewhere (its own cwd, maybe a chroot): absolute paths only
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.monotonic()
    neural = run_godot(godot, demo_args(low, scale, frames + warmup, 0, out / "lowres", "neural", time_scale)
                       + ["--nss-runtime", "gpu", "--nss-model", str(Path(model).resolve()),
                          "--nss-record", str(out / "neural")], timeout, "neural run (GPU runtime)")
    res = {"out": out, "neural_output": neural.output, "neural_seconds": time.monotonic() - t0}
    line = next((ln for ln in neural.output.splitlines() if ln.startswith("neural_ss: GPU runtime")), "")
    if not line:
        raise DemoError("neural run: the game did not run the GPU runtime: "
                        + next((ln for ln in neural.output.splitlines() if "fallback" in ln or "PYTHON" in ln),
                               neural.output[-500:]))
    started = [ln for ln in neural.output.splitlines() if "started runtime" in ln]
    if started:
        raise DemoError(f"neural run (GPU runtime) started a process: {started[0]}")
    res["runtime_line"] = line
    ref = (low[0] * scale * ref_ss, low[1] * scale * ref_ss)
    nat = run_godot(godot, demo_args(ref, 1, frames + warmup, 0, out / "native", "bilinear", time_scale), timeout,
                    "native reference run")
    res["native_output"] = nat.output
    return res


def compare_gpu_with_ort(out: Path, model: str, warmup: int) -> dict:
    """GPU-runtime frames vs ONNX Runtime (nss_runtime.session.Session, what the Python runtime runs) on the SAME
    captured frames, replayed from the first one: PSNR of each against the native reference, frames >= warmup.
    Adds "onnxruntime" to OUT/report.json (written by compare) and returns it."""
    from nss_runtime.session import Session
    from nss_train.sources.godot_raw import raw_frames, read_raw_frame

    raw = out / "lowres" / "raw"
    nat_raw = load_raw(out / "native" / "raw")
    neural, _ = load_neural(out / "neural")
    sess = Session(model, providers=["CPUExecutionProvider"])
    rows = []
    scale = sess.info.scale
    for seq in raw_frames(raw):
        fr, info = read_raw_frame(raw, seq)
        i = int(info["index"])
        ort = sess.upscale(fr.colour, fr.depth, fr.motion, info.get("jitter", (0.0, 0.0)), bool(info.get("cut")))
        if i < warmup or i not in nat_raw or i not in neural:
            continue
        ref_ss = nat_raw[i].shape[1] // ort.shape[1]
        ref = srgb(box_down(nat_raw[i], ref_ss))
        gpu_d, ort_d = srgb(neural[i]), srgb(ort)
        m_gpu, m_ort = mse(gpu_d, ref), mse(ort_d, ref)
        rows.append({"frame": i, "psnr_gpu": psnr_of_mean_mse([m_gpu]), "psnr_ort": psnr_of_mean_mse([m_ort]),
                     "mse_gpu": m_gpu, "mse_ort": m_ort, "max_display_diff": float(np.abs(gpu_d - ort_d).max())})
    if not rows:
        raise DemoError("no frame to compare the GPU runtime with ONNX Runtime on")
    res = {"what": "ONNX Runtime (nss_runtime.session.Session, CPU) on the same captured frames, replayed from frame 0",
           "frames": len(rows), "psnr_definition": "PSNR of the mean MSE over the frames",
           "psnr_gpu_mean": psnr_of_mean_mse([r["mse_gpu"] for r in rows]),
           "psnr_ort_mean": psnr_of_mean_mse([r["mse_ort"] for r in rows]),
           "max_display_diff": max(r["max_display_diff"] for r in rows), "per_frame": rows}
    res["gpu_minus_ort_db"] = res["psnr_gpu_mean"] - res["psnr_ort_mean"]
    path = out / "report.json"
    report = json.loads(path.read_text())
    report["runtime"] = "gpu"
    report["onnxruntime"] = res
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, path)
    return res


# --- comparing ---------------------------------------------------------------------------------

def bilinear_up(lo: np.ndarray, s: int) -> np.ndarray:
    """(3, h, w) -> (3, s*h, s*w), half-pixel centres (what a GPU's linear filter does), edges clamped."""
    _, h, w = lo.shape

    def coords(n):
        x = (np.arange(n * s) + 0.5) / s - 0.5
        x0 = np.clip(np.floor(x).astype(int), 0, n - 1)
        x1 = np.clip(x0 + 1, 0, n - 1)
        return x0, x1, np.clip(x - x0, 0, 1).astype(np.float32)

    y0, y1, fy = coords(h)
    x0, x1, fx = coords(w)
    top = lo[:, y0][:, :, x0] * (1 - fx) + lo[:, y0][:, :, x1] * fx
    bot = lo[:, y1][:, :, x0] * (1 - fx) + lo[:, y1][:, :, x1] * fx
    return top * (1 - fy[:, None]) + bot * fy[:, None]


def load_raw(raw_dir: Path) -> dict[int, np.ndarray]:
    """Captured frames (demo --capture) by frame index -> linear colour (3, h, w)."""
    from nss_train.sources.godot_raw import raw_frames, read_raw_frame

    out = {}
    for seq in raw_frames(raw_dir):
        frame, info = read_raw_frame(raw_dir, seq)
        out[int(info["index"])] = frame.colour
    return out


def load_neural(rec: Path) -> tuple[dict[int, np.ndarray], list[dict]]:
    timings = [json.loads(ln) for ln in (rec / "timings.jsonl").read_text().splitlines() if ln.strip()]
    imgs = {}
    for t in timings:
        dt = np.float32 if t["format"] == "rgbaf" else np.float16
        a = np.fromfile(rec / f"neural_{t['frame']:05d}.rgba", dtype=dt).reshape(t["h"], t["w"], 4)
        imgs[int(t["frame"])] = a[..., :3].astype(np.float32).transpose(2, 0, 1)
    return imgs, timings


def compare(out: Path, scale: int, min_frame: int = 0) -> dict:
    low = {i: x for i, x in load_raw(out / "lowres" / "raw").items() if i >= min_frame}
    neural, timings = load_neural(out / "neural")
    nat = load_raw(out / "native" / "raw")
    some = next(iter(low.values()))
    ref_ss = next(iter(nat.values())).shape[1] // (some.shape[1] * scale)
    nat = {i: box_down(x, ref_ss) for i, x in nat.items()}
    common = sorted(set(low) & set(nat) & set(neural))
    if not common:
        raise DemoError(f"no frame index is in all of lowres {sorted(low)}, native {sorted(nat)}, "
                        f"neural {sorted(neural)}")
    rows = []
    for i in common:
        ref = srgb(nat[i])
        m_n, m_b = mse(srgb(neural[i]), ref), mse(srgb(bilinear_up(low[i], scale)), ref)
        rows.append({"frame": i, "psnr_neural": psnr_of_mean_mse([m_n]), "psnr_bilinear": psnr_of_mean_mse([m_b]),
                     "mse_neural": m_n, "mse_bilinear": m_b})
    med = lambda k: float(np.median([t[k] for t in timings]))  # noqa: E731
    stages = {k: round(med(k + "_ms"), 3) for k in ("capture", "transfer", "inference", "runtime", "present",
                                                     "frame")}
    report = {
        "frames": len(common), "model": timings[0]["model"], "provider": timings[0]["provider"],
        "reference": f"native render at {ref_ss}x{ref_ss} samples per output pixel (box filter)",
        "psnr_definition": "PSNR of the mean MSE over the frames",
        "psnr_neural_mean": psnr_of_mean_mse([r["mse_neural"] for r in rows]),
        "psnr_bilinear_mean": psnr_of_mean_mse([r["mse_bilinear"] for r in rows]),
        "per_frame": rows, "stage_ms_median": stages,
        "bridge_overhead_ms_median": round(float(np.median([t["capture_ms"] + t["transfer_ms"] + t["present_ms"]
                                                            for t in timings])), 3),
    }
    report["neural_minus_bilinear_db"] = report["psnr_neural_mean"] - report["psnr_bilinear_mean"]
    mid = common[len(common) // 2]
    side_by_side(out / "side_by_side.png", nat[mid], bilinear_up(low[mid], scale), neural[mid])
    report["picture"] = str(out / "side_by_side.png")
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, out / "report.json")
    return report


def side_by_side(path: Path, native: np.ndarray, bilinear: np.ndarray, neural: np.ndarray) -> None:
    """Top: native | bilinear | neural (display values). Below: 3x zooms of the native frame's most detailed regions."""
    from nss_train.eval.pictures import side_by_side as sbs

    sbs(path, [("native", srgb(native)), ("bilinear (addon)", srgb(bilinear)), ("neural", srgb(neural))])


def godot_baselines(godot, model: str, out: Path, methods: list[str], frames: int, low: tuple[int, int], scale: int,
                    warmup: int, time_scale: float, ref_ss: int, timeout: float, threads: int | None = None) -> dict:
    """The same demo frames through Godot's own upscalers and the addon's neural mode, measured by
    tools/compare_upscalers.py (what the player sees, against the same native reference). Adds its figures
    to OUT/report.json under "godot" and returns them."""
    from nss_train.eval import in_engine as CU

    rep = CU.compare(PROJECT, "res://demo.tscn", out / "godot_compare", low=low, scale=scale, frames=frames,
                     warmup=warmup, time_scale=time_scale, ref_ss=ref_ss, model=model,
                     methods=["native", *methods, "neural"], timeout=timeout, godot=godot, threads=threads)
    res = {"report": str(out / "godot_compare" / "report.json"), "frames_aligned": rep["frames_aligned"],
           "psnr_db": {m: v["psnr"] for m, v in rep["methods"].items()},
           "flip": {m: v["flip"] for m, v in rep["methods"].items()},
           "ssim": {m: v["ssim"] for m, v in rep["methods"].items()},
           "neural_minus_db": {m: d["psnr_db"] for m, d in rep.get("neural_minus", {}).items()}}
    path = out / "report.json"
    report = json.loads(path.read_text())
    report["godot"] = res
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(tmp, path)
    return res


def main(argv=None) -> int:
    a = _parser().parse_args(argv)
    checked = _check_args(a)
    if checked is None:
        return 2
    low, baselines = checked
    from nss_runtime.session import Session, SessionError
    from nss_godot.toolchain import GodotError, ensure

    try:
        scale = Session(a.model).info.scale
    except SessionError as e:
        print(f"run_demo: {e}", file=sys.stderr)
        return 2
    try:
        godot = ensure(verbose=True)
        print(f"run_demo: {godot.describe()}; importing {PROJECT}")
        r = godot.import_project(PROJECT, timeout=600)
        if r.timed_out or r.errors():
            raise DemoError(f"editor import of {PROJECT} failed: {r.errors() or 'timeout'}")
        print(f"run_demo: neural run ({a.frames} frames, {low[0]}x{low[1]} -> {low[0] * scale}x{low[1] * scale}) "
              "and native reference run ...")
        ort = None
        if a.runtime == "gpu":
            a.out = str(Path(a.out).resolve())
            res = run_demo_gpu(godot, a.model, Path(a.out), a.frames, low, scale, a.warmup, a.time_scale, a.timeout,
                               a.ref_ss)
            print(res["runtime_line"])
            rep = compare(Path(a.out), scale, min_frame=a.warmup)
            ort = compare_gpu_with_ort(Path(a.out), a.model, a.warmup)
        else:
            run_demo(godot, a.model, Path(a.out), a.frames, low, scale, a.warmup, a.time_scale, a.threads, a.timeout,
                     ref_ss=a.ref_ss)
            rep = compare(Path(a.out), scale)
        gb = None
        if baselines and a.runtime == "gpu":
            print("run_demo: --runtime gpu: Godot baselines skipped (tools/compare_upscalers.py drives the Python "
                  "runtime; run without --runtime gpu for them)")
        elif baselines:
            print(f"run_demo: the same frames through Godot's own {', '.join(baselines)} (tools/compare_upscalers.py) ...")
            gb = godot_baselines(godot, a.model, Path(a.out), baselines, a.frames, low, scale, a.warmup, a.time_scale,
                                 a.ref_ss, a.timeout, a.threads)
    except (DemoError, GodotError) as e:
        print(f"run_demo: {e}", file=sys.stderr)
        return 1
    _print_figures(rep, gb, baselines, ort, a.out)
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL), help="exported NSS model (default %(default)s)")
    ap.add_argument("--frames", type=int, default=8, help="frames to upscale and compare")
    ap.add_argument("--low", default="320x180", help="low-res size WxH (output = low x scale)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--time-scale", type=float, default=4.0, help="scene time speed (motion per frame)")
    ap.add_argument("--ref-ss", type=int, default=2, choices=(1, 2, 3, 4),
                    help="the native reference is rendered at this many times the output size, then box-filtered")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads")
    ap.add_argument("--out", default=str(ROOT / "out" / "demo"))
    ap.add_argument("--timeout", type=float, default=600, help="seconds per Godot run")
    ap.add_argument("--runtime", default="python", choices=("python", "gpu"),
                    help="python: the ONNX Runtime process (bridge); gpu: the GPU runtime inside Godot (compute "
                         "shaders, no process), compared with ONNX Runtime on the same frames")
    ap.add_argument("--godot-baselines", default="bilinear,fsr2",
                    help="Godot's own upscalers to measure neural against on the same frames with "
                         "tools/compare_upscalers.py (comma list of bilinear,fsr1,fsr2,taa; 'none' to skip)")
    return ap


def _check_args(a) -> tuple[tuple[int, int], list[str]] | None:
    """(low-res size, Godot baselines) from the options; None after printing a one-line error."""
    try:
        low = tuple(int(v) for v in a.low.lower().split("x"))
        if len(low) != 2 or min(low) < 8:
            raise ValueError
    except ValueError:
        print(f"run_demo: --low {a.low}: expected WxH, e.g. 320x180", file=sys.stderr)
        return None
    baselines = [] if a.godot_baselines.strip() == "none" else [m.strip() for m in a.godot_baselines.split(",")
                                                                   if m.strip()]
    bad = [m for m in baselines if m not in ("bilinear", "fsr1", "fsr2", "taa")]
    if bad:
        print(f"run_demo: --godot-baselines {a.godot_baselines}: unknown {bad}; expected bilinear,fsr1,fsr2,taa or none",
              file=sys.stderr)
        return None
    if not Path(a.model).is_file():
        print(f"run_demo: model {a.model} not found (train one and export it with tools/export_onnx.py)",
              file=sys.stderr)
        return None
    return low, baselines


def _print_figures(rep: dict, gb: dict | None, baselines: list[str], ort: dict | None, out: str) -> None:
    s = rep["stage_ms_median"]
    print(f"model {rep['model']} on {rep['provider']}, {rep['frames']} frames")
    print(f"reference: {rep['reference']}")
    print(f"PSNR vs native: neural {rep['psnr_neural_mean']:.2f} dB, the addon's bilinear {rep['psnr_bilinear_mean']:.2f} dB "
          f"({rep['neural_minus_bilinear_db']:+.2f} dB) (linear captures, PSNR of the mean MSE)")
    if gb:
        p = gb["psnr_db"]
        print("against Godot's own upscalers, what the player sees (PSNR of the mean MSE / FLIP): "
              + ", ".join(f"{m} {p[m]:.2f} dB / {gb['flip'][m]:.3f}" for m in ["neural", *baselines])
              + "; neural " + ", ".join(f"{d:+.2f} dB vs Godot's {m}" for m, d in gb["neural_minus_db"].items())
              + ("" if gb["frames_aligned"] else "  (FRAMES NOT ALIGNED: see the report)"))
    print(f"ms per frame (median): capture {s['capture']:.2f}, transfer {s['transfer']:.2f}, inference "
          f"{s['inference']:.2f}, present {s['present']:.2f}; lock-step frame (waits for the model) {s['frame']:.1f}")
    if ort:
        print(f"GPU runtime vs ONNX Runtime on the same {ort['frames']} frames: PSNR {ort['psnr_gpu_mean']:.3f} vs "
              f"{ort['psnr_ort_mean']:.3f} dB ({ort['gpu_minus_ort_db']:+.4f} dB), max display difference "
              f"{ort['max_display_diff'] * 255:.3f}/255")
    print(f"wrote {rep['picture']} and {Path(out) / 'report.json'}")


if __name__ == "__main__":
    sys.exit(main())
