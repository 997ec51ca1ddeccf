"""The dataset checker and the training-window loader.

Logic tests use small hand-made sequences written with the real EXR writer (values
chosen so every property is checkable exactly); the rest use the rendered tiny_dataset.
"""
from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
import torch

from nss_train.data import datasets as data
from nss_runtime import frames as F
from nss_train.data.datasets import WindowDataset, check_dataset, split_sequences

ROOT = Path(__file__).resolve().parents[1]


# --- hand-made sequences ---------------------------------------------------------------------

def motion_field(x, y):
    """A smooth, non-constant motion field (low-res px) as a function of full-frame sample position."""
    return np.stack([0.1 * x - 1.0, -0.05 * y + 0.5]).astype(np.float32)


def write_sequence(d: Path, n: int = 6, size=(12, 8), scale=2, cuts=None, jitter=None, group=None) -> Path:
    """Frames whose pixels say where they came from.

    colour: (R, G) = the sample's full-frame position (x, y) (pixel centre + jitter), B = frame index;
    depth = R + 1 (so it must move with colour); motion = motion_field(R, G);
    target: (R, G) = the high-res pixel centre in low-res units, B = frame index.
    """
    w, h = size
    jitter = jitter or [[0.0, 0.0]] * n
    for t in range(n):
        jx, jy = jitter[t]
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        x, y = x + 0.5 + jx, y + 0.5 + jy
        colour = np.stack([x, y, np.full_like(x, t)])
        Y, X = (np.mgrid[0:h * scale, 0:w * scale].astype(np.float32) + 0.5) / scale
        target = np.stack([X, Y, np.full_like(X, t)])
        F.write_frame(F.frame_path(d, t), F.Frame(colour=colour, depth=(x + 1)[None], motion=motion_field(x, y),
                                                  target=target))
    meta = F.SequenceMeta(lowres=size, scale=scale, frames=n, jitter=[list(j) for j in jitter],
                          cuts=cuts or [t == 0 for t in range(n)], source={"group": group} if group else {})
    F.write_meta(d, meta)
    return d


def write_exr(path: Path, low: dict, target: dict | None = None, low_size=(12, 8)):
    """A raw two-part EXR with exactly the given channels (to make broken frames)."""
    w, h = low_size
    tw, th = (next(iter(target.values())).shape[::-1]) if target else (w, h)
    hdr = lambda name: {"name": name, "compression": OpenEXR.ZIP_COMPRESSION,  # noqa: E731
                        "displayWindow": ((0, 0), (tw - 1, th - 1))}
    parts = [OpenEXR.Part(hdr("lowres"), {k: np.ascontiguousarray(v, np.float32) for k, v in low.items()})]
    if target:
        parts.append(OpenEXR.Part(hdr("target"), {k: np.ascontiguousarray(v, np.float32) for k, v in target.items()}))
    with OpenEXR.File(parts) as f:
        f.write(str(path))


def good_channels(w=12, h=8, s=2):
    low = {f"colour.{c}": np.ones((h, w)) for c in "RGB"}
    low.update({"depth.Z": np.full((h, w), 5.0), "motion.X": np.zeros((h, w)), "motion.Y": np.zeros((h, w))})
    tgt = {f"colour.{c}": np.ones((h * s, w * s)) for c in "RGB"}
    return low, tgt


# --- checker -----------------------------------------------------------------------------------

