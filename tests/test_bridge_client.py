"""The GDScript client (addons/neural_ss/bridge/runtime_client.gd) in a real headless Godot 4 against
the real runtime server on the host (the chroot shares the host's loopback).

A SceneTree script plays a 60 fps "game" that submits a synthetic low-res frame every frame and
logs, per frame, what it would present (the latest fresh upscaled frame or the bilinear fallback).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from nss_runtime.session import Session
from test_server import TOKEN, RunningServer, make_blend_model, make_foreign_model

ROOT = Path(__file__).resolve().parents[1]
ADDON = ROOT / "addons" / "neural_ss"
W, H = 32, 16

pytestmark = pytest.mark.godot

GAME = r'''
extends SceneTree
## Test game: a synthetic frame per frame into NeuralSSRuntimeClient; one log line per frame.

var client: NeuralSSRuntimeClient
var frame := 0
var max_frames := 60
var out_dir := ""
var size := Vector2i(32, 16)
var save := false
var log_file: FileAccess
var last_result := -1
var last_result_frame := -100
var results := 0


func _initialize() -> void:
	Engine.max_fps = 60
	var opts := {}
	for a: String in OS.get_cmdline_user_args():
		var kv := a.trim_prefix("--").split("=", true, 1)
		opts[kv[0]] = kv[1] if kv.size() > 1 else "1"
	out_dir = opts["out"]
	max_frames = int(opts.get("frames", "60"))
	save = opts.has("save")
	client = NeuralSSRuntimeClient.new()
	client.port = int(opts.get("port", "0"))
	client.token = opts.get("token", "")
	client.command = opts.get("command", "")
	client.model_path = opts.get("model", "")
	client.lockstep = opts.has("lockstep")
	client.max_in_flight = int(opts.get("inflight", "1"))
	client.budget_ms = float(opts.get("budget", "250"))
	client.f32_output = opts.has("f32")
	client.backoff_max_s = 1.0
	client.upscaled.connect(_on_upscaled)
	root.add_child(client)
	log_file = FileAccess.open(out_dir.path_join("frames.log"), FileAccess.WRITE)
	client.start()


func make_frame(i: int) -> NeuralSSFrame:
	var f := NeuralSSFrame.new()
	f.index = i
	f.size = size
	var n := size.x * size.y
	var rgbd := PackedFloat32Array()
	rgbd.resize(n * 4)
	var mo := PackedFloat32Array()
	mo.resize(n * 2)
	for y in size.y:
		for x in size.x:
			var p := y * size.x + x
			rgbd[p * 4] = fposmod(x * 0.05 + i * 0.01, 1.0)
			rgbd[p * 4 + 1] = float(y) / size.y
			rgbd[p * 4 + 2] = 0.25 + 0.5 * float((x + y + i) % 2)
			rgbd[p * 4 + 3] = 5.0 + x
			mo[p * 2] = -0.2
			mo[p * 2 + 1] = 0.0
	f.colour_depth = rgbd.to_byte_array()
	f.motion = mo.to_byte_array()
	f.camera_cut = i == 0
	return f


func _on_upscaled(img: Image, index: int) -> void:
	last_result = index
	last_result_frame = frame
	results += 1
	if save:
		var fa := FileAccess.open(out_dir.path_join("neural_%03d.bin" % index), FileAccess.WRITE)
		fa.store_buffer(img.get_data())
		fa.close()
		var meta := FileAccess.open(out_dir.path_join("neural_%03d.json" % index), FileAccess.WRITE)
		meta.store_string(JSON.stringify({"w": img.get_width(), "h": img.get_height(), "format": img.get_format()}))
		meta.close()


func _process(_delta: float) -> bool:
	var sent := client.submit(make_frame(frame))
	# what the game shows this frame: a result that arrived within the last 2 frames, else bilinear
	var shown := "neural:%d" % last_result if frame - last_result_frame <= 2 else "bilinear"
	log_file.store_line("%d %s %s %s" % [frame, NeuralSSRuntimeClient.State.keys()[client.state], sent, shown])
	log_file.flush()
	frame += 1
	if frame >= max_frames or FileAccess.file_exists(out_dir.path_join("stop")):
		log_file.store_line("END %s" % JSON.stringify(client.counters))
		log_file.close()
		client.shutdown()
		return true
	return false
'''


@pytest.fixture(scope="module")
def project(godot, tmp_path_factory) -> Path:
    """A minimal project holding only the bridge, the frame class and the settings table (the addon's other parts are not needed)."""
    p = tmp_path_factory.mktemp("bridge_project")
    (p / "project.godot").write_text('config_version=5\n\n[application]\nconfig/name="bridge test"\n')
    (p / "addons" / "neural_ss").mkdir(parents=True)
    (p / "addons" / "neural_ss" / "bridge").symlink_to(ADDON / "bridge")
    (p / "addons" / "neural_ss" / "runtime").symlink_to(ADDON / "runtime")
    (p / "addons" / "neural_ss" / "neural_ss_frame.gd").symlink_to(ADDON / "neural_ss_frame.gd")
    (p / "addons" / "neural_ss" / "neural_ss_settings.gd").symlink_to(ADDON / "neural_ss_settings.gd")
    (p / "game.gd").write_text(GAME)
    r = godot.import_project(p, timeout=300)
    assert not r.timed_out and not r.errors(), r.output[-3000:]
    return p


def run_game(godot, project: Path, out: Path, args: list[str], timeout: float = 120, paths: list[str] | None = None):
    out.mkdir(parents=True, exist_ok=True)
    if paths:
        r = godot.run(["--headless", "--path", str(project), "-s", "res://game.gd", "--", f"--out={out}", *args],
                      timeout, paths=[str(project), str(out), *paths])
    else:
        r = godot.run_script(project, "res://game.gd", [f"--out={out}", *args], timeout=timeout)
    assert not r.timed_out, r.output[-3000:]
    assert not r.errors(), "\n".join(r.errors())
    lines = (out / "frames.log").read_text().splitlines()
    assert lines[-1].startswith("END "), r.output[-3000:]
    frames = [ln.split() for ln in lines[:-1]]
    return r, frames, json.loads(lines[-1][4:])


def frame_arrays(i: int):
    """The same synthetic frame as make_frame() in the GDScript game."""
    y, x = np.mgrid[0:H, 0:W]
    rgbd = np.zeros((H, W, 4), np.float32)
    rgbd[..., 0] = np.mod(x * 0.05 + i * 0.01, 1.0)  # float64 like GDScript's fposmod, so the wrap lands alike
    rgbd[..., 1] = y / np.float32(H)
    rgbd[..., 2] = 0.25 + 0.5 * ((x + y + i) % 2)
    rgbd[..., 3] = 5.0 + x
    motion = np.zeros((H, W, 2), np.float32)
    motion[..., 0] = -0.2
    return rgbd, motion


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return make_blend_model(tmp_path_factory.mktemp("m") / "blend_x2.onnx")


def test_lockstep_results_match_the_session(godot, project, model, tmp_path):
    """Every frame upscaled (lockstep), byte-exact RGBA32F results equal to the Session's over the same sequence."""
    srv = RunningServer(str(model), tmp_path)
    try:
        r, frames, counters = run_game(godot, project, tmp_path / "out",
                                       [f"--port={srv.port}", f"--token={TOKEN}", "--frames=12", "--lockstep",
                                        "--f32", "--save"])
    finally:
        srv.stop()
    live = [ln for ln in r.output.splitlines() if "neural_ss: NEURAL via runtime" in ln]
    assert len(live) == 1 and f"at 127.0.0.1:{srv.port}: model test_blend_x2" in live[0], r.output[-2000:]
    ref = Session(str(model))
    n_checked = 0
    for i in range(12):
        f = tmp_path / "out" / f"neural_{i:03d}.bin"
        if not f.exists():
            assert int(frames[i][0]) == i and frames[i][1] != "READY"  # only frames before the handshake
            ref.reset()
            continue
        want = ref.upscale_packed(*frame_arrays(i), cut=(n_checked == 0))
        got = np.frombuffer(f.read_bytes(), np.float32).reshape(2 * H, 2 * W, 4)
        np.testing.assert_allclose(got[..., :3], want, atol=1e-5)
        n_checked += 1
    assert n_checked >= 8 and counters["results"] == n_checked and counters["errors"] == 0


def test_two_frames_in_flight_results_in_order_and_exact(godot, project, model, tmp_path):
    """max_in_flight = 2 (asynchronous): results come back in order, each equal to the Session run over the
    frames that were actually sent (history = the previous sent frame; more than 3 skipped -> reset)."""
    srv = RunningServer(str(model), tmp_path, "--delay-ms", "40")  # slower than the game's 16.7 ms frames
    try:
        r, frames, counters = run_game(godot, project, tmp_path / "out",
                                       [f"--port={srv.port}", f"--token={TOKEN}", "--frames=60", "--inflight=2",
                                        "--f32", "--save"])
    finally:
        srv.stop()
    sent = [int(f[0]) for f in frames if f[2] == "true"]
    got = sorted(int(p.stem[7:]) for p in (tmp_path / "out").glob("neural_*.bin"))
    assert len(sent) >= 10 and got and set(got) <= set(sent)
    ref = Session(str(model))
    prev = None
    for i in sent:
        gap = 0 if prev is None else i - prev - 1  # frames the game did not send (server: gap_policy "scale")
        cut = prev is None or gap > 3
        rgbd, motion = frame_arrays(i)
        if gap and not cut:
            motion = motion * np.float32(gap + 1)  # the server's constant-velocity guess over the gap
        want = ref.upscale_packed(rgbd, motion, cut=cut)
        prev = i
        f = tmp_path / "out" / f"neural_{i:03d}.bin"
        if f.exists():
            img = np.frombuffer(f.read_bytes(), np.float32).reshape(2 * H, 2 * W, 4)
            np.testing.assert_allclose(img[..., :3], want, atol=1e-5)
    assert counters["results"] == len(got) and counters["errors"] == 0 and counters["in_flight_max"] == 2


def test_runtime_slower_than_budget_shows_bilinear_once_warned(godot, project, model, tmp_path):
    """A runtime slower than the budget: its late results are not shown, one warning, the game keeps its pace."""
    srv = RunningServer(str(model), tmp_path, "--delay-ms", "300")
    try:
        r, frames, counters = run_game(godot, project, tmp_path / "out",
                                       [f"--port={srv.port}", f"--token={TOKEN}", "--frames=90", "--budget=150"])
    finally:
        srv.stop()
    assert len(frames) == 90 and all(f[3] == "bilinear" for f in frames)
    assert counters["late"] >= 2 and counters["results"] == counters["late"]
    assert r.output.count("slower than the budget") == 1


def test_runtime_killed_mid_run_game_keeps_going_and_reconnects(godot, project, model, tmp_path):
    """Kill -9 the runtime mid-run: the game keeps its frame rate on bilinear, warns once, reconnects
    when the runtime is back (same port), and every frame of the sequence is presented."""
    out = tmp_path / "out"
    port = free_port()
    srv = RunningServer(str(model), tmp_path, "--port", str(port))
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(
        zip(("r", "frames", "counters"), run_game(godot, project, out, [f"--port={port}", f"--token={TOKEN}",
                                                                     "--frames=3000"], timeout=180))))
    t.start()
    try:
        wait_for(lambda: count_neural(out) >= 20, 90, "first results")
        srv.proc.kill()  # crash, no goodbye
        srv.proc.wait()
        n_killed = len(log_lines(out))
        wait_for(lambda: len(log_lines(out)) >= n_killed + 60, 30, "the game to keep running")
        srv2 = RunningServer(str(model), tmp_path, "--port", str(port))
        try:
            n_back = len(log_lines(out))
            wait_for(lambda: count_neural(out, after=n_back) >= 20, 60, "results after the restart")
        finally:
            (out / "stop").touch()
            t.join(120)
            srv2.stop()
    finally:
        (out / "stop").touch()
        t.join(120)
        srv.stop()
    frames, counters, r = result["frames"], result["counters"], result["r"]
    idx = [int(f[0]) for f in frames]
    assert idx == list(range(len(idx)))  # the game rendered every frame, none missing
    shown = [f[3] for f in frames]
    assert all(s == "bilinear" or s.startswith("neural:") for s in shown)
    fallback = [i for i in range(n_killed, n_back) if shown[i] == "bilinear"]
    assert len(fallback) >= 40, "the outage must show the bilinear fallback"
    assert any(s.startswith("neural:") for s in shown[n_back:]), "neural frames after reconnecting"
    assert counters["outages"] == 1 and counters["connections"] == 2
    assert r.output.count("runtime unavailable") == 1  # warned once, not once per retry
    assert "runtime reconnected" in r.output
    # the game was never stalled by the outage: ~60 fps pacing continued while the runtime was gone
    print(f"\nframes {len(idx)}, neural {sum(s != 'bilinear' for s in shown)}, fallback during outage "
          f"{len(fallback)}, counters {counters}")


