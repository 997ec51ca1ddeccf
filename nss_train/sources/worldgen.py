"""Training data at scale from the engine the game uses: procedural Godot worlds, paired capture.

    python -m nss_train.sources.worldgen --out data/godot_world            # train/ + val/, resumable
    python -m nss_train.sources.worldgen --out data/godot_world --shard 0/2 # half of the chunks (other machine: 1/2)
    python -m nss_train.data check data/godot_world/train

Every sequence is its own world: godot_project/worldgen/world.tscn builds it from (seed, sequence)
(meshes, code-made textures, thin wires/fences/railings, foliage cards, decals, text, metallic,
emissive and transparent surfaces, particles, animation, sky/fog, lights, a camera path that is
still, slow, fast, orbiting, strafing or panning, some with cuts) and the addon's paired capture
(nss_train.sources.godot_pairs -> addons/neural_ss/capture/paired_capture.tscn) records it: low-res
frames through NeuralSSViewport with raw sub-pixel jitter (Halton(2,3), the exact jitter per frame
in meta.json) and a target rendered at scale * ss times the low-res size with MSAA, box-filtered
in linear light. The validation split uses other world seeds than training (--val-seed).

Work is cut into chunks of --chunk sequences, one Godot run each; a finished chunk is skipped on a
rerun, an interrupted one is captured again (godot_pairs' resume rules). --shard I/N takes the
chunks whose number % N == I. One progress line per chunk (frames/min, share of render time in the
target viewport).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from nss_train.sources.godot_pairs import LAST_RUN, CaptureConfig, CaptureError, capture
from nss_runtime.frames import FrameError

REPO = Path(__file__).resolve().parents[2]
SCENE = "res://worldgen/world.tscn"
LEAD = 6  # frames the world is built before its sequence (world_gen.gd's LEAD)


@dataclass
class WorldgenConfig:
    out: str = "data/godot_world"
    train: int = 160  # training sequences (distinct worlds)
    val: int = 16  # validation sequences (distinct worlds, other seed)
    frames: int = 16
    low: str = "320x180"
    scale: int = 2
    ss: int = 2
    msaa: int = 4
    fps: float = 30.0
    seed: int = 1  # world seed of the training split
    val_seed: int = 1001  # world seed of the validation split (never the training one)
    jitter_samples: int = 8
    chunk: int = 4  # sequences per Godot run
    shard: str = "0/1"
    project: str = str(REPO / "godot_project")
    timeout: float = 3600.0
    val_every: int = 5  # one validation chunk after this many training chunks


def _shard(s: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in s.split("/"))
    except ValueError:
        raise CaptureError(f"--shard {s}: expected I/N, e.g. 0/2") from None
    if n < 1 or not 0 <= i < n:
        raise CaptureError(f"--shard {s}: expected 0 <= I < N")
    return i, n


def plan(cfg: WorldgenConfig) -> list[tuple[str, int, int]]:
    """The chunks in generation order: (split, first sequence, count); validation interleaved."""
    def chunks(total: int, split: str) -> list[tuple[str, int, int]]:
        return [(split, k, min(cfg.chunk, total - k)) for k in range(0, total, cfg.chunk)]

    tr, va = chunks(cfg.train, "train"), chunks(cfg.val, "val")
    out: list[tuple[str, int, int]] = []
    while tr or va:
        out += tr[:cfg.val_every]
        tr = tr[cfg.val_every:]
        if va:
            out.append(va.pop(0))
    return out


def capture_config(cfg: WorldgenConfig, split: str, first: int, count: int) -> CaptureConfig:
    return CaptureConfig(
        project=cfg.project, scene=SCENE, out=str(Path(cfg.out) / split), sequences=count, first=first,
        frames=cfg.frames, stride=cfg.frames + LEAD + 2, warmup=LEAD + 2, low=cfg.low, scale=cfg.scale,
        ss=cfg.ss, msaa=cfg.msaa, fps=cfg.fps, seed=cfg.seed if split == "train" else cfg.val_seed,
        jitter=True, jitter_samples=cfg.jitter_samples, skip_ahead=True, pre_frames=1, timeout=cfg.timeout,
        check=True)


def generate(cfg: WorldgenConfig, progress: bool = True, log=print) -> dict:
    """Generate (or finish) this shard's chunks; returns totals (frames, seconds, render ms)."""
    if cfg.seed == cfg.val_seed:
        raise CaptureError(f"--seed {cfg.seed} and --val-seed {cfg.val_seed}: the validation worlds must use "
                           "another seed than the training worlds")
    if cfg.train < 0 or cfg.val < 0 or cfg.chunk < 1 or cfg.frames < 2:
        raise CaptureError(f"--train {cfg.train}, --val {cfg.val}, --chunk {cfg.chunk}, --frames {cfg.frames}: "
                           "expected >= 0, >= 0, >= 1, >= 2")
    si, sn = _shard(cfg.shard)
    mine = [c for i, c in enumerate(plan(cfg)) if i % sn == si]
    total = {"frames": 0, "seconds": 0.0, "low_ms": 0.0, "target_ms": 0.0, "runs": 0, "skipped": 0}
    done_frames = 0
    want_frames = sum(c[2] for c in mine) * cfg.frames
    t_start = time.time()
    for split, first, count in mine:
        cc = capture_config(cfg, split, first, count)
        LAST_RUN.clear()
        t0 = time.time()
        capture(cc, progress=progress)
        dt = time.time() - t0
        done_frames += count * cfg.frames
        if not LAST_RUN:  # nothing to capture: finished earlier
            total["skipped"] += count
            log(f"worldgen: {split} seq {first}-{first + count - 1} already complete ({dt:.0f} s to check)")
            continue
        total["runs"] += 1
        total["frames"] += LAST_RUN["frames"]
        total["seconds"] += dt
        share = ""
        if "target_ms" in LAST_RUN:
            total["low_ms"] += LAST_RUN["low_ms"] * LAST_RUN["frames"]
            total["target_ms"] += LAST_RUN["target_ms"] * LAST_RUN["frames"]
            r = LAST_RUN["target_ms"] / max(1e-9, LAST_RUN["target_ms"] + LAST_RUN["low_ms"])
            share = f", render ms/frame low {LAST_RUN['low_ms']:.1f} target {LAST_RUN['target_ms']:.1f} " \
                    f"(target {100 * r:.0f} % of render)"
        rate = 60.0 * total["frames"] / max(1e-9, total["seconds"])
        left = (want_frames - done_frames) / max(1e-9, rate)
        total["godot_s"] = total.get("godot_s", 0.0) + LAST_RUN["seconds"]
        log(f"worldgen: {split} seq {first}-{first + count - 1} done: {count * cfg.frames} frames in {dt:.0f} s "
            f"(Godot {LAST_RUN['seconds']:.0f} s) "
            f"({60 * count * cfg.frames / max(dt, 1e-9):.1f} frames/min{share}); {done_frames}/{want_frames} frames "
            f"of shard {cfg.shard}, {rate:.1f} frames/min, ~{left:.0f} min left "
            f"[{time.strftime('%H:%M:%S')}, {time.time() - t_start:.0f} s]")
    if total["frames"]:
        total["frames_per_min"] = 60.0 * total["frames"] / total["seconds"]
        total["target_share"] = total["target_ms"] / max(1e-9, total["target_ms"] + total["low_ms"])
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nss_train.sources.worldgen", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = WorldgenConfig()
    helps = {"train": "training sequences (one world each)", "val": "validation sequences (other seed)",
             "seed": "world seed of train/", "val_seed": "world seed of val/ (must differ from --seed)",
             "ss": "target supersampling per axis (rendered at scale*ss, box-filtered)",
             "msaa": "target MSAA (0, 2, 4, 8)", "chunk": "sequences per Godot run",
             "shard": "I/N: only chunks with number %% N == I", "low": "low-res (input) size WxH"}
    for name, val in vars(d).items():
        ap.add_argument("--" + name.replace("_", "-"), type=type(val), default=val, help=helps.get(name, " "))
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress bars (progress lines stay)")
    a = vars(ap.parse_args(argv))
    quiet = a.pop("quiet")
    cfg = WorldgenConfig(**a)
    try:
        tot = generate(cfg, progress=not quiet, log=lambda s: print(s, flush=True))
    except (CaptureError, FrameError) as e:
        print(f"worldgen: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("worldgen: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    print("worldgen: done " + json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in tot.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
