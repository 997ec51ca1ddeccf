"""tools/export_onnx.py: real exports of tiny random models, checked by ONNX Runtime against PyTorch."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from nss_runtime.contract import CONTRACT_VERSION, colour_forward
from nss_runtime.session import METADATA_KEY, Session


def _meta(path):
    return json.loads(next(p.value for p in onnx.load(str(path)).metadata_props if p.key == METADATA_KEY))


def _tiny_ckpt(export_onnx, tmp_path, preset, scale, name="m.pt"):
    from nss_train.models.registry import build_model, save_checkpoint

    torch.manual_seed(3)
    model = build_model(export_onnx.tiny_config(preset, scale)).eval()
    path = tmp_path / name
    save_checkpoint(path, model, step=7, data={"sequences": 2, "frames": 12})
    return path, model


@pytest.mark.parametrize("preset,scale", [("fast", 2), ("nsrr", 4)])
def test_cli_exports_and_checks_parity(export_onnx, tmp_path, capsys, preset, scale):
    ckpt, model = _tiny_ckpt(export_onnx, tmp_path, preset, scale)
    out = tmp_path / "m.onnx"
    (tmp_path / "empty").mkdir()  # real frames are covered in test_session.py (rendered tiny_dataset)
    assert export_onnx.main(["--ckpt", str(ckpt), "--out", str(out), "--threads", "2",
                             "--data", str(tmp_path / "empty")]) == 0
    text = capsys.readouterr().out
    assert text.count("-> OK (bound 0.0001)") == 2 and "FAIL" not in text, text  # random with a cut + 2nd size
    assert "parity real: skipped, no readable sequence with scale" in text
    m = _meta(out)
    assert m["scale"] == scale and m["preset"] == preset and m["n_prev"] == 2
    assert m["contract_version"] == CONTRACT_VERSION and m["colour_transform"] == "reinhard"
    assert m["training"]["step"] == 7 and m["training"]["data"] == {"sequences": 2, "frames": 12}
    assert m["parity"]["max_abs_err_01"] <= 1e-4 and m["opset"] >= 17
    proto = onnx.load(str(out))
    assert proto.opset_import[0].version >= 17
    assert [i.name for i in proto.graph.input][:5] == ["colour", "depth", "motion", "jitter", "reset"]
    # dynamic height/width: symbolic dims, not the export size
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[2].dim_param and dims[3].dim_param

    # independent check at a third size, in this process: the file really is the model
    s = Session(out, providers=["CPUExecutionProvider"], threads=2)
    mult = s.info.multiple
    frames = export_onnx.random_sequence(3, 5 * mult * 2, 7 * mult * 2, seed=9)
    ref = export_onnx.torch_sequence(model, frames)
    got = export_onnx.session_sequence(s, frames)
    assert got[0].shape == (3, 10 * mult * scale, 14 * mult * scale)
    assert max(np.abs(colour_forward(a) - colour_forward(b)).max() for a, b in zip(ref, got)) <= 1e-4


def test_fp16_export(export_onnx, tmp_path, capsys):
    ckpt, model = _tiny_ckpt(export_onnx, tmp_path, "fast", 4)
    out = tmp_path / "h.onnx"
    assert export_onnx.main(["--ckpt", str(ckpt), "--out", str(out), "--fp16", "--threads", "2",
                             "--data", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert f"(bound {export_onnx.FP16_TOL:g})" in text
    m = _meta(out)
    assert m["fp16"] is True
    inits = onnx.load(str(out)).graph.initializer
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in inits)
    s = Session(out, providers=["CPUExecutionProvider"])
    assert s.info.fp16
    fr = export_onnx.random_sequence(1, 16, 24, seed=4)[0]
    got = s.upscale(fr["colour"], fr["depth"], fr["motion"])
    assert got.dtype == np.float32 and got.shape == (3, 64, 96) and np.isfinite(got).all()


def test_parity_failure_is_detected(export_onnx, tiny_onnx_model):
    """The check can fail: a model whose weights differ from the exported graph must not pass."""
    import copy

    out, model = tiny_onnx_model
    model = copy.deepcopy(model)
    assert export_onnx.parity(model, out, export_onnx.random_sequence(2, 8, 16))["max_abs_err_01"] <= 1e-4
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05)
    r = export_onnx.parity(model, out, export_onnx.random_sequence(2, 8, 16))
    assert r["max_abs_err_01"] > 1e-3


def test_bad_checkpoints_give_one_line_errors(export_onnx, tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    assert export_onnx.main(["--ckpt", str(garbage), "--out", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "garbage.pt" in err and "unreadable" in err

    # weights that do not match the config the checkpoint claims
    ckpt, model = _tiny_ckpt(export_onnx, tmp_path, "fast", 2)
    raw = torch.load(ckpt, weights_only=True)
    raw["config"]["unet_enc"] = [[12], [12, 12]]
    torch.save(raw, tmp_path / "mismatch.pt")
    assert export_onnx.main(["--ckpt", str(tmp_path / "mismatch.pt"), "--out", str(tmp_path / "y.onnx")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "mismatch.pt" in err and "do not match" in err

    missing = tmp_path / "nope.pt"
    assert export_onnx.main(["--ckpt", str(missing)]) == 1
    assert "nope.pt: " in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "y.onnx").exists()


def test_check_size_must_be_a_multiple(export_onnx, tmp_path, capsys):
    ckpt, _ = _tiny_ckpt(export_onnx, tmp_path, "fast", 2)
    assert export_onnx.main(["--ckpt", str(ckpt), "--out", str(tmp_path / "z.onnx"), "--check-size", "63x36"]) == 1
    assert "multiples of 2" in capsys.readouterr().err
