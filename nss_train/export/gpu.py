"""A trained model as an NSS GPU program (nss_runtime.gpu_program): the flat op list + weights blob that the Godot
compute-shader runtime (addons/neural_ss/gpu/) and the numpy reference interpreter execute.

    prog, weights = to_program(model)                 # model: a `fast` or `accum` nn.Module in eval mode
    write_gpu_program(model, Path("m.onnx"))          # -> m.nssgpu.json + m.nssgpu.bin beside the .onnx

The ops are emitted per preset (program_builder: the builder and `fast`; accum_to_program: `accum`) from the
model's own modules and mirror its `step` op for op; tests/test_gpu_program.py checks that the interpreter equals
ONNX Runtime on the exported graph over a sequence with history and a camera cut.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np

from nss_train.export.accum_to_program import accum_program
from nss_train.export.program_builder import fast_program


def to_program(model, name: str = "model") -> tuple[dict, np.ndarray]:
    """(program dict, float32 weights) for a supported preset; ValueError naming the preset otherwise."""
    preset = getattr(model.cfg, "name", None)
    if preset == "fast":
        if hasattr(model.cfg, "gather_warp") and not model.cfg.gather_warp:
            raise ValueError("to_program: fast without gather_warp is not a GPU-program preset")
        return fast_program(model, name)
    if preset == "accum":
        return accum_program(model, name)
    raise ValueError(f"to_program: preset {preset!r} has no GPU program (supported: fast, accum)")


def write_gpu_program(model, out: Path) -> Path | None:
    """The same network as an NSS GPU program beside the .onnx (`<stem>.nssgpu.json` + `.nssgpu.bin`, see
    nss_runtime.gpu_program): what the Godot compute-shader runtime runs. None for presets without one."""
    from nss_runtime.gpu_program import program_path_for, write_program

    try:
        prog, weights = to_program(copy.deepcopy(model).float().eval(), name=out.stem)
    except ValueError:
        return None
    except Exception as e:  # never lose the .onnx export over the GPU program; say so loudly
        print(f"export_onnx: warning: GPU program not written ({type(e).__name__}: {e}); the Godot GPU runtime "
              "cannot run this model", file=sys.stderr)
        return None
    path = program_path_for(out)
    write_program(path, prog, weights)
    return path
