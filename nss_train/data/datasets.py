"""Datasets of frame sequences: the checker and the training-window loader.

    python -m nss_train.data check DIR      # validate a dataset; exit 1 naming each bad file
    python -m nss_train.data info DIR       # sequences, frames, sizes, cuts, windows

    from nss_train.data.datasets import WindowDataset, split_sequences, check_dataset
    train_dirs, val_dirs = split_sequences("data/default", val_fraction=0.2, seed=0)
    ds = WindowDataset(train_dirs, n_prev=4, crop=(64, 64), augment=True)

A training window is the current frame t and its n_prev predecessors, never
reaching across a camera cut or out of its sequence. Near a cut (or a sequence
start) with pad_start=True the missing predecessors are copies of the first
frame after the cut with zero motion, and that first frame's own motion is
zeroed too: the reset semantics of nss_runtime.contract, shared with the model
and the runtime. The split is by sequence (and by source scene when meta.json
names a 'group'), so overlapping windows never leak between train and validation.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nss_runtime import frames as F

log = logging.getLogger("nss_train.data.datasets")

def sequence_dirs(root_or_list) -> list[Path]:
    """A dataset root, one sequence directory, or a list of either -> sequence directories."""
    items = [root_or_list] if isinstance(root_or_list, (str, os.PathLike)) else list(root_or_list)
    out: list[Path] = []
    for it in items:
        p = Path(it)
        if not p.exists():
            raise F.FrameError(f"{p}: dataset or sequence directory not found")
        out.extend(F.list_sequences(p))
    if not out:
        raise F.FrameError(f"{', '.join(map(str, items))}: no sequences (no meta.json found); "
                           "render one with python -m nss_train.sources.render")
    return out


@contextlib.contextmanager
def _quiet_fds():
    """OpenEXR prints its own warnings for corrupt files at C level; our one-line error says it better.
    Only for single-threaded loops (check, up-front validation): fds are process-wide."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


# --- the checker -------------------------------------------------------------------------

@dataclass
class CheckReport:
    sequences: int = 0
    frames: int = 0
    problems: list[str] = field(default_factory=list)  # one line each, naming the file
    bad_frames: dict[str, list[int]] = field(default_factory=dict)  # seq dir -> bad frame indices
    bad_sequences: list[str] = field(default_factory=list)  # unreadable meta.json

    @property
    def ok(self) -> bool:
        return not self.problems


def check_dataset(root_or_list, progress: bool = False) -> CheckReport:
    """Validate every sequence and frame (meta.json, files, channels, shapes, NaN/Inf, scale).

    Never raises for bad data: every problem becomes one line in the report.
    """
    from tqdm import tqdm

    rep = CheckReport()
    try:
        seqs = sequence_dirs(root_or_list)
    except F.FrameError as e:
        rep.problems.append(str(e))
        return rep
    metas: dict[Path, F.SequenceMeta] = {}
    for s in seqs:
        try:
            metas[s] = F.read_meta(s)
        except F.FrameError as e:
            rep.problems.append(str(e))
            rep.bad_sequences.append(str(s))
    rep.sequences = len(seqs)
    scales = {m.scale for m in metas.values()}
    if len(scales) > 1:
        rep.problems.append(f"sequences mix scales {sorted(scales)}: "
                            + ", ".join(f"{s}: {m.scale}" for s, m in metas.items())
                            + "; a dataset needs one scale (split it into separate directories)")
    total = sum(m.frames for m in metas.values())
    bar = tqdm(total=total, unit="frame", desc="check", disable=not progress)
    for s, m in metas.items():
        expected = {F.FRAME_PATTERN.format(i) for i in range(m.frames)}
        extra = sorted(p.name for p in s.glob("frame_*.exr") if p.name not in expected)
        if extra:
            rep.problems.append(f"{s}: {len(extra)} frame file(s) beyond meta.json's frames={m.frames} "
                                f"(first: {extra[0]}); fix 'frames' or remove them")
        for i in range(m.frames):
            p = F.frame_path(s, i)
            try:
                with _quiet_fds():
                    fr = F.read_frame(p, expect_lowres=m.lowres, scale=m.scale, with_target=True)
                if m.target_has_depth_motion and (fr.target_depth is None or fr.target_motion is None):
                    raise F.FrameError(f"{p}: meta.json says the target has depth and motion, "
                                       "but part 'target' lacks them")
            except F.FrameError as e:
                rep.problems.append(str(e))
                rep.bad_frames.setdefault(str(s), []).append(i)
            rep.frames += 1
            bar.update(1)
    bar.close()
    return rep


# --- split ---------------------------------------------------------------------------------

