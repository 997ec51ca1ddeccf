"""The frame contract: the one definition of the buffers every part speaks.

Blender data, Godot capture, the dataset, the model and the runtime all use the
names, units and signs defined here (docs/frame_contract.md explains them for
people). This module depends on numpy only because it ships inside the Godot
addon, where the runtime has numpy + onnxruntime and nothing else.

Conventions (all arrays are float32, planar, top-down rows):

  colour  (3, h, w)  linear RGB before tone mapping, >= 0, unbounded (HDR).
  depth   (1, h, w)  linear view-space depth along the camera axis, scene units;
                     background (sky) = +inf or any value >= DEPTH_BACKGROUND.
  motion  (2, h, w)  (dx, dy) in LOW-RES pixels, x right, y down:
                     the pixel's position in the PREVIOUS frame minus its
                     position now, i.e. prev = p + motion.
  jitter  (2,)       sub-pixel camera offset of this frame in low-res pixels:
                     the sample of pixel (i, j) lies at (i + 0.5 + jx, j + 0.5 + jy),
                     x right, y down, each in [-0.5, 0.5).
  cut     bool       camera cut: history must be reset before this frame.

History reset semantics (shared by dataset, model and runtime): a frame with
no valid predecessor (first frame, camera cut, resolution change) is treated
as if its previous frames were copies of itself with zero motion.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONTRACT_VERSION = 1

#: Depth at or beyond this is background. Blender writes 1e10 on the sky.
DEPTH_BACKGROUND = 1.0e9

#: Scales the model supports (per axis).
SCALES = (2, 4)


@dataclass(frozen=True)
class BufferSpec:
    name: str
    channels: int
    unit: str
    doc: str


COLOUR = BufferSpec("colour", 3, "linear RGB radiance", "before tone mapping, >= 0")
DEPTH = BufferSpec("depth", 1, "scene units", "view-space depth along the camera axis; background +inf or >= 1e9")
MOTION = BufferSpec("motion", 2, "low-res pixels", "(dx, dy), x right, y down, prev = p + motion")

#: Low-res buffers of one frame, in the order the network takes them.
LOW_RES_BUFFERS = (COLOUR, DEPTH, MOTION)
BUFFERS = {b.name: b for b in LOW_RES_BUFFERS}


class ContractError(ValueError):
    """A buffer or frame does not follow the contract. The message says which and why."""


# --- colour transform -------------------------------------------------------
# One fixed, invertible map from unbounded linear radiance into [0, 1). The
# network works in the mapped space; the exported graph applies both directions
# itself, so a training/runtime disagreement is impossible. torch versions of
# the same formulas live in nss_train.models.geometry and are tested against these.

COLOUR_TRANSFORM = "reinhard"  # y = x / (1 + x); x = y / (1 - y)
COLOUR_TRANSFORM_MAX = 0.999  # clamp of y before the inverse: linear <= 999


def colour_forward(x: np.ndarray) -> np.ndarray:
    x = np.maximum(x, 0.0)
    return x / (1.0 + x)


def colour_inverse(y: np.ndarray) -> np.ndarray:
    y = np.clip(y, 0.0, COLOUR_TRANSFORM_MAX)
    return y / (1.0 - y)


# --- depth normalisation -----------------------------------------------------
# A fixed function of absolute depth (never of the crop or frame): 1 near the
# camera, 0 at infinity. DEPTH_REF is the depth mapped to 0.5.

DEPTH_REF = 10.0


def depth_normalise(d: np.ndarray, ref: float = DEPTH_REF) -> np.ndarray:
    d = np.nan_to_num(np.maximum(d, 0.0), nan=0.0, posinf=np.inf)
    return 1.0 / (1.0 + d / ref)


# --- validation ----------------------------------------------------------------

def check_buffer(name: str, a: np.ndarray, size: tuple[int, int] | None = None, where: str = "") -> np.ndarray:
    """Check one low-res buffer (C, h, w) against the contract; return it as float32.

    `size` is (w, h) when known. Raises ContractError naming `where`, the buffer
    and the problem.
    """
    spec = BUFFERS.get(name)
    prefix = f"{where}: " if where else ""
    if spec is None:
        raise ContractError(f"{prefix}unknown buffer {name!r}; expected one of {sorted(BUFFERS)}")
    a = np.asarray(a)
    if a.ndim != 3 or a.shape[0] != spec.channels:
        raise ContractError(
            f"{prefix}buffer {name!r} has shape {a.shape}; expected ({spec.channels}, height, width)")
    if size is not None and (a.shape[2], a.shape[1]) != tuple(size):
        raise ContractError(
            f"{prefix}buffer {name!r} is {a.shape[2]}x{a.shape[1]}; expected {size[0]}x{size[1]}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ContractError(f"{prefix}buffer {name!r} has dtype {a.dtype}; expected a float type")
    a = a.astype(np.float32, copy=False)
    if name == DEPTH.name:
        bad = np.isnan(a) | (a < 0) | np.isneginf(a)
    else:
        bad = ~np.isfinite(a)
    if bad.any():
        n = int(bad.sum())
        raise ContractError(f"{prefix}buffer {name!r} has {n} NaN/Inf/negative value(s)"
                            + (" (depth may be +inf on background only)" if name == DEPTH.name else ""))
    if name == COLOUR.name and (a < 0).any():
        raise ContractError(f"{prefix}buffer 'colour' has negative values; expected linear RGB >= 0")
    return a


def check_jitter(j, where: str = "") -> np.ndarray:
    j = np.asarray(j, dtype=np.float64).reshape(-1)
    prefix = f"{where}: " if where else ""
    if j.shape != (2,) or not np.all(np.isfinite(j)) or np.any(np.abs(j) > 0.5):
        raise ContractError(f"{prefix}jitter {j.tolist()} invalid; expected two values in [-0.5, 0.5] low-res pixels")
    return j.astype(np.float32)
