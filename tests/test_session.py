"""nss_runtime.session.Session on real exported graphs: history handling, errors, providers, offline CLI."""
from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest

from nss_runtime.contract import CONTRACT_VERSION, colour_forward
from nss_runtime.session import METADATA_KEY, Session, SessionError

TOL = 1e-4  # max abs error on [0, 1] colour, as the exporter's fp32 bound


def _err(a, b):
    return float(np.abs(colour_forward(a) - colour_forward(b)).max())


@pytest.fixture(scope="module")
def sess(tiny_onnx_model):
    return Session(tiny_onnx_model[0], providers=["CPUExecutionProvider"], threads=2)


def test_info(sess):
    i = sess.info
    assert (i.scale, i.n_prev, i.preset, i.contract_version, i.fp16) == (2, 2, "fast", CONTRACT_VERSION, False)
    assert i.multiple == 2 and i.provider == "CPUExecutionProvider"
    assert i.input_names[:5] == ["colour", "depth", "motion", "jitter", "reset"] and i.output_names[0] == "rgb"


def test_sequence_matches_pytorch_with_cut(export_onnx, tiny_onnx_model, sess):
    _, model = tiny_onnx_model
    frames = export_onnx.random_sequence(7, 20, 32, seed=5, cut_at=4)
    ref = export_onnx.torch_sequence(model, frames)
    got = export_onnx.session_sequence(sess, frames)
    assert max(_err(a, b) for a, b in zip(ref, got)) <= TOL
    # the history matters (frames differ when it is wrong) and the cut really resets it
    no_cut = [dict(f, cut=(i == 0)) for i, f in enumerate(frames)]
    wrong = export_onnx.session_sequence(sess, no_cut)
    assert _err(wrong[4], got[4]) > 1e-3 and max(_err(a, b) for a, b in zip(wrong[:4], got[:4])) == 0.0
    sess.reset()
    alone = sess.upscale(frames[4]["colour"], frames[4]["depth"], frames[4]["motion"], frames[4]["jitter"])
    assert _err(alone, got[4]) == 0.0