def test_runtime_missing_and_foreign_model(godot, project, tmp_path):
    """No runtime (its command does not exist): bilinear + one warning. A model that is not an NSS model:
    the runtime's own error message in the Godot output, bilinear."""
    r, frames, counters = run_game(godot, project, tmp_path / "a", ["--command=/nonexistent/python3",
                                                                  "--model=/tmp/x.onnx", "--frames=40"])
    assert all(f[3] == "bilinear" for f in frames) and len(frames) == 40
    lines = fallback_lines(r.output)
    assert len(lines) == 1 and "runtime unavailable" in lines[0]
    assert "'/nonexistent/python3' does not exist" in lines[0] and "pip install numpy onnxruntime" in lines[0]
    assert "started runtime" not in r.output  # no process was created

    bad = make_foreign_model(tmp_path / "resnet.onnx")
    srv = RunningServer(str(bad), tmp_path)
    try:
        r, frames, counters = run_game(godot, project, tmp_path / "b", [f"--port={srv.port}", f"--token={TOKEN}",
                                                                      "--frames=40"])
    finally:
        srv.stop()
    assert all(f[3] == "bilinear" for f in frames)
    err = [ln for ln in r.output.splitlines() if "runtime refused" in ln]
    assert len(err) == 1 and "not an NSS model" in err[0] and "resnet.onnx" in err[0], r.output[-2000:]


