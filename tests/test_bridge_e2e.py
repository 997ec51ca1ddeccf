"""End to end: the demo (godot_project/) under Xvfb + lavapipe, the addon's capture, the bridge and the
real runtime server with a real ONNX model. Real rendering is slow here: few frames, 160x90..320x180.

- with the shipped default model (addons/neural_ss/models/default_x2.onnx): neural beats bilinear in PSNR against a native render
  of the same frames (tools/run_demo.py does the runs and the comparison);
- with the small recurrent test model: the whole pipeline is exact (what the game shows equals the
  Session run on the frames the game captured), and the demo survives the runtime being killed.
"""
from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nss_runtime.session import Session
from nss_train.eval import demo as R
from test_server import RunningServer, make_blend_model

ROOT = Path(__file__).resolve().parents[1]

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
    from nss_train.sources.godot_raw import raw_frames, read_raw_frame

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


def shown(rec: Path) -> list[str]:
    f = rec / "presented.log"
    return [ln.split()[1] for ln in f.read_text().splitlines() if len(ln.split()) > 1] if f.exists() else []


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
