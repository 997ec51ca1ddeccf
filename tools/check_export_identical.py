#!/usr/bin/env python3
"""Is an export bit for bit what it was? Export the shipped model (models/accum_x2.pt) to ONNX + GPU program in
DIR, run ONNX Runtime, the GPU program's reference interpreter and PyTorch on a fixed input (6 frames of
64x36 with history and a camera cut at frame 3) and save their outputs; `compare` checks two such folders byte
for byte (outputs, the program's .json/.bin and the ONNX graph; the .onnx metadata holds an export timestamp).

    python tools/check_export_identical.py export /tmp/before     # on the old code
    python tools/check_export_identical.py export /tmp/after      # on the new code
    python tools/check_export_identical.py compare /tmp/before /tmp/after   # exit 1 unless all identical

About 40 s on 2 cores (one thread, so the figures are deterministic).
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def export(out_dir: Path) -> None:
    import torch
    from nss_runtime.gpu_program import ProgramSession, program_path_for
    from nss_runtime.session import Session

    torch.set_num_threads(1)
    from nss_train.export import onnx as lib

    out_dir.mkdir(parents=True, exist_ok=True)
    model, cfg, summary = lib.load_model(ROOT / "models" / "accum_x2.pt", None, 2, None)
    onnx_path = out_dir / "default_x2.onnx"
    meta = lib.export(model, cfg, onnx_path, meta_extra={"training": summary})
    frames = lib.random_sequence(6, 36, 64, seed=1, cut_at=3)
    ort = Session(onnx_path, providers=["CPUExecutionProvider"], threads=1)
    prog = ProgramSession(program_path_for(onnx_path))
    ref = lib.torch_sequence(model.float(), frames)
    for name, sess in (("ort", ort), ("program", prog)):
        sess.reset()
        outs = [sess.upscale(f["colour"], f["depth"], f["motion"], f["jitter"], f["cut"]) for f in frames]
        np.save(out_dir / f"{name}_outputs.npy", np.stack(outs))
    np.save(out_dir / "torch_outputs.npy", np.stack(ref))
    print(f"exported {onnx_path} + {meta.get('_gpu_program')}; outputs saved in {out_dir}")


def _graph_bytes(path: Path) -> bytes:
    """The ONNX graph without torch's debug metadata (Python module paths per node; the graph's symbolic shape
    ranges, in no fixed order)."""
    import onnx

    g = onnx.load(str(path)).graph
    for item in [g, *g.node, *g.value_info, *g.input, *g.output, *g.initializer]:
        del item.metadata_props[:]
    return g.SerializeToString()


def compare(a: Path, b: Path) -> int:
    names = ["ort_outputs.npy", "program_outputs.npy", "torch_outputs.npy",
             "default_x2.nssgpu.bin", "default_x2.nssgpu.json"]
    bad = 0
    for n in names:
        da, db = (hashlib.sha256((d / n).read_bytes()).hexdigest() for d in (a, b))
        same = da == db
        bad += not same
        print(f"{n:28s} {'identical' if same else 'DIFFERENT'} sha256 {da[:16]}{'' if same else ' vs ' + db[:16]}")
    ga, gb = (_graph_bytes(d / "default_x2.onnx") for d in (a, b))
    same = ga == gb
    bad += not same
    print(f"{'default_x2.onnx graph':28s} {'identical' if same else 'DIFFERENT'} ({len(ga)} bytes; the debug "
          "metadata aside: Python module paths, symbolic shape ranges)")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "export":
        export(Path(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(Path(sys.argv[2]), Path(sys.argv[3])))
    else:
        sys.exit(__doc__)
