"""End to end: the demo (godot_project/) under Xvfb + lavapipe, the addon's capture, the bridge and the
real runtime server with a real ONNX model. Real rendering is slow here: few frames, 160x90..320x180.

- with the shipped default model (addons/neural_ss/models/default_x2.onnx): neural beats bilinear in PSNR against a native render
  of the same frames (tools/run_demo.py does the runs and the comparison);
- with the small recurrent test model: the whole pipeline is exact (what the game shows equals the
  Session run on the frames the game captured), and the demo survives the runtime being killed.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import run_demo as R  # noqa: E402
from nss_runtime.session import Session  # noqa: E402
from test_server import RunningServer, make_blend_model  # noqa: E402

pytestmark = [pytest.mark.godot, pytest.mark.slow]
SHIPPED = ROOT / "addons" / "neural_ss" / "models" / "default_x2.onnx"  # the addon's default (neural_ss/model_path)


@pytest.fixture(scope="module")
def godot(godot):
    g = godot  # the session's Godot (tests/conftest.py), with the demo project imported once here
    r = g.import_project(R.PROJECT, timeout=600)
    assert not r.timed_out and not r.errors(), r.errors()
    return g


def test_shipped_model_beats_bilinear(godot, tmp_path):
    if not SHIPPED.exists():
        pytest.skip("addons/neural_ss/models/default_x2.onnx (the shipped default model) is not in the tree yet")
    out = tmp_path / "demo"
    R.run_demo(godot, str(SHIPPED), out, frames=6, low=(320, 180), scale=2, warmup=3, threads=2)
    rep = R.compare(out, 2)
    print(f"\nshipped model {rep['model']}: PSNR vs native over {rep['frames']} frames: neural "
          f"{rep['psnr_neural_mean']:.2f} dB, bilinear {rep['psnr_bilinear_mean']:.2f} dB; stages "
          f"{rep['stage_ms_median']}")
    assert rep["frames"] >= 5
    assert rep["psnr_neural_mean"] > rep["psnr_bilinear_mean"], rep
    assert Path(rep["picture"]).stat().st_size > 10_000


def test_demo_starts_its_runtime_with_the_default_model(godot, tmp_path):
    """What F5 does: the demo in NEURAL mode starts the runtime itself (OS.create_process) with the model of
    its Project Settings (the addon's default, res://addons/neural_ss/models/default_x2.onnx) and shows neural frames. Only the Python is given:
    this machine's python3 has no onnxruntime."""
    if not SHIPPED.exists():
        pytest.skip("addons/neural_ss/models/default_x2.onnx (the shipped default model) is not in the tree yet")
    base = sys.base_prefix
    if godot.kind == "chroot" and base.startswith("/usr"):
        pytest.skip("the chroot cannot run the host's system Python (only a Python outside /usr can be bound)")
    rec = tmp_path / "rec"
    args = ["--audio-driver", "Dummy", "--", "--low", "160x90", "--scale", "2", "--mode", "neural",
            "--quit-after-frames", "400", "--nss-runtime", "python", "--nss-runtime-command", sys.executable,
            "--nss-record", str(rec),
            "--nss-budget-ms", "100000", "--nss-stop-file", str(tmp_path / "stop")]
    result = {}
    t = threading.Thread(target=lambda: result.update(r=godot.run(
        ["--path", str(R.PROJECT), *args], 400, display=True,
        paths=[str(R.PROJECT), base] if godot.kind == "chroot" else None)))
    t.start()
    try:
        wait_for(lambda: shown(rec).count("neural") >= 3, 300, "neural frames from the runtime the demo started")
    finally:
        (tmp_path / "stop").touch()
        t.join(400)
    r = result["r"]
    assert not r.timed_out and not r.errors(), r.errors()
    live = [ln for ln in r.output.splitlines() if "neural_ss: NEURAL via runtime" in ln]
    assert len(live) == 1 and "(pid " in live[0], r.output[-2000:]
    started = [ln for ln in r.output.splitlines() if "neural_ss: started runtime" in ln]
    assert len(started) == 1 and "/addons/neural_ss/models/default_x2.onnx" in started[0]


def test_demo_pipeline_is_exact(godot, tmp_path):
    """Every captured frame is upscaled (lock-step) and the game receives exactly what the Session
    computes from the frames the game captured: capture -> bridge -> runtime -> presentation."""
    model = make_blend_model(tmp_path / "blend_x2.onnx")
    out = tmp_path / "demo"
    res = R.run_demo(godot, str(model), out, frames=5, low=(160, 90), scale=2, warmup=2, native=False)
    assert "NEURAL via runtime at 127.0.0.1:" in res["neural_output"]
    assert "model test_blend_x2" in res["neural_output"]
    raw = out / "lowres" / "raw"
    from nss_train.raw_capture import raw_frames, read_raw_frame

    frames = {}
    for seq in raw_frames(raw):
        f, info = read_raw_frame(raw, seq)
        frames[int(info["index"])] = (f, info)
    neural, timings = R.load_neural(out / "neural")
    assert set(frames) <= set(neural), (sorted(frames), sorted(neural))
    sess = Session(str(model))
    checked = 0
    for i in sorted(frames):
        if i - 1 not in frames:
            continue  # its predecessor (the history) was not written to disk
        prev, cur = frames[i - 1][0], frames[i][0]
        pack = lambda f: (np.concatenate([f.colour, f.depth]).transpose(1, 2, 0), f.motion.transpose(1, 2, 0))
        sess.upscale_packed(*pack(prev), cut=True)
        want = sess.upscale_packed(*pack(cur), cut=bool(frames[i][1].get("cut")))
        got = neural[i].transpose(1, 2, 0)
        # half-float transport: relative error <= 2^-10
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-4)
        checked += 1
    assert checked >= 3
    s = {k: statistics.median(t[k] for t in timings) for k in ("capture_ms", "transfer_ms", "present_ms")}
    print(f"\npipeline exact on {checked} frames; median ms {s}")


