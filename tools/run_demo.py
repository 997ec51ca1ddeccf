"""Run the Godot demo end to end with the neural upscaler and show what it does.

    python tools/run_demo.py [--model models/fast_x2_godot.onnx] [--frames 8] [--low 320x180] [--out out/demo]

1. gets a Godot 4 (tools/godot_env.py: $GODOT / PATH, else the cached Debian-sid chroot),
2. starts the runtime (`python -m nss_runtime.server`) with the shipped model on 127.0.0.1,
3. runs godot_project/ in NEURAL mode (real rendering; under Xvfb when there is no display) for a
   fixed number of frames with deterministic scene time, recording every upscaled frame and the
   low-res frames it came from (lock-step: every frame is upscaled),
4. runs the same frames again rendered natively (the reference): at the output size times --ref-ss
   (default 2) and box-filtered down to the output size, i.e. a 4-samples-per-pixel native render; the
   network is trained towards supersampled targets, and a 1-sample raster is itself aliased (--ref-ss 1),
5. writes OUT/side_by_side.png (native | bilinear | neural, and a 3x zoom of a detail), OUT/report.json
   (PSNR of neural and bilinear against native per frame, per-stage timings) and prints the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "addons" / "neural_ss" / "runtime"))
PROJECT = ROOT / "godot_project"
DEFAULT_MODEL = ROOT / "models" / "fast_x2_godot.onnx"


class DemoError(RuntimeError):
    """One-line reason the demo could not run."""


# --- the runtime on the host ----------------------------------------------------------------

class Runtime:
    """The runtime server as a subprocess; stopped by stop() (also on errors)."""

    def __init__(self, model: str, out: Path, threads: int | None = None, extra: tuple[str, ...] = ()):
        self.token = secrets.token_hex(16)
        self.ready = out / "runtime.ready.json"
        self.log_path = out / "runtime.log"
        self.ready.unlink(missing_ok=True)
        env = dict(os.environ, NSS_RUNTIME_TOKEN=self.token,
                   PYTHONPATH=str(ROOT / "addons" / "neural_ss" / "runtime") + os.pathsep
                   + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "nss_runtime.server", "--model", model, "--ready-file", str(self.ready),
               "--parent-pid", str(os.getpid()), *extra]
        if threads:
            cmd += ["--threads", str(threads)]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() - t0 > 120:
                self.stop()
                raise DemoError(f"the runtime did not start: {self.log_path.read_text()[-500:]}")
            time.sleep(0.05)
        info = json.loads(self.ready.read_text())
        if info.get("model_error"):
            self.stop()
            raise DemoError(info["model_error"])
        self.port = int(info["port"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


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
        neural = run_godot(godot, demo_args(low, scale, frames, warmup, out / "lowres", "neural", time_scale) + [
            "--nss-runtime-port", str(rt.port), "--nss-runtime-token", rt.token, "--nss-lockstep",
            "--nss-record", str(out / "neural")], timeout, "neural run")
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


# --- comparing ---------------------------------------------------------------------------------

def srgb(linear: np.ndarray) -> np.ndarray:
    """What the demo shows: Linear tonemap (clamp) then sRGB encoding, as present_linear.gdshader."""
    c = np.clip(linear, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


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


def box_down(x: np.ndarray, k: int) -> np.ndarray:
    """(3, k*h, k*w) -> (3, h, w), mean of each k x k block (in linear light)."""
    if k == 1:
        return x
    c, h, w = x.shape
    return x.reshape(c, h // k, k, w // k, k).mean(axis=(2, 4))


def load_raw(raw_dir: Path) -> dict[int, np.ndarray]:
    """Captured frames (demo --capture) by frame index -> linear colour (3, h, w)."""
    from nss_train.raw_capture import raw_frames, read_raw_frame

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


def compare(out: Path, scale: int) -> dict:
    low = load_raw(out / "lowres" / "raw")
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
        rows.append({"frame": i, "psnr_neural": psnr(srgb(neural[i]), ref),
                     "psnr_bilinear": psnr(srgb(bilinear_up(low[i], scale)), ref)})
    med = lambda k: float(np.median([t[k] for t in timings]))  # noqa: E731
    stages = {k: round(med(k + "_ms"), 3) for k in ("capture", "transfer", "inference", "runtime", "present",
                                                     "frame")}
    report = {
        "frames": len(common), "model": timings[0]["model"], "provider": timings[0]["provider"],
        "reference": f"native render at {ref_ss}x{ref_ss} samples per output pixel (box filter)",
        "psnr_neural_mean": float(np.mean([r["psnr_neural"] for r in rows])),
        "psnr_bilinear_mean": float(np.mean([r["psnr_bilinear"] for r in rows])),
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
    """Top: native | bilinear | neural. Bottom: the same 3x zoom of the most detailed region."""
    from PIL import Image, ImageDraw

    panels = [(srgb(x).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8) for x in (native, bilinear, neural)]
    h, w, _ = panels[0].shape
    # zoom on the window with the most high-frequency energy in the native frame
    g = panels[0].astype(np.float32).mean(2)
    detail = np.abs(np.diff(g, axis=0))[:, :-1] + np.abs(np.diff(g, axis=1))[:-1]
    zh, zw = h // 3, w // 3
    best, by, bx = -1.0, 0, 0
    for y in range(0, h - zh, max(1, zh // 4)):
        for x in range(0, w - zw, max(1, zw // 4)):
            e = float(detail[y:y + zh, x:x + zw].sum())
            if e > best:
                best, by, bx = e, y, x
    top = np.concatenate(panels, axis=1)
    zooms = [np.asarray(Image.fromarray(p[by:by + zh, bx:bx + zw]).resize((w, h), Image.NEAREST)) for p in panels]
    img = Image.fromarray(np.concatenate([top, np.concatenate(zooms, axis=1)], axis=0))
    d = ImageDraw.Draw(img)
    for k, name in enumerate(("native", "bilinear", "neural")):
        d.text((k * w + 6, 4), name, fill=(255, 255, 0))
        d.text((k * w + 6, h + 4), f"{name} (3x zoom)", fill=(255, 255, 0))
    tmp = path.with_suffix(".tmp.png")
    img.save(tmp)
    os.replace(tmp, path)


def main(argv=None) -> int:
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
    a = ap.parse_args(argv)
    try:
        low = tuple(int(v) for v in a.low.lower().split("x"))
        if len(low) != 2 or min(low) < 8:
            raise ValueError
    except ValueError:
        print(f"run_demo: --low {a.low}: expected WxH, e.g. 320x180", file=sys.stderr)
        return 2
    if not Path(a.model).is_file():
        print(f"run_demo: model {a.model} not found (train one and export it with tools/export_onnx.py)",
              file=sys.stderr)
        return 2
    from nss_runtime.session import Session, SessionError
    from nss_train.godot import GodotError, ensure

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
        run_demo(godot, a.model, Path(a.out), a.frames, low, scale, a.warmup, a.time_scale, a.threads, a.timeout,
                 ref_ss=a.ref_ss)
        rep = compare(Path(a.out), scale)
    except (DemoError, GodotError) as e:
        print(f"run_demo: {e}", file=sys.stderr)
        return 1
    s = rep["stage_ms_median"]
    print(f"model {rep['model']} on {rep['provider']}, {rep['frames']} frames")
    print(f"reference: {rep['reference']}")
    print(f"PSNR vs native: neural {rep['psnr_neural_mean']:.2f} dB, bilinear {rep['psnr_bilinear_mean']:.2f} dB "
          f"({rep['neural_minus_bilinear_db']:+.2f} dB)")
    print(f"ms per frame (median): capture {s['capture']:.2f}, transfer {s['transfer']:.2f}, inference "
          f"{s['inference']:.2f}, present {s['present']:.2f}; lock-step frame (waits for the model) {s['frame']:.1f}")
    print(f"wrote {rep['picture']} and {Path(a.out) / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
