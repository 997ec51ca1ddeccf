"""1000 malformed, oversized and truncated messages and wrong tokens, straight at a real server.

Each must be answered with the right ERROR, the server's memory must stay
bounded, and a good client must be served correctly afterwards.
"""
from __future__ import annotations

import socket
import struct

import numpy as np
import psutil
import pytest

from nss_runtime import protocol as P
from nss_runtime.session import Session
from test_server import TOKEN, RunningServer, make_blend_model, random_frame

N_CASES = 1000
MAX_SIDE = 256  # server limit for this test: a frame is at most 256*256*24 bytes (1.5 MB)


def read_error(s: socket.socket) -> P.RemoteError:
    mtype, p = P.recv_message(s, {P.ERROR: P.MAX_SMALL_PAYLOAD})
    assert mtype == P.ERROR
    return P.decode_error(bytes(p))


def connect(port: int, token: str = TOKEN) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(P.encode_hello(token))
    mtype, p = P.recv_message(s, {P.WELCOME: P.MAX_SMALL_PAYLOAD})
    assert mtype == P.WELCOME
    return s


def frame_bytes(fid, w, h, rgbd=None, motion=None, flags=0, jitter=(0.0, 0.0), fmt=P.FMT_F32, length=None):
    head = P.FRAME_HEAD.pack(fid, w, h, flags, jitter[0], jitter[1], fmt, 0)
    if length is not None:  # a lying length: send exactly what it claims
        data = bytes(length - len(head))
    elif rgbd is None:
        data = bytes(P.frame_data_size(w, h, fmt if fmt in P.FMT_BYTES else P.FMT_F32))
    else:
        data = rgbd.astype(np.float32).tobytes() + motion.astype(np.float32).tobytes()
    n = len(head) + len(data) if length is None else length
    return P.header(P.FRAME, n) + head + data


# --- the cases -------------------------------------------------------------------------
# Each returns (bytes to send after the handshake or None for raw, expected code, fatal, handshake?)

def cases(rng):
    good_rgbd, good_motion = random_frame(rng, 16, 8)
    out = []
    for i in range(N_CASES):
        k = i % 20
        fid = 1000 + i
        if k == 0:  # wrong token of valid length
            tok = "".join(rng.choice(list("abcdef0123456789"), size=int(rng.integers(16, 129))))
            out.append(("raw", P.encode_hello(tok), P.E_BAD_TOKEN))
        elif k == 1:  # token too long for a HELLO
            out.append(("raw", P.encode_hello("z" * 300), P.E_TOO_LARGE))
        elif k == 2:  # garbage instead of a HELLO
            out.append(("raw", rng.bytes(int(rng.integers(12, 200))), P.E_BAD_HEADER))
        elif k == 3:  # a FRAME before the handshake
            out.append(("raw", frame_bytes(fid, 16, 8), P.E_BAD_HEADER))
        elif k == 4:  # HELLO claiming a 4 GB payload
            out.append(("raw", P.header(P.HELLO, 0xFFFFFFFF), P.E_TOO_LARGE))
        elif k == 5:  # oversized frame claim (never sent)
            out.append(("fatal", P.header(P.FRAME, int(rng.integers(1_600_000, 2**32))), P.E_TOO_LARGE))
        elif k == 6:  # a frame larger than the limit, with a consistent length
            w = int(rng.integers(MAX_SIDE + 1, 4000))
            out.append(("fatal", P.header(P.FRAME, P.FRAME_HEAD.size + w * 300 * 24), P.E_TOO_LARGE))
        elif k == 7:  # truncated: half the payload, then the client stops sending
            full = frame_bytes(fid, 16, 8, good_rgbd, good_motion)
            cut = int(rng.integers(13, len(full) - 1))
            out.append(("truncated", full[:cut], P.E_BAD_HEADER))
        elif k == 8:  # bad magic after the handshake
            out.append(("fatal", b"XXXX" + rng.bytes(8), P.E_BAD_HEADER))
        elif k == 9:  # unknown message type
            out.append(("fatal", struct.pack("<4sHHI", P.MAGIC, int(rng.integers(7, 65535)), 0, 0), P.E_BAD_HEADER))
        elif k == 10:  # length does not match the declared size (within the limit): non-fatal
            out.append(("ok", frame_bytes(fid, 16, 8, length=P.FRAME_HEAD.size + 100), P.E_BAD_FRAME))
        elif k == 11:  # zero / over-limit size inside a consistent-looking small message
            out.append(("ok", frame_bytes(fid, 0, 8, length=P.FRAME_HEAD.size + 64), P.E_BAD_FRAME))
        elif k == 12:  # NaN / Inf / negative colour
            r = good_rgbd.copy()
            r[rng.integers(8), rng.integers(16), rng.integers(3)] = rng.choice([np.nan, np.inf, -1.0])
            out.append(("ok", frame_bytes(fid, 16, 8, r, good_motion), P.E_BAD_FRAME))
        elif k == 13:  # NaN depth
            r = good_rgbd.copy()
            r[rng.integers(8), rng.integers(16), 3] = rng.choice([np.nan, -5.0, -np.inf])
            out.append(("ok", frame_bytes(fid, 16, 8, r, good_motion), P.E_BAD_FRAME))
        elif k == 14:  # infinite motion
            m = good_motion.copy()
            m[rng.integers(8), rng.integers(16), rng.integers(2)] = rng.choice([np.nan, np.inf])
            out.append(("ok", frame_bytes(fid, 16, 8, good_rgbd, m), P.E_BAD_FRAME))
        elif k == 15:  # unknown flags
            out.append(("ok", frame_bytes(fid, 16, 8, good_rgbd, good_motion, flags=1 << int(rng.integers(2, 31))),
                        P.E_BAD_FRAME))
        elif k == 16:  # jitter out of range / NaN
            j = (float(rng.choice([0.75, -3.0, np.nan])), 0.0)
            out.append(("ok", frame_bytes(fid, 16, 8, good_rgbd, good_motion, jitter=j), P.E_BAD_FRAME))
        elif k == 17:  # unknown pixel format
            out.append(("ok", frame_bytes(fid, 16, 8, fmt=int(rng.integers(3, 60000))), P.E_BAD_FRAME))
        elif k == 18:  # size not a multiple of the model's
            r, m = random_frame(rng, 15, 7)
            out.append(("ok", frame_bytes(fid, 15, 7, r, m), P.E_BAD_FRAME))
        else:  # FRAME shorter than its own head
            out.append(("fatal", P.header(P.FRAME, int(rng.integers(0, P.FRAME_HEAD.size))) + bytes(23),
                        P.E_BAD_HEADER))
    return out


