"""Capture cost per frame: the demo at 640x360 low-res (x2 -> 1280x720) under the project's Godot.

One Godot run alternates blocks of frames with the capture on and off (same scene, same
moment of the camera path: scene time is frame-locked), so the machine's noise hits both
alike. Reports the capture cost as the difference of mean frame times and as a share of the
frame time with capture, plus the CPU time of the capture callback, and saves the JSON to
benchmarks/results/capture.json.

    python benchmarks/bench_capture.py [--low 640x360] [--frames 120] [--block 4]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from nss_runtime.frames import atomic_write_bytes
from nss_godot.toolchain import GodotError, find_godot


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--low", default="640x360", help="low-res size WxH (default 640x360)")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--frames", type=int, default=120, help="measured frames (both settings together)")
    ap.add_argument("--block", type=int, default=4, help="frames per on/off block")
    ap.add_argument("--timeout", type=float, default=580.0)
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/capture.json"))
    a = ap.parse_args()
    try:
        g = find_godot()
    except GodotError as e:
        print(f"bench_capture: {e}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="nss_bench_capture_") as tmp:
        raw = Path(tmp) / "bench.json"
        r = g.import_project(REPO / "godot_project", timeout=300)
        if r.returncode != 0 or r.errors():
            print("bench_capture: import of godot_project failed:\n" + r.output[-2000:], file=sys.stderr)
            return 1
        t0 = time.time()
        r = g.render(REPO / "godot_project", ["--", "--bench", str(raw), "--low", a.low, "--scale", str(a.scale),
                                              "--frames", str(a.frames), "--block", str(a.block)],
                     timeout=a.timeout)
        if r.returncode != 0 or not raw.exists():
            print(f"bench_capture: demo run failed (exit {r.returncode}):\n" + r.output[-2000:], file=sys.stderr)
            return 1
        d = json.loads(raw.read_text())
    on, off = d["frame_ms_capture_on"], d["frame_ms_capture_off"]
    m_on, m_off = statistics.median(on), statistics.median(off)
    cost = m_on - m_off
    res = {
        "what": "capture cost per frame (NeuralSSCaptureEffect: compute copy + async readback + delivery)",
        "godot": g.describe(), "renderer": d["renderer"], "low_res": d["low_res"], "scale": d["scale"],
        "frames_on": len(on), "frames_off": len(off), "block": d["block"],
        "frame_ms_on_median": m_on, "frame_ms_off_median": m_off,
        "frame_ms_on_mean": statistics.fmean(on), "frame_ms_off_mean": statistics.fmean(off),
        "capture_ms": cost, "capture_share_of_frame": cost / m_on,
        "frame_time_ratio_on_off": m_on / m_off,
        "callback_cpu_ms_median": statistics.median(d["callback_cpu_ms"]) if d["callback_cpu_ms"] else None,
        "frames_delivered": d["frames_delivered"], "wall_s": round(time.time() - t0, 1),
        "note": "medians of per-frame times within one run; shared 2-core machine, lavapipe (CPU Vulkan)",
    }
    atomic_write_bytes(a.out, (json.dumps(res, indent=1) + "\n").encode())
    print(f"bench_capture: {d['renderer']}, low-res {d['low_res'][0]}x{d['low_res'][1]} x{d['scale']}")
    print(f"  frame time, capture on : {m_on:8.2f} ms (median of {len(on)})")
    print(f"  frame time, capture off: {m_off:8.2f} ms (median of {len(off)})")
    print(f"  capture cost           : {cost:8.2f} ms per frame = {cost / m_on:.1%} of the frame "
          f"(on/off ratio {m_on / m_off:.3f})")
    if res["callback_cpu_ms_median"] is not None:
        print(f"  capture callback (CPU) : {res['callback_cpu_ms_median']:8.3f} ms")
    print(f"  -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