def test_check_accepts_rendered_dataset(tiny_dataset):
    rep = check_dataset(tiny_dataset)
    assert rep.ok, rep.problems
    assert (rep.sequences, rep.frames) == (2, 12)
    r = subprocess.run([sys.executable, "-m", "nss_train.data", "check", str(tiny_dataset), "-q"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0 and "ok:" in r.stdout, r.stderr


def _bad_cases(tmp: Path):
    """(name, how to break a copy of a good sequence, words the message must contain)."""
    w, h, s = 12, 8, 2

    def truncate(d):
        p = F.frame_path(d, 2)
        p.write_bytes(p.read_bytes()[:700])
        return p

    def garbage(d):
        p = F.frame_path(d, 2)
        p.write_bytes(b"\x00" * 4000)
        return p

    def missing_channel(d):
        low, tgt = good_channels()
        del low["motion.Y"]
        p = F.frame_path(d, 1)
        write_exr(p, low, tgt)
        return p

    def wrong_size(d):
        low, tgt = good_channels(w=10, h=8)
        p = F.frame_path(d, 1)
        write_exr(p, low, tgt, low_size=(10, 8))
        return p

    def nan(d):
        low, tgt = good_channels()
        low["colour.G"][3, 4] = np.nan
        p = F.frame_path(d, 3)
        write_exr(p, low, tgt)
        return p

    def inf_motion(d):
        low, tgt = good_channels()
        low["motion.X"][0, 0] = np.inf
        p = F.frame_path(d, 3)
        write_exr(p, low, tgt)
        return p

    def no_target(d):
        low, _ = good_channels()
        p = F.frame_path(d, 0)
        write_exr(p, low, None)
        return p

    def bad_target_size(d):
        low, _ = good_channels()
        tgt = {f"colour.{c}": np.ones((h * 2, w * 2 + 2)) for c in "RGB"}
        p = F.frame_path(d, 0)
        write_exr(p, low, tgt)
        return p

    def missing_frame(d):
        p = F.frame_path(d, 4)
        p.unlink()
        return p

    def old_contract(d):
        p = d / F.META_NAME
        m = json.loads(p.read_text())
        m["contract_version"] = 0
        p.write_text(json.dumps(m))
        return p

    def broken_meta(d):
        p = d / F.META_NAME
        p.write_text('{"lowres": [12, 8], "scale": 2,')
        return p

    return [("truncated", truncate, "truncated"), ("garbage", garbage, "EXR"),
            ("missing channel", missing_channel, "motion.Y"), ("wrong size", wrong_size, "10x8"),
            ("NaN colour", nan, "NaN"), ("Inf motion", inf_motion, "'motion'"),
            ("no target", no_target, "target"), ("bad target size", bad_target_size, "target"),
            ("missing frame", missing_frame, "missing"), ("old contract", old_contract, "contract_version"),
            ("broken meta", broken_meta, "JSON")]


@pytest.mark.parametrize("case", range(11))
def test_check_names_file_and_problem(tmp_path, case, capfd):
    name, breaker, words = _bad_cases(tmp_path)[case]
    good = write_sequence(tmp_path / "ds" / "good")
    bad = write_sequence(tmp_path / "ds" / "bad")
    path = breaker(bad)
    rep = check_dataset(tmp_path / "ds")
    assert not rep.ok
    assert len(rep.problems) == 1, rep.problems
    assert str(path) in rep.problems[0] and words in rep.problems[0], (name, rep.problems)
    assert str(good) not in rep.problems[0]
    capfd.readouterr()
    assert data.main(["check", str(tmp_path / "ds"), "-q"]) == 1
    out, err = capfd.readouterr()
    assert str(path) in err and "Traceback" not in err, err
    assert out == "", "OpenEXR's own warnings must not leak"


def test_check_mixed_scales_and_extra_frames(tmp_path):
    write_sequence(tmp_path / "a", n=3, scale=2)
    write_sequence(tmp_path / "b", n=3, scale=4)
    shutil.copy(F.frame_path(tmp_path / "a", 0), F.frame_path(tmp_path / "a", 7))
    rep = check_dataset(tmp_path)
    assert any("mix scales" in p for p in rep.problems)
    assert any("frame_00007.exr" in p and "beyond" in p for p in rep.problems)
    with pytest.raises(F.FrameError, match="mix scales"):
        WindowDataset(tmp_path)
    assert not check_dataset(tmp_path / "nothing_here").ok


# --- windows and reset semantics ------------------------------------------------------------

def test_windows_respect_cuts_and_reset_semantics(tmp_path):
    d = write_sequence(tmp_path / "s", n=7, cuts=[True, False, False, True, False, False, False])
    ds = WindowDataset(d, n_prev=2, crop=None, augment=False)
    assert len(ds) == 7 and ds.windows == [(0, t) for t in range(7)] and ds.scale == 2 and ds.n_prev == 2
    expect = {0: [0, 0, 0], 1: [0, 0, 1], 2: [0, 1, 2], 3: [3, 3, 3], 4: [3, 3, 4], 5: [3, 4, 5], 6: [4, 5, 6]}
    for i, (_, t) in enumerate(ds.windows):
        s = ds[i]
        frames = s["colour"][:, 2, 0, 0].round().int().tolist()
        assert frames == expect[t], (t, frames)
        assert s["target"][2, 0, 0].item() == t
        for k, f in enumerate(frames):
            first_after_cut = f in (0, 3)
            m = s["motion"][k]
            # the first frame after a cut, and its padded copies, stand still; the others keep their motion
            assert (m.abs().max().item() == 0) == first_after_cut, (t, k, f)
    ds = WindowDataset(d, n_prev=2, pad_start=False, augment=False)
    assert ds.windows == [(0, 2), (0, 5), (0, 6)]
    with pytest.raises(F.FrameError, match="no training windows"):
        WindowDataset(d, n_prev=4, pad_start=False)


def test_augmentation_moves_motion_jitter_depth_and_target_with_pixels(tmp_path):
    jit = [[0.25, -0.125], [-0.375, 0.0625], [0.1, 0.3]]
    d = write_sequence(tmp_path / "s", n=3, size=(12, 10), jitter=jit)
    ds = WindowDataset(d, n_prev=1, crop=(6, 6), augment=True, seed=3)
    seen = set()
    for epoch in range(24):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            s = ds[i]
            c = s["colour"].numpy()
            t = s["frame"]
            frames = c[:, 2, 0, 0].round().astype(int)
            for k, f in enumerate(frames):
                x_old, y_old = c[k, 0], c[k, 1]  # where each new pixel's sample was in the original frame
                # linear part of the pixel transform: old-position steps per new-pixel step
                a_inv = np.array([[x_old[0, 1] - x_old[0, 0], x_old[1, 0] - x_old[0, 0]],
                                  [y_old[0, 1] - y_old[0, 0], y_old[1, 0] - y_old[0, 0]]])
                assert sorted(np.abs(a_inv).ravel().round(6).tolist()) == [0, 0, 1, 1]
                seen.add(tuple(a_inv.ravel().round().astype(int)))
                j_new = s["jitter"][k].numpy()
                np.testing.assert_allclose(a_inv @ j_new, jit[f], atol=1e-6)
                m_new = s["motion"][k].numpy().reshape(2, -1)
                m_old = motion_field(x_old, y_old).reshape(2, -1)
                if f == 0:  # sequence start: zero motion (reset)
                    assert np.abs(m_new).max() == 0
                else:
                    np.testing.assert_allclose(a_inv @ m_new, m_old, atol=1e-5)
                np.testing.assert_allclose(s["depth"][k, 0].numpy(), x_old + 1, atol=1e-6)
            # the target block of each low-res pixel is the same region: its centre = the pixel centre
            tgt = s["target"].numpy()
            blocks = tgt[:2].reshape(2, 6, 2, 6, 2).mean(axis=(2, 4))
            np.testing.assert_allclose(blocks, c[-1, :2] - np.array(jit[t])[:, None, None], atol=1e-5)
    assert len(seen) == 8, "all flips and rotations of a square crop occur"


def test_non_square_crops_only_flip_and_are_aligned(tmp_path):
    d = write_sequence(tmp_path / "s", n=3, size=(12, 10))
    ds = WindowDataset(d, n_prev=2, crop=(8, 4), augment=True)
    for e in range(8):
        ds.set_epoch(e)
        s = ds[2]
        assert s["colour"].shape == (3, 3, 4, 8) and s["target"].shape == (3, 8, 16)
    ds = WindowDataset(d, n_prev=2, crop=(8, 4), augment=False)
    s = ds[1]
    x0, y0 = s["colour"][-1, 0, 0, 0].item() - 0.5, s["colour"][-1, 1, 0, 0].item() - 0.5
    assert float(x0).is_integer() and float(y0).is_integer()
    np.testing.assert_allclose(s["target"][0, 0, 0].item(), x0 + 0.25)  # first high-res centre of that pixel
    # same seed and epoch: same crop; another epoch: (usually) another crop
    assert torch.equal(WindowDataset(d, n_prev=2, crop=(8, 4), augment=False)[1]["colour"], s["colour"])


def test_crop_larger_than_frame_and_background_depth(tmp_path, caplog):
    d = write_sequence(tmp_path / "s", n=2, size=(12, 8))
    fr = F.read_frame(F.frame_path(d, 1))
    fr.depth[0, :2, :] = np.inf  # sky
    F.write_frame(F.frame_path(d, 1), fr)
    with caplog.at_level(logging.WARNING, logger="nss_train.data.datasets"):
        ds = WindowDataset(d, n_prev=1, crop=(64, 64), augment=False)
    assert ds.crop == (12, 8) and "larger than" in caplog.text
    s = ds[1]
    dep = s["depth"][-1, 0]
    assert torch.isfinite(dep).all() and (dep[:2] == F.DEPTH_BACKGROUND).all()
    # raw depth, not normalised per crop: the same pixel has the same value in any crop
    np.testing.assert_allclose(dep[2:].numpy(), fr.depth[0, 2:], rtol=0)


# --- rendered data --------------------------------------------------------------------------

def test_loader_on_rendered_dataset(tiny_dataset):
    train, val = split_sequences(tiny_dataset, val_fraction=0.2, seed=0)
    assert len(train) == 1 and len(val) == 1 and set(train).isdisjoint(val)
    ds = WindowDataset(train, n_prev=4, crop=(32, 16), augment=True, seed=0)
    assert len(ds) == 6 and ds.scale == 2
    s = ds[5]
    assert s["colour"].shape == (5, 3, 16, 32) and s["depth"].shape == (5, 1, 16, 32)
    assert s["motion"].shape == (5, 2, 16, 32) and s["jitter"].shape == (5, 2)
    assert s["target"].shape == (3, 32, 64) and s["scale"].item() == 2
    assert all(v.dtype == torch.float32 for k, v in s.items() if k in ("colour", "depth", "motion", "jitter",
                                                                        "target"))
    full = WindowDataset(val, n_prev=4, crop=None, augment=False)
    b = next(iter(torch.utils.data.DataLoader(full, batch_size=3, shuffle=False)))
    assert b["colour"].shape == (3, 5, 3, 36, 64) and b["target"].shape == (3, 3, 72, 128)
    assert len(b["seq"]) == 3 and b["frame"].tolist() == [0, 1, 2]
    # the current frame is the stored frame, and the target its high-res render
    fr = F.read_frame(F.frame_path(val[0], 2))
    np.testing.assert_array_equal(b["colour"][2, -1].numpy(), fr.colour)
    np.testing.assert_array_equal(b["target"][2].numpy(), fr.target)


def test_skip_bad_drops_windows_touching_bad_frames(tiny_dataset, tmp_path, caplog):
    ds_dir = tmp_path / "ds"
    shutil.copytree(tiny_dataset, ds_dir)
    bad = F.frame_path(ds_dir / "seq_00001", 3)
    bad.write_bytes(bad.read_bytes()[:5000])
    with caplog.at_level(logging.WARNING, logger="nss_train.data.datasets"):
        ds = WindowDataset(ds_dir, n_prev=2, skip_bad=True)
    assert len(ds) == 12 - 3 and all(w not in ds.windows for w in [(1, 3), (1, 4), (1, 5)])
    assert caplog.text.count(str(bad)) == 1
    for i in range(len(ds)):
        ds[i]
    plain = WindowDataset(ds_dir, n_prev=2, skip_bad=False)
    assert len(plain) == 12
    with pytest.raises(F.FrameError, match="truncated"):
        plain[plain.windows.index((1, 4))]
    F.frame_path(ds_dir / "seq_00000", 1).unlink()
    with pytest.raises(F.FrameError, match="frame_00001.exr: missing"):
        WindowDataset(ds_dir, n_prev=2)


def test_split_is_by_sequence_and_group_and_deterministic(tmp_path):
    for i in range(10):
        write_sequence(tmp_path / f"s{i}", n=2, group=f"scene{i // 2}")  # pairs share a source scene
    train, val = split_sequences(tmp_path, val_fraction=0.2, seed=1)
    assert (train, val) == split_sequences(tmp_path, val_fraction=0.2, seed=1)
    assert len(val) == 2 and len(train) == 8 and set(train).isdisjoint(val)
    group = lambda p: F.read_meta(p).source["group"]  # noqa: E731
    assert {group(p) for p in train}.isdisjoint({group(p) for p in val})
    assert split_sequences([tmp_path / "s0"], val_fraction=0.2) == ([tmp_path / "s0"], [])
    assert split_sequences(tmp_path, val_fraction=0.0)[1] == []
    with pytest.raises(ValueError, match="val_fraction"):
        split_sequences(tmp_path, val_fraction=1.0)


def test_cache_is_bounded(tmp_path):
    d = write_sequence(tmp_path / "s", n=6)
    ds = WindowDataset(d, n_prev=2, augment=False, cache=True, cache_bytes=15000)  # ~6.9 kB a frame
    for i in range(len(ds)):
        ds[i]
    assert len(ds._cache) == 2 and ds._cached <= 15000
    nocache = WindowDataset(d, n_prev=2, augment=False, cache=False)
    nocache[3]
    assert len(nocache._cache) == 0
    assert torch.equal(nocache[3]["colour"], ds[3]["colour"])


def test_skip_bad_drops_sequences_with_broken_meta_and_info_cli(tmp_path, capfd):
    write_sequence(tmp_path / "a", n=3)
    b = write_sequence(tmp_path / "b", n=3)
    (b / F.META_NAME).write_text("{}")
    with pytest.raises(F.FrameError, match="contract_version"):
        WindowDataset(tmp_path)
    ds = WindowDataset(tmp_path, n_prev=1, skip_bad=True)
    assert len(ds) == 3 and ds.seq_dirs == [tmp_path / "a"]
    (b / F.META_NAME).unlink()
    capfd.readouterr()
    assert data.main(["info", str(tmp_path), "--n-prev", "1"]) == 0
    out = capfd.readouterr().out
    assert "3 frames, 12x8 x2, cuts at [0]" in out and "1 sequence(s), 3 windows of 2 frames" in out
