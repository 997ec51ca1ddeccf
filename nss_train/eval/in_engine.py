"""Compare the addon's neural upscaler with what Godot ships, in the engine, on any scene.

    python tools/compare_upscalers.py --project DIR --scene res://S.tscn [--camera SPEC]
        [--low 320x180] [--scale 2] [--frames 24] [--warmup 16] [--time-scale 1] [--ref-ss 2]
        [--model M.onnx] [--methods native,bilinear,fsr1,fsr2,taa,neural] --out OUT

Every method renders the same deterministic frames of the user's scene (Godot --fixed-fps 30, so scene
time is frame / 30 x --time-scale; Engine.time_scale carries --time-scale) and the tool grabs what the
player sees (the root viewport's image in RenderingServer.frame_post_draw):

  native    the reference: rendered natively at --ref-ss x the output size, box-filtered to the output
            size in linear light (ref-ss^2 samples per pixel)
  bilinear  Godot's own 3D scaling: root viewport scaling_3d_mode BILINEAR at scaling_3d_scale 1/scale
            (with the texture mip bias Godot applies itself)
  fsr1      SCALING_3D_MODE_FSR at 1/scale        fsr2  SCALING_3D_MODE_FSR2 (FSR 2.2) at 1/scale
  taa       use_taa at 1/scale + bilinear
  neural    the addon's NeuralSSViewport in NEURAL mode with --model (default: the model the addon ships /
            the project's neural_ss/model_path), run through the addon's runtime in lock-step so every
            frame is upscaled

Camera (--camera): scene (the scene's own current camera, as the scene animates it; default),
path:NODE[:SPEED] (drive a Path3D / PathFollow3D of the scene at SPEED units per second),
anim:NODE:ANIM (an AnimationPlayer's animation, seeked to scene time), replay:FILE (JSON
{"transforms": [[bx, by, bz (basis columns, 3 numbers each), origin (3)], ...]}, one per frame; the tool
writes OUT/camera.json in this format from the reference run, so any run can be replayed).

The user's project is not touched: it is copied to a temporary directory, the repository's addon is put
in (addons/neural_ss/, plugin enabled) and a harness autoload is added (tools/compare_harness/). A scene
that cannot run (missing, no camera, Compatibility renderer, script errors) is answered with one line.

Writes OUT/report.json, OUT/report.md, OUT/side_by_side.png (native | bilinear | fsr2 | neural with zooms
of the reference's most detailed regions) and OUT/camera.json. Metrics: see nss_train/eval/metrics.py
and docs/compare.md.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nss_train.eval import metrics as M
from nss_train.eval import pictures as P
from nss_train.eval.runtime_process import Runtime, ToolError

ROOT = Path(__file__).resolve().parents[2]

ADDON = ROOT / "addons" / "neural_ss"
HARNESS = ROOT / "tools" / "compare_harness" / "nss_compare_harness.gd"
HARNESS_RES = "res://nss_compare/nss_compare_harness.gd"
METHODS = ("native", "bilinear", "fsr1", "fsr2", "taa", "neural")
FIXED_FPS = 30
PICTURE_METHODS = ("native", "bilinear", "fsr2", "neural")
ERROR_MAP_METHODS = ("neural", "fsr2")  # error_map.png: where the first has the larger error, where the second
# Frames grabbed beyond --frames: the neural path occasionally shows two upscaled frames within one game frame
# (its capture is read back asynchronously), so one frame is never on screen; the comparison uses the first
# --frames frames that every method showed.
SPARE = 3


def log(msg: str) -> None:
    print(f"compare_upscalers: {msg}", flush=True)


# --- arguments ----------------------------------------------------------------------------------

def parse_size(text: str, what: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if not m or min(int(m[1]), int(m[2])) < 8:
        raise ToolError(f"{what} {text!r}: expected WxH (at least 8x8), e.g. 320x180")
    return int(m[1]), int(m[2])


def parse_methods(text: str) -> list[str]:
    ms = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in ms if m not in METHODS]
    if bad or not ms:
        raise ToolError(f"--methods {text!r}: unknown {bad or 'empty list'}; expected a comma list of {','.join(METHODS)}")
    if "native" not in ms:
        ms.insert(0, "native")  # the reference every method is measured against
    return list(dict.fromkeys(ms))


def check_camera(spec: str) -> str:
    kind = spec.split(":", 1)[0]
    if kind == "scene" and spec == "scene":
        return spec
    if kind == "path" and len(spec.split(":")) in (2, 3) and spec.split(":")[1]:
        if len(spec.split(":")) == 3:
            try:
                float(spec.split(":")[2])
            except ValueError:
                raise ToolError(f"--camera {spec}: SPEED {spec.split(':')[2]!r} is not a number") from None
        return spec
    if kind == "anim" and len(spec.split(":")) == 3 and all(spec.split(":")[1:]):
        return spec
    if kind == "replay" and len(spec) > 7:
        f = Path(spec[7:]).resolve()
        if not f.is_file():
            raise ToolError(f"--camera {spec}: no such file {f}")
        try:
            tr = json.loads(f.read_text()).get("transforms")
        except (json.JSONDecodeError, AttributeError):
            tr = None
        if not isinstance(tr, list) or not tr or not all(isinstance(t, list) and len(t) == 12 for t in tr):
            raise ToolError(f"--camera {spec}: expected JSON {{\"transforms\": [[12 numbers], ...]}} (basis x, y, z "
                            "columns, origin), one per frame")
        return f"replay:{f}"
    raise ToolError(f"--camera {spec!r}: expected scene, path:NODE[:SPEED], anim:NODE:ANIM or replay:FILE")


# --- the user's project -------------------------------------------------------------------------

def config_get(text: str, section: str, key: str) -> str | None:
    """Raw value of key in [section] of a Godot project.godot / ConfigFile text (None when absent)."""
    cur = ""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            cur = s[1:-1]
        elif cur == section and s.split("=", 1)[0].strip() == key and "=" in s:
            return s.split("=", 1)[1].strip()
    return None


def config_set(text: str, section: str, key: str, value: str) -> str:
    """text with key=value in [section] (replacing an existing key, creating the section when absent)."""
    lines = text.splitlines()
    cur, head, end = "", None, None
    for i, line in enumerate(lines):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            if cur == section and end is None:
                end = i
            cur = s[1:-1]
            if cur == section:
                head = i
        elif cur == section and "=" in s and s.split("=", 1)[0].strip() == key:
            lines[i] = f"{key}={value}"
            return "\n".join(lines) + "\n"
    if head is None:
        return "\n".join(lines) + f"\n\n[{section}]\n\n{key}={value}\n"
    lines.insert(head + 1, f"{key}={value}")
    return "\n".join(lines) + "\n"


def check_project(project: Path, scene: str) -> str:
    """The project.godot text; one-line errors for what makes the scene unrunnable before Godot starts."""
    pg = project / "project.godot"
    if not pg.is_file():
        raise ToolError(f"--project {project}: no project.godot there (expected a Godot 4 project directory)")
    if not scene.startswith("res://") or not scene.endswith((".tscn", ".scn")):
        raise ToolError(f"--scene {scene!r}: expected a scene path like res://levels/level.tscn")
    if not (project / scene[len("res://"):]).is_file():
        raise ToolError(f"--scene {scene}: no such file {project / scene[len('res://'):]}")
    text = pg.read_text()
    method = (config_get(text, "rendering", "renderer/rendering_method") or '"forward_plus"').strip('"')
    if method != "forward_plus":
        raise ToolError(f"{pg}: rendering/renderer/rendering_method is {method!r}; Godot's FSR2 and TAA and the "
                        "addon need the Forward+ renderer (\"forward_plus\")")
    return text


def default_model(project: Path, project_text: str, addon: Path = ADDON) -> Path:
    """The model a user of the addon gets: the project's neural_ss/model_path, else the addon's default."""
    val = config_get(project_text, "neural_ss", "model_path")
    if val is None:
        src = (addon / "neural_ss_settings.gd").read_text()
        m = re.search(r'"model_path":\s*\[\s*"([^"]+)"', src)
        if not m:
            raise ToolError(f"cannot read the default model_path from {addon / 'neural_ss_settings.gd'}; pass --model")
        val = m[1]
    val = val.strip('"')
    if val.startswith("res://addons/neural_ss/"):
        return addon / val[len("res://addons/neural_ss/"):]
    if val.startswith("res://"):
        return (project / val[len("res://"):]).resolve()
    return Path(val)


def prepare_project(project: Path, dest: Path, project_text: str, addon: Path = ADDON) -> Path:
    """A copy of the project in dest with the repository's addon, its plugin enabled and the harness autoload."""
    def ignore(d: str, names: list[str]) -> list[str]:
        skip = [n for n in names if n in (".git", ".import_cache")]
        if Path(d).resolve() == (project / "addons").resolve():
            skip += [n for n in names if n == "neural_ss"]
        if Path(d).resolve() == project.resolve():
            skip += [n for n in names if n == ".godot"]
        return skip

    proj = dest / "project"
    shutil.copytree(project, proj, symlinks=False, ignore=ignore)
    shutil.copytree(addon, proj / "addons" / "neural_ss", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (proj / "nss_compare").mkdir(exist_ok=True)
    shutil.copy(HARNESS, proj / "nss_compare" / HARNESS.name)
    text = project_text
    plugin = "res://addons/neural_ss/plugin.cfg"
    cur = config_get(text, "editor_plugins", "enabled")
    if cur is None or plugin not in cur:
        items = re.findall(r'"([^"]*)"', cur or "")
        items.append(plugin)
        text = config_set(text, "editor_plugins", "enabled",
                          "PackedStringArray(" + ", ".join(f'"{i}"' for i in items) + ")")
    text = config_set(text, "autoload", "NSSCompareHarness", f'"*{HARNESS_RES}"')
    # with Godot's default physics jitter fix (0.5) the first process deltas under --fixed-fps are not 1/fps
    text = config_set(text, "physics", "common/physics_jitter_fix", "0.0")
    (proj / "project.godot").write_text(text)
    return proj


def prepare_and_import(godot, project: Path, dest: Path, addon: Path = ADDON, timeout: float = 600,
                       project_text: str | None = None) -> Path:
    """prepare_project() + Godot's import of the copy (needed once before running it)."""
    project = Path(project).resolve()
    text = project_text if project_text is not None else (project / "project.godot").read_text()
    log(f"{godot.describe()}; copying {project} to {dest} (addon + harness added there; your files are untouched)")
    proj = prepare_project(project, dest, text, Path(addon))
    r = godot.import_project(proj, timeout=timeout)
    if r.timed_out or r.errors():
        raise ToolError(f"import of {project} failed: {(r.errors() or ['timeout'])[0].strip()}")
    return proj


# --- running Godot --------------------------------------------------------------------------------

def godot_failure(r, what: str) -> str | None:
    """One line saying why a Godot run failed (None when it did not)."""
    for ln in r.output.splitlines():
        if ln.startswith("CMP_ERROR "):
            return ln[len("CMP_ERROR "):].strip()
    errs = r.errors()
    if errs:
        # the line after "SCRIPT ERROR: ..." names the file: keep both in one line
        lines = r.output.splitlines()
        i = lines.index(errs[0])
        where = lines[i + 1].strip() if i + 1 < len(lines) and lines[i + 1].strip().startswith("at:") else ""
        return f"{what}: script error: {errs[0].strip()} {where}".strip()
    if r.timed_out:
        return f"{what}: Godot did not finish in {r.seconds:.0f} s (last output: {r.output.strip().splitlines()[-1:]})"
    if r.returncode != 0:
        tail = [ln for ln in r.output.strip().splitlines() if ln.strip()][-1:]
        return f"{what}: Godot exited {r.returncode} (last output: {tail})"
    if "CMP_DONE" not in r.output:
        return f"{what}: Godot ended without grabbing the frames (harness not loaded?)"
    return None


def run_method(godot, proj: Path, scene: str, method: str, out: Path, *, low, scale, frames, warmup, time_scale,
               ref_ss, camera, runtime=None, timeout=600.0, jitter: bool = False, keep_ui: bool = False) -> dict:
    """One Godot run of one method; the grabs land in out/<method>/. Returns the run's facts."""
    size = (low[0] * scale, low[1] * scale)
    win = (size[0] * ref_ss, size[1] * ref_ss) if method == "native" else size
    d = out / method
    if d.exists():
        shutil.rmtree(d)
    user = ["--cmp-method", method, "--cmp-out", str(d), "--cmp-frames", str(frames + SPARE),
            "--cmp-warmup", str(warmup),
            "--cmp-scale", str(scale), "--cmp-size", f"{size[0]}x{size[1]}", "--cmp-time-scale", str(time_scale),
            "--cmp-camera", camera, "--cmp-scene", scene, "--cmp-keep-ui", "1" if keep_ui else "0"]
    if runtime is not None:
        user += runtime.game_args() + ["--cmp-jitter", "1" if jitter else "0"]
    args = ["--audio-driver", "Dummy", "--fixed-fps", str(FIXED_FPS), "--resolution", f"{win[0]}x{win[1]}",
            "--windowed", scene, "--", *user]
    paths = [str(d.parent)] + ([camera[7:]] if camera.startswith("replay:") else [])
    r = godot.run(["--path", str(proj), *args], timeout, display=True, paths=[str(proj), *paths],
                  done_marker="CMP_DONE")
    why = godot_failure(r, f"{scene} ({method})")
    if why:
        raise ToolError(why)
    info = {}
    for ln in r.output.splitlines():
        if ln.startswith("CMP_INFO "):
            info = json.loads(ln[len("CMP_INFO "):])
        elif ln.startswith("CMP_MODEL "):
            info["model_info"] = json.loads(ln[len("CMP_MODEL "):])
        elif ln.startswith("neural_ss: ") and ("runtime" in ln or "fallback" in ln) and method == "neural":
            info.setdefault("addon_lines", []).append(ln.strip())  # the addon's own line saying which path is live
    return {"dir": d, "seconds": r.seconds, "info": info, "window": list(win)}


def grabbed_frames(d: Path) -> set[int]:
    idx = d / "index.jsonl"
    if not idx.exists():
        return set()
    return {int(json.loads(ln)["content"]) for ln in idx.read_text().splitlines() if ln.strip()}


def load_grabs(d: Path, expect: tuple[int, int], frames: list[int]) -> tuple[list[np.ndarray], list[dict]]:
    rows = {}
    idx = d / "index.jsonl"
    if idx.exists():
        for ln in idx.read_text().splitlines():
            if ln.strip():
                r = json.loads(ln)
                rows[int(r["content"])] = r
    missing = [f for f in frames if f not in rows]
    if missing:
        raise ToolError(f"{d}: no grab of frame(s) {missing[:5]} (have {sorted(rows)[:8]}...)")
    imgs = []
    for f in frames:
        r = rows[f]
        if (r["w"], r["h"]) != tuple(expect):
            raise ToolError(f"{d}: frame {f} is {r['w']}x{r['h']}, expected {expect[0]}x{expect[1]} (window clamped "
                            "to the screen? use a smaller --low or --ref-ss)")
        a = np.fromfile(d / r["file"], dtype=np.uint8)
        imgs.append(a.reshape(r["h"], r["w"], 3).transpose(2, 0, 1).astype(np.float32) / 255.0)
    return imgs, [rows[f] for f in frames]


# --- the comparison ---------------------------------------------------------------------------------

def flip_subset(n: int, most: int) -> list[int]:
    """Indices of the frames FLIP is computed on: all when most <= 0 or n <= most, else `most` evenly spaced
    (FLIP costs seconds per 640x360 frame on a CPU)."""
    if most <= 0 or n <= most:
        return list(range(n))
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, most)})


