"""nss_train: make data, train, evaluate and export the neural supersampling network, one subpackage per stage.

    sources/  producers of frame sequences: Blender (render, scenes) and Godot (godot_pairs, godot_raw, worldgen)
    data/     datasets over the frame contract (the contract's I/O itself is nss_runtime.frames) + the check CLI
    models/   the networks (accum, fast, nsrr), their building blocks (geometry, layers) and the registry
    train/    the training loop (fit) and its losses
    eval/     offline evaluation, baselines, the in-engine comparison library
    export/   ONNX export (onnx) and the GPU program the Godot compute-shader runtime runs (gpu)

The modules' old flat names (`nss_train.render`, `python -m nss_train.fit`, ...) still import and run: the
finder below maps them to their new homes (see MOVED).
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# old flat module -> its new home (docs and commands written before the split keep working)
MOVED = {"nss_train." + old: new for old, new in {
    "render": "nss_train.sources.render",
    "scenes": "nss_train.sources.scenes",
    "worldgen": "nss_train.sources.worldgen",
    "capture_pairs": "nss_train.sources.godot_pairs",
    "raw_capture": "nss_train.sources.godot_raw",
    "frames": "nss_runtime.frames",
    "model": "nss_train.models.registry",
    "geometry": "nss_train.models.geometry",
    "layers": "nss_train.models.layers",
    "accum": "nss_train.models.accum",
    "fast": "nss_train.models.fast",
    "nsrr": "nss_train.models.nsrr",
    "fit": "nss_train.train.fit",
    "losses": "nss_train.train.losses",
    "evaluate": "nss_train.eval.evaluate",
    "baselines": "nss_train.eval.baselines",
    "to_program": "nss_train.export.gpu",
    "accum_program": "nss_train.export.accum_to_program",
    "godot": "nss_godot.toolchain",
}.items()}


class _MovedLoader(importlib.abc.Loader):
    """Imports of an old name give the new module itself (one module object, so patches and state are shared);
    `python -m OLD` runs the new module's code as __main__ after a one-line note."""

    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        return importlib.import_module(self.new)

    def exec_module(self, module) -> None:
        pass

    def get_code(self, fullname: str):  # runpy (`python -m`) asks for this
        print(f"note: {fullname} moved; run `python -m {self.new}`", file=sys.stderr)
        spec = importlib.util.find_spec(self.new)
        return spec.loader.get_code(self.new)


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        target = importlib.util.find_spec(new)  # its file becomes sys.argv[0] under `python -m OLD`
        return importlib.util.spec_from_loader(fullname, _MovedLoader(new), origin=target.origin if target else None)


if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedFinder())
