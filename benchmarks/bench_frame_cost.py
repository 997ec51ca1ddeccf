"""Frame cost in the engine: what each upscaler adds to a Godot frame, taken in one interleaved run.

    python benchmarks/bench_frame_cost.py --out benchmarks/results/frame_cost
    python benchmarks/bench_frame_cost.py --out OUT --scenes demo --sizes 1280x720 --frames 24 --reps 3 --kernels

Godot (nss_godot.toolchain: Godot 4.6 under Xvfb + lavapipe here) renders real pixels of the demo
(godot_project/) and of evaluation levels (eval_levels/), one Godot run per (scene, output size, method,
repetition), deterministic frames (--fixed-fps 30), vsync off, the scene's own camera. Methods, all at
--scale 2 (render size = output / 2):

  bilinear     Godot's own: root viewport scaling_3d_mode BILINEAR, scaling_3d_scale 1/scale (the baseline)
  fsr2         SCALING_3D_MODE_FSR2 (FSR 2.2) at 1/scale       taa    use_taa + bilinear at 1/scale
  neural       the addon's NeuralSSViewport in NEURAL mode, neural_ss/runtime = gpu (the network as
               RenderingDevice compute shaders: capture -> network -> present)
  neural_skip  the same with --nss-gpu-skip-network: capture + present, the network never runs (the present
               pass shows the captured low-res colour); neural - neural_skip = the network's share
  native       (optional) rendered at the output size, no upscaling
  addon_bilinear  (optional) the addon's node in BILINEAR mode: its own low-res render + capture, no present

The methods are set up by the comparison tool's harness (tools/compare_harness/, the same settings
tools/compare_upscalers.py measures quality with); benchmarks/frame_cost_harness/ replaces its grabs by
timing, so nothing is read back in the timed frames. Per run: --warmup frames, then --frames timed frames:
  wall ms   time between consecutive RenderingServer.frame_post_draw signals (the whole frame);
  GPU ms    RenderingServer.viewport_get_measured_render_time_gpu summed over the root viewport and every
            SubViewport (GPU timestamps Godot takes around each viewport; compositor effects run inside);
  per kernel (--kernels): one more neural run per repetition with --nss-gpu-profile, the GPU runtime's
            RenderingDevice timestamps around every dispatch (one compute list per dispatch: slower, so it is
            reported apart and never enters the tables).
Repetitions are interleaved (bilinear fsr2 taa neural neural_skip bilinear fsr2 ...), and every difference
is taken within one repetition: added = method - bilinear of the same repetition, ratio = added / FSR2's added;
the tables give the median over repetitions with min..max.

Under lavapipe (Mesa's CPU Vulkan) the "GPU" work runs on the same CPU cores as everything else: the wall
time difference to bilinear IS each upscaler's cost on that device, and a shared machine makes every figure
noisy; the ratios taken within one interleaved run are what count.

On a real GPU (issue 18 item 4; not run yet: no GPU machine was lent to this task). Godot 4.6 cannot render
without a display server (--headless is its dummy renderer: no RenderingDevice, the addon falls back), so
"headless" means an X display that nobody looks at. Use a host Godot 4.6 binary (GODOT=...; the project's
chroot only has lavapipe) and the GPU's Vulkan driver:

    # 1. Xvfb as here, Vulkan on the GPU's driver (the swapchain is copied to Xvfb; works where the driver
    #    presents to a non-GPU X server):
    GODOT=/path/to/godot4.6 VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/nvidia_icd.json \
        python benchmarks/bench_frame_cost.py --sizes 1920x1080,3840x2160 --out benchmarks/results/frame_cost_gpu
    # 2. else an X server on the GPU itself (NVIDIA, no monitor) and --display host (no Xvfb):
    nvidia-xconfig --allow-empty-initial-configuration --virtual=3840x2160 -o /tmp/xorg.conf
    Xorg :1 -config /tmp/xorg.conf -noreset &
    GODOT=/path/to/godot4.6 DISPLAY=:1 python benchmarks/bench_frame_cost.py --display host \
        --sizes 1920x1080,3840x2160 --out benchmarks/results/frame_cost_gpu

The adapter Godot rendered on is printed after the first run and heads the output; --display host stops at
once when it is lavapipe/llvmpipe (a CPU device) unless --allow-cpu-device is given. --gpu-index picks the
Vulkan device, --rendering-driver the driver (vulkan by default). Writes OUT.md and OUT.json (atomically).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from nss_train.eval import in_engine as C
from nss_train.eval.pictures import atomic_write_text
from nss_train.eval.runtime_process import ToolError

ROOT = Path(__file__).resolve().parents[1]

HARNESS = ROOT / "benchmarks" / "frame_cost_harness" / "nss_frame_cost_harness.gd"
HARNESS_RES = "res://nss_compare/nss_frame_cost_harness.gd"
SCENES = {  # name -> (project, scene)
    "demo": (ROOT / "godot_project", "res://demo.tscn"),
    "textures_and_text": (ROOT / "eval_levels", "res://textures_and_text.tscn"),
    "thin_and_foliage": (ROOT / "eval_levels", "res://thin_and_foliage.tscn"),
    "motion_and_effects": (ROOT / "eval_levels", "res://motion_and_effects.tscn"),
}
METHODS = ("native", "bilinear", "fsr2", "taa", "neural", "neural_skip", "addon_bilinear")
DEFAULT_METHODS = "bilinear,fsr2,taa,neural,neural_skip"
BASELINE = "bilinear"
REFERENCE = "fsr2"
FIXED_FPS = 30
LARGE = "2560x1440"
CPU_DEVICES = ("llvmpipe", "lavapipe")


def log(msg: str) -> None:
    print(f"bench_frame_cost: {msg}", flush=True)


def parse_sizes(text: str, scale: int) -> list[tuple[int, int]]:
    out = []
    for s in [x for x in text.split(",") if x.strip()]:
        w, h = C.parse_size(s, "--sizes")
        if w % (2 * scale) or h % (2 * scale):
            raise ToolError(f"--sizes {s}: width and height must be multiples of {2 * scale} (2 x --scale: the "
                            "network's render size must be even)")
        out.append((w, h))
    if not out:
        raise ToolError(f"--sizes {text!r}: expected a comma list of output sizes WxH, e.g. 1280x720,1920x1080")
    return out


def parse_methods(text: str) -> list[str]:
    ms = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    bad = [m for m in ms if m not in METHODS]
    if bad or not ms:
        raise ToolError(f"--methods {text!r}: unknown {bad or 'empty list'}; expected a comma list of {','.join(METHODS)}")
    if BASELINE not in ms:
        raise ToolError(f"--methods {text!r}: needs {BASELINE} (every cost is measured against it)")
    return ms


def parse_scenes(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [n for n in names if n not in SCENES]
    if bad or not names:
        raise ToolError(f"--scenes {text!r}: unknown {bad or 'empty list'}; expected some of {','.join(SCENES)}")
    return names


# --- the project copy ---------------------------------------------------------------------------

def prepare(godot, project: Path, dest: Path, timeout: float) -> Path:
    """A copy of the project with the repository's addon, the timing harness as autoload and
    neural_ss/runtime = gpu; imported once."""
    text = C.check_project(project, next(s for p, s in SCENES.values() if p == project))
    proj = C.prepare_project(project, dest, text)
    shutil.copy(HARNESS, proj / "nss_compare" / HARNESS.name)
    t = (proj / "project.godot").read_text()
    t = C.config_set(t, "autoload", "NSSCompareHarness", f'"*{HARNESS_RES}"')
    t = C.config_set(t, "neural_ss", "runtime", '"gpu"')
    (proj / "project.godot").write_text(t)
    r = godot.import_project(proj, timeout=timeout)
    if r.timed_out or r.errors():
        raise ToolError(f"import of {project} failed: {(r.errors() or ['timeout'])[0].strip()}")
    return proj


def godot_args(scene: str, method: str, size: tuple[int, int], scale: int, warmup: int, frames: int, out: Path,
               rendering_driver: str, profile: bool = False, gpu_index: int | None = None) -> list[str]:
    harness_method = "neural" if method.startswith(("neural", "addon")) else method
    user = ["--cmp-method", harness_method, "--cmp-out", str(out), "--cmp-frames", str(frames),
            "--cmp-warmup", str(warmup), "--cmp-scale", str(scale), "--cmp-size", f"{size[0]}x{size[1]}",
            "--cmp-time-scale", "1", "--cmp-camera", "scene", "--cmp-scene", scene]
    if method.startswith("neural"):
        user += ["--nss-runtime=gpu"]
    if method == "neural_skip":
        user += ["--nss-gpu-skip-network"]
    if method == "addon_bilinear":
        user += ["--cmp-addon-mode", "bilinear"]
    if profile:
        user += ["--nss-gpu-profile"]
    gpu = [] if gpu_index is None else ["--gpu-index", str(gpu_index)]
    return ["--audio-driver", "Dummy", "--rendering-driver", rendering_driver, *gpu, "--fixed-fps", str(FIXED_FPS),
            "--disable-vsync", "--resolution", f"{size[0]}x{size[1]}", "--windowed", scene, "--", *user]


def run_one(godot, proj: Path, scene: str, method: str, size, a, out: Path, profile: bool = False) -> dict:
    if out.exists():
        shutil.rmtree(out)
    args = godot_args(scene, method, size, a.scale, a.warmup, a.frames, out, a.rendering_driver, profile,
                      a.gpu_index)
    r = godot.run(["--path", str(proj), *args], a.timeout, display=True, paths=[str(proj), str(out.parent)],
                  done_marker="CMP_DONE")
    why = C.godot_failure(r, f"{scene} ({method})")
    if why:
        raise ToolError(why)
    tf = out / "timing.json"
    if not tf.is_file():
        raise ToolError(f"{scene} ({method}): the harness wrote no {tf}")
    t = json.loads(tf.read_text())
    t["seconds"] = round(r.seconds, 1)
    t["addon_lines"] = [ln.strip() for ln in r.output.splitlines() if ln.startswith("neural_ss: ")]
    check_run(t, scene, method, size, a)
    return t


def check_run(t: dict, scene: str, method: str, size, a) -> None:
    """One-line errors for a run that did not measure what it says."""
    what = f"{scene} {size[0]}x{size[1]} ({method})"
    if len(t["frames"]) != a.frames:
        raise ToolError(f"{what}: {len(t['frames'])} timed frames, expected {a.frames}")
    if list(t["window"]) != list(size):
        raise ToolError(f"{what}: the window is {t['window'][0]}x{t['window'][1]}, expected {size[0]}x{size[1]} "
                        "(clamped to the screen? the Xvfb screen is nss_godot.toolchain.XVFB_SCREEN)")
    want = [size[0], size[1]] if method == "native" else [size[0] // a.scale, size[1] // a.scale]
    if list(t["render_size"]) != want:
        raise ToolError(f"{what}: render size {t['render_size']}, expected {want}")
    if method.startswith("neural"):
        if t.get("fresh_frames", 0) != a.frames:
            raise ToolError(f"{what}: only {t.get('fresh_frames', 0)} of {a.frames} timed frames showed the upscaled "
                            f"image (the addon fell back to bilinear: {t.get('runtime')}; {t.get('addon_lines')})")
        ran = t.get("network_frames_run", 0)
        if method == "neural" and ran < a.warmup + a.frames - 2:
            raise ToolError(f"{what}: the network ran {ran} times in {a.warmup + a.frames} frames")
        if method == "neural_skip" and ran != 0:
            raise ToolError(f"{what}: the network ran {ran} times with --nss-gpu-skip-network (expected 0)")


def is_cpu_device(adapter: str) -> bool:
    return any(c in adapter.lower() for c in CPU_DEVICES)


def check_device(adapter: str, a) -> None:
    if a.display == "host" and is_cpu_device(adapter) and not a.allow_cpu_device:
        raise ToolError(f"--display host: Godot renders on {adapter!r}, a CPU device, not the GPU (check the Vulkan "
                        "driver / VK_ICD_FILENAMES, --gpu-index; --allow-cpu-device accepts it)")


# --- figures --------------------------------------------------------------------------------------

def spread(v: list[float]) -> dict:
    return {"min": round(min(v), 3), "median": round(statistics.median(v), 3), "max": round(max(v), 3)}


def summarise(runs: dict, methods: list[str], kernels: dict) -> list[dict]:
    """runs[(scene, size)][method] = [timing of rep 0, rep 1, ...] -> one table row block per (scene, size)."""
    blocks = []
    for (scene, size), per in runs.items():
        reps = min(len(v) for v in per.values())
        rows = {}
        for m in methods:
            wall = [statistics.median(f["wall_ms"] for f in per[m][i]["frames"]) for i in range(reps)]
            gpu = [statistics.median(f["gpu_ms"] for f in per[m][i]["frames"]) for i in range(reps)]
            frames = [f["wall_ms"] for i in range(reps) for f in per[m][i]["frames"]]
            vps: dict[str, list[float]] = {}
            for i in range(reps):
                for f in per[m][i]["frames"]:
                    for name, ms in f.get("viewport_gpu_ms", {}).items():
                        vps.setdefault(name, []).append(ms)
            rows[m] = {"wall_ms": spread(wall), "gpu_ms": spread(gpu), "wall_ms_frames": spread(frames),
                       "wall_ms_reps": [round(x, 3) for x in wall], "gpu_ms_reps": [round(x, 3) for x in gpu],
                       "render_size": per[m][0]["render_size"],
                       "viewport_gpu_ms": {k: round(statistics.median(v), 3) for k, v in vps.items()}}
        for key in ("wall_ms", "gpu_ms"):
            base = rows[BASELINE][f"{key}_reps"]
            for m in methods:
                added = [x - b for x, b in zip(rows[m][f"{key}_reps"], base)]
                rows[m][f"added_{key}"] = spread(added)
                rows[m][f"added_{key}_reps"] = [round(x, 3) for x in added]
            if REFERENCE in rows:
                ref = rows[REFERENCE][f"added_{key}_reps"]
                for m in methods:
                    ratio = [x / r for x, r in zip(rows[m][f"added_{key}_reps"], ref) if r > 0]
                    rows[m][f"ratio_to_{REFERENCE}_{key}"] = spread(ratio) if len(ratio) == reps else None
        block = {"scene": scene, "output": list(size), "render": rows[BASELINE]["render_size"], "reps": reps,
                 "methods": rows}
        if "neural" in rows and "neural_skip" in rows:
            net = {}
            for key in ("wall_ms", "gpu_ms"):
                d = [x - y for x, y in zip(rows["neural"][f"{key}_reps"], rows["neural_skip"][f"{key}_reps"])]
                share = [x / y for x, y in zip(d, rows["neural"][f"added_{key}_reps"]) if y > 0]
                net[key] = spread(d)
                net[f"share_of_neural_added_{key}"] = spread(share) if len(share) == reps else None
            block["network"] = net
        if (scene, size) in kernels:
            block["kernels"] = kernels[(scene, size)]
        blocks.append(block)
    return blocks


def kernel_table(profiled: list[dict]) -> dict:
    """Median GPU ms per dispatch label over every profiled frame of every repetition."""
    per: dict[str, list[float]] = {}
    for t in profiled:
        for km in t["kernel_ms"]:
            for k, v in km.items():
                per.setdefault(k, []).append(float(v))
    wall = [f["wall_ms"] for t in profiled for f in t["frames"]]
    total = per.pop("total", [])
    return {"network_gpu_ms": spread(total) if total else None,
            "dispatch_ms": {k: round(statistics.median(v), 3) for k, v in sorted(per.items(), key=lambda kv:
                                                                                   -statistics.median(kv[1]))},
            "frames": len(wall), "wall_ms_profiled": spread(wall) if wall else None}


def fmt(s: dict | None, digits: int = 1, unit: str = "") -> str:
    if s is None:
        return "-"
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}..{f.format(s['max'])})"


def markdown(res: dict) -> str:
    lines = [f"# Frame cost in the engine ({res['adapter']})", "",
             f"Command: `{res['command']}`", "",
             f"Godot {res['engine']}, adapter **{res['adapter']}**, {res['cpu_count']} CPU cores; "
             f"--scale {res['scale']}, {res['warmup']} warm-up + {res['frames']} timed frames per run, "
             f"{res['reps']} interleaved repetitions ({', '.join(res['methods'])}), --fixed-fps {FIXED_FPS}, vsync "
             "off, the scene's own camera.", "",
             res["note"], "",
             "ms per frame = median over the timed frames of one run; the table gives the median over repetitions "
             "with min..max; *added* = method - bilinear and *ratio* = added / FSR2's added, each taken within one "
             "repetition. GPU = RenderingServer viewport GPU time (Godot's timestamps, summed over viewports).", ""]
    for b in res["blocks"]:
        o, r = b["output"], b["render"]
        lines += [f"## {b['scene']}: {r[0]}x{r[1]} -> {o[0]}x{o[1]}", "",
                  "| method | wall ms/frame | wall ms added | added / FSR2's | GPU ms/frame | GPU ms added | "
                  "GPU added / FSR2's |", "|---|---|---|---|---|---|---|"]
        for m, v in b["methods"].items():
            rw = v.get(f"ratio_to_{REFERENCE}_wall_ms")
            rg = v.get(f"ratio_to_{REFERENCE}_gpu_ms")
            lines.append(f"| {m} | {fmt(v['wall_ms'])} | {fmt(v['added_wall_ms'])} | "
                         f"{fmt(rw, 2, 'x') if m != BASELINE else '-'} | {fmt(v['gpu_ms'])} | {fmt(v['added_gpu_ms'])}"
                         f" | {fmt(rg, 2, 'x') if m != BASELINE else '-'} |")
        by_vp = [(m, v["viewport_gpu_ms"]) for m, v in b["methods"].items() if len(v.get("viewport_gpu_ms", {})) > 1]
        if by_vp:
            lines += ["", "GPU ms by viewport (median over all timed frames): " + "; ".join(
                f"{m}: " + ", ".join(f"{k} {ms:.1f}" for k, ms in vp.items()) for m, vp in by_vp)
                + " (NeuralSSLowRes: the addon's low-res render with the capture and the network; NeuralSSPresent3D: "
                  "its full-resolution present pass, Godot's post-processing on the upscaled image)."]
        if "network" in b:
            n = b["network"]
            lines += ["", f"Network (neural - neural_skip): wall {fmt(n['wall_ms'])} ms, "
                          f"{fmt(n['share_of_neural_added_wall_ms'], 2)} of neural's added wall time; "
                          f"GPU {fmt(n['gpu_ms'])} ms."]
        if "kernels" in b:
            k = b["kernels"]
            top = list(k["dispatch_ms"].items())[:12]
            lines += ["", f"GPU runtime per dispatch (a separate neural run with --nss-gpu-profile: one compute list and "
                          f"timestamp per dispatch; {k['frames']} frames, wall {fmt(k['wall_ms_profiled'])} ms/frame): "
                          f"network {fmt(k['network_gpu_ms'])} ms from first to last timestamp; top {len(top)} of "
                          f"{len(k['dispatch_ms'])} dispatches: " + ", ".join(f"{name} {ms:.2f}" for name, ms in top)
                      + " ms (all in the .json)."]
        lines.append("")
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------------

def bench(a, command: str) -> dict:
    from nss_godot.toolchain import GodotError, ensure

    methods = parse_methods(a.methods)
    scale = a.scale
    sizes = parse_sizes(a.sizes + (f",{LARGE}" if a.large else ""), scale)
    scenes = parse_scenes(a.scenes)
    if a.frames < 1 or a.warmup < 2 or a.reps < 1:
        raise ToolError(f"--frames {a.frames} / --warmup {a.warmup} / --reps {a.reps}: need frames >= 1, warmup >= 2, "
                        "reps >= 1")
    if a.display == "host":
        if not os.environ.get("DISPLAY"):
            raise ToolError("--display host: DISPLAY is not set (start an X server on the GPU, see the docstring)")
    else:
        os.environ.pop("DISPLAY", None)  # nss_godot.toolchain then runs Godot under its own Xvfb
    try:
        godot = ensure(verbose=False)
    except GodotError as e:
        raise ToolError(str(e)) from None
    if a.display == "host" and godot.kind != "host":
        raise ToolError(f"--display host: {godot.describe()} runs in the project's chroot (lavapipe only); set "
                        "GODOT to a host Godot 4.6 binary")
    tmp = Path(tempfile.mkdtemp(prefix="nss_frame_cost_", dir="/tmp"))
    runs: dict = {}
    profiled: dict = {}
    info: dict = {}
    try:
        projects = {}
        for name in scenes:
            project = SCENES[name][0]
            if project not in projects:
                log(f"{godot.describe()}: copying and importing {project.name} ...")
                projects[project] = prepare(godot, project, tmp / project.name, a.timeout)
        order = [m for m in methods] + (["neural_profiled"] if a.kernels else [])
        total = len(scenes) * len(sizes) * a.reps * len(order)
        i = 0
        t0 = time.monotonic()
        for name in scenes:
            project, scene = SCENES[name]
            for size in sizes:
                per = runs.setdefault((name, size), {m: [] for m in methods})
                for rep in range(a.reps):
                    for m in order:
                        i += 1
                        prof = m == "neural_profiled"
                        out = tmp / "runs" / f"{name}_{size[0]}x{size[1]}_{m}_{rep}"
                        t = run_one(godot, projects[project], scene, "neural" if prof else m, size, a, out, prof)
                        if not info:
                            info = {"adapter": t["adapter"], "engine": t["engine"]}
                            log(f"Godot renders on {t['adapter']} ({t['engine']})")
                            check_device(t["adapter"], a)
                        if prof:
                            profiled.setdefault((name, size), []).append(t)
                        else:
                            per[m].append(t)
                        wall = statistics.median(f["wall_ms"] for f in t["frames"])
                        gpu = statistics.median(f["gpu_ms"] for f in t["frames"])
                        log(f"[{i}/{total}] {name} {size[0]}x{size[1]} rep {rep + 1}/{a.reps} {m}: wall {wall:.1f} "
                            f"ms/frame, GPU {gpu:.1f} ms/frame ({t['seconds']:.0f} s; {time.monotonic() - t0:.0f} s "
                            "so far)")
        adapter = info.get("adapter", "")
        cpu_dev = is_cpu_device(adapter)
        note = ("Under lavapipe (Mesa's CPU Vulkan, llvmpipe) the GPU work runs on the same CPU cores as everything "
                "else: the wall-time difference to bilinear is each upscaler's cost on that device, not a GPU figure. "
                "The machine was shared with other jobs: single figures are noisy; the ratios taken within one "
                "interleaved repetition are what count.") if cpu_dev else \
            f"Rendered on {adapter}: GPU figures."
        kern = {k: kernel_table(v) for k, v in profiled.items()}
        res = {"tool": "benchmarks/bench_frame_cost.py", "command": command, **info, "cpu_count": os.cpu_count(),
               "cpu_device": cpu_dev, "note": note, "scale": scale, "warmup": a.warmup, "frames": a.frames,
               "reps": a.reps, "methods": methods, "fixed_fps": FIXED_FPS, "display": a.display,
               "rendering_driver": a.rendering_driver,
               "blocks": summarise(runs, methods, kern),
               "runs": {f"{n}_{s[0]}x{s[1]}": {m: [{k: t[k] for k in ("seconds", "render_size", "fresh_frames",
                                                                       "network_frames_run", "runtime", "frames")
                                                    if k in t} for t in v] for m, v in per.items()}
                        for (n, s), per in runs.items()},
               "seconds": round(time.monotonic() - t0, 1)}
        return res
    finally:
        if a.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def resummarise(path: Path) -> dict:
    """An existing result file with its tables recomputed from the per-frame times it holds."""
    try:
        res = json.loads(path.read_text())
        runs = {}
        for key, per in res["runs"].items():
            name, size = key.rsplit("_", 1)
            runs[(name, tuple(int(v) for v in size.split("x")))] = per
        kern = {(b["scene"], tuple(b["output"])): b["kernels"] for b in res["blocks"] if "kernels" in b}
        res["blocks"] = summarise(runs, res["methods"], kern)
    except (OSError, ValueError, KeyError) as e:
        raise ToolError(f"{path}: not a bench_frame_cost result ({type(e).__name__}: {e})") from None
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--out", required=True, help="writes OUT.md and OUT.json (e.g. benchmarks/results/frame_cost)")
    ap.add_argument("--scenes", default="demo,textures_and_text", help=f"comma list of {','.join(SCENES)}")
    ap.add_argument("--sizes", default="1280x720,1920x1080", help="output sizes WxH (render size = output / scale)")
    ap.add_argument("--large", action="store_true", help=f"also {LARGE} output")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma list of {','.join(METHODS)}")
    ap.add_argument("--warmup", type=int, default=10, help="frames before the timed ones (pipelines compile meanwhile)")
    ap.add_argument("--frames", type=int, default=12, help="timed frames per run")
    ap.add_argument("--reps", type=int, default=2, help="interleaved repetitions")
    ap.add_argument("--kernels", action="store_true",
                    help="one more neural run per repetition with --nss-gpu-profile: per-dispatch GPU times")
    ap.add_argument("--display", choices=("xvfb", "host"), default="xvfb",
                    help="xvfb: the project's Godot under Xvfb (lavapipe here); host: $DISPLAY, no Xvfb (a GPU's X server)")
    ap.add_argument("--rendering-driver", default="vulkan")
    ap.add_argument("--gpu-index", type=int, default=None, help="Godot's --gpu-index (which Vulkan device)")
    ap.add_argument("--allow-cpu-device", action="store_true", help="--display host on lavapipe/llvmpipe (testing)")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per Godot run")
    ap.add_argument("--keep", action="store_true", help="keep the project copies and per-run timing files")
    ap.add_argument("--summary-only", action="store_true",
                    help="recompute the tables of an existing OUT.json from its per-frame times (no Godot run)")
    a = ap.parse_args(argv)
    command = "python benchmarks/bench_frame_cost.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.scale not in (2, 3, 4):
        print(f"bench_frame_cost: --scale {a.scale}: expected 2, 3 or 4", file=sys.stderr)
        return 1
    try:
        res = resummarise(Path(a.out).with_suffix(".json")) if a.summary_only else bench(a, command)
    except ToolError as e:
        print(f"bench_frame_cost: {e}", file=sys.stderr)
        return 1
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    md = markdown(res)
    atomic_write_text(out.with_suffix(".json"), json.dumps(res, indent=1) + "\n")
    atomic_write_text(out.with_suffix(".md"), md)
    print(md)
    log(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')} ({res['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
