"""The runtime server, run as a real subprocess on a random port, driven over TCP.

The model is a tiny but real recurrent ONNX graph (built with the onnx helper
API, loaded by the real Session and ONNX Runtime): rgb = bilinear_up(0.5 *
colour + 0.5 * previous colour), previous := colour on reset. Its output shows
whether history, camera cuts and size changes were honoured.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nss_runtime import protocol as P
from nss_runtime.session import FORMAT, FORMAT_VERSION, METADATA_KEY, Session

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_DIR = ROOT / "addons" / "neural_ss" / "runtime"
TOKEN = "t0ken-for-tests-0123456789abcdef"


def make_blend_model(path: Path, scale: int = 2, multiple: int = 2) -> Path:
    """Write the recurrent test model described in the module docstring."""
    import onnx
    from onnx import TensorProto, helper

    f = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("colour", f, [1, 3, "h", "w"]),
              helper.make_tensor_value_info("depth", f, [1, 1, "h", "w"]),
              helper.make_tensor_value_info("motion", f, [1, 2, "h", "w"]),
              helper.make_tensor_value_info("jitter", f, [1, 2]),
              helper.make_tensor_value_info("reset", f, [1]),
              helper.make_tensor_value_info("prev_in", f, [1, 3, "h", "w"])]
    outputs = [helper.make_tensor_value_info("rgb", f, [1, 3, "H", "W"]),
               helper.make_tensor_value_info("prev_out", f, [1, 3, "h", "w"])]
    inits = [helper.make_tensor("half", f, [], [0.5]), helper.make_tensor("one", f, [], [1.0]),
             helper.make_tensor("scales", f, [4], [1.0, 1.0, float(scale), float(scale)])]
    nodes = [
        # prev_eff = reset * colour + (1 - reset) * prev_in
        helper.make_node("Mul", ["reset", "colour"], ["rc"]),
        helper.make_node("Sub", ["one", "reset"], ["keep"]),
        helper.make_node("Mul", ["keep", "prev_in"], ["kp"]),
        helper.make_node("Add", ["rc", "kp"], ["prev_eff"]),
        helper.make_node("Add", ["colour", "prev_eff"], ["sum"]),
        helper.make_node("Mul", ["sum", "half"], ["blend"]),
        helper.make_node("Resize", ["blend", "", "scales"], ["rgb"], mode="linear"),
        helper.make_node("Identity", ["colour"], ["prev_out"]),
    ]
    graph = helper.make_graph(nodes, "nss_test_blend", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "contract_version": 1, "colour_transform": "reinhard",
            "name": f"test_blend_x{scale}", "preset": "test", "scale": scale, "n_prev": 1, "multiple": multiple,
            "fp16": False, "history": [{"name": "prev", "input": "prev_in", "output": "prev_out",
                                        "shape": [1, 3, "h", "w"]}]}
    helper.set_model_props(model, {METADATA_KEY: json.dumps(meta)})
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def make_foreign_model(path: Path) -> Path:
    """A valid ONNX file that is not an NSS model (no metadata)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "not_nss", [x], [y])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def server_env(token: str = TOKEN) -> dict:
    env = dict(os.environ)
    env["NSS_RUNTIME_TOKEN"] = token
    env["PYTHONPATH"] = str(RUNTIME_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class RunningServer:
    """`python -m nss_runtime.server` as a subprocess; port from its ready file."""

    def __init__(self, model: str, tmp: Path, *extra: str, token: str = TOKEN):
        self.ready = tmp / f"ready_{time.monotonic_ns()}.json"
        self.log = tmp / f"server_{time.monotonic_ns()}.log"
        self.token = token
        self._log = open(self.log, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "nss_runtime.server", "--model", model, "--port", "0",
                                      "--ready-file", str(self.ready), "--threads", "1", *extra],
                                     env=server_env(token), stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start: {self.log.read_text()}")
            time.sleep(0.05)
        info = json.loads(self.ready.read_text())
        self.port, self.pid = info["port"], info["pid"]

    def client(self, **kw) -> P.Client:
        return P.Client(self.port, self.token, **kw)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="module")
def blend_model(tmp_path_factory) -> Path:
    return make_blend_model(tmp_path_factory.mktemp("models") / "blend_x2.onnx")


