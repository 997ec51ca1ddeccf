"""Upscale a rendered EXR sequence offline with an exported model (no Godot needed).

    python -m nss_runtime.upscale_sequence MODEL.onnx SEQ_DIR OUT_DIR [--format png|exr|both]

SEQ_DIR is a sequence in the frame contract's layout (meta.json + frame_NNNNN.exr, see
docs/frame_contract.md), read with nss_runtime.frames; reading it needs OpenEXR
(`pip install openexr`). The Session itself needs only numpy + onnxruntime.

Outputs per frame: frame_NNNNN.png (sRGB-encoded, linear colour x --exposure
clipped to [0, 1]) and/or frame_NNNNN.exr (linear float RGB). Writes are atomic.
A re-run skips frames already written and resumes: because the network's history
holds only its last n_prev frames, it replays at most n_prev + 1 frames before the
first missing one (from the last camera cut), so resumed frames are identical
to an uninterrupted run. With targets in the sequence it prints PSNR against
them (in the model's [0, 1] colour space) for the frames it upscaled.
"""
from __future__ import annotations

import argparse
import os
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from .atomic import atomic_path, atomic_write_bytes
from .display import psnr_from_mse, psnr_reinhard, srgb_encode
from .session import Session, SessionError


def png_bytes(rgb8: np.ndarray) -> bytes:
    """(h, w, 3) uint8 -> PNG file bytes (stdlib only)."""
    h, w, _ = rgb8.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb8.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def write_png(path: Path, rgb: np.ndarray, exposure: float = 1.0) -> None:
    """rgb (3, H, W) linear -> 8-bit sRGB PNG."""
    enc = srgb_encode(rgb.transpose(1, 2, 0) * exposure)
    atomic_write_bytes(path, png_bytes((enc * 255.0 + 0.5).astype(np.uint8)))


def write_exr(path: Path, rgb: np.ndarray) -> None:
    """rgb (3, H, W) linear -> float32 RGB OpenEXR (single part)."""
    import OpenEXR

    chans = {c: np.ascontiguousarray(rgb[i], dtype=np.float32) for i, c in enumerate("RGB")}
    with atomic_path(path, suffix=".tmp.exr") as tmp, \
            OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION}, chans) as f:
        f.write(tmp)


def read_exr_rgb(path: Path) -> np.ndarray:
    """A file written by write_exr -> (3, H, W) float32."""
    import OpenEXR

    with OpenEXR.File(str(path), separate_channels=True) as f:
        ch = f.channels()
        return np.stack([np.asarray(ch[c].pixels, np.float32) for c in "RGB"])


def upscale_sequence(model: str | os.PathLike, seq_dir: str | os.PathLike, out_dir: str | os.PathLike,
                     formats: tuple[str, ...] = ("png",), providers="auto", threads: int | None = None,
                     exposure: float = 1.0, overwrite: bool = False, progress: bool = True) -> dict:
    """Upscale every frame of one sequence; returns a summary dict (frames written, skipped, replayed, PSNR)."""
    from . import frames as F
    try:
        import OpenEXR  # noqa: F401  (frames reads the EXR files with it)
    except ImportError as e:
        raise SessionError(f"reading EXR sequences needs OpenEXR ({e}); pip install openexr") from None

    seq_dir, out_dir = Path(seq_dir), Path(out_dir)
    try:
        meta = F.read_meta(seq_dir)
    except F.FrameError as e:
        raise SessionError(str(e)) from None
    sess = Session(model, providers=providers, threads=threads)
    if meta.scale != sess.info.scale:
        raise SessionError(f"{seq_dir}: sequence scale is {meta.scale} (meta.json) but model {sess.info.name} "
                           f"upscales x{sess.info.scale}")
    sess.check_size(*meta.lowres)
    out_dir.mkdir(parents=True, exist_ok=True)
    ext = {"png": ".png", "exr": ".exr"}

    def outputs(i: int) -> list[Path]:
        return [out_dir / f"frame_{i:05d}{ext[f]}" for f in formats]

    todo = [i for i in range(meta.frames) if overwrite or not all(p.is_file() for p in outputs(i))]
    summary = {"frames": meta.frames, "written": 0, "skipped": meta.frames - len(todo), "replayed": 0, "psnr": []}
    if not todo:
        return summary
    # Start where the history of the first missing frame begins: its last cut, or n_prev + 1 frames before.
    first = todo[0]
    last_cut = max([i for i in range(first + 1) if i == 0 or meta.cuts[i]])
    start = max(last_cut, first - sess.info.n_prev - 1)
    todo_set = set(todo)
    it = range(start, meta.frames)
    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=len(it), desc=f"upscale {seq_dir.name}", unit="frame")
        except ImportError:
            pass
    t0 = time.perf_counter()
    for i in it:
        fr = _read(F, seq_dir, i, meta, with_target=i in todo_set)
        out = sess.upscale(fr.colour, fr.depth, fr.motion, meta.jitter[i], cut=(i == start or meta.cuts[i]))
        if i in todo_set:
            for f, p in zip(formats, outputs(i)):
                write_png(p, out, exposure) if f == "png" else write_exr(p, out)
            summary["written"] += 1
            if fr.target is not None:
                summary["psnr"].append(psnr_reinhard(out, fr.target))
        else:
            summary["replayed"] += 1
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    summary["seconds"] = time.perf_counter() - t0
    summary["provider"] = sess.info.provider
    return summary