def host_python(godot) -> tuple[str, list[str]]:
    """This Python and the host paths a chroot Godot needs to run it (skip where it cannot)."""
    import sys

    base = sys.base_prefix
    if godot.kind == "chroot" and base.startswith("/usr"):
        pytest.skip("the chroot cannot run the host's system Python (only a Python outside /usr can be bound)")
    return sys.executable, [base] if godot.kind == "chroot" else []


def test_runtime_that_cannot_start_says_what_is_missing(godot, project, model, tmp_path):
    """A runtime that cannot start gets ONE line saying what is missing and how to fix it; retries back off
    without a line each; "started runtime" only for a process that really started.
    - no Python on PATH; - a Python without numpy/onnxruntime (`python -S`: no site-packages);
    - a model file that is not there."""
    r, frames, counters = run_game(godot, project, tmp_path / "a", ["--command=nss-no-such-python3",
                                                                  f"--model={model}", "--frames=150"])
    lines = fallback_lines(r.output)
    assert len(lines) == 1, r.output[-2000:]
    assert "'nss-no-such-python3' is not on PATH" in lines[0] and "pip install numpy onnxruntime" in lines[0]
    assert counters["attempts"] >= 3 and "started runtime" not in r.output, counters
    assert all(f[3] == "bilinear" for f in frames)

    py, paths = host_python(godot)
    r, frames, counters = run_game(godot, project, tmp_path / "b", [f"--command={py} -S", f"--model={model}",
                                                                  "--frames=400"], paths=paths)
    lines = fallback_lines(r.output)
    assert len(lines) == 1, r.output[-2000:]
    assert "cannot import numpy (ModuleNotFoundError" in lines[0] and "onnxruntime (ModuleNotFoundError" in lines[0]
    assert f"{py} -m pip install numpy onnxruntime" in lines[0] and "neural_ss/python/command" in lines[0]
    assert counters["attempts"] >= 2 and "started runtime" not in r.output, counters

    r, frames, counters = run_game(godot, project, tmp_path / "c", [f"--command={py}", "--model=/nonexistent/m.onnx",
                                                                  "--frames=60"], paths=paths)
    lines = fallback_lines(r.output)
    assert len(lines) == 1 and "model file not found: '/nonexistent/m.onnx'" in lines[0], r.output[-2000:]
    assert "started runtime" not in r.output