@pytest.fixture(scope="module")
def server(blend_model, tmp_path_factory):
    s = RunningServer(str(blend_model), tmp_path_factory.mktemp("srv"))
    yield s
    s.stop()


def random_frame(rng, w=16, h=8):
    rgbd = rng.uniform(0, 2, (h, w, 4)).astype(np.float32)
    rgbd[..., 3] = rng.uniform(1, 50, (h, w))
    motion = rng.uniform(-2, 2, (h, w, 2)).astype(np.float32)
    return rgbd, motion


def test_results_equal_the_session_frame_by_frame(server, blend_model):
    """The bridge returns what the Session computes directly, history and cuts included."""
    rng = np.random.default_rng(0)
    ref = Session(str(blend_model), threads=1)
    frames = [random_frame(rng) for _ in range(5)]
    cuts = [False, False, True, False, False]
    with server.client(f32_output=True) as c:
        assert c.welcome.scale == 2 and c.welcome.info["name"] == "test_blend_x2"
        assert c.welcome.output_format == P.FMT_F32
        for i, ((rgbd, motion), cut) in enumerate(zip(frames, cuts)):
            r = c.upscale(i, rgbd, motion, cut=cut, jitter=(0.25, -0.125))
            want = ref.upscale_packed(rgbd, motion, jitter=(0.25, -0.125), cut=cut)
            assert r.frame_id == i and r.image.shape == (16, 32, 4)
            np.testing.assert_allclose(r.image[..., :3], want, rtol=1e-6, atol=1e-6)
            assert np.all(r.image[..., 3] == 1.0)
            assert r.infer_ms >= 0 and r.server_ms >= r.infer_ms
    # frame 1 blends frames 0 and 1 (history), frame 2 is a cut: its own colour only
    up = lambda a: Session(str(blend_model)).upscale_packed(a, np.zeros(a.shape[:2] + (2,), np.float32))
    np.testing.assert_allclose(want, up(frames[4][0] * 0.5 + frames[3][0] * 0.5), atol=1e-5)


def test_half_output_pipelined_and_size_change(server):
    """Default RGBA16F results; two frames in flight; a size change resets history by itself."""
    rng = np.random.default_rng(1)
    a, b, c8 = random_frame(rng), random_frame(rng), random_frame(rng, 8, 4)
    with server.client() as c:
        assert c.welcome.output_format == P.FMT_F16
        c.send_frame(10, *a)
        c.send_frame(11, *b)
        r10, r11 = c.recv_result(), c.recv_result()
        assert (r10.frame_id, r11.frame_id) == (10, 11) and r11.image.dtype == np.float16
        r12 = c.upscale(12, *c8)  # new size: no blend with the 16x8 history
        lo = np.repeat(np.repeat(c8[0][..., :3], 2, 0), 2, 1)
        assert r12.image.shape == (8, 16, 4)
        # bilinear of the frame itself: the mean is preserved closely, a blend with garbage would not be
        assert abs(float(r12.image[..., :3].astype(np.float32).mean()) - float(lo.mean())) < 0.02


def test_half_float_input(server, blend_model):
    rng = np.random.default_rng(2)
    rgbd, motion = random_frame(rng)
    with server.client(f32_output=True) as c:
        r = c.upscale(1, rgbd, motion, in_format=P.FMT_F16, cut=True)
    want = Session(str(blend_model)).upscale_packed(rgbd.astype(np.float16).astype(np.float32), motion)
    np.testing.assert_allclose(r.image[..., :3], want, atol=1e-6)


def test_bad_frames_get_errors_and_the_connection_stays(server):
    rng = np.random.default_rng(3)
    rgbd, motion = random_frame(rng)
    with server.client() as c:
        nan = rgbd.copy()
        nan[2, 3, 1] = np.nan
        with pytest.raises(P.RemoteError) as e:
            c.upscale(5, nan, motion)
        assert e.value.code == P.E_BAD_FRAME and not e.value.fatal and e.value.frame_id == 5
        assert "colour" in e.value.text
        odd = random_frame(rng, 15, 8)  # not a multiple of 2
        with pytest.raises(P.RemoteError) as e:
            c.upscale(6, *odd)
        assert e.value.code == P.E_BAD_FRAME and "multiple of 2" in e.value.text
        with pytest.raises(P.RemoteError) as e:
            c.upscale(7, rgbd, motion, jitter=(0.9, 0.0))
        assert "jitter" in e.value.text
        assert c.upscale(8, rgbd, motion).frame_id == 8  # still served


