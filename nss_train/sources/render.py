"""Render training sequences with Blender (bpy, Cycles) in the frame contract.

    python -m nss_train.sources.render                      # the built-in default dataset -> data/default
    python -m nss_train.sources.render --out D --sequences 2 --frames 4 --size 64x36 --scale 2
    python -m nss_train.sources.render --blend my.blend other.blend --out D --jitter

Every frame is rendered twice at the same instant with the same camera:
  low-res  --size WxH, --spp-low samples (1-4), a one-pixel box filter (or point
           sampling), denoising off, optional Halton jitter via the camera shift:
           what a real-time renderer produces;
  target   --scale x the size per axis, --spp-high samples, Cycles' default
           1.5 px Blackman-Harris filter, adaptive sampling, denoising OFF
           (a denoiser would teach the network its artefacts).
The two Cycles multi-part EXRs are converted to the contract (nss_runtime.frames):
Depth.Z -> depth, Vector (X, -Y) -> motion. A re-run skips finished frames.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nss_runtime import frames as F

DEFAULT_OUT = "data/default"
# The built-in default dataset (the README's main job): a few minutes on 2 CPU cores.
DEFAULT_SEQUENCES = 6
DEFAULT_FRAMES = 12
DEFAULT_SIZE = (128, 72)
DEFAULT_SPP_HIGH = 32


class RenderError(RuntimeError):
    """A one-line, user-facing render failure (bad .blend, no camera, full disk, ...)."""


@dataclass
class RenderConfig:
    out: str = DEFAULT_OUT
    sequences: int = DEFAULT_SEQUENCES  # built-in scenes (ignored when blends are given)
    frames: int | None = None  # None: DEFAULT_FRAMES for built-ins, the whole range for a .blend
    size: tuple[int, int] = DEFAULT_SIZE  # low-res (w, h)
    scale: int = 2
    spp_low: int = 1
    spp_high: int = DEFAULT_SPP_HIGH
    jitter: bool = False
    seed: int = 0
    blend: list[str] = field(default_factory=list)
    shard: tuple[int, int] = (0, 1)  # (i, n): render sequences with index % n == i
    device: str = "auto"  # auto | cpu | gpu
    threads: int = 0  # 0: all cores
    filter_low: str = "box"  # box (1 px box) | point (pixel centre + jitter, like a rasteriser)
    target_extras: bool = True  # store target depth + motion too (evaluation, high-res warp checks)
    cut_prob: float = 0.5  # built-ins of 8+ frames: chance of one camera cut
    bounces: int = 4
    progress: bool = True
    denoise_high: bool = False  # OpenImageDenoise on the target (albedo + normal guided); low-res never
    adaptive_threshold: float = 0.01  # target adaptive-sampling noise threshold (lower: closer to spp_high)


@dataclass
class Job:
    name: str  # sequence directory name
    index: int
    seed: int
    blend: str | None = None


# --- small helpers ---------------------------------------------------------------------

def halton(i: int, base: int) -> float:
    f, r = 1.0, 0.0
    while i > 0:
        f /= base
        r += f * (i % base)
        i //= base
    return r


def jitter_for(frame_index: int) -> tuple[float, float]:
    """Halton(2, 3) jitter in [-0.5, 0.5) low-res pixels (index from 1: 0 would be (0, 0) forever)."""
    return halton(frame_index + 1, 2) - 0.5, halton(frame_index + 1, 3) - 0.5


def parse_size(s: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {s!r} invalid; expected WxH, e.g. 64x36") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size {s!r} invalid; width and height must be positive")
    return w, h


def parse_shard(s: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in s.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard {s!r} invalid; expected I/N with 0 <= I < N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"shard {s!r} invalid; expected I/N with 0 <= I < N")
    return i, n


@contextlib.contextmanager
def _quiet_stdout():
    """Blender prints a line per render tile to fd 1; keep it (for errors) but off the terminal."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 1)
        try:
            yield log
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def _last_lines(log, n: int = 2) -> str:
    log.seek(0)
    lines = [ln.strip() for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
    errs = [ln for ln in lines if "error" in ln.lower()]
    return " | ".join((errs or lines)[-n:])


def _disk_error(e: OSError, out: Path) -> RenderError:
    return RenderError(f"{out}: disk full while writing ({e.strerror}); free some space and re-run "
                       "the same command (finished frames are kept)")


# --- bpy scene set-up ---------------------------------------------------------------------

def _bpy():
    try:
        import bpy
    except ImportError as e:
        raise RenderError(f"cannot import bpy ({e}); install Blender's Python module: pip install bpy==5.0.1 "
                          "(Python 3.11), or run bash tools/setup.sh") from None
    return bpy


def _select_device(bpy, want: str) -> str:
    """Cycles on a GPU when asked/available, else CPU. Returns the device used."""
    if want == "cpu":
        return "CPU"
    try:
        prefs = bpy.context.preferences.addons["cycles"].preferences
        for backend in ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL"):
            try:
                prefs.compute_device_type = backend
            except TypeError:
                continue
            prefs.get_devices()
            gpus = [d for d in prefs.devices if d.type == backend]
            if gpus:
                for d in prefs.devices:
                    d.use = d.type == backend
                return "GPU"
    except Exception:  # no GPU support compiled in / no driver: CPU it is
        pass
    if want == "gpu":
        raise RenderError("--device gpu: Cycles found no OPTIX/CUDA/HIP/oneAPI/Metal device; use --device cpu")
    return "CPU"


def _configure(bpy, cfg: RenderConfig) -> None:
    sc = bpy.context.scene
    sc.render.engine = "CYCLES"
    cy = sc.cycles
    with _quiet_stdout():  # Cycles logs every GPU library it fails to find
        cy.device = _select_device(bpy, cfg.device)
    cy.use_denoising = False
    cy.use_animated_seed = True  # fresh noise every frame, like a real-time renderer
    cy.seed = 0
    # the same light transport for low-res and target: only samples and filter differ
    cy.max_bounces = cfg.bounces
    cy.diffuse_bounces = min(2, cfg.bounces)
    cy.glossy_bounces = min(3, cfg.bounces)
    cy.transmission_bounces = cfg.bounces
    cy.transparent_max_bounces = 8
    cy.sample_clamp_indirect = 10.0
    cy.caustics_reflective = cy.caustics_refractive = False
    sc.render.threads_mode = "FIXED" if cfg.threads else "AUTO"
    if cfg.threads:
        sc.render.threads = cfg.threads
    sc.render.resolution_percentage = 100
    sc.render.pixel_aspect_x = sc.render.pixel_aspect_y = 1.0
    sc.render.use_motion_blur = False  # the Vector pass needs it off
    sc.render.use_persistent_data = True  # keep the synced scene between renders: ~2x faster small frames
    sc.render.use_border = False
    sc.render.film_transparent = False
    sc.view_settings.view_transform = "Standard"
    sc.view_settings.look = "None"
    sc.view_settings.exposure = 0.0
    sc.render.use_compositing = False
    sc.render.use_sequencer = False
    for vl in sc.view_layers:
        vl.use = vl == bpy.context.view_layer
    vl = bpy.context.view_layer
    vl.use_pass_combined = True
    vl.use_pass_z = True
    vl.use_pass_vector = True
    im = sc.render.image_settings
    im.media_type = "MULTI_LAYER_IMAGE"
    im.file_format = "OPEN_EXR_MULTILAYER"
    im.color_depth = "32"
    im.exr_codec = "ZIP"


def _fit(cam, w: int, h: int) -> tuple[str, float, float]:
    """Blender's sensor fit -> (fit, sensor size mm, image size in px along the fitted axis)."""
    fit = cam.sensor_fit
    if fit == "AUTO":
        return fit, cam.sensor_width, float(max(w, h))
    if fit == "HORIZONTAL":
        return fit, cam.sensor_width, float(w)
    return fit, cam.sensor_height, float(h)


def _intrinsics(cam_ob, w: int, h: int) -> dict[str, float]:
    """Unjittered pinhole intrinsics in low-res pixels (pixel centres at +0.5, y down)."""
    cam = cam_ob.data
    _, sensor, dim = _fit(cam, w, h)
    out = {"near": float(cam.clip_start), "far": float(cam.clip_end),
           "cx": w / 2 - cam.shift_x * dim, "cy": h / 2 + cam.shift_y * dim}
    if cam.type == "ORTHO":
        px = dim / cam.ortho_scale  # pixels per scene unit
        out.update(type="ortho", fov_y_deg=0.0, fx=px, fy=px)
    else:
        f = cam.lens / sensor * dim
        out.update(type="persp", fov_y_deg=math.degrees(2 * math.atan(h / 2 / f)), fx=f, fy=f)
    return out


def _read_cycles_exr(path: Path, w: int, h: int) -> dict[str, np.ndarray]:
    """Cycles' multi-part EXR -> contract buffers (colour, depth, motion), top-down float32."""
    import OpenEXR

    if not path.is_file():
        raise RenderError(f"Cycles wrote no image to {path}")
    f = OpenEXR.File(str(path), separate_channels=True)
    ch = {}
    for p in f.parts:  # Blender 5 writes one part per pass; older versions one part: merge both
        ch.update(p.channels)

    def get(name: str) -> np.ndarray:
        key = next((k for k in ch if k.endswith(name)), None)
        if key is None:
            raise RenderError(f"{path}: Cycles output lacks {name!r} (channels: {sorted(ch)})")
        a = np.asarray(ch[key].pixels, dtype=np.float32)
        if a.shape != (h, w):
            raise RenderError(f"{path}: {name} is {a.shape[1]}x{a.shape[0]}; expected {w}x{h}")
        return a

    colour = np.stack([get(f"Combined.{c}") for c in "RGB"])
    # Cycles is >= 0 and finite in practice; a rare NaN/firefly sample must not poison the dataset
    colour = np.nan_to_num(colour, nan=0.0, posinf=0.0, neginf=0.0).clip(0.0, None)
    depth = get("Depth.Z")[None]
    depth = np.where(np.isfinite(depth) & (depth >= 0), depth, np.float32(1e10))
    # Vector.XY = previous - current in Blender raster coordinates (y up) -> contract (dx, dy) with y down
    motion = np.stack([get("Vector.X"), -get("Vector.Y")])
    motion = np.nan_to_num(motion, nan=0.0, posinf=0.0, neginf=0.0)
    return {"colour": colour, "depth": depth.astype(np.float32), "motion": motion}


class _Renderer:
    """Renders frames of the scene currently loaded in bpy."""

    def __init__(self, bpy, cfg: RenderConfig, work: Path):
        self.bpy, self.cfg, self.work = bpy, cfg, work
        self.sc = bpy.context.scene

    def _render(self, frame: int, size: tuple[int, int], spp: int, low: bool, jitter) -> dict[str, np.ndarray]:
        bpy, sc, cfg = self.bpy, self.sc, self.cfg
        sc.frame_set(frame)
        cam = sc.camera.data
        shift = cam.shift_x, cam.shift_y
        sc.render.resolution_x, sc.render.resolution_y = size
        cy = sc.cycles
        cy.samples = spp
        cy.use_denoising = bool(cfg.denoise_high and not low)
        if cy.use_denoising:
            cy.denoiser = "OPENIMAGEDENOISE"
            cy.denoising_input_passes = "RGB_ALBEDO_NORMAL"
        if low:
            cy.use_adaptive_sampling = False
            cy.pixel_filter_type = "BOX"
            cy.filter_width = 1.0 if cfg.filter_low == "box" else 0.01
            # jitter (jx, jy) moves the sample of pixel (i, j) to (i + .5 + jx, j + .5 + jy), y down;
            # shift is in units of the fitted image dimension, y up
            _, _, dim = _fit(cam, *size)
            cam.shift_x = shift[0] + jitter[0] / dim
            cam.shift_y = shift[1] - jitter[1] / dim
        else:
            cy.use_adaptive_sampling = True
            cy.adaptive_threshold = cfg.adaptive_threshold
            cy.pixel_filter_type = "BLACKMAN_HARRIS"
            cy.filter_width = 1.5
        path = self.work / f"{'low' if low else 'high'}_{frame:05d}.exr"
        sc.render.filepath = str(path)
        msg = ""
        try:
            with _quiet_stdout() as log:
                bpy.ops.render.render(write_still=True)
                if not path.is_file():
                    msg = _last_lines(log)
        except RuntimeError as e:
            raise RenderError(f"Cycles failed on frame {frame}: {str(e).strip().splitlines()[-1]}") from None
        finally:
            cam.shift_x, cam.shift_y = shift
        if not path.is_file():
            raise RenderError(f"Cycles wrote no image for frame {frame} ({msg or 'no message'})")
        bufs = _read_cycles_exr(path, *size)
        path.unlink()
        return bufs

    def render_frame(self, frame: int, jitter) -> F.Frame:
        cfg = self.cfg
        w, h = cfg.size
        lo = self._render(frame, (w, h), cfg.spp_low, True, jitter)
        hi = self._render(frame, (w * cfg.scale, h * cfg.scale), cfg.spp_high, False, (0.0, 0.0))
        return F.Frame(colour=lo["colour"], depth=lo["depth"], motion=lo["motion"], target=hi["colour"],
                       target_depth=hi["depth"] if cfg.target_extras else None,
                       target_motion=hi["motion"] if cfg.target_extras else None)


# --- sequences ---------------------------------------------------------------------------

def _jobs(cfg: RenderConfig) -> list[Job]:
    if cfg.blend:
        jobs, seen = [], set()
        for k, b in enumerate(cfg.blend):
            name = Path(b).stem
            while name in seen:
                name += f"_{k}"
            seen.add(name)
            jobs.append(Job(name=f"blend_{name}", index=k, seed=cfg.seed + k, blend=str(b)))
    else:
        jobs = [Job(name=f"seq_{i:05d}", index=i, seed=cfg.seed + i) for i in range(cfg.sequences)]
    i, n = cfg.shard
    return [j for j in jobs if j.index % n == i]


def _load_blend(bpy, path: str) -> None:
    p = Path(path)
    if not p.is_file():
        raise RenderError(f"{p}: .blend file not found")
    with open(p, "rb") as f:
        head = f.read(12)
    # plain .blend starts with BLENDER; compressed ones with gzip/zstd magic
    if not (head.startswith(b"BLENDER") or head[:2] == b"\x1f\x8b" or head[:4] == b"\x28\xb5\x2f\xfd"):
        raise RenderError(f"{p}: not a .blend file (bad header {head[:7]!r}); re-save it from Blender")
    try:
        with _quiet_stdout():
            bpy.ops.wm.open_mainfile(filepath=str(p.resolve()), load_ui=False)
    except RuntimeError as e:
        msg = str(e).strip().splitlines()[-1] if str(e).strip() else "unknown error"
        raise RenderError(f"{p}: cannot open .blend ({msg}); is it truncated or from a newer Blender?") from None


def _setup_job(bpy, job: Job, cfg: RenderConfig) -> tuple[list[int], dict]:
    """Load/build the scene of a job; returns the Blender frame numbers to render and a description."""
    if job.blend is None:
        from nss_train.sources import scenes

        bpy.ops.wm.read_factory_settings(use_empty=True)
        frames = cfg.frames or DEFAULT_FRAMES
        desc = scenes.build_scene(job.seed, frames, cut_prob=cfg.cut_prob)
        desc.update(tool="nss_train.sources.render", scene="builtin", group=f"builtin_seed{job.seed}")
        numbers = list(range(1, frames + 1))
    else:
        _load_blend(bpy, job.blend)
        sc = bpy.context.scene
        if sc.camera is None and not any(m.camera for m in sc.timeline_markers):
            raise RenderError(f"{job.blend}: scene {sc.name!r} has no camera; add one and make it active "
                              "(Scene properties > Camera)")
        n_all = sc.frame_end - sc.frame_start + 1
        if n_all < 1:
            raise RenderError(f"{job.blend}: scene {sc.name!r} has an empty frame range "
                              f"{sc.frame_start}..{sc.frame_end}")
        n = min(cfg.frames, n_all) if cfg.frames else n_all
        numbers = list(range(sc.frame_start, sc.frame_start + n))
        desc = dict(tool="nss_train.sources.render", scene=f"{Path(job.blend).name}:{sc.name}",
                    group=f"blend:{Path(job.blend).resolve()}", seed=job.seed)
    _configure(bpy, cfg)
    if job.blend is not None:
        bpy.context.scene.cycles.seed = job.seed
    return numbers, desc


def _sequence_meta(bpy, cfg: RenderConfig, numbers: list[int], desc: dict) -> F.SequenceMeta:
    sc = bpy.context.scene
    w, h = cfg.size
    intr, cuts, jit = [], [], []
    prev_cam = None
    for k, fnum in enumerate(numbers):
        sc.frame_set(fnum)  # also switches the camera at bound markers
        if sc.camera is None:
            raise RenderError(f"{desc['scene']}: no active camera at frame {fnum}")
        intr.append(_intrinsics(sc.camera, w, h))
        cuts.append(k == 0 or sc.camera != prev_cam)
        prev_cam = sc.camera
        jit.append(list(jitter_for(k)) if cfg.jitter else [0.0, 0.0])
    source = dict(desc, blender=bpy.app.version_string, engine="CYCLES", device=sc.cycles.device,
                  spp_low=cfg.spp_low, spp_high=cfg.spp_high, filter_low=cfg.filter_low,
                  filter_high="blackman_harris_1.5px", denoise=cfg.denoise_high, jitter=cfg.jitter,
                  frame_numbers=[numbers[0], numbers[-1]], bounces=cfg.bounces)
    return F.SequenceMeta(lowres=(w, h), scale=cfg.scale, frames=len(numbers), intrinsics=intr, jitter=jit,
                          cuts=cuts, source=source, target_has_depth_motion=cfg.target_extras)


# meta fields that must match for a re-run to resume into an existing sequence directory
_RESUME_KEYS = ("spp_low", "spp_high", "filter_low", "jitter", "seed", "scene", "bounces", "denoise")


def _check_resume(seq_dir: Path, meta: F.SequenceMeta) -> None:
    if not (seq_dir / F.META_NAME).is_file():
        return
    try:
        old = F.read_meta(seq_dir)
    except F.FrameError:
        return  # unreadable old meta: overwritten; frames are re-validated below
    diffs = []
    if tuple(old.lowres) != tuple(meta.lowres):
        diffs.append(f"size {old.lowres[0]}x{old.lowres[1]} vs {meta.lowres[0]}x{meta.lowres[1]}")
    if old.scale != meta.scale:
        diffs.append(f"scale {old.scale} vs {meta.scale}")
    if old.frames != meta.frames:
        diffs.append(f"frames {old.frames} vs {meta.frames}")
    for k in _RESUME_KEYS:
        if old.source.get(k) != meta.source.get(k):
            diffs.append(f"{k} {old.source.get(k)!r} vs {meta.source.get(k)!r}")
    if diffs:
        raise RenderError(f"{seq_dir}: already holds a sequence rendered with other settings ({'; '.join(diffs)}); "
                          "use another --out or delete that directory")


def _frame_done(path: Path, meta: F.SequenceMeta) -> bool:
    if not path.is_file():
        return False
    try:
        F.read_frame(path, expect_lowres=meta.lowres, scale=meta.scale)
        return True
    except F.FrameError:
        return False  # truncated/corrupt: render again


def _estimate_bytes(cfg: RenderConfig, n_frames: int) -> int:
    w, h = cfg.size
    per = w * h * 6 * 4 + w * h * cfg.scale ** 2 * (6 if cfg.target_extras else 3) * 4
    return int(per * n_frames)  # ZIP barely compresses float32 noise: plan for the raw size


def render_dataset(out: str | os.PathLike = DEFAULT_OUT, sequences: int = DEFAULT_SEQUENCES,
                   frames: int | None = None, size: tuple[int, int] = DEFAULT_SIZE, scale: int = 2,
                   spp_low: int = 1, spp_high: int = DEFAULT_SPP_HIGH, jitter: bool = False, seed: int = 0,
                   blend: list[str] | None = None, shard: tuple[int, int] = (0, 1), progress: bool = True,
                   **kw) -> list[Path]:
    """Render a dataset (resumable) and return its sequence directories. See RenderConfig for **kw."""
    cfg = RenderConfig(out=str(out), sequences=sequences, frames=frames, size=tuple(size), scale=scale,
                       spp_low=spp_low, spp_high=spp_high, jitter=jitter, seed=seed, blend=list(blend or []),
                       shard=tuple(shard), progress=progress, **kw)
    return render(cfg)


def _validate(cfg: RenderConfig) -> None:
    if cfg.scale not in F.SCALES:
        raise RenderError(f"--scale {cfg.scale} unsupported; expected one of {F.SCALES}")
    if cfg.spp_low < 1 or cfg.spp_high < 1:
        raise RenderError(f"--spp-low {cfg.spp_low} / --spp-high {cfg.spp_high}: sample counts must be >= 1")
    if cfg.frames is not None and cfg.frames < 1:
        raise RenderError(f"--frames {cfg.frames}: expected >= 1")
    if not cfg.blend and cfg.sequences < 1:
        raise RenderError(f"--sequences {cfg.sequences}: expected >= 1")
    if cfg.filter_low not in ("box", "point"):
        raise RenderError(f"filter_low {cfg.filter_low!r}: expected 'box' or 'point'")
    if cfg.device not in ("auto", "cpu", "gpu"):
        raise RenderError(f"--device {cfg.device!r}: expected auto, cpu or gpu")


def render(cfg: RenderConfig) -> list[Path]:
    _validate(cfg)
    bpy = _bpy()
    from tqdm import tqdm

    out = Path(cfg.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RenderError(f"{out}: cannot create output directory ({e.strerror})") from None
    jobs = _jobs(cfg)
    # a .blend's length is known once it is open: its frames join the bar then
    total = 0 if cfg.blend else len(jobs) * (cfg.frames or DEFAULT_FRAMES)
    # frames already there (a resumed run) need no new space
    need = _estimate_bytes(cfg, total) - sum(p.stat().st_size for p in out.glob("*/frame_*.exr"))
    free = shutil.disk_usage(out).free
    if need > free:
        raise RenderError(f"{out}: needs about {need / 1e6:.0f} MB but only {free / 1e6:.0f} MB are free; "
                          "free space or render fewer/smaller frames")
    bar = tqdm(total=total, unit="frame", desc="render", disable=not cfg.progress, dynamic_ncols=True)
    done_dirs = []
    try:
        for job in jobs:
            numbers, desc = _setup_job(bpy, job, cfg)
            if job.blend is not None:
                bar.total += len(numbers)
                bar.refresh()
            done_dirs.append(render_current_scene(out / job.name, cfg, numbers, desc, bar=bar, configure=False))
    finally:
        bar.close()
    return done_dirs


def render_current_scene(seq_dir: str | os.PathLike, cfg: RenderConfig, numbers: list[int], desc: dict,
                         bar=None, configure: bool = True) -> Path:
    """Render Blender frames `numbers` of the scene loaded in bpy into one sequence directory (resumable).

    Tests build their own scenes with bpy and call this: the same path as the CLI.
    """
    bpy = _bpy()
    seq_dir = Path(seq_dir)
    if configure:
        _validate(cfg)
        _configure(bpy, cfg)
    desc = dict(desc)
    desc.setdefault("scene", bpy.context.scene.name)
    desc.setdefault("seed", cfg.seed)
    meta = _sequence_meta(bpy, cfg, numbers, desc)
    _check_resume(seq_dir, meta)
    per_frame = _estimate_bytes(cfg, 1)
    try:
        F.write_meta(seq_dir, meta)
        work = Path(tempfile.mkdtemp(prefix=".render_", dir=seq_dir))
        try:
            r = _Renderer(bpy, cfg, work)
            for k, fnum in enumerate(numbers):
                if bar is not None:
                    bar.set_postfix_str(f"{seq_dir.name} {k + 1}/{len(numbers)}", refresh=False)
                path = F.frame_path(seq_dir, k)
                if not _frame_done(path, meta):
                    if shutil.disk_usage(seq_dir).free < 2 * per_frame:  # the frame + Cycles' temporary EXR
                        raise OSError(errno.ENOSPC, "No space left on device")
                    fr = r.render_frame(fnum, meta.jitter[k])
                    try:
                        F.write_frame(path, fr)
                    except RuntimeError as e:  # OpenEXR reports write errors as RuntimeError
                        if "No space left" in str(e):
                            raise OSError(errno.ENOSPC, "No space left on device") from None
                        raise RenderError(f"{path}: cannot write frame ({e})") from None
                if bar is not None:
                    bar.update(1)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _disk_error(e, seq_dir) from None
        raise
    return seq_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nss_train.sources.render", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT, help=f"dataset directory (default {DEFAULT_OUT})")
    p.add_argument("--sequences", type=int, default=DEFAULT_SEQUENCES, help="built-in sequences to render")
    p.add_argument("--frames", type=int, default=None,
                   help=f"frames per sequence (default {DEFAULT_FRAMES}; for --blend: the scene's whole range)")
    p.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, help="low-res size WxH (default %(default)s)")
    p.add_argument("--scale", type=int, default=2, choices=F.SCALES, help="target scale per axis")
    p.add_argument("--spp-low", type=int, default=1, help="low-res samples per pixel (1-4 like real time)")
    p.add_argument("--spp-high", type=int, default=DEFAULT_SPP_HIGH, help="target samples per pixel (max)")
    p.add_argument("--jitter", action="store_true", help="Halton(2,3) sub-pixel jitter on the low-res frames")
    p.add_argument("--seed", type=int, default=0, help="sequence i uses seed+i (scene, animation, noise)")
    p.add_argument("--blend", nargs="+", default=[], metavar="FILE",
                   help="render these .blend files (their active scene, camera and animation) instead")
    p.add_argument("--shard", type=parse_shard, default=(0, 1), metavar="I/N",
                   help="render only sequences with index %% N == I (parallel machines)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"), help="Cycles device")
    p.add_argument("--threads", type=int, default=0, help="CPU render threads (0: all cores)")
    p.add_argument("--filter-low", default="box", choices=("box", "point"),
                   help="low-res pixel filter: 1 px box, or point sampling at the (jittered) centre")
    p.add_argument("--no-target-extras", dest="target_extras", action="store_false",
                   help="do not store the target's depth and motion")
    p.add_argument("--denoise-high", action="store_true",
                   help="OpenImageDenoise (albedo+normal) on the targets: converged targets at fewer samples")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    a = p.parse_args(argv)
    cfg = RenderConfig(out=a.out, sequences=a.sequences, frames=a.frames, size=a.size, scale=a.scale,
                       spp_low=a.spp_low, spp_high=a.spp_high, jitter=a.jitter, seed=a.seed, blend=a.blend,
                       shard=a.shard, device=a.device, threads=a.threads, filter_low=a.filter_low,
                       target_extras=a.target_extras, progress=a.progress, denoise_high=a.denoise_high)
    t0 = time.time()
    try:
        dirs = render(cfg)
    except (RenderError, F.FrameError) as e:
        print(f"nss_train.sources.render: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("nss_train.sources.render: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    print(f"rendered {len(dirs)} sequence(s) into {cfg.out} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