def test_launched_runtime_with_a_broken_model_says_so_once(godot, project, tmp_path):
    """A model file that ONNX Runtime cannot load: the runtime really starts (one "started runtime"), refuses
    the game with its own words (one line), and is not relaunched or re-reported on every retry."""
    py, paths = host_python(godot)
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not an onnx file" * 64)
    out = tmp_path / "out"
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(zip(("r", "frames", "counters"), run_game(
        godot, project, out, [f"--command={py}", f"--model={bad}", "--frames=3000"], timeout=180, paths=paths))))
    t.start()
    try:
        # refused in the handshake, then retried: wait for a few retries after the first refusal
        wait_for(lambda: sum(1 for ln in log_lines(out) if " HANDSHAKE " in ln) > 0
                 and len(log_lines(out)) > 240, 150, "the runtime to start and refuse")
    finally:
        (out / "stop").touch()
        t.join(180)
    r, counters = result["r"], result["counters"]
    lines = fallback_lines(r.output)
    assert len(lines) == 1 and "runtime refused: MODEL" in lines[0] and "broken.onnx" in lines[0], r.output[-2000:]
    assert r.output.count("neural_ss: started runtime") == 1
    assert counters["attempts"] >= 2 and counters["connections"] == 0, counters


# --- helpers -------------------------------------------------------------------------------