def test_wrong_token_version_and_busy(server):
    with pytest.raises(P.RemoteError) as e:
        P.Client(server.port, "x" * 32)
    assert e.value.code == P.E_BAD_TOKEN and e.value.fatal
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(P.encode_hello(TOKEN, version=99))
    mtype, p = P.recv_message(s, {P.ERROR: 4096})
    assert P.decode_error(bytes(p)).code == P.E_BAD_VERSION
    s.close()
    with server.client():
        with pytest.raises(P.RemoteError) as e:
            server.client()
        assert e.value.code == P.E_BUSY
    with server.client() as c:  # the slot is free again after the first game left
        assert c.welcome.scale == 2
    out = server.output()
    assert "BAD_TOKEN" in out and "BAD_VERSION" in out and "BUSY" in out


def test_foreign_model_is_reported_to_the_game(tmp_path):
    model = make_foreign_model(tmp_path / "resnet.onnx")
    s = RunningServer(str(model), tmp_path)
    try:
        with pytest.raises(P.RemoteError) as e:
            s.client()
        assert e.value.code == P.E_MODEL and e.value.fatal
        assert "not an NSS model" in e.value.text and "resnet.onnx" in e.value.text
        assert s.proc.poll() is None  # still up, still answering
    finally:
        s.stop()
    assert "cannot load model" in s.output()
    assert "Traceback" not in s.output()


def test_exits_with_its_parent(tmp_path, blend_model):
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    s = RunningServer(str(blend_model), tmp_path, "--parent-pid", str(parent.pid))
    parent.kill()
    parent.wait()
    try:
        s.proc.wait(10)
    finally:
        s.stop()
    assert s.proc.returncode == 0 and "parent process" in s.output()
    assert not s.ready.exists()  # removed on exit


def test_identity_model_and_port_in_use(tmp_path):
    s = RunningServer("identity", tmp_path, "--scale", "4")
    try:
        rng = np.random.default_rng(4)
        rgbd, motion = random_frame(rng, 6, 3)
        with s.client(f32_output=True) as c:
            r = c.upscale(0, rgbd, motion)
        np.testing.assert_array_equal(r.image[..., :3], np.repeat(np.repeat(rgbd[..., :3], 4, 0), 4, 1))
        busy = subprocess.run([sys.executable, "-m", "nss_runtime.server", "--model", "identity", "--port",
                               str(s.port)], env=server_env(), capture_output=True, text=True, timeout=60)
        assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{s.port}" in busy.stderr
        assert "Traceback" not in busy.stderr
    finally:
        s.stop()


def test_rgba_packer_matches_numpy_and_its_embedded_graph():
    """Half floats from ONNX Runtime's Cast equal numpy's cast; the embedded graph is what onnx.helper builds."""
    import onnx
    from onnx import TensorProto, helper

    from nss_runtime.server import CAST_F16_ONNX, RGBAPacker

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["c", "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["c", "h", "w"])
    m = helper.make_model(helper.make_graph([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT16)],
                                            "f32_to_f16", [x], [y]),
                          opset_imports=[helper.make_opsetid("", 13)], ir_version=7, producer_name="nss_runtime")
    assert m.SerializeToString() == CAST_F16_ONNX
    onnx.checker.check_model(onnx.load_from_string(CAST_F16_ONNX))
    rng = np.random.default_rng(5)
    rgb = (rng.random((3, 6, 10)) ** 4 * 100).astype(np.float32)
    rgb[0, 0, :5] = [0.0, 1e-7, 6.2e-5, 1.0, 60000.0]
    pack = RGBAPacker()
    got = pack(rgb, P.FMT_F16)
    assert got.dtype == np.float16 and got.shape == (6, 10, 4) and np.all(got[..., 3] == 1)
    np.testing.assert_array_equal(got[..., :3], rgb.transpose(1, 2, 0).astype(np.float16))
    np.testing.assert_array_equal(pack(rgb, P.FMT_F32)[..., :3], rgb.transpose(1, 2, 0))
    assert pack(rgb[:, :3, :4], P.FMT_F16).shape == (3, 4, 4)  # a new size