def _read(F, seq_dir: Path, i: int, meta, with_target: bool):
    """Frame i, with its target when it has one (captured Godot sequences may not)."""
    path = F.frame_path(seq_dir, i)
    try:
        try:
            return F.read_frame(path, expect_lowres=meta.lowres, scale=meta.scale, with_target=with_target)
        except F.FrameError as e:
            if with_target and f"no '{F.TARGET_PART}' part" in str(e):
                return F.read_frame(path, expect_lowres=meta.lowres, with_target=False)
            raise
    except F.FrameError as e:
        raise SessionError(str(e)) from None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nss_runtime.upscale_sequence",
                                 description="Upscale a rendered EXR sequence with an exported NSS model.")
    ap.add_argument("model", help="exported .onnx model (tools/export_onnx.py)")
    ap.add_argument("seq_dir", help="sequence directory (meta.json + frame_NNNNN.exr)")
    ap.add_argument("out_dir", help="where frame_NNNNN.png / .exr go")
    ap.add_argument("--format", choices=("png", "exr", "both"), default="png")
    ap.add_argument("--providers", default="auto", help="'auto' (TensorRT > CUDA > CPU) or a comma-separated list")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (default: its own)")
    ap.add_argument("--exposure", type=float, default=1.0, help="PNG only: multiply linear colour before encoding")
    ap.add_argument("--overwrite", action="store_true", help="redo frames already written")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    a = ap.parse_args(argv)
    formats = ("png", "exr") if a.format == "both" else (a.format,)
    providers = a.providers if a.providers == "auto" else [p.strip() for p in a.providers.split(",") if p.strip()]
    try:
        s = upscale_sequence(a.model, a.seq_dir, a.out_dir, formats, providers, a.threads, a.exposure,
                             a.overwrite, progress=not a.quiet)
    except SessionError as e:
        print(f"upscale_sequence: error: {e}", file=sys.stderr)
        return 1
    msg = f"{s['written']} frame(s) written, {s['skipped']} already done"
    if s["replayed"]:
        msg += f", {s['replayed']} replayed to rebuild the history"
    if s.get("seconds") and s["written"]:
        msg += f"; {1e3 * s['seconds'] / (s['written'] + s['replayed']):.1f} ms/frame on {s['provider']}"
    if s["psnr"]:  # the project's one PSNR: of the mean MSE over the frames (not a mean of per-frame PSNRs)
        mse = float(np.mean([10.0 ** (-p / 10.0) for p in s["psnr"]]))
        msg += f"; PSNR vs target {psnr_from_mse(mse):.2f} dB (of the mean MSE, Reinhard [0,1] space)"
    print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
