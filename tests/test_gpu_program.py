"""The NSS GPU program (nss_runtime.gpu_program): export writes it beside the .onnx, the numpy interpreter
equals ONNX Runtime on the exported graph over a sequence with history and a camera cut, bad files give
one-line errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nss_runtime import contract
from nss_runtime.gpu_program import ProgramError, ProgramSession, load_program, program_path_for
from nss_runtime.session import Session

TOL = 1e-4
SHIPPED = Path(__file__).resolve().parents[1] / "models" / "fast_x2_godot.onnx"  # on the [0, 1] (Reinhard) colour, as export_onnx's own parity bound


def _max_err(onnx_path, prog, frames):
    sess = Session(onnx_path, providers=["CPUExecutionProvider"])
    ps = ProgramSession(prog)
    err = 0.0
    for f in frames:
        a = sess.upscale(f["colour"], f["depth"], f["motion"], f["jitter"], f["cut"])
        b = ps.upscale(f["colour"], f["depth"], f["motion"], f["jitter"], f["cut"])
        assert b.shape == a.shape
        err = max(err, float(np.abs(contract.colour_forward(a) - contract.colour_forward(b)).max()))
    return err


def test_fast_tiny_interpreter_equals_onnxruntime(tiny_onnx_model, export_onnx):
    path, _ = tiny_onnx_model
    prog = load_program(program_path_for(path))  # written by the export itself
    assert prog["preset"] == "fast" and prog["scale"] == 2
    frames = export_onnx.random_sequence(7, 36, 64, seed=3, cut_at=4)  # history, a cut, history again
    assert _max_err(path, prog, frames) <= TOL
    # a second size in the same session: history resets, still equal
    assert _max_err(path, prog, export_onnx.random_sequence(3, 20, 32, seed=4)) <= TOL


def test_accum_tiny_interpreter_equals_onnxruntime(tiny_accum_onnx, export_onnx):
    """The temporal preset: output-resolution history (bicubic warp, validity), dilation, box stats, kernels,
    alpha prior, blend; over history, a cut, history again."""
    prog = load_program(program_path_for(tiny_accum_onnx))
    assert prog["preset"] == "accum" and [h["name"] for h in prog["history"]] == ["hist"]
    frames = export_onnx.random_sequence(7, 36, 64, seed=6, cut_at=4)
    assert _max_err(tiny_accum_onnx, prog, frames) <= TOL


def test_shipped_fast_program_equals_onnxruntime(export_onnx):
    """The shipped models' programs (committed beside their .onnx) run the shipped weights."""
    onnx = SHIPPED
    prog_path = program_path_for(onnx)
    if not prog_path.is_file():
        pytest.fail(f"{prog_path} missing: re-export with tools/export_onnx.py --ckpt models/fast_x2_godot.pt")
    frames = export_onnx.random_sequence(5, 36, 64, seed=5, cut_at=2)
    assert _max_err(onnx, load_program(prog_path), frames) <= TOL


def test_interpreter_breaks_when_an_op_is_wrong(export_onnx):
    """The parity check can fail: a wrong activation on one layer shows up as a large error."""
    path = SHIPPED
    prog = load_program(program_path_for(path))
    conv = next(op for op in prog["ops"] if op["op"] == "conv2d" and op.get("act") == "relu")
    conv["act"] = "none"
    frames = export_onnx.random_sequence(3, 36, 64, seed=3)
    assert _max_err(path, prog, frames) > 10 * TOL


def test_accum_fused_passes_break_when_wrong(tiny_accum_onnx, export_onnx):
    """The accum parity check can fail: the prepare pass without its motion dilation, or the output pass
    without the signed kernel, shows up as a large error."""
    prog = load_program(program_path_for(tiny_accum_onnx))
    assert [op["op"] for op in prog["ops"]] == ["accum_prepare"] + ["conv2d"] * 4 + ["accum_output"]
    frames = export_onnx.random_sequence(4, 36, 64, seed=6, cut_at=None)
    for op_kind, key, value in (("accum_prepare", "dilate", False), ("accum_output", "n_sharp", 0)):
        broken = json.loads(json.dumps({k: v for k, v in prog.items() if k != "_w"}))
        broken["_w"] = prog["_w"]
        next(op for op in broken["ops"] if op["op"] == op_kind)[key] = value
        assert _max_err(tiny_accum_onnx, broken, frames) > 10 * TOL, f"{op_kind}.{key} = {value} went unseen"


def test_bad_program_files_give_one_line_errors(tiny_onnx_model, tmp_path):
    path, _ = tiny_onnx_model
    src = program_path_for(path)
    js = tmp_path / "m.nssgpu.json"
    shutil.copy(src, js)
    shutil.copy(src.with_suffix("").with_suffix(".nssgpu.bin"), tmp_path / "m.nssgpu.bin")
    prog = json.loads(js.read_text())
    prog["weights"]["file"] = "m.nssgpu.bin"
    js.write_text(json.dumps(prog))
    load_program(js)  # the copy is fine

    def broken(mutate, match):
        p = json.loads(js.read_text())
        mutate(p)
        bad = tmp_path / "bad.nssgpu.json"
        bad.write_text(json.dumps(p))
        with pytest.raises(ProgramError, match=match) as e:
            load_program(bad)
        assert "\n" not in str(e.value) and ".nssgpu." in str(e.value)  # names the file

    broken(lambda p: p.update(version=9), "version")
    broken(lambda p: p["ops"].__setitem__(0, dict(p["ops"][0], op="conv2d", **{"in": ["colour"], "k": 1, "cin": 3,
                                                                              "cout": 3, "pad": "zeros",
                                                                              "w": [0, 9], "b": None,
                                                                              "pool": "nope"})), "pool 'nope'")
    broken(lambda p: p["ops"].__setitem__(0, dict(p["ops"][0], op="fft")), "unknown op 'fft'")
    broken(lambda p: p["ops"][0].__setitem__("in", ["nope"]), "input 'nope'")
    broken(lambda p: p["weights"].__setitem__("count", 5), "bytes; expected weights.count 5")
    broken(lambda p: p["tensors"]["colour"].__setitem__("c", 4), "input tensor 'colour'")
    (tmp_path / "m.nssgpu.bin").write_bytes(b"\0" * 8)
    with pytest.raises(ProgramError, match="bytes; expected"):
        load_program(js)
    with pytest.raises(ProgramError, match="no such GPU program"):
        load_program(tmp_path / "missing.nssgpu.json")