def fallback_lines(output: str) -> list[str]:
    return [ln for ln in output.splitlines() if "neural_ss: BILINEAR fallback" in ln]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_lines(out: Path) -> list[str]:
    f = out / "frames.log"
    return [ln for ln in f.read_text().splitlines() if ln and not ln.startswith("END")] if f.exists() else []


def count_neural(out: Path, after: int = 0) -> int:
    return sum(1 for ln in log_lines(out)[after:] if "neural:" in ln)


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_game_launches_relaunches_and_ends_its_runtime(godot, project, model, tmp_path):
    """Default mode (no port): the game starts `<python> -m nss_runtime.server` itself with a fresh token,
    finds its port, upscales; a crash of that runtime is followed by a relaunch; quitting the game ends it."""
    import subprocess
    import sys

    import psutil

    base = sys.base_prefix
    if godot.kind == "chroot" and base.startswith("/usr"):
        pytest.skip("the chroot cannot run the host's system Python (only a Python outside /usr can be bound)")
    out = tmp_path / "out"
    out.mkdir()
    args = ["--headless", "--path", str(project), "-s", "res://game.gd", "--", f"--out={out}", "--frames=3000",
            f"--command={sys.executable}", f"--model={model}"]
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(
        r=godot.run(args, timeout=240, paths=[base] if godot.kind == "chroot" else None)))
    t.start()

    def runtimes() -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info["cmdline"] or []
            if "nss_runtime.server" in cmd and str(model) in cmd:
                found.append(p)
        return found

    try:
        wait_for(lambda: count_neural(out) >= 10, 120, "results from the runtime the game started")
        first = runtimes()
        assert len(first) == 1
        first[0].kill()
        n_kill = len(log_lines(out))
        wait_for(lambda: count_neural(out, after=n_kill) >= 10, 120, "results from the relaunched runtime")
        second = runtimes()
        assert len(second) == 1 and second[0].pid != first[0].pid
    finally:
        (out / "stop").touch()
        t.join(240)
    r = result["r"]
    assert not r.timed_out and not r.errors(), r.output[-2000:]
    assert r.output.count("neural_ss: started runtime") == 2
    started = [ln for ln in r.output.splitlines() if "neural_ss: started runtime" in ln]
    assert "--ready-file" in started[0] and "--token" not in started[0]  # the token is not on the command line
    time.sleep(1.0)
    assert not [p for p in runtimes() if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], \
        "the runtime outlived the game"
    counters = json.loads((out / "frames.log").read_text().splitlines()[-1][4:])
    assert counters["connections"] == 2 and counters["outages"] == 1
