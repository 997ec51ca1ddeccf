"""Godot toolchain logic and the capture converter, without running Godot."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nss_godot import toolchain as godot_env
from nss_runtime.frames import FrameError, frame_path, read_frame, read_meta
from nss_train.sources.godot_raw import RAW_FORMAT, convert

REPO = Path(__file__).resolve().parents[1]


def test_parse_version():
    assert godot_env.parse_version("4.6.3.stable.debian\n") == (4, 6, 3)
    assert godot_env.parse_version("WARNING: x\n4.3.stable.official.77dcf97d8\n") == (4, 3, 0)
    assert godot_env.parse_version("3.5.2.stable.custom_build") == (3, 5, 2)
    assert godot_env.parse_version("command not found") is None


def test_bad_GODOT_env_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("GODOT", str(tmp_path / "nope"))
    with pytest.raises(godot_env.GodotError, match=r"\$GODOT=.*not an executable"):
        godot_env.host_godot()
    old = tmp_path / "godot3"
    old.write_text("#!/bin/sh\necho 3.5.2.stable.debian\n")
    old.chmod(0o755)
    monkeypatch.setenv("GODOT", str(old))
    with pytest.raises(godot_env.GodotError, match=r"reports version \(3, 5, 2\); expected Godot >= 4.3"):
        godot_env.host_godot()


def test_GODOT_env_with_a_good_version_is_used(monkeypatch, tmp_path):
    fake = tmp_path / "godot"
    fake.write_text("#!/bin/sh\necho 4.4.1.stable.official\n")
    fake.chmod(0o755)
    monkeypatch.setenv("GODOT", str(fake))
    g = godot_env.find_godot()
    assert (g.kind, g.version) == ("host", (4, 4, 1))
    # with a display: Godot directly, Vulkan, --audio-driver added once
    monkeypatch.setenv("DISPLAY", ":5")
    argv = g.argv(["--path", "/p"], display=True)
    assert argv[0] == str(fake) and argv.count("--audio-driver") == 1 and "vulkan" in argv
    # without one: through xvfb-run, or a clear error when there is none
    monkeypatch.delenv("DISPLAY")
    if shutil.which("xvfb-run"):
        assert g.argv(["--path", "/p"], display=True)[0] == "xvfb-run"
    else:
        with pytest.raises(godot_env.GodotError, match="needs a display"):
            g.argv(["--path", "/p"], display=True)


def test_no_godot_and_no_chroot_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.delenv("GODOT", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no godot on PATH
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no chroot stamp
    with pytest.raises(godot_env.GodotError, match="tools/godot_env.py ensure"):
        godot_env.find_godot()


def test_half_built_chroot_is_not_used(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    root = godot_env.chroot_dir()
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/godot").write_text("")
    assert godot_env.chroot_godot() is None  # no ready stamp
    (godot_env.cache_dir() / "ready.json").write_text(json.dumps({"recipe": godot_env.RECIPE - 1, "version": [4, 6, 3]}))
    assert godot_env.chroot_godot() is None  # stamp of an older recipe
    (godot_env.cache_dir() / "ready.json").write_text(json.dumps({"recipe": godot_env.RECIPE, "version": [4, 6, 3]}))
    assert godot_env.chroot_godot().version == (4, 6, 3)


def test_run_bounded_kills_on_timeout_and_fails_fast():
    r = godot_env._run_bounded(["sh", "-c", "echo start; sleep 30"], timeout=1.5)
    assert r.timed_out and r.returncode == 124 and "start" in r.output and r.seconds < 10
    r = godot_env._run_bounded(["sh", "-c", "echo 'SCRIPT ERROR: Parse Error: x'; sleep 30"], timeout=60,
                               fail_fast=True)
    assert not r.timed_out and r.seconds < 15 and r.errors() == ["SCRIPT ERROR: Parse Error: x"]


def test_cli_bad_input_is_one_line(tmp_path):
    def cli(*a):
        return subprocess.run([sys.executable, str(REPO / "tools/godot_env.py"), *a], capture_output=True,
                              text=True, timeout=60)
    r = cli("frobnicate")
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr and "Traceback" not in r.stderr
    r = cli("import", str(tmp_path))
    assert r.returncode == 2 and "no project.godot" in r.stderr and "Traceback" not in r.stderr
    r = cli("script", str(tmp_path))
    assert r.returncode == 2 and "needs 2 argument(s)" in r.stderr


# --- the converter -------------------------------------------------------------------------------

def _raw_capture(d: Path, n: int = 3, size=(8, 6)) -> None:
    raw = d / "raw"
    raw.mkdir(parents=True)
    (raw / "capture.json").write_text(json.dumps({"format": RAW_FORMAT, "scale": 2, "fps": 30}))
    w, h = size
    for i in range(n):
        rgbd = np.zeros((h, w, 4), "<f4")
        rgbd[..., 0] = np.arange(w)[None, :] / w  # red ramps left -> right
        rgbd[..., 1] = np.arange(h)[:, None] / h  # green top -> bottom
        rgbd[..., 3] = 5.0 + i
        rgbd[0, 0, 3] = 1e10  # one sky pixel
        mot = np.zeros((h, w, 2), "<f4")
        mot[..., 0] = 1.5
        mot[..., 1] = -0.25
        rgbd.tofile(raw / f"frame_{i:05d}.rgbd.f32")
        mot.tofile(raw / f"frame_{i:05d}.motion.f32")
        (raw / f"frame_{i:05d}.json").write_text(json.dumps({
            "seq": i, "index": 10 + i, "size": [w, h], "jitter": [0.0, 0.0], "cut": i == 0,
            "intrinsics": {"fx": 4.0, "fy": 4.0, "cx": 4.0, "cy": 3.0, "near": 0.05, "far": 100.0,
                           "fov_y_deg": 60.0}, "time": i / 30}))


def test_convert_raw_capture_to_contract_frames(tmp_path):
    _raw_capture(tmp_path)
    meta = convert(tmp_path, progress=False)
    m = read_meta(tmp_path)
    assert (m.lowres, m.scale, m.frames) == ((8, 6), 2, 3) and m.cuts == [True, False, False]
    assert m.source["frame_index"] == [10, 11, 12] and m.intrinsics[1]["fx"] == 4.0
    f = read_frame(frame_path(tmp_path, 2), expect_lowres=(8, 6), with_target=False)
    # layout: row-major, top row first, interleaved channels -> planar (C, h, w)
    assert f.colour[0, 0, 3] == pytest.approx(3 / 8) and f.colour[1, 4, 0] == pytest.approx(4 / 6)
    assert f.depth[0, 1, 1] == 7.0 and f.depth[0, 0, 0] >= 1e9
    assert np.all(f.motion[0] == 1.5) and np.all(f.motion[1] == -0.25)
    # resumable: a second run skips frames whose EXR is up to date
    before = frame_path(tmp_path, 1).stat().st_mtime_ns
    convert(tmp_path, progress=False)
    assert frame_path(tmp_path, 1).stat().st_mtime_ns == before
    assert meta.frames == 3


@pytest.mark.parametrize("damage, message", [
    (lambda raw: (raw / "frame_00001.rgbd.f32").write_bytes(b"\0" * 12), r"frame_00001\.rgbd\.f32: holds 3 floats"),
    (lambda raw: (raw / "frame_00001.json").unlink(), r"raw frame 00001 is missing"),
    (lambda raw: (raw / "frame_00002.json").write_text("{oops"), r"frame_00002\.json: not valid JSON"),
    (lambda raw: (raw / "capture.json").write_text(json.dumps({"format": "other"})), r"format 'other'"),
    (lambda raw: (raw / "frame_00000.motion.f32").unlink(), r"frame_00000\.motion\.f32: missing raw buffer"),
])
def test_convert_bad_input_names_the_file(tmp_path, damage, message):
    _raw_capture(tmp_path)
    damage(tmp_path / "raw")
    with pytest.raises(FrameError, match=message):
        convert(tmp_path, progress=False)


def test_convert_rejects_nan_depth(tmp_path):
    _raw_capture(tmp_path, n=1)
    p = tmp_path / "raw/frame_00000.rgbd.f32"
    a = np.fromfile(p, "<f4")
    a[3] = np.nan
    a.tofile(p)
    with pytest.raises(FrameError, match="depth"):
        convert(tmp_path, progress=False)


def test_convert_cli_one_line_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "nss_train.sources.godot_raw", str(tmp_path)], capture_output=True,
                       text=True, timeout=60, cwd=REPO)
    assert r.returncode == 1 and "capture.json: missing" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"), reason="bind mounts need root")
def test_a_stale_bind_of_a_replaced_directory_is_renewed(tmp_path):
    """CI clones the repository to one path again and again: a bind left from an earlier clone (its directory
    deleted since) must not hide the new one (it did: 'Invalid project path specified' in every Godot test)."""
    root, host = tmp_path / "root", tmp_path / "clone"
    root.mkdir()
    host.mkdir()
    (host / "old").write_text("first clone")
    target = Path(str(root) + str(host.resolve()))
    try:
        godot_env._bind(root, str(host), godot_env._mounts())
        assert (target / "old").is_file()
        host.rename(tmp_path / "gone")  # the clone goes, a new one comes at the same path
        host.mkdir()
        (host / "new").write_text("second clone")
        godot_env._bind(root, str(host), godot_env._mounts())
        assert (target / "new").is_file() and not (target / "old").exists()
    finally:
        for m in godot_env.mounts_under(root):
            subprocess.run(["umount", "-l", m], check=False)