def score(out: list[np.ndarray], ref: list[np.ndarray], flip_frames: int = 0) -> dict:
    mses = [M.mse(o, r) for o, r in zip(out, ref)]
    ps = [M.psnr(o, r) for o, r in zip(out, ref)]
    ss = [M.ssim(o, r) for o, r in zip(out, ref)]
    fi = flip_subset(len(out), flip_frames)
    fl = [M.flip(ref[i], out[i]) for i in fi]
    fk = M.flicker(out, ref)
    al = M.alignment(out, ref)
    stat = lambda v: {"min": float(np.min(v)), "max": float(np.max(v)), "std": float(np.std(v))} if v else None  # noqa: E731
    return {
        "psnr": M.psnr_of_mean_mse(mses), "psnr_frames": ps, "psnr_spread": stat(ps), "mse_frames": mses,
        "ssim": float(np.mean(ss)), "ssim_frames": ss, "ssim_spread": stat(ss),
        "flip": float(np.mean(fl)) if fl else None, "flip_frames": fl, "flip_frame_index": fi,
        "flip_spread": stat(fl),
        "flicker": float(np.mean(fk)) if fk else None, "flicker_frames": fk,
        "aligned": al["aligned"], "alignment": al,
    }


def compare(project: Path, scene: str, out: Path, *, camera: str = "scene", low=(320, 180), scale: int = 2,
            frames: int = 24, warmup: int = 16, time_scale: float = 1.0, ref_ss: int = 2, model: str | None = None,
            methods=METHODS, timeout: float = 600.0, keep: bool = False, godot=None, threads: int | None = None,
            picture: bool = True, addon: Path = ADDON, prepared: Path | None = None, small_picture: bool = False,
            keep_ui: bool = False, flip_frames: int = 8) -> dict:
    """Run every method on the scene, compare with the native reference, write the report. Returns it.

    prepared: a project copy made by prepare_and_import() to reuse (several scenes or cameras of one project)."""
    from nss_godot.toolchain import GodotError, ensure

    t_start = time.monotonic()
    project = Path(project).resolve()
    out = Path(out).resolve()
    methods, camera = _check_options(methods, camera, frames, warmup, scale, ref_ss)
    text = check_project(project, scene)
    model_path, wants_jitter = _check_model(methods, model, project, text, Path(addon), scale)
    out.mkdir(parents=True, exist_ok=True)
    try:
        godot = godot or ensure(verbose=False)
    except GodotError as e:
        raise ToolError(str(e)) from None
    size = (low[0] * scale, low[1] * scale)
    tmp = Path(tempfile.mkdtemp(prefix="nss_compare_", dir="/tmp"))
    try:
        proj = prepared or prepare_and_import(godot, project, tmp, Path(addon), timeout, text)
        runs = _run_methods(godot, proj, scene, methods, tmp, model_path, threads, low=low, scale=scale,
                            frames=frames, warmup=warmup, time_scale=time_scale, ref_ss=ref_ss, camera=camera,
                            timeout=timeout, jitter=wants_jitter, keep_ui=keep_ui)
        ids, skipped = _frames_shown_by_all(runs, methods, warmup, frames)
        nat, nat_rows = load_grabs(runs["native"]["dir"], (size[0] * ref_ss, size[1] * ref_ss), ids)
        ref = [M.box_down_display(x, ref_ss) for x in nat]
        del nat
        log("scoring (PSNR, SSIM, FLIP, flicker, frame alignment) ...")
        results, shown, sq_err = _score_methods(runs, methods, ref, ids, size, low, flip_frames, wants_jitter)
        cam = json.loads((runs["native"]["dir"] / "camera.json").read_text())
        cam.update(fps=FIXED_FPS, time_scale=time_scale, scene=scene)
        P.atomic_write_text(out / "camera.json", json.dumps(cam) + "\n")
        report = _report(runs["native"], results, godot, project=project, scene=scene, camera=camera, low=low,
                         scale=scale, size=size, ids=ids, frames=frames, skipped=skipped, warmup=warmup,
                         time_scale=time_scale, ref_ss=ref_ss, ref=ref, model_path=model_path, keep_ui=keep_ui,
                         flip_frames=flip_frames)
        report["seconds"] = round(time.monotonic() - t_start, 1)
        if picture:
            _pictures(report, out, ref, shown, sq_err, ids, small_picture)
        P.atomic_write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
        P.atomic_write_text(out / "report.md", markdown(report))
        return report
    finally:
        if keep:
            log(f"kept the temporary project and grabs in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _check_options(methods, camera: str, frames: int, warmup: int, scale: int, ref_ss: int) -> tuple[list, str]:
    methods = parse_methods(",".join(methods)) if not isinstance(methods, str) else parse_methods(methods)
    camera = check_camera(camera)
    if frames < 3:
        raise ToolError(f"--frames {frames}: need at least 3 (the frame-alignment check compares neighbours)")
    if warmup < 1:
        raise ToolError(f"--warmup {warmup}: need at least 1")
    if scale not in (2, 3, 4):
        raise ToolError(f"--scale {scale}: expected 2, 3 or 4")
    if ref_ss not in (1, 2, 3, 4):
        raise ToolError(f"--ref-ss {ref_ss}: expected 1..4")
    return methods, camera


def _check_model(methods, model, project: Path, text: str, addon: Path, scale: int) -> tuple[Path | None, bool]:
    """(the model neural runs, whether it wants a jittered render); (None, False) without neural."""
    if "neural" not in methods:
        return None, False
    model_path = Path(model).resolve() if model else default_model(project, text, addon)
    if not model_path.is_file():
        raise ToolError(f"model {model_path} not found (pass --model M.onnx, exported with tools/export_onnx.py)")
    from nss_runtime.session import Session, SessionError
    try:
        minfo = Session(str(model_path)).info
        ms = minfo.scale
        wants_jitter = bool(minfo.meta.get("jitter"))
    except SessionError as e:
        raise ToolError(f"model {model_path}: {e}") from None
    if ms != scale:
        raise ToolError(f"model {model_path} upscales x{ms}, but --scale is {scale}")
    return model_path, wants_jitter


def _run_methods(godot, proj: Path, scene: str, methods, tmp: Path, model_path, threads, *, low, scale, frames,
                 warmup, ref_ss, time_scale, **kw) -> dict[str, dict]:
    """Every method's Godot run (neural with its own runtime process); {method: run_method's result}."""
    size = (low[0] * scale, low[1] * scale)
    runs: dict[str, dict] = {}
    for i, m in enumerate(methods):
        res = f"{size[0] * ref_ss}x{size[1] * ref_ss} box-filtered to {size[0]}x{size[1]}" if m == "native" \
            else f"{low[0]}x{low[1]} -> {size[0]}x{size[1]}"
        log(f"[{i + 1}/{len(methods)}] {m}: {warmup} warm-up + {frames} frames, {res}, time-scale {time_scale} ...")
        rt = None
        if m == "neural":
            rt = Runtime(str(model_path), tmp / "runtime", threads)
        try:
            runs[m] = run_method(godot, proj, scene, m, tmp / "grabs", low=low, scale=scale, frames=frames,
                                 warmup=warmup, time_scale=time_scale, ref_ss=ref_ss, runtime=rt, **kw)
        finally:
            if rt is not None:
                rt.stop()
                runs.setdefault(m, {})["runtime_log"] = rt.log_path.read_text()[-2000:]
        log(f"    {m}: done in {runs[m]['seconds']:.0f} s")
    return runs


def _frames_shown_by_all(runs: dict, methods, warmup: int, frames: int) -> tuple[list[int], dict]:
    """The first `frames` frames every method showed, and per method the frames it never showed."""
    shown_by = {m: grabbed_frames(runs[m]["dir"]) for m in methods}
    ids = [f for f in range(warmup, warmup + frames + SPARE) if all(f in s for s in shown_by.values())][:frames]
    skipped = {m: [f for f in range(warmup, ids[-1] + 1 if ids else warmup) if f not in s]
               for m, s in shown_by.items()}
    skipped = {m: v for m, v in skipped.items() if v}
    if skipped:
        log(f"frames never on screen (two upscaled frames in one game frame), left out for every method: {skipped}")
    if len(ids) < 3:
        raise ToolError(f"only {len(ids)} of {frames} frames were shown by every method ({skipped}); "
                        "try a longer --warmup")
    return ids, skipped


def _score_methods(runs: dict, methods, ref: list, ids: list[int], size, low, flip_frames: int,
                   wants_jitter: bool) -> tuple[dict, dict, dict]:
    """(metrics per method, the middle frame of the picture methods, per-pixel MSE of the error-map methods)."""
    results: dict[str, dict] = {}
    shown: dict[str, np.ndarray] = {}
    sq_err: dict[str, np.ndarray] = {}  # per-pixel MSE over the frames (error_map.png)
    mid = len(ids) // 2
    for m in methods:
        if m == "native":
            continue
        imgs, rows = load_grabs(runs[m]["dir"], size, ids)
        results[m] = score(imgs, ref, flip_frames)
        if m in ERROR_MAP_METHODS:
            sq_err[m] = np.mean([((a - r) ** 2).mean(0) for a, r in zip(imgs, ref)], axis=0)
        info = runs[m]["info"]
        results[m].update({
            "godot_seconds": round(runs[m]["seconds"], 1),
            "render_size": ([int(low[0]), int(low[1])] if m != "neural" else rows[0].get("low_res")),
            "output_size": list(size), "settings": {k: info.get(k) for k in ("scaling_3d_mode", "scaling_3d_scale",
                                                                             "use_taa")},
            "iteration_of_frame": [r["iteration"] for r in rows],
        })
        if m == "neural":
            lag = sorted({r["iteration"] - r["content"] for r in rows})
            results[m]["display_lag_frames"] = lag
            results[m]["model_info"] = info.get("model_info")
            results[m]["jitter"] = wants_jitter
            results[m]["addon_lines"] = info.get("addon_lines", [])
        if m in PICTURE_METHODS:
            shown[m] = imgs[mid]
    return results, shown, sq_err


def _report(native: dict, results: dict, godot, *, project, scene, camera, low, scale, size, ids, frames, skipped,
            warmup, time_scale, ref_ss, ref, model_path, keep_ui, flip_frames) -> dict:
    ninfo = native["info"]
    report = {
        "tool": "tools/compare_upscalers.py", "project": str(project), "scene": scene, "camera": camera,
        "godot": ninfo.get("engine", godot.version_string), "adapter": ninfo.get("adapter"),
        "low": list(low), "scale": scale, "output": list(size), "frames": len(ids), "frames_requested": frames,
        "frame_ids": ids, "frames_not_shown": skipped, "warmup": warmup,
        "fixed_fps": FIXED_FPS, "time_scale": time_scale,
        "reference": {"method": "native", "ref_ss": ref_ss, "render_size": [size[0] * ref_ss, size[1] * ref_ss],
                      "how": f"native render at {ref_ss}x the output size, grabbed, box-filtered {ref_ss}x{ref_ss} "
                             "in linear light (sRGB decoded, averaged, encoded)",
                      "godot_seconds": round(native["seconds"], 1),
                      "temporal_change": float(np.mean(M.temporal_change(ref))),
                      "temporal_change_frames": M.temporal_change(ref)},
        "model": str(model_path) if model_path else None,
        "ui": "kept" if keep_ui else f"the scene's own 2D hidden ({ninfo.get('ui_items_hidden', 0)} items)",
        "display_space": "what the player sees: the root viewport's 8-bit sRGB image (RenderingServer."
                         "frame_post_draw), values / 255",
        "metrics": {"psnr": "dB, 10 log10(1 / mean over frames of per-frame MSE)",
                    "ssim": "mean over frames (11x11 Gaussian window, sigma 1.5)",
                    "flip": "flip-evaluator LDR, 67 ppd, mean over pixels, mean over frames "
                            + ("(all)" if flip_frames <= 0 or len(ids) <= flip_frames
                               else f"({flip_frames} evenly spaced: flip_frame_index)"),
                    "flicker": "mean |(out_t - out_t-1) - (ref_t - ref_t-1)| over pixels and frame pairs",
                    "alignment": "each frame is closer (MSE) to reference frame i than to i-1 and i+1"},
        "methods": results,
        "frames_aligned": all(v["aligned"] for v in results.values()),
        "seconds": None,
    }
    if "neural" in results:
        report["neural_minus"] = {m: {"psnr_db": results["neural"]["psnr"] - v["psnr"],
                                      "flip": (results["neural"]["flip"] or 0) - (v["flip"] or 0)}
                                  for m, v in results.items() if m != "neural"}
    return report


def _pictures(report: dict, out: Path, ref: list, shown: dict, sq_err: dict, ids: list[int], small: bool) -> None:
    """side_by_side.png (and error_map.png when both of its methods ran), recorded in the report."""
    mid = len(ids) // 2
    panels = [("native (ref)", ref[mid])] + [(m, shown[m]) for m in PICTURE_METHODS if m in shown]
    regions = P.side_by_side(out / "side_by_side.png", panels, palette=small)
    report["picture"] = {"file": "side_by_side.png", "frame": ids[mid], "panels": [p[0] for p in panels],
                         "zoom_regions_yxhw": [list(map(int, r)) for r in regions]}
    if all(m in sq_err for m in ERROR_MAP_METHODS):
        a, b = ERROR_MAP_METHODS
        report["error_map"] = P.error_map(out / "error_map.png", np.mean(ref, axis=0), sq_err[a], sq_err[b],
                                          (a, b), palette=small)


def markdown(r: dict) -> str:
    ref = r["reference"]
    lines = [
        f"# compare_upscalers: {r['scene']} ({Path(r['project']).name})", "",
        f"{r['low'][0]}x{r['low'][1]} -> {r['output'][0]}x{r['output'][1]} (x{r['scale']}), {r['frames']} frames after "
        f"{r['warmup']} warm-up, --fixed-fps {r['fixed_fps']}, time-scale {r['time_scale']}, camera `{r['camera']}`. "
        f"Godot {r['godot']} ({r['adapter']}).", "",
        f"Reference: {ref['how']} ({ref['render_size'][0]}x{ref['render_size'][1]}). Display space: {r['display_space']}."
        f" Model (neural): `{r['model']}`.", "",
        "| method | PSNR (dB) ↑ | per-frame PSNR min..max | SSIM ↑ | FLIP ↓ | flicker ↓ | frames aligned |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, v in r["methods"].items():
        sp = v["psnr_spread"]
        flip = f"{v['flip']:.4f}" if v["flip"] is not None else "-"
        fk = f"{v['flicker']:.4f}" if v["flicker"] is not None else "-"
        al = v["alignment"]
        aligned = "yes" if v["aligned"] else f"NO ({len(al['failures'])} of {al['comparisons']})"
        lines.append(f"| {m} | {v['psnr']:.2f} | {sp['min']:.2f}..{sp['max']:.2f} | {v['ssim']:.4f} | {flip} | {fk} | "
                     f"{aligned} |")
    lines += ["", f"Reference's own temporal change (mean |ref_t - ref_t-1|): {ref['temporal_change']:.4f}."]
    if "neural_minus" in r:
        lines += ["", "neural minus each method: " + ", ".join(
            f"{m} {d['psnr_db']:+.2f} dB" for m, d in r["neural_minus"].items()) + "."]
    if "neural" in r["methods"]:
        lag = r["methods"]["neural"].get("display_lag_frames")
        lines += ["", f"neural: lock-step; each upscaled frame is shown {lag} frame(s) after the frame it upscales "
                      "(the capture is read back asynchronously) and is compared with the reference of the frame it "
                      "upscales."]
    lines += ["", "Frame alignment: " + ("every method's frame i is closer to reference frame i than to i-1 and i+1."
                                         if r["frames_aligned"] else "FAILED for some method (see the table): "
                                         "its frames are not the reference's frames."), ""]
    if "picture" in r:
        lines += [f"![side by side]({r['picture']['file']}) frame {r['picture']['frame']}: "
                  f"{' | '.join(r['picture']['panels'])}; below: zooms of the reference's most detailed regions.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--project", required=True, help="Godot 4 project directory (project.godot)")
    ap.add_argument("--scene", required=True, help="scene to run, res://...tscn")
    ap.add_argument("--camera", default="scene", help="scene | path:NODE[:SPEED] | anim:NODE:ANIM | replay:FILE")
    ap.add_argument("--low", default="320x180", help="low (render) resolution WxH; output = low x scale")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--frames", type=int, default=24, help="frames compared")
    ap.add_argument("--warmup", type=int, default=16, help="frames rendered before the compared ones")
    ap.add_argument("--time-scale", type=float, default=1.0, help="Engine.time_scale (motion per frame)")
    ap.add_argument("--ref-ss", type=int, default=2, help="reference rendered at this many times the output size")
    ap.add_argument("--model", default=None, help="ONNX model for neural (default: the addon's shipped default)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=900, help="seconds per Godot run")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (neural)")
    ap.add_argument("--addon", default=str(ADDON), help="the addon folder to put in (default: this repository's)")
    ap.add_argument("--small-picture", action="store_true", help="write side_by_side.png with a 256-colour palette")
    ap.add_argument("--flip-frames", type=int, default=8,
                    help="FLIP on this many evenly spaced frames (0 = all; FLIP takes seconds per frame on a CPU)")
    ap.add_argument("--keep-ui", action="store_true",
                    help="keep the scene's own 2D (HUD) in the grabs (default: hidden, it is not upscaled)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary project copy and the raw grabs")
    a = ap.parse_args(argv)
    try:
        low = parse_size(a.low, "--low")
        rep = compare(Path(a.project), a.scene, Path(a.out), camera=a.camera, low=low, scale=a.scale, frames=a.frames,
                      warmup=a.warmup, time_scale=a.time_scale, ref_ss=a.ref_ss, model=a.model,
                      methods=parse_methods(a.methods), timeout=a.timeout, keep=a.keep, threads=a.threads,
                      addon=Path(a.addon), small_picture=a.small_picture, keep_ui=a.keep_ui,
                      flip_frames=a.flip_frames)
    except ToolError as e:
        print(f"compare_upscalers: {e}", file=sys.stderr)
        return 1
    for m, v in rep["methods"].items():
        flip = f"{v['flip']:.4f}" if v["flip"] is not None else "-"
        print(f"  {m:9s} PSNR {v['psnr']:6.2f} dB  SSIM {v['ssim']:.4f}  FLIP {flip}  flicker {v['flicker']:.4f}  "
              f"aligned {'yes' if v['aligned'] else 'NO'}")
    out = Path(a.out)
    print(f"wrote {out / 'report.json'}, {out / 'report.md'}, {out / 'side_by_side.png'} ({rep['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
