"""Godot captures -> the frame contract's EXR sequence.

The addon (addons/neural_ss/neural_ss_frame_writer.gd) writes raw float buffers + JSON under
DIR/raw/ while the game runs (cheap, no EXR encoder in GDScript). This step turns them into the
same on-disk format as the Blender data (nss_runtime.frames): DIR/meta.json + DIR/frame_00000.exr ...
with a "lowres" part, plus a "target" part for paired captures (addons/neural_ss/capture/, run by
`python -m nss_train.sources.godot_pairs`): their high-res render of the same instant was taken at
`target_ss` times the target size and is box-downsampled here (supersampling).

    python -m nss_train.sources.godot_raw DIR [--scale S] [--keep-raw]

Resumable: frames whose EXR is newer than their raw JSON are skipped.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nss_runtime.frames import (FRAME_PATTERN, ContractError, Frame, FrameError, SequenceMeta, frame_path,
                              write_frame, write_meta)

RAW_FORMAT = "nss_godot_raw/1"


def _load_json(p: Path) -> dict:
    try:
        d = json.loads(p.read_text())
    except FileNotFoundError:
        raise FrameError(f"{p}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FrameError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise FrameError(f"{p}: expected a JSON object")
    return d


def _load_f32(p: Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """A raw float32 buffer (h, w, C interleaved, top row first) -> (C, h, w)."""
    w, h = size
    try:
        a = np.fromfile(p, dtype="<f4")
    except FileNotFoundError:
        raise FrameError(f"{p}: missing raw buffer") from None
    if a.size != w * h * channels:
        raise FrameError(f"{p}: holds {a.size} floats; expected {w}x{h}x{channels} = {w * h * channels}")
    return np.ascontiguousarray(a.reshape(h, w, channels).transpose(2, 0, 1))


def box_downsample(a: np.ndarray, k: int) -> np.ndarray:
    """(C, H, W) -> (C, H/k, W/k): the mean of each k x k block (H, W multiples of k)."""
    if k == 1:
        return a
    c, h, w = a.shape
    return a.reshape(c, h // k, k, w // k, k).mean(axis=(2, 4), dtype=np.float64).astype(np.float32)


def read_raw_frame(raw_dir: Path, seq: int, scale: int = 2, target_ss: int = 1) -> tuple[Frame, dict]:
    """One raw frame as a contract Frame (validated) plus its JSON record.

    A paired frame's target (rendered at size * scale * target_ss) becomes Frame.target at size * scale.
    """
    base = raw_dir / f"frame_{seq:05d}"
    info = _load_json(base.with_suffix(".json"))
    try:
        size = (int(info["size"][0]), int(info["size"][1]))
    except (KeyError, TypeError, ValueError, IndexError):
        raise FrameError(f"{base}.json: field 'size' missing or malformed; expected [w, h]") from None
    if min(size) < 1:
        raise FrameError(f"{base}.json: size {size}; expected positive width and height")
    rgbd = _load_f32(Path(f"{base}.rgbd.f32"), 4, size)
    motion = _load_f32(Path(f"{base}.motion.f32"), 2, size)
    frame = Frame(colour=rgbd[:3], depth=rgbd[3:4], motion=motion)
    if "target_size" in info:
        try:
            tsize = (int(info["target_size"][0]), int(info["target_size"][1]))
        except (TypeError, ValueError, IndexError):
            raise FrameError(f"{base}.json: field 'target_size' malformed; expected [w, h]") from None
        want = (size[0] * scale * target_ss, size[1] * scale * target_ss)
        if tsize != want:
            raise FrameError(f"{base}.json: target_size {tsize[0]}x{tsize[1]}; expected {want[0]}x{want[1]} "
                             f"(low-res {size[0]}x{size[1]} x scale {scale} x target_ss {target_ss})")
        t = _load_f32(Path(f"{base}.target.f32"), 4, tsize)
        frame.target = box_downsample(t[:3], target_ss)
    return frame, info


def raw_frames(raw_dir: Path) -> list[int]:
    """Sequence numbers of complete raw frames (the .json is written last)."""
    seqs = sorted(int(p.name[6:11]) for p in raw_dir.glob("frame_[0-9][0-9][0-9][0-9][0-9].json"))
    for i, s in enumerate(seqs):
        if s != i:
            raise FrameError(f"{raw_dir}: raw frame {i:05d} is missing (next present: {s:05d}); "
                             "the capture was interrupted: capture again")
    return seqs


def convert(capture_dir: str | Path, scale: int | None = None, keep_raw: bool = True,
            progress: bool = True) -> SequenceMeta:
    """Convert DIR/raw/ into DIR/meta.json + DIR/frame_*.exr; returns the meta written."""
    out = Path(capture_dir)
    raw = out / "raw"
    session = _load_json(raw / "capture.json")
    if session.get("format") != RAW_FORMAT:
        raise FrameError(f"{raw / 'capture.json'}: format {session.get('format')!r}; expected {RAW_FORMAT!r}")
    seqs = raw_frames(raw)
    if not seqs:
        raise FrameError(f"{raw}: no captured frames (frame_00000.json ...)")
    s = int(scale or session.get("scale", 2))
    ss = int(session.get("target_ss", 1))
    records: list[dict] = []
    size0: tuple[int, int] | None = None
    for seq in tqdm(seqs, desc=f"godot_raw {out.name}", unit="frame", disable=not progress):
        dst = frame_path(out, seq)
        src_json = raw / f"frame_{seq:05d}.json"
        info = _load_json(src_json)
        size = (int(info["size"][0]), int(info["size"][1]))
        if size0 is None:
            size0 = size
        elif size != size0:
            raise FrameError(f"{src_json}: frame is {size[0]}x{size[1]} but the sequence started at "
                             f"{size0[0]}x{size0[1]}; one sequence has one resolution (split the capture)")
        if not (dst.exists() and dst.stat().st_mtime >= src_json.stat().st_mtime):
            frame, info = read_raw_frame(raw, seq, s, ss)
            try:
                write_frame(dst, frame)
            except ContractError as e:  # NaN/negative values etc.: name the raw frame
                raise FrameError(f"{raw / f'frame_{seq:05d}'}: {e}") from None
        records.append(info)
    assert size0 is not None
    intr = []
    for r in records:
        i = r.get("intrinsics", {})
        intr.append({k: float(i[k]) for k in ("fx", "fy", "cx", "cy", "near", "far", "fov_y_deg") if k in i})
    meta = SequenceMeta(
        lowres=size0, scale=s, frames=len(records), intrinsics=intr,
        jitter=[[float(r.get("jitter", [0, 0])[0]), float(r.get("jitter", [0, 0])[1])] for r in records],
        cuts=[bool(r.get("cut", False)) or i == 0 for i, r in enumerate(records)],
        source={"tool": "godot", **{k: v for k, v in session.items() if k != "format"},
                "frame_index": [int(r.get("index", -1)) for r in records],
                "time": [float(r.get("time", 0.0)) for r in records]},
    )
    write_meta(out, meta)
    if not keep_raw:
        shutil.rmtree(raw)
    return meta


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="capture directory (holds raw/ written by the addon)")
    ap.add_argument("--scale", type=int, default=None, help="upscaling factor recorded in meta.json "
                    "(default: the capture's)")
    ap.add_argument("--keep-raw", action=argparse.BooleanOptionalAction, default=True,
                    help="keep DIR/raw after converting (default: keep)")
    a = ap.parse_args(argv)
    try:
        meta = convert(a.dir, a.scale, a.keep_raw)
    except FrameError as e:
        print(f"godot_raw: {e}", file=sys.stderr)
        return 1
    print(f"godot_raw: {meta.frames} frame(s) {meta.lowres[0]}x{meta.lowres[1]} -> {a.dir} "
          f"({FRAME_PATTERN.format(0)} ...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
