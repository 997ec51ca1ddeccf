"""Shared pytest fixtures. Renders are real Cycles renders, kept tiny and made once per session."""
from __future__ import annotations

from pathlib import Path

import pytest

TINY = dict(sequences=2, frames=6, size=(64, 36), scale=2, spp_low=1, spp_high=16, seed=0)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A rendered dataset: 2 built-in sequences x 6 frames, 64x36 low-res, scale 2 (about 15 s on 2 cores).

    Shared by the whole session: treat it as read-only (copy it with shutil.copytree before corrupting it).
    """
    pytest.importorskip("bpy", reason="needs Blender's bpy module (pip install bpy==5.0.1)")
    from nss_train.sources.render import render_dataset

    out = tmp_path_factory.mktemp("tiny_dataset")
    render_dataset(out, threads=2, progress=False, **TINY)
    return out


# --- exported ONNX models (inference engineer) ------------------------------------------------

@pytest.fixture(scope="session")
def export_onnx():
    """The ONNX export library (nss_train.export.onnx; tools/export_onnx.py is its command line)."""
    from nss_train.export import onnx
    return onnx


@pytest.fixture(scope="session")
def tiny_onnx_model(tmp_path_factory, export_onnx):
    """A tiny, freshly initialised `fast` x2 model (2 previous frames) exported with tools/export_onnx.py; its
    zero-initialised last layer gets small random values, so the history changes the output.

    Returns (path to the .onnx, the PyTorch model it came from). About 15 s, once per session; read-only.
    """
    path = tmp_path_factory.mktemp("onnx") / "tiny_fast_x2.onnx"
    model, _ = export_onnx.export_tiny(path, preset="fast", scale=2, n_prev=2, fill_zero_init=True)
    return path, model


@pytest.fixture(scope="session")
def godot():
    """Godot 4 (nss_godot.toolchain: $GODOT, PATH, or the project's chroot). Skipped where there is none,
    except on CI (CI=true) or with NSS_REQUIRE_GODOT=1, where a missing Godot is a failure."""
    import os

    from nss_godot.toolchain import GodotError, find_godot

    try:
        return find_godot()
    except GodotError as e:
        if os.environ.get("NSS_REQUIRE_GODOT") == "1" or os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"no Godot 4: {e}")


@pytest.fixture(scope="session")
def tiny_accum_onnx(tmp_path_factory, export_onnx):
    """A tiny `accum` x2 model whose zero-initialised head gets small random weights (every path of the graph
    reaches the output), exported with tools/export_onnx.py (ONNX + GPU program beside it). Read-only."""
    import torch
    from nss_train.models.registry import build_model

    torch.manual_seed(0)
    cfg = export_onnx.tiny_config("accum", 2)
    model = build_model(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("onnx_accum") / "tiny_accum_x2.onnx"
    export_onnx.export(model, cfg, path)
    return path


@pytest.fixture(scope="session")
def addon_project(godot, tmp_path_factory):
    """make(name): tests/godot + a COPY of addons/neural_ss (the addon as a user drops it into their project),
    imported; a fresh project directory per call."""
    import shutil

    repo = Path(__file__).resolve().parents[1]

    def make(name: str) -> Path:
        p = tmp_path_factory.mktemp(name) / "project"
        shutil.copytree(repo / "tests/godot", p, ignore=shutil.ignore_patterns(".godot"))
        shutil.copytree(repo / "addons/neural_ss", p / "addons/neural_ss",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
        r = godot.import_project(p, timeout=300)
        assert not r.timed_out and not r.errors(), (r.errors(), r.output[-3000:])
        return p
    return make
