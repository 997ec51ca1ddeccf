"""Wire format of the runtime bridge (nss_runtime.protocol), byte for byte as PROTOCOL.md states it."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from nss_runtime import protocol as P


def test_header_layout_is_little_endian_and_12_bytes():
    h = P.header(P.FRAME, 0x01020304)
    assert h == b"NSSR" + b"\x03\x00" + b"\x00\x00" + b"\x04\x03\x02\x01"
    assert P.HEADER.size == 12
    assert (P.HELLO_HEAD.size, P.WELCOME_HEAD.size, P.FRAME_HEAD.size, P.RESULT_HEAD.size, P.ERROR_HEAD.size) == \
        (10, 34, 24, 20, 8)


def test_hello_bytes():
    m = P.encode_hello("a" * 16, f32_output=True)
    assert m[:12] == P.header(P.HELLO, 26)
    assert struct.unpack("<IIH", m[12:22]) == (P.PROTOCOL_VERSION, P.HELLO_OPT_F32_OUTPUT, 16)
    assert m[22:] == b"a" * 16


def test_frame_encoding_roundtrip():
    rng = np.random.default_rng(0)
    rgbd = rng.random((3, 5, 4), dtype=np.float32)
    motion = rng.random((3, 5, 2), dtype=np.float32)
    parts = P.encode_frame(9, rgbd, motion, jitter=(0.25, -0.5), cut=True, skipped=2)
    msg = b"".join(bytes(p) for p in parts)
    mtype, length = P.check_header(msg[:12], {P.FRAME: 10_000})
    assert mtype == P.FRAME and length == len(msg) - 12 == 24 + 5 * 3 * 24
    fh = P.decode_frame_head(msg[12:36], length, 64, 64)
    assert (fh.frame_id, fh.width, fh.height, fh.cut, fh.jitter, fh.in_format, fh.skipped) == \
        (9, 5, 3, True, (0.25, -0.5), P.FMT_F32, 2)
    data = np.frombuffer(msg[36:], "<f4")
    np.testing.assert_array_equal(data[:60].reshape(3, 5, 4), rgbd)
    np.testing.assert_array_equal(data[60:].reshape(3, 5, 2), motion)
    half = b"".join(bytes(p) for p in P.encode_frame(1, rgbd, motion, in_format=P.FMT_F16))
    assert len(half) == 12 + 24 + 5 * 3 * 12


@pytest.mark.parametrize("raw, code", [
    (b"NSSX" + bytes(8), P.E_BAD_HEADER),
    (P.header(99, 0), P.E_BAD_HEADER),
    (P.MAGIC + struct.pack("<HHI", P.FRAME, 1, 0), P.E_BAD_HEADER),
    (P.header(P.FRAME, 10_001), P.E_TOO_LARGE),
])
def test_bad_headers(raw, code):
    with pytest.raises(P.ProtocolError) as e:
        P.check_header(raw, {P.FRAME: 10_000})
    assert e.value.code == code and e.value.fatal


@pytest.mark.parametrize("head, length, text", [
    (P.FRAME_HEAD.pack(1, 5, 3, 0, 0, 0, 1, 0), 24 + 5 * 3 * 24 + 4, "needs 384"),
    (P.FRAME_HEAD.pack(1, 65, 3, 0, 0, 0, 1, 0), 24 + 65 * 3 * 24, "out of range"),
    (P.FRAME_HEAD.pack(1, 0, 3, 0, 0, 0, 1, 0), 24, "out of range"),
    (P.FRAME_HEAD.pack(1, 5, 3, 0, 0, 0, 7, 0), 24, "input format 7"),
    (P.FRAME_HEAD.pack(1, 5, 3, 8, 0, 0, 1, 0), 24 + 5 * 3 * 24, "unknown flag bits 0x8"),
    (P.FRAME_HEAD.pack(1, 5, 3, 0, float("nan"), 0, 1, 0), 24 + 5 * 3 * 24, "jitter"),
])
def test_bad_frame_heads_are_not_fatal(head, length, text):
    with pytest.raises(P.ProtocolError) as e:
        P.decode_frame_head(head, length, 64, 64)
    assert e.value.code == P.E_BAD_FRAME and not e.value.fatal and e.value.frame_id == 1
    assert text in str(e.value)


def test_error_and_welcome_roundtrip():
    m = P.encode_error(P.E_MODEL, "model x.onnx: not an NSS model", True, 42)
    mtype, length = P.check_header(m[:12], {P.ERROR: P.MAX_SMALL_PAYLOAD})
    err = P.decode_error(m[12:])
    assert (err.frame_id, err.code, err.fatal, err.text) == (42, P.E_MODEL, True, "model x.onnx: not an NSS model")
    long = P.encode_error(P.E_BAD_FRAME, "é" * 5000, False)
    assert len(long) - 12 <= P.ERROR_HEAD.size + P.ERROR_MAX_TEXT
    w = P.Welcome(1, 2, 4, 1, 8, P.FMT_F16, 2048, 2048, {"name": "fast_x2", "provider": "CPUExecutionProvider"})
    m = P.encode_welcome(w)
    assert P.decode_welcome(m[12:]) == w


def test_result_head_length():
    m = P.encode_result_head(3, 640, 360, P.FMT_F16, 1.5, 2.0)
    mtype, length = P.check_header(m[:12], {P.RESULT: 10**8})
    assert mtype == P.RESULT and length == 20 + 640 * 360 * 8
    assert P.RESULT_HEAD.unpack_from(m, 12) == (3, 640, 360, P.FMT_F16, 1.5, 2.0)


def test_send_parts_survives_partial_sends():
    """sendmsg on a socket with a timeout may send only part of the buffers: send_parts finishes the job."""
    import socket
    import threading

    a, b = socket.socketpair()
    a.settimeout(10)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    parts = [b"head", np.arange(300_000, dtype=np.float32).data.cast("B"), bytes(range(256)) * 1000]
    want = b"".join(bytes(p) for p in parts)
    got = bytearray()

    def reader():
        while len(got) < len(want):
            got.extend(b.recv(7000))

    t = threading.Thread(target=reader)
    t.start()
    P.send_parts(a, parts)
    t.join(10)
    assert bytes(got) == want
    a.close()
    b.close()