@pytest.mark.bpy
def test_rendered_sequence_matches_pytorch(export_onnx, tiny_onnx_model, sess, tiny_dataset):
    """Real Cycles frames (tests/conftest.py tiny_dataset), with an extra camera cut mid-sequence."""
    from nss_runtime import frames as F

    _, model = tiny_onnx_model
    for seq in F.list_sequences(tiny_dataset):
        meta = F.read_meta(seq)
        frames = []
        for i in range(meta.frames):
            fr = F.read_frame(F.frame_path(seq, i), expect_lowres=meta.lowres, with_target=False)
            frames.append({"colour": fr.colour, "depth": fr.depth, "motion": fr.motion, "jitter": meta.jitter[i],
                           "cut": i == 0 or meta.cuts[i] or i == meta.frames // 2})
        ref = export_onnx.torch_sequence(model, frames)
        got = export_onnx.session_sequence(sess, frames)
        assert got[0].shape == (3, 2 * meta.lowres[1], 2 * meta.lowres[0])
        assert max(_err(a, b) for a, b in zip(ref, got)) <= TOL, seq
    # what the exporter's real-frame parity check reads
    frames, where = export_onnx.real_sequence(tiny_dataset, 2)
    assert len(frames) == 6 and frames[0]["colour"].shape == (3, 36, 64) and "seq_" in where
    frames, why = export_onnx.real_sequence(tiny_dataset, 4)
    assert frames == [] and "no readable sequence with scale 4" in why


def test_packed_matches_planar(export_onnx, sess):
    frames = export_onnx.random_sequence(3, 12, 16, seed=6)
    planar = export_onnx.session_sequence(sess, frames)
    sess.reset()
    for f, p in zip(frames, planar):
        rgbd = np.concatenate([f["colour"], f["depth"]]).transpose(1, 2, 0).copy()
        out = sess.upscale_packed(rgbd, f["motion"].transpose(1, 2, 0).copy(), f["jitter"], f["cut"])
        assert out.shape == (24, 32, 3) and np.array_equal(out, p.transpose(1, 2, 0))
    sess.reset()
    f = frames[0]
    rgba = sess.upscale_packed(np.concatenate([f["colour"], f["depth"]]).transpose(1, 2, 0),
                               f["motion"].transpose(1, 2, 0), alpha=True)
    assert rgba.shape == (24, 32, 4) and np.all(rgba[..., 3] == 1.0)
    with pytest.raises(SessionError, match=r"motion has shape \(12, 16, 3\)"):
        sess.upscale_packed(rgbd, np.zeros((12, 16, 3), np.float32))


def test_resolution_change_resets(export_onnx, sess):
    a = export_onnx.random_sequence(3, 12, 16, seed=7)
    b = export_onnx.random_sequence(2, 16, 20, seed=8)
    export_onnx.session_sequence(sess, a)  # history at 16x12
    f = b[0]
    changed = sess.upscale(f["colour"], f["depth"], f["motion"], f["jitter"], cut=False)
    assert changed.shape == (3, 32, 40) and sess.frames == 1
    sess.reset()
    fresh = sess.upscale(f["colour"], f["depth"], f["motion"], f["jitter"])
    assert np.array_equal(changed, fresh)


def test_bad_frames(sess):
    z = lambda c, h=12, w=16: np.zeros((c, h, w), np.float32)  # noqa: E731
    with pytest.raises(SessionError, match=r"15x12 not supported .* multiples of 2"):
        sess.upscale(z(3, 12, 15), z(1, 12, 15), z(2, 12, 15))
    with pytest.raises(SessionError, match=r"'depth' is 8x12; expected 16x12"):
        sess.upscale(z(3), z(1, 12, 8), z(2))
    with pytest.raises(SessionError, match=r"'colour' has shape \(4, 12, 16\)"):
        sess.upscale(z(4), z(1), z(2))
    nan = z(2)
    nan[0, 3, 3] = np.nan
    with pytest.raises(SessionError, match=r"'motion' has 1 NaN"):
        sess.upscale(z(3), z(1), nan)
    with pytest.raises(SessionError, match=r"jitter"):
        sess.upscale(z(3), z(1), z(2), jitter=(0.7, 0.0))
    # validate=False (the server) still checks shapes, cheaply
    sess.validate = False
    try:
        with pytest.raises(SessionError, match=r"'motion' has shape \(2, 12, 8\); expected \(2, 12, 16\)"):
            sess.upscale(z(3), z(1), z(2, 12, 8))
        assert sess.upscale(z(3), z(1), z(2)).shape == (3, 24, 32)
    finally:
        sess.validate = True


def _with_meta(src, dst, **changes):
    proto = onnx.load(str(src))
    for p in proto.metadata_props:
        if p.key == METADATA_KEY:
            m = json.loads(p.value)
            m.update(changes)
            p.value = json.dumps(m)
    onnx.save(proto, str(dst))
    return dst


def test_bad_models(tiny_onnx_model, tmp_path):
    src = tiny_onnx_model[0]
    with pytest.raises(SessionError, match="model file not found"):
        Session(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk" * 10)
    with pytest.raises(SessionError, match=r"junk.onnx: onnxruntime cannot load"):
        Session(tmp_path / "junk.onnx")
    with pytest.raises(SessionError, match=r"contract version 99; this runtime speaks version 1"):
        Session(_with_meta(src, tmp_path / "v99.onnx", contract_version=99))
    with pytest.raises(SessionError, match=r"metadata scale 3 unsupported"):
        Session(_with_meta(src, tmp_path / "s3.onnx", scale=3))
    # a valid ONNX model that is not ours
    from onnx import TensorProto, helper
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "other",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "other.onnx"))
    with pytest.raises(SessionError, match=r"other.onnx: not an NSS model"):
        Session(tmp_path / "other.onnx")
    # our metadata on a graph whose inputs do not match it
    proto = onnx.load(str(tmp_path / "other.onnx"))
    proto.metadata_props.extend(onnx.load(str(src)).metadata_props)
    onnx.save(proto, str(tmp_path / "mismatch.onnx"))
    with pytest.raises(SessionError, match=r"do not match its metadata"):
        Session(tmp_path / "mismatch.onnx")


def test_provider_fallback(tiny_onnx_model):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: nothing to fall back from")
    with pytest.warns(RuntimeWarning, match=r"CUDAExecutionProvider.*not available"):
        s = Session(tiny_onnx_model[0], providers=["CUDAExecutionProvider"])
    assert s.info.provider == "CPUExecutionProvider"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Session(tiny_onnx_model[0]).info.provider == "CPUExecutionProvider"  # auto: no warning
    assert Session(tiny_onnx_model[0], providers="cpu").info.provider == "CPUExecutionProvider"
    with pytest.warns(RuntimeWarning, match=r"TensorrtExecutionProvider"):
        Session(tiny_onnx_model[0], providers="tensorrt, cpu")
    with pytest.raises(SessionError, match="empty list"):
        Session(tiny_onnx_model[0], providers=[])


def _write_sequence(export_onnx, seq, n=6, h=12, w=16, cut_at=3, target=True):
    from nss_runtime import frames as F

    frames = export_onnx.random_sequence(n, h, w, seed=11, cut_at=cut_at)
    rng = np.random.default_rng(0)
    for i, f in enumerate(frames):
        tgt = rng.random((3, 2 * h, 2 * w)).astype(np.float32) if target else None
        F.write_frame(F.frame_path(seq, i), F.Frame(f["colour"], f["depth"], f["motion"], target=tgt))
    F.write_meta(seq, F.SequenceMeta(lowres=(w, h), scale=2, frames=n, jitter=[f["jitter"].tolist() for f in frames],
                                     cuts=[f["cut"] for f in frames]))
    return frames


def test_upscale_sequence_cli_and_resume(export_onnx, tiny_onnx_model, sess, tmp_path, capsys):
    from nss_runtime import upscale_sequence as U

    frames = _write_sequence(export_onnx, tmp_path / "seq")
    model, out = str(tiny_onnx_model[0]), tmp_path / "out"
    assert U.main([model, str(tmp_path / "seq"), str(out), "--format", "both", "--threads", "2", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "6 frame(s) written" in text and "PSNR vs target" in text
    full = [U.read_exr_rgb(out / f"frame_{i:05d}.exr") for i in range(6)]
    ref = export_onnx.session_sequence(sess, frames)
    assert all(np.array_equal(a, b) for a, b in zip(full, ref))
    png = (out / "frame_00002.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[16:24] == (32).to_bytes(4, "big") + (24).to_bytes(4, "big")
    # interrupted run: frames 2 and 5 missing -> resumed frames identical to the uninterrupted run
    for i in (2, 5):
        (out / f"frame_{i:05d}.exr").unlink()
    assert U.main([model, str(tmp_path / "seq"), str(out), "--format", "exr", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "2 frame(s) written, 4 already done" in text and "replayed" in text
    assert all(np.array_equal(U.read_exr_rgb(out / f"frame_{i:05d}.exr"), ref[i]) for i in range(6))
    # wrong scale -> one clear line
    from nss_runtime import frames as F
    m = F.read_meta(tmp_path / "seq")
    m.scale = 4
    F.write_meta(tmp_path / "seq", m)
    assert U.main([model, str(tmp_path / "seq"), str(out), "--quiet", "--overwrite"]) == 1
    assert "sequence scale is 4" in capsys.readouterr().err