def test_demo_survives_runtime_kill(godot, tmp_path):
    """Kill -9 the runtime while the demo runs (neural mode, asynchronous): the game keeps rendering with
    the bilinear fallback, warns once, reconnects when the runtime is back on its port, and presents
    every frame of the sequence."""
    model = make_blend_model(tmp_path / "blend_x2.onnx")
    out = tmp_path / "demo"
    rec = out / "neural"
    srv = RunningServer(str(model), tmp_path)
    port, token = srv.port, srv.token
    n_frames = 3000  # an upper bound: the test stops the game once it has seen the reconnection
    args = ["--audio-driver", "Dummy", "--", "--low", "160x90", "--scale", "2", "--mode", "neural",
            "--quit-after-frames", str(n_frames), "--nss-runtime", "python", "--nss-runtime-port", str(port),
            "--nss-runtime-token", token,
            "--nss-record", str(rec), "--nss-stop-file", str(tmp_path / "stop")]
    result = {}
    t = threading.Thread(target=lambda: result.update(r=godot.render(R.PROJECT, args, timeout=400)))
    t.start()
    srv2 = None
    try:
        wait_for(lambda: shown(rec).count("neural") >= 8, 200, "first neural frames")
        srv.proc.kill()
        srv.proc.wait()
        n_kill = len(shown(rec))
        wait_for(lambda: len(shown(rec)) >= n_kill + 15, 120, "the game to go on without the runtime")
        srv2 = RunningServer(str(model), tmp_path, "--port", str(port))
        n_back = len(shown(rec))
        wait_for(lambda: shown(rec)[n_back:].count("neural") >= 8, 120, "neural frames after the restart")
    finally:
        (tmp_path / "stop").touch()
        t.join(420)
        srv.stop()
        if srv2:
            srv2.stop()
    r = result["r"]
    assert not r.timed_out and not r.errors(), r.errors()
    lines = [ln.split() for ln in (rec / "presented.log").read_text().splitlines()]
    idx = [int(x[0]) for x in lines]
    assert idx == list(range(idx[0], idx[0] + len(idx))), "a frame is missing from the sequence"
    seq = [x[1] for x in lines]
    assert "bilinear" in seq[n_kill + 5:n_back], "no fallback while the runtime was gone"
    assert r.output.count("runtime unavailable") == 1, r.output[-2000:]
    assert "runtime reconnected" in r.output
    print(f"\n{len(idx)} frames presented: {seq.count('neural')} neural, {seq.count('bilinear')} bilinear; "
          f"killed at {n_kill}, back at {n_back}")


# --- used by benchmarks/bench_bridge.py --godot -------------------------------------------------

