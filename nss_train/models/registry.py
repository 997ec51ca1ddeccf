"""The model registry: which architectures exist, their configs, building them, and checkpoints.

Each architecture is one module over the shared geometry (nss_train.models.geometry) and layers (nss_train.models.layers):

  nsrr   nss_train.models.nsrr   the paper's network (Xiao et al. 2020), U-Net at the output resolution
  fast   nss_train.models.fast   our real-time variant: NSRR geometry as row lookups, U-Net at the input resolution
  accum  nss_train.models.accum  learned temporal accumulation into an output-resolution history

An architecture module exposes CONFIG (a dataclass with fields name, scale, n_prev, depth_ref, a property
`multiple` and a classmethod `preset(scale, n_prev)`) and MODEL (an nn.Module built from a CONFIG, with the
nss_train.models.layers.Upscaler interface). Checkpoints store the config as a dict; its `name` picks the module.

    cfg = preset_config("fast", scale=2)       # the preset's dataclass; n_prev None: the preset's default
    model = build_model(cfg)
    save_checkpoint(path, model, ...); model, cfg, ckpt = load_checkpoint(path)
"""
from __future__ import annotations

import dataclasses
import importlib
import io
from pathlib import Path

import torch
import torch.nn as nn

CKPT_FORMAT = "nss_train.ckpt"
CKPT_VERSION = 2  # 2: per-architecture configs (version 1 was the one-class NSRR with boolean switches)

PRESETS: dict[str, str] = {"nsrr": "nss_train.models.nsrr", "fast": "nss_train.models.fast", "accum": "nss_train.models.accum"}


class CheckpointError(ValueError):
    """A checkpoint file is truncated, foreign, or does not match the expected config."""


def architecture(name: str):
    """The module of preset `name` (imported on first use)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    try:
        return importlib.import_module(PRESETS[name])
    except ModuleNotFoundError as e:
        if e.name == PRESETS[name]:
            raise ValueError(f"preset {name!r}: its module {PRESETS[name]} is not installed") from None
        raise


def preset_config(name: str, scale: int = 2, n_prev: int | None = None):
    """The config dataclass of preset `name` at `scale`; n_prev None (or 0) = the preset's own default."""
    mod = architecture(name)
    cfg = mod.CONFIG.preset(scale=scale, n_prev=n_prev or None)
    if cfg.n_prev < 1:
        raise ValueError(f"n_prev {cfg.n_prev} invalid; expected >= 1 previous frame")
    return cfg


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def config_from_dict(d: dict, where: str = "config"):
    """A config dataclass from its dict (a checkpoint's or ONNX metadata's `config`); its `name` picks the
    architecture. Unknown fields raise CheckpointError naming them."""
    if not isinstance(d, dict) or "name" not in d:
        raise CheckpointError(f"{where}: not a model config (expected a dict with a 'name')")
    try:
        cls = architecture(str(d["name"])).CONFIG
    except ValueError as e:
        raise CheckpointError(f"{where}: {e}") from None
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise CheckpointError(f"{where}: unknown {d['name']} config field(s) {unknown}; expected a subset of "
                              f"{sorted(known)}")
    return cls(**{k: (_tuples(v) if isinstance(dataclasses.asdict(cls())[k], tuple) else v) for k, v in d.items()})


def build_model(cfg) -> nn.Module:
    return architecture(cfg.name).MODEL(cfg)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- checkpoints --------------------------------------------------------------------------------------------------

def save_checkpoint(path, model: nn.Module, optimizer=None, step: int = 0, rng=None, data=None, metrics=None,
                    extra=None) -> None:
    """Write {"format", "version", "config", "model", ...} atomically (temp file + rename)."""
    from nss_runtime.frames import atomic_write_bytes

    ckpt = {"format": CKPT_FORMAT, "version": CKPT_VERSION, "config": dataclasses.asdict(model.cfg),
            "model": model.state_dict(), "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "step": int(step), "rng": rng, "data": data or {}, "metrics": metrics or {}}
    if extra:
        ckpt.update(extra)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_checkpoint(path) -> dict:
    """Load and validate the checkpoint dict (weights_only); raises CheckpointError with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle of foreign objects, not a torch file at all
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: unreadable or truncated checkpoint ({type(e).__name__}: {msg[:200]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{path}: not an nss_train checkpoint (expected format {CKPT_FORMAT!r})")
    if ckpt.get("version") != CKPT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')!r}; this nss_train reads "
                              f"version {CKPT_VERSION}")
    for k in ("config", "model"):
        if not isinstance(ckpt.get(k), dict):
            raise CheckpointError(f"{path}: field {k!r} missing or not a dict")
    return ckpt


def load_checkpoint(path, expect=None) -> tuple[nn.Module, object, dict]:
    """-> (model in eval mode, cfg, ckpt dict). With `expect` (a config), a different config raises
    CheckpointError."""
    ckpt = read_checkpoint(path)
    cfg = config_from_dict(ckpt["config"], where=f"{path}: config")
    if expect is not None and expect != cfg:
        a, b = dataclasses.asdict(cfg), dataclasses.asdict(expect)
        diff = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
        raise CheckpointError(f"{path}: checkpoint config differs from the requested one "
                              f"(field: (checkpoint, requested)) {diff}")
    model = build_model(cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(f"{path}: weights do not match its config ({' '.join(first[:2])[:300]})") from None
    model.eval()
    return model, cfg, ckpt


if __name__ == "__main__":  # python -m nss_train.models.registry: cost of every preset
    from nss_runtime.contract import SCALES

    for name in PRESETS:
        for s in SCALES:
            try:
                m = build_model(preset_config(name, scale=s))
            except ValueError as e:
                print(f"{name:5s} x{s}: {e}")
                continue
            h, w = (360 // s, 640 // s)
            h -= h % m.cfg.multiple
            w -= w % m.cfg.multiple
            f = m.flops_per_output_pixel(h, w)
            print(f"{name:5s} x{s}: {param_count(m):9,d} params  {f:9,.0f} FLOPs/output px  "
                  f"{f * 640 * 360 / 1e9:6.2f} GFLOP per 640x360 frame")
