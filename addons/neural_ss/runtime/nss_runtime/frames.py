"""Frames on disk: the frame contract (nss_runtime.contract) as OpenEXR files (needs the `OpenEXR` module).

The runtime reads sequences with it (upscale_sequence); the training side (nss_train) reads and writes them.

This module is the only place that knows the channel and part names. A dataset
is a directory of sequences; a sequence is a directory holding `meta.json` and
one multi-part EXR per frame (`frame_00000.exr`, ...):

  part "lowres"  (w x h):    colour.R colour.G colour.B depth.Z motion.X motion.Y
  part "target"  (sw x sh):  colour.R colour.G colour.B [depth.Z motion.X motion.Y]

All channels are 32-bit float. Motion is stored in the pixels of its own part
(low-res pixels in "lowres", high-res pixels in "target"). See
docs/frame_contract.md.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path, atomic_write_bytes  # noqa: F401  (re-exported)
from .contract import (  # noqa: F401  (re-exported: one contract)
    BUFFERS,
    COLOUR_TRANSFORM,
    CONTRACT_VERSION,
    DEPTH_BACKGROUND,
    DEPTH_REF,
    SCALES,
    ContractError,
    check_buffer,
    check_jitter,
    colour_forward,
    colour_inverse,
    depth_normalise,
)

META_NAME = "meta.json"
FRAME_PATTERN = "frame_{:05d}.exr"

LOWRES_PART = "lowres"
TARGET_PART = "target"
# buffer name -> EXR channel suffixes, in contract channel order
CHANNELS = {
    "colour": ("R", "G", "B"),
    "depth": ("Z",),
    "motion": ("X", "Y"),
}


class FrameError(ContractError):
    """A frame file or meta.json is unreadable or breaks the contract."""


@dataclass
class Frame:
    """One frame of the contract. Arrays are float32 (C, H, W), top-down."""

    colour: np.ndarray  # (3, h, w) low-res linear RGB
    depth: np.ndarray  # (1, h, w) view depth, scene units
    motion: np.ndarray  # (2, h, w) low-res pixels, prev = p + motion
    target: np.ndarray | None = None  # (3, s*h, s*w) high-res linear RGB
    target_depth: np.ndarray | None = None  # (1, s*h, s*w)
    target_motion: np.ndarray | None = None  # (2, s*h, s*w) in HIGH-res pixels

    @property
    def size(self) -> tuple[int, int]:
        return self.colour.shape[2], self.colour.shape[1]


@dataclass
class SequenceMeta:
    """meta.json of one sequence."""

    lowres: tuple[int, int]  # (w, h)
    scale: int
    frames: int
    contract_version: int = CONTRACT_VERSION
    # per frame: camera intrinsics {"fov_y_deg", "near", "far", "fx", "fy", "cx", "cy"} (low-res pixels)
    intrinsics: list[dict[str, float]] = field(default_factory=list)
    jitter: list[list[float]] = field(default_factory=list)  # per frame (jx, jy), low-res pixels
    cuts: list[bool] = field(default_factory=list)  # per frame: history reset before this frame
    source: dict[str, Any] = field(default_factory=dict)  # how it was made (tool, scene, spp, seed, ...)
    target_has_depth_motion: bool = False

    @property
    def target_size(self) -> tuple[int, int]:
        return self.lowres[0] * self.scale, self.lowres[1] * self.scale

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["lowres"] = list(self.lowres)
        d["target"] = list(self.target_size)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], where: str = META_NAME) -> "SequenceMeta":
        if not isinstance(d, dict):
            raise FrameError(f"{where}: expected a JSON object")
        v = d.get("contract_version")
        if v != CONTRACT_VERSION:
            raise FrameError(f"{where}: contract_version is {v!r}; this nss_train reads version {CONTRACT_VERSION} "
                             "(re-render or re-capture the data with this version)")
        try:
            m = cls(lowres=(int(d["lowres"][0]), int(d["lowres"][1])), scale=int(d["scale"]),
                    frames=int(d["frames"]), contract_version=v,
                    intrinsics=list(d.get("intrinsics", [])), jitter=[list(map(float, j)) for j in d.get("jitter", [])],
                    cuts=[bool(c) for c in d.get("cuts", [])], source=dict(d.get("source", {})),
                    target_has_depth_motion=bool(d.get("target_has_depth_motion", False)))
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise FrameError(f"{where}: missing or malformed field ({type(e).__name__}: {e}); "
                             "expected lowres [w, h], scale, frames") from None
        if m.scale not in SCALES:
            raise FrameError(f"{where}: scale {m.scale} unsupported; expected one of {SCALES}")
        if m.frames < 1 or min(m.lowres) < 1:
            raise FrameError(f"{where}: frames={m.frames}, lowres={m.lowres}; expected positive values")
        for name, lst in (("jitter", m.jitter), ("cuts", m.cuts), ("intrinsics", m.intrinsics)):
            if lst and len(lst) != m.frames:
                raise FrameError(f"{where}: '{name}' has {len(lst)} entries; expected one per frame ({m.frames})")
        if not m.jitter:
            m.jitter = [[0.0, 0.0] for _ in range(m.frames)]
        if not m.cuts:
            m.cuts = [i == 0 for i in range(m.frames)]
        for i, j in enumerate(m.jitter):
            check_jitter(j, where=f"{where}: jitter[{i}]")
        return m


# --- atomic writes: nss_runtime.atomic (re-exported here for nss_train's writers) ---------------------


def write_meta(seq_dir: str | os.PathLike, meta: SequenceMeta) -> None:
    atomic_write_bytes(Path(seq_dir) / META_NAME, (json.dumps(meta.to_json(), indent=1) + "\n").encode())


def read_meta(seq_dir: str | os.PathLike) -> SequenceMeta:
    p = Path(seq_dir) / META_NAME
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise FrameError(f"{p}: missing; every sequence directory needs a meta.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FrameError(f"{p}: not valid JSON ({e})") from None
    return SequenceMeta.from_json(d, where=str(p))


def frame_path(seq_dir: str | os.PathLike, index: int) -> Path:
    return Path(seq_dir) / FRAME_PATTERN.format(index)


# --- EXR I/O -------------------------------------------------------------------

def _part_channels(bufs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, a in bufs.items():
        for c, suffix in enumerate(CHANNELS[name]):
            out[f"{name}.{suffix}"] = np.ascontiguousarray(a[c], dtype=np.float32)
    return out


def write_frame(path: str | os.PathLike, frame: Frame) -> None:
    """Write one frame as a two-part EXR, atomically (temp file + rename)."""
    import OpenEXR

    path = Path(path)
    size = frame.size
    low = {"colour": check_buffer("colour", frame.colour, size, str(path)),
           "depth": check_buffer("depth", frame.depth, size, str(path)),
           "motion": check_buffer("motion", frame.motion, size, str(path))}
    # Parts of a multi-part EXR must share one displayWindow: use the largest
    # (target) size; each part's dataWindow is its own resolution.
    disp = size if frame.target is None else (frame.target.shape[2], frame.target.shape[1])
    window = ((0, 0), (disp[0] - 1, disp[1] - 1))

    def header(name: str) -> dict:
        return {"name": name, "compression": OpenEXR.ZIP_COMPRESSION, "displayWindow": window}

    parts = [OpenEXR.Part(header(LOWRES_PART), _part_channels(low))]
    if frame.target is not None:
        tgt = {"colour": np.asarray(frame.target, np.float32)}
        th, tw = tgt["colour"].shape[1:]
        if tw % size[0] or th % size[1] or tw // size[0] != th // size[1]:
            raise FrameError(f"{path}: target {tw}x{th} is not an integer multiple of low-res {size[0]}x{size[1]}")
        if frame.target_depth is not None:
            tgt["depth"] = np.asarray(frame.target_depth, np.float32)
        if frame.target_motion is not None:
            tgt["motion"] = np.asarray(frame.target_motion, np.float32)
        parts.append(OpenEXR.Part(header(TARGET_PART), _part_channels(tgt)))
    with atomic_path(path, suffix=".tmp.exr") as tmp, OpenEXR.File(parts) as f:
        f.write(tmp)


def _read_buffer(channels: dict, name: str, path: Path, part: str) -> np.ndarray | None:
    keys = [f"{name}.{s}" for s in CHANNELS[name]]
    present = [k in channels for k in keys]
    if not any(present):
        return None
    if not all(present):
        missing = [k for k, p in zip(keys, present) if not p]
        raise FrameError(f"{path}: part '{part}' lacks channel(s) {missing}")
    return np.stack([np.asarray(channels[k].pixels, dtype=np.float32) for k in keys])


def read_frame(path: str | os.PathLike, expect_lowres: tuple[int, int] | None = None,
               scale: int | None = None, with_target: bool = True) -> Frame:
    """Read and validate one frame. Raises FrameError naming the file and the problem."""
    import OpenEXR

    path = Path(path)
    if not path.is_file():
        raise FrameError(f"{path}: missing frame file")
    try:
        f = OpenEXR.File(str(path), separate_channels=True)
        parts = {p.name(): p for p in f.parts}
    except Exception as e:  # OpenEXR raises bare RuntimeError/OSError on corrupt data
        raise FrameError(f"{path}: unreadable or truncated EXR ({e}); delete it and re-render/re-capture") from None
    if LOWRES_PART not in parts:
        raise FrameError(f"{path}: no readable '{LOWRES_PART}' part (parts: {sorted(parts)}); the file is "
                         "truncated or corrupt, or not an nss_train frame; delete it and re-render/re-capture")
    try:
        ch = parts[LOWRES_PART].channels
        bufs = {n: _read_buffer(ch, n, path, LOWRES_PART) for n in CHANNELS}
        for n, a in bufs.items():
            if a is None:
                raise FrameError(f"{path}: part '{LOWRES_PART}' lacks the {n!r} channels {list(CHANNELS[n])}")
        size = (bufs["colour"].shape[2], bufs["colour"].shape[1])
        if expect_lowres is not None and size != tuple(expect_lowres):
            raise FrameError(f"{path}: low-res frame is {size[0]}x{size[1]}; meta.json says "
                             f"{expect_lowres[0]}x{expect_lowres[1]}")
        fr = Frame(**{n: check_buffer(n, a, size, str(path)) for n, a in bufs.items()})
        if with_target:
            if TARGET_PART not in parts:
                raise FrameError(f"{path}: no readable '{TARGET_PART}' part; training frames need the high-res "
                                 "target (truncated or corrupt file? delete it and re-render)")
            tch = parts[TARGET_PART].channels
            t = _read_buffer(tch, "colour", path, TARGET_PART)
            if t is None:
                raise FrameError(f"{path}: part '{TARGET_PART}' lacks the colour channels")
            s = scale or t.shape[2] // size[0]
            if t.shape[1:] != (size[1] * s, size[0] * s):
                raise FrameError(f"{path}: target is {t.shape[2]}x{t.shape[1]}; expected "
                                 f"{size[0] * s}x{size[1] * s} (scale {s})")
            fr.target = check_buffer("colour", t, None, f"{path} (target)")
            td = _read_buffer(tch, "depth", path, TARGET_PART)
            tm = _read_buffer(tch, "motion", path, TARGET_PART)
            fr.target_depth = None if td is None else check_buffer("depth", td, None, f"{path} (target)")
            fr.target_motion = None if tm is None else check_buffer("motion", tm, None, f"{path} (target)")
    except ContractError as e:
        raise FrameError(str(e)) from None
    return fr


def list_sequences(root: str | os.PathLike) -> list[Path]:
    """Sequence directories under `root` (a directory with meta.json, or a parent of several)."""
    root = Path(root)
    if not root.is_dir():
        raise FrameError(f"{root}: not a directory")
    if (root / META_NAME).is_file():
        return [root]
    return sorted(p.parent for p in root.rglob(META_NAME))