@pytest.mark.slow
def test_thousand_bad_messages(tmp_path):
    model = make_blend_model(tmp_path / "blend.onnx")
    srv = RunningServer(str(model), tmp_path, "--max-width", str(MAX_SIDE), "--max-height", str(MAX_SIDE),
                        "--read-timeout", "1")
    try:
        proc = psutil.Process(srv.pid)
        rng = np.random.default_rng(7)
        rgbd, motion = random_frame(rng, 16, 8)
        with srv.client() as c:  # warm up: allocate what a normal frame needs
            for i in range(5):
                c.upscale(i, rgbd, motion)
        rss0 = proc.memory_info().rss
        codes: dict[int, int] = {}

        def check(err: P.RemoteError, want: int, fatal: bool, kind: str) -> None:
            assert err.code == want and err.fatal == fatal, (kind, err)
            codes[want] = codes.get(want, 0) + 1

        all_cases = cases(rng)
        # phase 1: a game is connected and sends bad frames (non-fatal: same connection) while other
        # processes knock with bad handshakes (refused for what they are, not just "busy")
        good = connect(srv.port)
        for kind, data, want in all_cases:
            if kind == "ok":
                good.sendall(data)
                check(read_error(good), want, False, kind)
            elif kind == "raw":
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
                s.sendall(data)
                check(read_error(s), want, True, kind)
                s.close()
        good.sendall(b"".join(bytes(b) for b in P.encode_frame(77, rgbd, motion, cut=True)))
        mtype, p = P.recv_message(good, {P.RESULT: 10_000_000})
        assert mtype == P.RESULT and P.RESULT_HEAD.unpack_from(p)[0] == 77
        good.close()
        # phase 2: authenticated connections that break the framing (fatal: the connection is closed)
        for kind, data, want in all_cases:
            if kind in ("fatal", "truncated"):
                s = connect(srv.port)
                s.sendall(data)
                if kind == "truncated":
                    s.shutdown(socket.SHUT_WR)
                check(read_error(s), want, True, kind)
                s.close()
        assert sum(codes.values()) == N_CASES
        # a stalled message times out (read timeout 1 s) with an error
        s = connect(srv.port)
        s.sendall(frame_bytes(5, 16, 8)[:40])
        assert read_error(s).code == P.E_TIMEOUT
        s.close()
        rss1 = proc.memory_info().rss
        # a good client afterwards gets exactly what the Session computes
        with srv.client(f32_output=True) as c:
            r = c.upscale(1, rgbd, motion, cut=True)
        want = Session(str(model)).upscale_packed(rgbd, motion)
        np.testing.assert_allclose(r.image[..., :3], want, atol=1e-6)
        assert srv.proc.poll() is None
    finally:
        srv.stop()
    growth = (rss1 - rss0) / 2**20
    print(f"\n{N_CASES} bad messages: codes {{{', '.join(f'{P.ERROR_NAMES[k]}: {v}' for k, v in codes.items())}}}; "
          f"server RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB (+{growth:.1f})")
    assert growth < 8, f"server memory grew by {growth:.1f} MiB over {N_CASES} bad messages"
    log = srv.output()
    assert "Traceback" not in log
    problem_lines = [ln for ln in log.splitlines() if any(n in ln for n in P.ERROR_NAMES.values())
                     or "truncated" in ln]
    assert len(problem_lines) >= N_CASES
