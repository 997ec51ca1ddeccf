"""Training data from your own Godot scenes: paired low-res / supersampled high-res captures.

    python -m nss_train.sources.godot_pairs --project godot_project --scene res://demo.tscn --out data/godot_demo \\
        --sequences 8 --frames 32 --low 160x90 --scale 2 --ss 2 --msaa 4 --time-scale 2
    python -m nss_train.data check data/godot_demo
    python -m nss_train.train.fit --data data/godot_demo [data/default ...] --init models/accum_x2.pt ...

Runs Godot (tools/godot_env.py: host Godot 4.3+ or the project's chroot, under Xvfb + lavapipe
when there is no display) on the addon's capture scene
(addons/neural_ss/capture/paired_capture.tscn, which must be in PROJECT: copy the addon folder),
which loads SCENE and writes, per frame, the low-res frame exactly as the game renders it (the
addon's NeuralSSViewport capture path; `--taa` for TAA jitter) and a target of the same engine
frame rendered at scale * ss times the low-res size with MSAA; the target is box-downsampled by
ss here. Scene time is frame-locked (Godot's --fixed-fps), so both halves of a pair show the same
instant and a rerun sees the same instants. Sequence k starts at frame warmup + k * stride.

Resumable: complete sequences (meta.json + every frame) are kept, complete raw captures are only
converted, the rest is captured again. See docs/finetune.md.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from nss_runtime.frames import FrameError, frame_path, read_meta
from nss_train.sources.godot_raw import RAW_FORMAT, convert

DRIVER = "res://addons/neural_ss/capture/paired_capture.tscn"
SEQ_PATTERN = "seq_{:05d}"
# settings that must match for an existing sequence to be kept on a resume
KEYS = ("scene", "scale", "target_ss", "msaa", "taa", "fps", "time_scale", "warmup", "start_frame", "camera",
        "seed", "low")


# the last Godot run of capture(): seconds, frames and (when measured) mean render ms of both viewports
LAST_RUN: dict = {}


class CaptureError(RuntimeError):
    """A one-line, user-facing capture failure."""


@dataclass
class CaptureConfig:
    project: str = "godot_project"
    scene: str = ""  # res://... (or a file path inside the project)
    out: str = ""
    sequences: int = 4
    first: int = 0  # number of the first sequence (e.g. held-out sequences further along the path)
    frames: int = 32
    stride: int = 0  # frames between sequence starts; 0: frames + 60
    warmup: int = 8
    low: str = "160x90"
    scale: int = 2
    ss: int = 2  # target supersampling per axis (rendered at scale * ss, box-downsampled)
    msaa: int = 4
    fps: float = 30.0
    time_scale: float = 1.0
    taa: bool = False
    camera: str = "scene"  # scene | path:NODE[:SPEED] | anim:NODE:ANIMATION | replay:FILE
    seed: int = 0
    timeout: float = 3600.0  # seconds for the Godot run
    keep_raw: bool = False
    reimport: bool = False
    check: bool = True
    extra: str = ""  # extra user args for the scene, e.g. "--mode bilinear"
    jitter: bool = False  # raw sub-pixel jitter (NeuralSSViewport.jitter), recorded per frame
    jitter_samples: int = 8  # Halton(2,3) sequence length
    skip_ahead: bool = False  # frame counter starts at the first sequence's warm-up (frame-indexed scenes)
    pre_frames: int = 3  # the target viewport starts this many frames before each sequence


def _res_path(project: Path, scene: str) -> str:
    if scene.startswith("res://"):
        f = project / scene[len("res://"):]
    else:
        f = Path(scene).resolve()
        try:
            scene = "res://" + f.relative_to(project).as_posix()
        except ValueError:
            raise CaptureError(f"--scene {scene}: not inside the project {project}; give res://PATH") from None
    if not f.is_file() or f.suffix not in (".tscn", ".scn"):
        raise CaptureError(f"--scene {scene}: no such scene file ({f}); expected a .tscn/.scn in the project")
    return scene


def _low(cfg: CaptureConfig) -> list[int]:
    try:
        w, h = (int(v) for v in cfg.low.lower().split("x"))
    except ValueError:
        raise CaptureError(f"--low {cfg.low}: expected WxH, e.g. 160x90") from None
    if w < 8 or h < 8:
        raise CaptureError(f"--low {cfg.low}: expected both sides >= 8")
    return [w, h]


def expected_source(cfg: CaptureConfig, scene: str, k: int) -> dict:
    stride = cfg.stride or cfg.frames + 60
    src = {"scene": scene, "scale": cfg.scale, "target_ss": cfg.ss, "msaa": cfg.msaa, "taa": cfg.taa,
           "fps": float(cfg.fps), "time_scale": float(cfg.time_scale), "warmup": cfg.warmup,
           "start_frame": cfg.warmup + k * stride, "camera": cfg.camera, "seed": cfg.seed, "low": _low(cfg)}
    if cfg.jitter:  # only then: captures made before the option existed keep resuming
        src.update(jitter=True, jitter_samples=cfg.jitter_samples)
    return src


def _differs(got: dict, want: dict) -> list[str]:
    out = []
    for k in (*KEYS, "jitter", "jitter_samples"):
        if k not in want:
            if k == "jitter" and got.get(k):
                out.append(f"jitter={got[k]!r} (now False)")
            continue
        a, b = got.get(k), want[k]
        if isinstance(b, float):
            same = isinstance(a, (int, float)) and abs(float(a) - b) < 1e-6
        else:
            same = a == b
        if not same:
            out.append(f"{k}={a!r} (now {b!r})")
    return out


def sequence_state(seq_dir: Path, frames: int, want: dict) -> str:
    """'done' (converted), 'raw' (captured, not converted), 'todo'. Raises when settings differ."""
    try:
        m = read_meta(seq_dir)
        diff = _differs(m.source, want)
        if diff:
            raise CaptureError(f"{seq_dir} was captured with other settings ({', '.join(diff)}); "
                               "use another --out or delete it")
        if m.frames == frames and all(frame_path(seq_dir, i).is_file() for i in range(frames)):
            return "done"
    except FrameError:
        pass
    raw = seq_dir / "raw"
    try:
        session = json.loads((raw / "capture.json").read_text())
    except (OSError, json.JSONDecodeError):
        return "todo"
    if session.get("format") == RAW_FORMAT and not _differs(session, want) and all(
            (raw / f"frame_{i:05d}.json").is_file() for i in range(frames)):
        return "raw"
    return "todo"


def _count_raw(dirs: list[Path]) -> int:
    return sum(len(list((d / "raw").glob("frame_[0-9][0-9][0-9][0-9][0-9].json"))) for d in dirs)


def check_config(cfg: CaptureConfig) -> tuple[Path, str]:
    """(project directory, res:// scene) of a valid capture config; CaptureError naming the option otherwise."""
    if not cfg.out:
        raise CaptureError("--out DIR is required")
    project = Path(cfg.project).resolve()
    if not (project / "project.godot").is_file():
        raise CaptureError(f"--project {cfg.project}: no project.godot there; expected a Godot project directory")
    if not (project / DRIVER[len("res://"):]).is_file():
        raise CaptureError(f"--project {cfg.project}: no {DRIVER} in it; copy this repository's addons/neural_ss "
                           "folder into the project's addons/")
    if not cfg.scene:
        raise CaptureError("--scene res://PATH.tscn is required")
    scene = _res_path(project, cfg.scene)
    if cfg.sequences < 1 or cfg.frames < 1 or cfg.first < 0 or cfg.warmup < 1:
        raise CaptureError(f"--sequences {cfg.sequences}, --frames {cfg.frames}, --warmup {cfg.warmup}, "
                           f"--first {cfg.first}: expected >= 1, >= 1, >= 1, >= 0")
    if cfg.stride and cfg.stride < cfg.frames:
        raise CaptureError(f"--stride {cfg.stride}: must be >= --frames {cfg.frames} (sequences may not overlap)")
    if cfg.jitter and (cfg.taa or not 1 <= cfg.jitter_samples <= 64):
        raise CaptureError(f"--jitter with --taa {cfg.taa}, --jitter-samples {cfg.jitter_samples}: expected no TAA "
                           "(TAA jitters by itself) and 1..64 samples")
    if cfg.scale not in (2, 4) or not 1 <= cfg.ss <= 8 or cfg.msaa not in (0, 2, 4, 8) or cfg.fps <= 0:
        raise CaptureError(f"--scale {cfg.scale} (2 or 4), --ss {cfg.ss} (1..8), --msaa {cfg.msaa} (0, 2, 4, 8), "
                           f"--fps {cfg.fps} (> 0): out of range")
    return project, scene


def capture(cfg: CaptureConfig, progress: bool = True) -> list[Path]:
    """Capture (or finish) the sequences; returns their directories. Raises CaptureError/FrameError."""
    project, scene = check_config(cfg)
    out = Path(cfg.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ids = list(range(cfg.first, cfg.first + cfg.sequences))
    dirs = {k: out / SEQ_PATTERN.format(k) for k in ids}
    state = {k: sequence_state(dirs[k], cfg.frames, expected_source(cfg, scene, k)) for k in ids}
    todo = [k for k in ids if state[k] == "todo"]
    if todo:
        r = _run_godot(cfg, project, scene, out, todo, [dirs[k] for k in todo], progress)
        # convert whatever finished before reporting a failure, so a rerun resumes after it
        for k in todo:
            state[k] = sequence_state(dirs[k], cfg.frames, expected_source(cfg, scene, k))
        LAST_RUN.clear()
        LAST_RUN.update(seconds=r.seconds, frames=cfg.frames * len(todo))
        m = re.search(r"PAIRED_CAPTURE_DONE .*low_ms=([\d.]+) target_ms=([\d.]+)", r.output)
        if m:
            LAST_RUN.update(low_ms=float(m[1]), target_ms=float(m[2]))
        if r.timed_out or r.returncode != 0 or "PAIRED_CAPTURE_DONE" not in r.output:
            msgs = [ln.split("ERROR: ", 1)[-1] for ln in r.output.splitlines() if "paired_capture: ERROR" in ln]
            why = msgs[0] if msgs else ("timed out after %.0f s (--timeout)" % cfg.timeout if r.timed_out else
                                        (r.errors() or r.output.strip().splitlines() or ["no output"])[-1])
            for k in ids:
                if state[k] == "raw":
                    convert(dirs[k], keep_raw=cfg.keep_raw, progress=False)
            done = sum(state[k] in ("raw", "done") for k in ids)
            raise CaptureError(f"Godot capture failed (exit {r.returncode}): {why}; {done}/{len(ids)} "
                               "sequence(s) complete, rerun to resume")
    for k in ids:
        if state[k] == "raw":
            convert(dirs[k], keep_raw=cfg.keep_raw, progress=progress)
        elif state[k] == "todo":
            raise CaptureError(f"{dirs[k]}: capture finished but the sequence is incomplete")
    if cfg.check:
        from nss_train.data.datasets import check_dataset

        rep = check_dataset([dirs[k] for k in ids])
        if not rep.ok:
            raise CaptureError(f"captured data fails the check: {rep.problems[0]}")
    return [dirs[k] for k in ids]


def _run_godot(cfg: CaptureConfig, project: Path, scene: str, out: Path, todo: list[int], todo_dirs: list[Path],
               progress: bool):
    """Godot's run of the capture driver over the sequences `todo` (imported first when needed), with a
    progress bar; the RunResult."""
    from nss_godot.toolchain import GodotError, find_godot

    try:
        g = find_godot()
    except GodotError as e:
        raise CaptureError(str(e)) from None
    cache = project / ".godot/global_script_class_cache.cfg"
    if cfg.reimport or not cache.is_file() or "NeuralSSPairedCapture" not in cache.read_text(errors="replace"):
        r = g.import_project(project, timeout=600)
        if r.returncode != 0 or r.errors():
            raise CaptureError(f"importing {project} failed: {(r.errors() or r.output.splitlines() or ['?'])[-1]}")
    for d in todo_dirs:  # an interrupted capture of these starts over (scene time is deterministic)
        if d.exists():
            shutil.rmtree(d)
    low = _low(cfg)
    argv = ["--fixed-fps", f"{cfg.fps:g}", "--path", str(project), DRIVER, "--",
            "--scene", scene, "--out", str(out), "--seq-ids", ",".join(map(str, todo)),
            "--frames", str(cfg.frames), "--stride", str(cfg.stride or cfg.frames + 60),
            "--warmup", str(cfg.warmup), "--low", f"{low[0]}x{low[1]}", "--scale", str(cfg.scale),
            "--ss", str(cfg.ss), "--msaa", str(cfg.msaa), "--fixed-fps", f"{cfg.fps:g}",
            "--time-scale", f"{cfg.time_scale:g}", "--camera", cfg.camera, "--seed", str(cfg.seed),
            *(["--taa"] if cfg.taa else []),
            *(["--jitter", "--jitter-samples", str(cfg.jitter_samples)] if cfg.jitter else []),
            *(["--skip-ahead"] if cfg.skip_ahead else []), "--pre-frames", str(cfg.pre_frames),
            *cfg.extra.split()]
    # Godot runs in this thread (Ctrl-C kills its process group); a helper thread shows progress
    stop = threading.Event()

    def show():
        with tqdm(total=cfg.frames * len(todo), desc=f"capture {scene}", unit="frame", disable=not progress) as bar:
            while not stop.wait(1.0):
                bar.update(_count_raw(todo_dirs) - bar.n)
            bar.update(_count_raw(todo_dirs) - bar.n)

    th = threading.Thread(target=show, daemon=True)
    th.start()
    try:
        return g.run(argv, cfg.timeout, display=True, paths=[str(project), str(out)])
    finally:
        stop.set()
        th.join()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nss_train.sources.godot_pairs", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    defaults = CaptureConfig()
    helps = {"scene": "scene to capture, res://PATH.tscn", "out": "output dataset directory",
             "first": "number of the first sequence (its start frame is warmup + first * stride)",
             "stride": "frames between sequence starts (0: frames + 60)",
             "ss": "target supersampling per axis (render at scale*ss, box-downsample)",
             "camera": "scene | path:NODE[:SPEED] | anim:NODE:ANIMATION | replay:FILE",
             "time_scale": "scene time runs this many times faster (the demo reads it)",
             "extra": "extra user arguments passed to the scene (one string)",
             "check": "run nss_train.data.datasets's check on the result", "keep_raw": "keep the raw Godot buffers",
             "jitter": "raw sub-pixel jitter on the low-res frames (NeuralSSViewport.jitter), recorded per frame",
             "jitter_samples": "length of the Halton(2,3) jitter sequence",
             "pre_frames": "the target viewport renders from this many frames before each sequence",
             "skip_ahead": "start the frame counter at the first sequence (scenes driven by the frame index only)"}
    for name, val in asdict(defaults).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(val, bool):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=val, help=helps.get(name, " "))
        else:
            ap.add_argument(flag, type=type(val), default=val, help=helps.get(name, " "))
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    a = vars(ap.parse_args(argv))
    quiet = a.pop("quiet")
    cfg = CaptureConfig(**a)
    t0 = time.time()
    try:
        seqs = capture(cfg, progress=not quiet)
    except (CaptureError, FrameError) as e:
        print(f"godot_pairs: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("godot_pairs: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    print(f"godot_pairs: {len(seqs)} sequence(s) x {cfg.frames} frame(s) in {cfg.out} "
          f"({time.time() - t0:.0f} s); train with: python -m nss_train.train.fit --data {cfg.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