def split_sequences(root_or_list, val_fraction: float = 0.2, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Deterministic train/validation split by sequence.

    Sequences whose meta.json source names the same 'group' (e.g. two shots of one
    .blend) stay on the same side. At least one group goes to validation when
    val_fraction > 0 and there are two or more groups.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction {val_fraction}: expected 0 <= val_fraction < 1")
    seqs = sorted(sequence_dirs(root_or_list), key=lambda p: str(p))
    groups: dict[str, list[Path]] = OrderedDict()
    for s in seqs:
        try:
            g = str(F.read_meta(s).source.get("group") or s.resolve())
        except F.FrameError:
            g = str(s.resolve())  # broken meta: its own group; the loader reports it
        groups.setdefault(g, []).append(s)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    n_val = 0
    if val_fraction > 0 and len(keys) >= 2:
        n_val = min(len(keys) - 1, max(1, round(val_fraction * len(keys))))
    elif val_fraction > 0:
        log.warning("split_sequences: only one sequence group; validation set is empty")
    val = sorted((s for k in keys[:n_val] for s in groups[k]), key=str)
    train = sorted((s for k in keys[n_val:] for s in groups[k]), key=str)
    return train, val


# --- the loader ---------------------------------------------------------------------------

def _dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """Apply dihedral op k (bit0: flip x, bit1: flip y, bit2: transpose) to (..., H, W)."""
    if k & 1:
        a = a[..., ::-1]
    if k & 2:
        a = a[..., ::-1, :]
    if k & 4:
        a = np.swapaxes(a, -1, -2)
    return a


def _dihedral_vec(v: np.ndarray, k: int, axis: int) -> np.ndarray:
    """The same op on (dx, dy) vectors stored along `axis` (motion, jitter): flips negate, transpose swaps."""
    v = np.moveaxis(v, axis, 0).copy()
    if k & 1:
        v[0] = -v[0]
    if k & 2:
        v[1] = -v[1]
    if k & 4:
        v = v[::-1].copy()
    return np.moveaxis(v, 0, axis)


def _tensor(a) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


class WindowDataset(torch.utils.data.Dataset):
    """Training windows of n_prev+1 consecutive low-res frames plus the current frame's target.

    crop: (w, h) in LOW-RES pixels (like every size in this project) or an int for a
    square, None for the full frame; the target crop is the aligned s*w x s*h region.
    A crop larger than a frame is reduced to the frame (warned once).
    augment: random flips, and 90-degree rotations when the crop is square; motion
    and jitter are transformed with the pixels.
    skip_bad: validate every frame up front; windows touching a bad frame are dropped
    and the bad frames logged once. Otherwise a bad frame raises FrameError when read.
    cache: keep decoded frames in memory (up to cache_bytes, least recently used out).
    sequence: windows for recurrent models (preset accum): n_prev+1 consecutive frames of one sequence that MAY
    cross camera cuts; each item also has `reset` [T] (1 on the window's first frame and on every cut, where the
    model drops its history) and `target` holds every frame's target [T,3,s*h,s*w]. No padding.
    """

    def __init__(self, seq_dirs, n_prev: int = 4, crop=None, augment: bool = True, seed: int = 0,
                 pad_start: bool = True, skip_bad: bool = False, cache: bool = True,
                 cache_bytes: int = 2 << 30, progress: bool = False, sequence: bool = False):
        if n_prev < 0:
            raise ValueError(f"n_prev {n_prev}: expected >= 0")
        self.seq_dirs = sequence_dirs(seq_dirs)
        self.n_prev, self.augment, self.seed, self.pad_start = n_prev, augment, seed, pad_start
        self.skip_bad, self.cache = skip_bad, cache
        self.sequence = sequence
        self.cache_bytes, self._cache, self._cached = cache_bytes, OrderedDict(), 0
        self.epoch = 0
        self.metas = []
        for s in list(self.seq_dirs):
            try:
                self.metas.append(F.read_meta(s))
            except F.FrameError as e:
                if not skip_bad:
                    raise
                log.warning("skipping sequence %s: %s", s, e)
                self.seq_dirs.remove(s)
        if not self.metas:
            raise F.FrameError("no readable sequences (every meta.json is broken)")
        scales = {m.scale for m in self.metas}
        if len(scales) != 1:
            raise F.FrameError(f"sequences mix scales {sorted(scales)}; a WindowDataset needs one scale")
        self.scale = scales.pop()
        if crop is not None:
            crop = (int(crop), int(crop)) if np.isscalar(crop) else (int(crop[0]), int(crop[1]))
            if min(crop) < 1:
                raise ValueError(f"crop {crop}: expected positive (w, h) in low-res pixels")
            small = [m for m in self.metas if m.lowres[0] < crop[0] or m.lowres[1] < crop[1]]
            if small:
                w = min(m.lowres[0] for m in self.metas)
                h = min(m.lowres[1] for m in self.metas)
                log.warning("crop %dx%d is larger than frames of %d sequence(s); using %dx%d",
                            crop[0], crop[1], len(small), min(crop[0], w), min(crop[1], h))
                crop = (min(crop[0], w), min(crop[1], h))
        self.crop = crop

        self.bad: dict[tuple[int, int], str] = {}
        for si, (s, m) in enumerate(zip(self.seq_dirs, self.metas)):
            for i in range(m.frames):
                p = F.frame_path(s, i)
                if not p.is_file() or p.stat().st_size == 0:
                    msg = f"{p}: missing or empty frame file"
                    if not skip_bad:
                        raise F.FrameError(msg + " (render again to resume, or pass skip_bad=True)")
                    self.bad[(si, i)] = msg
        if skip_bad:
            from tqdm import tqdm

            todo = [(si, i) for si, m in enumerate(self.metas) for i in range(m.frames) if (si, i) not in self.bad]
            for key in tqdm(todo, desc="validate", unit="frame", disable=not progress):
                try:
                    with _quiet_fds():
                        self._frame(*key)
                except F.FrameError as e:
                    self.bad[key] = str(e)
            if self.bad:
                log.warning("skipping %d bad frame(s) and the windows that touch them:\n  %s",
                            len(self.bad), "\n  ".join(self.bad[k] for k in sorted(self.bad)))

        self.windows: list[tuple[int, int]] = []
        for si, m in enumerate(self.metas):
            for t in range(m.frames):
                if sequence:  # consecutive frames of the sequence, cuts inside allowed (reset flags)
                    if t >= n_prev and not any((si, i) in self.bad for i in range(t - n_prev, t + 1)):
                        self.windows.append((si, t))
                    continue
                lo = self._segment_start(si, t)
                first = max(lo, t - n_prev)
                if not pad_start and t - n_prev < lo:
                    continue
                if any((si, i) in self.bad for i in range(first, t + 1)):
                    continue
                self.windows.append((si, t))
        if not self.windows:
            raise F.FrameError(f"no training windows of {n_prev + 1} frames in {len(self.seq_dirs)} sequence(s)"
                               + (" (pad_start=False needs segments of n_prev+1 frames between cuts)"
                                  if not pad_start else "") + (" (all touch bad frames)" if self.bad else ""))

    def _segment_start(self, si: int, t: int) -> int:
        cuts = self.metas[si].cuts
        while t > 0 and not cuts[t]:
            t -= 1
        return t

    def set_epoch(self, epoch: int) -> None:
        """New random crops/augmentations per epoch, still deterministic given (seed, epoch, index)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.windows)

    def _frame(self, si: int, i: int) -> F.Frame:
        key = (si, i)
        fr = self._cache.get(key)
        if fr is not None:
            self._cache.move_to_end(key)
            return fr
        m = self.metas[si]
        fr = F.read_frame(F.frame_path(self.seq_dirs[si], i), expect_lowres=m.lowres, scale=m.scale)
        # raw depth for the model, with the background as one finite value
        fr.depth = np.minimum(np.nan_to_num(fr.depth, nan=F.DEPTH_BACKGROUND, posinf=F.DEPTH_BACKGROUND),
                              np.float32(F.DEPTH_BACKGROUND))
        fr.target_depth = fr.target_motion = None  # not used for training; saves memory
        if self.cache:
            nbytes = fr.colour.nbytes + fr.depth.nbytes + fr.motion.nbytes + fr.target.nbytes
            self._cache[key] = fr
            self._cached += nbytes
            while self._cached > self.cache_bytes and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._cached -= old.colour.nbytes + old.depth.nbytes + old.motion.nbytes + old.target.nbytes
        return fr

    def __getitem__(self, idx: int) -> dict:
        si, t = self.windows[idx]
        m = self.metas[si]
        if self.sequence:
            return self._sequence_item(idx, si, t)
        lo = self._segment_start(si, t)
        first = max(lo, t - self.n_prev)
        n_pad = max(0, lo - (t - self.n_prev)) if self.pad_start else 0
        idxs = [lo] * n_pad + list(range(first, t + 1))
        uniq = {i: self._frame(si, i) for i in sorted(set(idxs))}  # padded copies decoded once
        frs = [uniq[i] for i in idxs]
        colour = np.stack([f.colour for f in frs])
        depth = np.stack([f.depth for f in frs])
        motion = np.stack([f.motion for f in frs])
        jitter = np.asarray([m.jitter[i] for i in idxs], np.float32)
        # reset semantics: history before the cut is the first frame again, standing still
        for k, i in enumerate(idxs):
            if i == lo:
                motion[k] = 0.0
        target = frs[-1].target

        colour, depth, motion, target, jitter = self._crop_and_augment(idx, m, colour, depth, motion, target, jitter)
        return {"colour": _tensor(colour), "depth": _tensor(depth), "motion": _tensor(motion),
                "jitter": _tensor(jitter), "target": _tensor(target), "scale": torch.tensor(self.scale),
                "seq": str(self.seq_dirs[si]), "frame": int(t)}

    def _crop_and_augment(self, idx: int, m, colour, depth, motion, target, jitter) -> tuple:
        """The window's random crop and dihedral op (seeded by seed, epoch, idx), the same on pixels, motion
        vectors and jitter of every frame; target frames hold scale x the low-res pixels."""
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        s = self.scale
        if self.crop is not None:
            cw, ch = self.crop
            w, h = m.lowres
            x0 = int(rng.integers(0, w - cw + 1))
            y0 = int(rng.integers(0, h - ch + 1))
            colour, depth, motion = (a[..., y0:y0 + ch, x0:x0 + cw] for a in (colour, depth, motion))
            target = target[..., y0 * s:(y0 + ch) * s, x0 * s:(x0 + cw) * s]
        if self.augment:
            h, w = colour.shape[-2:]
            k = int(rng.integers(0, 8 if h == w else 4))  # transposing a non-square crop would change its shape
            colour, depth, target = (_dihedral(a, k) for a in (colour, depth, target))
            motion = _dihedral_vec(_dihedral(motion, k), k, axis=1)
            jitter = _dihedral_vec(jitter, k, axis=1)
        return colour, depth, motion, target, jitter


    def _sequence_item(self, idx: int, si: int, t: int) -> dict:
        """Frames t-n_prev..t with every target and the reset flags (see `sequence` in the class docstring)."""
        m = self.metas[si]
        idxs = list(range(t - self.n_prev, t + 1))
        frs = [self._frame(si, i) for i in idxs]
        colour = np.stack([f.colour for f in frs])
        depth = np.stack([f.depth for f in frs])
        motion = np.stack([f.motion for f in frs])
        target = np.stack([f.target for f in frs])
        jitter = np.asarray([m.jitter[i] for i in idxs], np.float32)
        reset = np.asarray([1.0 if (k == 0 or m.cuts[i]) else 0.0 for k, i in enumerate(idxs)], np.float32)
        colour, depth, motion, target, jitter = self._crop_and_augment(idx, m, colour, depth, motion, target, jitter)
        return {"colour": _tensor(colour), "depth": _tensor(depth), "motion": _tensor(motion),
                "jitter": _tensor(jitter), "target": _tensor(target), "reset": _tensor(reset),
                "scale": torch.tensor(self.scale), "seq": str(self.seq_dirs[si]), "frame": int(t)}


# --- CLI -------------------------------------------------------------------------------------

def _cmd_check(a) -> int:
    rep = check_dataset(a.dir, progress=not a.quiet)
    for p in rep.problems:
        print(f"error: {p}", file=sys.stderr)
    if rep.ok:
        print(f"ok: {a.dir}: {rep.sequences} sequence(s), {rep.frames} frame(s) follow contract "
              f"v{F.CONTRACT_VERSION}")
        return 0
    n_bad = sum(len(v) for v in rep.bad_frames.values())
    print(f"FAILED: {a.dir}: {len(rep.problems)} problem(s) ({n_bad} bad frame(s) in {rep.sequences} "
          "sequence(s)); re-render those frames (python -m nss_train.sources.render resumes and replaces unreadable "
          "ones) or train with WindowDataset(skip_bad=True)", file=sys.stderr)
    return 1


def _cmd_info(a) -> int:
    seqs = sequence_dirs(a.dir)
    for s in seqs:
        m = F.read_meta(s)
        cuts = [i for i, c in enumerate(m.cuts) if c]
        print(f"{s}: {m.frames} frames, {m.lowres[0]}x{m.lowres[1]} x{m.scale}, cuts at {cuts}, "
              f"jitter={'yes' if any(any(j) for j in m.jitter) else 'no'}, scene={m.source.get('scene', '?')}")
    ds = WindowDataset(seqs, n_prev=a.n_prev, augment=False)
    print(f"{len(seqs)} sequence(s), {len(ds)} windows of {a.n_prev + 1} frames")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nss_train.data", description="Check or describe a dataset.")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="validate every sequence and frame; exit 1 on any problem")
    c.add_argument("dir")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    i = sub.add_parser("info", help="list sequences and count training windows")
    i.add_argument("dir")
    i.add_argument("--n-prev", type=int, default=4)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        return _cmd_check(a) if a.cmd == "check" else _cmd_info(a)
    except F.FrameError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