def measure_godot_fps(tmp: Path, model: str, frames: int = 60, low=(320, 180), threads: int = 2,
                      in_flight: int = 1) -> dict:
    """Upscaled frames/s of `model` inside the running demo (asynchronous, as a player sees it)."""
    from nss_train.godot import find_godot

    g = find_godot()
    rt = R.Runtime(model, tmp, threads)
    rec = tmp / f"fps{in_flight}"
    try:
        R.run_godot(g, ["--low", f"{low[0]}x{low[1]}", "--scale", "2", "--mode", "neural", "--quit-after-frames",
                        str(frames), "--nss-runtime-port", str(rt.port), "--nss-runtime-token", rt.token,
                        "--nss-budget-ms", "100000", "--nss-in-flight", str(in_flight), "--nss-record", str(rec)],
                       600, "fps run")
    finally:
        rt.stop()
    rows = [json.loads(ln) for ln in (rec / "timings.jsonl").read_text().splitlines()][2:]
    span = (rows[-1]["t_ms"] - rows[0]["t_ms"]) / 1000.0
    return {"upscaled": len(rows) - 1, "seconds": round(span, 2),
            "upscaled_fps": round((len(rows) - 1) / span, 3) if span > 0 else 0.0,
            "game_frame_ms_median": float(statistics.median(r["frame_ms"] for r in rows)),
            "inference_ms_median": float(statistics.median(r["inference_ms"] for r in rows))}


def measure_godot_overhead(tmp: Path, frames: int = 30, low=(320, 180)) -> dict:
    """The bridge's own cost inside the real addon, with the model replaced by identity.

    Asynchronous run (as a player runs it): per frame, what the bridge costs the game thread: the capture
    readout plus the client's work (sending, receiving, decoding, the texture upload), against the frame
    time. Lock-step run: the round-trip latency (transfer both ways + the runtime's packing), which the
    one-frame pipelining hides from the game."""
    from nss_train.godot import find_godot

    g = find_godot()
    r = g.import_project(R.PROJECT, timeout=600)
    assert not r.errors(), r.errors()
    out = tmp / "godot_overhead"
    R.run_demo(g, "identity", out, frames=frames, low=low, scale=2, warmup=5, native=False,
               extra_runtime=("--scale", "2"))
    _, lock = R.load_neural(out / "neural")
    lock = lock[3:]  # warm-up
    rt = R.Runtime("identity", tmp, extra=("--scale", "2"))
    rec = tmp / "async"
    try:
        R.run_godot(g, ["--low", f"{low[0]}x{low[1]}", "--scale", "2", "--mode", "neural", "--fixed-fps", "30",
                        "--quit-after-frames", str(frames + 10), "--nss-runtime-port", str(rt.port),
                        "--nss-runtime-token", rt.token, "--nss-record", str(rec)], 400, "async run")
    finally:
        rt.stop()
    rows = [ln.split() for ln in (rec / "presented.log").read_text().splitlines()]
    rows = [r for r in rows[10:] if r[2] == "READY"]
    capture = [float(r[3]) for r in rows]
    client = [float(r[4]) for r in rows]  # includes the texture upload (present)
    present = [float(r[5]) for r in rows]
    frame = [float(r[6]) for r in rows]
    med = statistics.median
    res = {"low_res": list(low), "output": [2 * low[0], 2 * low[1]], "frames": len(rows),
           "neural_frames_shown": sum(r[1] == "neural" for r in rows),
           "capture_ms_median": med(capture), "client_ms_median": med(client), "present_ms_median": med(present),
           "overhead_ms_median": med([c + k for c, k in zip(capture, client)]),
           "overhead_ms_p90": float(np.percentile([c + k for c, k in zip(capture, client)], 90)),
           "frame_ms_median": med(frame), "renderer": "lavapipe (CPU Vulkan) under Xvfb",
           "lockstep_transfer_ms_median": float(med(x["transfer_ms"] for x in lock)),
           "lockstep_runtime_packing_ms_median": float(med(x["runtime_ms"] - x["inference_ms"] for x in lock))}
    res["overhead_share_of_frame"] = res["overhead_ms_median"] / res["frame_ms_median"]
    return res


def shown(rec: Path) -> list[str]:
    f = rec / "presented.log"
    return [ln.split()[1] for ln in f.read_text().splitlines() if len(ln.split()) > 1] if f.exists() else []


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
