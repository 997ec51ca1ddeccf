"""The runtime bridge's wire protocol (PROTOCOL.md is the reference for people).

Binary, little-endian, length-prefixed messages over loopback TCP. Every
message is a 12-byte header followed by `length` payload bytes:

    magic  4s  b"NSSR"
    type   u16 (HELLO, WELCOME, FRAME, RESULT, ERROR, BYE)
    flags  u16 reserved, must be 0
    length u32 payload bytes (not counting the header)

The receiver checks magic, type and `length` against the per-type limit
BEFORE allocating anything for the payload. numpy only: this module ships
inside the Godot addon. It also holds a small blocking Python client (tests,
benchmarks, tools); the game's client is addons/neural_ss/bridge/runtime_client.gd (its
bytes: runtime_wire.gd).
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

import numpy as np

PROTOCOL_VERSION = 1
MAGIC = b"NSSR"

HEADER = struct.Struct("<4sHHI")

# message types
HELLO, WELCOME, FRAME, RESULT, ERROR, BYE = 1, 2, 3, 4, 5, 6
TYPE_NAMES = {HELLO: "HELLO", WELCOME: "WELCOME", FRAME: "FRAME", RESULT: "RESULT", ERROR: "ERROR", BYE: "BYE"}

# HELLO: version, options, token length, then the token (ASCII)
HELLO_HEAD = struct.Struct("<IIH")
HELLO_OPT_F32_OUTPUT = 1  # ask for RGBA32F results instead of RGBA16F
TOKEN_MIN, TOKEN_MAX = 16, 128

# WELCOME: version, scale, n_prev, contract_version, multiple, output format,
# max low-res width, max low-res height, then u16 length + UTF-8 JSON (name, preset, provider, fp16)
WELCOME_HEAD = struct.Struct("<IIIIIIIIH")

# FRAME: id, width, height, flags, jitter x, jitter y, input format, frames skipped since the last sent one
FRAME_HEAD = struct.Struct("<IHHIffHH")
FRAME_CUT = 1  # camera cut: reset history before this frame
FRAME_RESIZE = 2  # the low-res size changed (informational; the runtime resets on any size change)
FRAME_FLAGS_KNOWN = FRAME_CUT | FRAME_RESIZE

# pixel formats (input and output)
FMT_F32, FMT_F16 = 1, 2
FMT_NAMES = {FMT_F32: "f32", FMT_F16: "f16"}
FMT_BYTES = {FMT_F32: 4, FMT_F16: 2}
FMT_DTYPES = {FMT_F32: np.dtype("<f4"), FMT_F16: np.dtype("<f2")}

# RESULT: id, out width, out height, format, inference ms, server ms (frame received -> result sent), then RGBA pixels
RESULT_HEAD = struct.Struct("<IHHIff")

# ERROR: frame id (NO_FRAME when not about a frame), code, fatal, then UTF-8 message
ERROR_HEAD = struct.Struct("<IHH")
NO_FRAME = 0xFFFFFFFF
ERROR_MAX_TEXT = 1024

# error codes
(E_BAD_TOKEN, E_BAD_VERSION, E_BAD_HEADER, E_TOO_LARGE, E_BAD_FRAME, E_MODEL, E_BUSY, E_TIMEOUT,
 E_NOT_READY) = range(1, 10)
ERROR_NAMES = {
    E_BAD_TOKEN: "BAD_TOKEN", E_BAD_VERSION: "BAD_VERSION", E_BAD_HEADER: "BAD_HEADER", E_TOO_LARGE: "TOO_LARGE",
    E_BAD_FRAME: "BAD_FRAME", E_MODEL: "MODEL", E_BUSY: "BUSY", E_TIMEOUT: "TIMEOUT", E_NOT_READY: "NOT_READY",
}

# hard ceilings; the server's own (smaller, configurable) limits apply first
MAX_SIDE = 4096
MAX_SMALL_PAYLOAD = 4096  # HELLO, WELCOME, ERROR, BYE


class ProtocolError(Exception):
    """A message breaks the protocol. `code` is one of the E_* codes; `fatal` means close the connection."""

    def __init__(self, code: int, message: str, fatal: bool = True, frame_id: int = NO_FRAME):
        super().__init__(message)
        self.code, self.fatal, self.frame_id = code, fatal, frame_id


class RemoteError(Exception):
    """The other side sent an ERROR message."""

    def __init__(self, frame_id: int, code: int, fatal: bool, message: str):
        super().__init__(f"{ERROR_NAMES.get(code, code)}: {message}")
        self.frame_id, self.code, self.fatal, self.text = frame_id, code, fatal, message


# --- encoding ------------------------------------------------------------------

def header(mtype: int, length: int) -> bytes:
    return HEADER.pack(MAGIC, mtype, 0, length)


def encode_hello(token: str, version: int = PROTOCOL_VERSION, f32_output: bool = False) -> bytes:
    t = token.encode("ascii")
    body = HELLO_HEAD.pack(version, HELLO_OPT_F32_OUTPUT if f32_output else 0, len(t)) + t
    return header(HELLO, len(body)) + body


@dataclass
class Welcome:
    version: int
    scale: int
    n_prev: int
    contract_version: int
    multiple: int
    output_format: int
    max_width: int
    max_height: int
    info: dict  # name, preset, provider, fp16, ...


def encode_welcome(w: Welcome) -> bytes:
    import json

    j = json.dumps(w.info, sort_keys=True).encode("utf-8")
    body = WELCOME_HEAD.pack(w.version, w.scale, w.n_prev, w.contract_version, w.multiple, w.output_format,
                             w.max_width, w.max_height, len(j)) + j
    return header(WELCOME, len(body)) + body


def decode_welcome(p: bytes) -> Welcome:
    import json

    if len(p) < WELCOME_HEAD.size:
        raise ProtocolError(E_BAD_HEADER, f"WELCOME payload is {len(p)} bytes; expected >= {WELCOME_HEAD.size}")
    *fields, n = WELCOME_HEAD.unpack_from(p)
    if WELCOME_HEAD.size + n != len(p):
        raise ProtocolError(E_BAD_HEADER, f"WELCOME JSON length {n} does not match the payload ({len(p)} bytes)")
    return Welcome(*fields, info=json.loads(p[WELCOME_HEAD.size:].decode("utf-8")))


@dataclass
class FrameHead:
    frame_id: int
    width: int
    height: int
    flags: int
    jitter: tuple[float, float]
    in_format: int
    skipped: int

    @property
    def cut(self) -> bool:
        return bool(self.flags & FRAME_CUT)

    def payload_size(self) -> int:
        return FRAME_HEAD.size + frame_data_size(self.width, self.height, self.in_format)


def frame_data_size(w: int, h: int, fmt: int) -> int:
    return w * h * 6 * FMT_BYTES[fmt]  # RGBA (colour + depth) + RG (motion)


def encode_frame(frame_id: int, rgbd: np.ndarray, motion: np.ndarray, jitter=(0.0, 0.0), cut: bool = False,
                 in_format: int = FMT_F32, skipped: int = 0, flags: int | None = None) -> list[bytes]:
    """Return the message as a list of buffers (for sendmsg / b"".join) without copying the pixels twice."""
    h, w = rgbd.shape[:2]
    dt = FMT_DTYPES[in_format]
    a = np.ascontiguousarray(rgbd, dtype=dt)
    m = np.ascontiguousarray(motion, dtype=dt)
    if flags is None:
        flags = FRAME_CUT if cut else 0
    head = FRAME_HEAD.pack(frame_id, w, h, flags, float(jitter[0]), float(jitter[1]), in_format, skipped)
    length = len(head) + a.nbytes + m.nbytes
    return [header(FRAME, length) + head, a.data.cast("B"), m.data.cast("B")]


def decode_frame_head(p: bytes | memoryview, length: int, max_w: int, max_h: int) -> FrameHead:
    """Parse and check a FRAME's fixed part against the message length and the server's limits."""
    fid, w, h, flags, jx, jy, fmt, skipped = FRAME_HEAD.unpack_from(p)
    if fmt not in FMT_BYTES:
        raise ProtocolError(E_BAD_FRAME, f"frame {fid}: input format {fmt} unknown; expected 1 (f32) or 2 (f16)",
                            fatal=False, frame_id=fid)
    if not (0 < w <= max_w and 0 < h <= max_h):
        raise ProtocolError(E_BAD_FRAME, f"frame {fid}: size {w}x{h} out of range; expected 1..{max_w} x 1..{max_h}",
                            fatal=False, frame_id=fid)
    fh = FrameHead(fid, w, h, flags, (jx, jy), fmt, skipped)
    if fh.payload_size() != length:
        raise ProtocolError(E_BAD_FRAME, f"frame {fid}: payload is {length} bytes; a {w}x{h} {FMT_NAMES[fmt]} frame "
                            f"needs {fh.payload_size()}", fatal=False, frame_id=fid)
    if flags & ~FRAME_FLAGS_KNOWN:
        raise ProtocolError(E_BAD_FRAME, f"frame {fid}: unknown flag bits 0x{flags & ~FRAME_FLAGS_KNOWN:x}",
                            fatal=False, frame_id=fid)
    if not (np.isfinite(jx) and np.isfinite(jy) and abs(jx) <= 0.5 and abs(jy) <= 0.5):
        raise ProtocolError(E_BAD_FRAME, f"frame {fid}: jitter ({jx}, {jy}) invalid; expected values in [-0.5, 0.5]",
                            fatal=False, frame_id=fid)
    return fh


def encode_result_head(frame_id: int, w: int, h: int, fmt: int, infer_ms: float, server_ms: float) -> bytes:
    length = RESULT_HEAD.size + w * h * 4 * FMT_BYTES[fmt]
    return header(RESULT, length) + RESULT_HEAD.pack(frame_id, w, h, fmt, infer_ms, server_ms)


def encode_error(code: int, message: str, fatal: bool, frame_id: int = NO_FRAME) -> bytes:
    t = message.encode("utf-8", "replace")[:ERROR_MAX_TEXT]
    body = ERROR_HEAD.pack(frame_id, code, 1 if fatal else 0) + t
    return header(ERROR, len(body)) + body


def decode_error(p: bytes) -> RemoteError:
    fid, code, fatal = ERROR_HEAD.unpack_from(p)
    return RemoteError(fid, code, bool(fatal), bytes(p[ERROR_HEAD.size:]).decode("utf-8", "replace"))


def encode_bye() -> bytes:
    return header(BYE, 0)


def check_header(raw: bytes, limits: dict[int, int]) -> tuple[int, int]:
    """Check a received header; `limits` maps each acceptable type to its max payload. Returns (type, length)."""
    magic, mtype, flags, length = HEADER.unpack(raw)
    if magic != MAGIC:
        raise ProtocolError(E_BAD_HEADER, f"bad magic {magic!r}; expected {MAGIC!r} (not an NSS runtime client?)")
    if mtype not in limits:
        raise ProtocolError(E_BAD_HEADER, f"unexpected message type {mtype} ({TYPE_NAMES.get(mtype, 'unknown')}); "
                            f"expected one of {[TYPE_NAMES[t] for t in limits]}")
    if flags != 0:
        raise ProtocolError(E_BAD_HEADER, f"{TYPE_NAMES[mtype]} header flags 0x{flags:x}; expected 0")
    if length > limits[mtype]:
        raise ProtocolError(E_TOO_LARGE, f"{TYPE_NAMES[mtype]} of {length} bytes exceeds the limit of "
                            f"{limits[mtype]} bytes")
    return mtype, length


# --- blocking socket helpers ------------------------------------------------------

def recv_exact(sock: socket.socket, n: int, buf: bytearray | None = None) -> memoryview:
    """Read exactly n bytes (into `buf` when given, grown if needed). Raises EOFError on a short read."""
    if buf is None or len(buf) < n:
        buf = bytearray(n)
    view = memoryview(buf)[:n]
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise EOFError(f"connection closed after {got} of {n} bytes")
        got += k
    return view


def send_parts(sock: socket.socket, parts: list) -> None:
    """sendall for a list of buffers: sendmsg may send only part of them (always possible on a socket
    with a timeout), so continue from where it stopped."""
    views = [memoryview(p).cast("B") for p in parts]
    while views:
        n = sock.sendmsg(views)
        while views and n >= len(views[0]):
            n -= len(views[0])
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]


def recv_message(sock: socket.socket, limits: dict[int, int], buf: bytearray | None = None) -> tuple[int, memoryview]:
    mtype, length = check_header(bytes(recv_exact(sock, HEADER.size)), limits)
    return mtype, recv_exact(sock, length, buf) if length else memoryview(b"")


# --- a small Python client (tests, benchmarks, tools) -------------------------------

@dataclass
class Result:
    frame_id: int
    image: np.ndarray  # (h, w, 4) float16/float32 linear RGB + alpha 1
    infer_ms: float
    server_ms: float


class Client:
    """Blocking client. `send_frame` and `recv_result` are separate so a caller can keep frames in flight."""

    def __init__(self, port: int, token: str, host: str = "127.0.0.1", f32_output: bool = False,
                 timeout: float = 30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(encode_hello(token, f32_output=f32_output))
        mtype, p = recv_message(self.sock, {WELCOME: MAX_SMALL_PAYLOAD, ERROR: MAX_SMALL_PAYLOAD})
        if mtype == ERROR:
            err = decode_error(bytes(p))
            self.sock.close()
            raise err
        self.welcome = decode_welcome(bytes(p))

    def send_frame(self, frame_id: int, rgbd: np.ndarray, motion: np.ndarray, jitter=(0.0, 0.0), cut: bool = False,
                   in_format: int = FMT_F32, skipped: int = 0) -> None:
        send_parts(self.sock, encode_frame(frame_id, rgbd, motion, jitter, cut, in_format, skipped))

    def recv_result(self) -> Result:
        limit = RESULT_HEAD.size + MAX_SIDE * MAX_SIDE * 16
        mtype, p = recv_message(self.sock, {RESULT: limit, ERROR: MAX_SMALL_PAYLOAD})
        if mtype == ERROR:
            raise decode_error(bytes(p))
        fid, w, h, fmt, infer_ms, server_ms = RESULT_HEAD.unpack_from(p)
        img = np.frombuffer(p[RESULT_HEAD.size:], dtype=FMT_DTYPES[fmt]).reshape(h, w, 4).copy()
        return Result(fid, img, infer_ms, server_ms)

    def upscale(self, frame_id: int, rgbd: np.ndarray, motion: np.ndarray, **kw) -> Result:
        self.send_frame(frame_id, rgbd, motion, **kw)
        return self.recv_result()

    def close(self) -> None:
        try:
            self.sock.sendall(encode_bye())
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
