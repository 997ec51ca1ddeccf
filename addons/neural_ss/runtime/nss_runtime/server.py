"""The runtime server: the game's Godot addon sends low-res frames, this process
upscales them with the NSS model (ONNX Runtime) and sends the result back.

    python -m nss_runtime.server --model models/fast_x2.onnx [--port 0] [--ready-file F] [--parent-pid PID]

Loopback only (127.0.0.1), one game at a time, a per-launch token (env
NSS_RUNTIME_TOKEN, --token, or generated and printed). Bad messages get an
ERROR reply and one log line; the server stays up. A model that fails to load
does not stop the server: every handshake is answered with that error, so the
game can show it. See PROTOCOL.md. numpy + onnxruntime only (no torch).
"""
from __future__ import annotations

import argparse
import hmac
import json
import os
import secrets
import selectors
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from . import protocol as P

TOKEN_ENV = "NSS_RUNTIME_TOKEN"


@dataclass
class ServerConfig:
    model: str  # path to an exported NSS .onnx, or "identity" (no network: nearest upscale, for benchmarks)
    scale: int = 2  # only for model="identity"
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port (reported in the ready file and on stdout)
    token: str | None = None
    providers: str = "auto"
    threads: int | None = None
    ready_file: str | None = None  # JSON {"port", "pid"} written atomically once listening
    parent_pid: int | None = None  # exit when this process is gone (the game that started us)
    max_width: int = 2048  # low-res limits, checked before any allocation
    max_height: int = 2048
    handshake_timeout: float = 5.0
    read_timeout: float = 10.0  # a started message must complete within this
    gap_policy: str = "scale"  # frames skipped by the client: "scale" motion by (skipped+1) or "reset" history
    max_gap: int = 3  # more skipped frames than this always reset history
    delay_ms: float = 0.0  # fault injection for tests and demos: a model this much slower


def log(msg: str) -> None:
    print(f"nss_runtime.server: {msg}", file=sys.stderr, flush=True)


class IdentityUpscaler:
    """Nearest-neighbour upscale with the Session's interface: the 'model replaced by identity' of the benchmarks."""

    def __init__(self, scale: int):
        self.scale = scale
        self.info = {"name": f"identity_x{scale}", "preset": "identity", "provider": "numpy", "fp16": False,
                     "scale": scale, "n_prev": 0, "contract_version": 1, "multiple": 1}

    def upscale(self, colour, depth, motion, jitter=(0.0, 0.0), cut=False):
        s, (c, h, w) = self.scale, colour.shape
        return np.broadcast_to(colour[:, :, None, :, None], (c, h, s, w, s)).reshape(c, h * s, w * s)

    def reset(self):
        pass


def load_upscaler(cfg: ServerConfig):
    """Returns (upscaler, info dict). Raises with a one-line message when the model cannot be used."""
    if cfg.model == "identity":
        up = IdentityUpscaler(cfg.scale)
        return up, dict(up.info)
    from .session import Session  # numpy + onnxruntime

    # the server checks sizes and values itself, more cheaply than the Session's per-element masks
    s = Session(cfg.model, providers=cfg.providers, threads=cfg.threads, validate=False)
    i = s.info
    info = {"name": i.name, "preset": i.preset, "provider": i.provider, "fp16": bool(i.fp16), "scale": int(i.scale),
            "n_prev": int(i.n_prev), "contract_version": int(i.contract_version), "multiple": int(i.multiple),
            "model_path": os.path.abspath(cfg.model),
            "jitter": bool(i.meta.get("jitter", False))}  # the model wants jittered low-res frames (accum)
    return s, info


# A one-node ONNX graph, Cast float32 -> float16 (c, h, w), serialised with onnx.helper (ir 7, opset 13):
# numpy's own float16 cast has no SIMD path (~6 ms per 640x360 frame here), ONNX Runtime's takes ~0.1 ms,
# and the runtime must not depend on the onnx package. tests/test_server.py rebuilds and compares it.
CAST_F16_ONNX = (b'\x08\x07\x12\x0bnss_runtime:]\n\x17\n\x01x\x12\x01y"\x04Cast*\t\n\x02to\x18\n\xa0\x01\x02\x12\n'
                 b'f32_to_f16Z\x1a\n\x01x\x12\x15\n\x13\x08\x01\x12\x0f\n\x03\x12\x01c\n\x03\x12\x01h\n\x03\x12'
                 b'\x01wb\x1a\n\x01y\x12\x15\n\x13\x08\n\x12\x0f\n\x03\x12\x01c\n\x03\x12\x01h\n\x03\x12\x01wB'
                 b'\x04\n\x00\x10\r')


class RGBAPacker:
    """Planar linear RGB (3, H, W) float32 -> interleaved RGBA (H, W, 4), alpha 1, as Godot's RGBAH/RGBAF
    read it. The output array is kept between frames (fresh multi-MB arrays cost page faults each frame)."""

    def __init__(self):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.log_severity_level = 3
        self.cast = ort.InferenceSession(CAST_F16_ONNX, sess_options=so, providers=["CPUExecutionProvider"])
        self.key = None
        self.out = None

    def __call__(self, rgb: np.ndarray, fmt: int) -> np.ndarray:
        _, h, w = rgb.shape
        if self.key != (h, w, fmt):
            self.key = (h, w, fmt)
            self.out = np.empty((h, w, 4), np.float32 if fmt == P.FMT_F32 else np.float16)
            self.out[:, :, 3] = 1.0
        src = rgb if fmt == P.FMT_F32 else self.cast.run(None, {"x": np.ascontiguousarray(rgb, np.float32)})[0]
        for c in range(3):
            self.out[:, :, c] = src[c]
        return self.out


def write_ready_file(path: str, data: dict) -> None:
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".ready.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:  # mkstemp: mode 0600, the token may be inside
        json.dump(data, f)
    os.replace(tmp, path)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


MAX_PENDING = 16  # connections still in their handshake
HELLO_LIMIT = P.HELLO_HEAD.size + P.TOKEN_MAX


@dataclass
class Pending:
    peer: str
    deadline: float
    data: bytearray = field(default_factory=bytearray)
    error: str = ""


class Server:
    def __init__(self, cfg: ServerConfig):
        self.cfg = cfg
        self.token = cfg.token or os.environ.get(TOKEN_ENV) or secrets.token_hex(16)
        if not (P.TOKEN_MIN <= len(self.token) <= P.TOKEN_MAX) or not self.token.isascii():
            raise SystemExit(f"nss_runtime.server: token must be {P.TOKEN_MIN}..{P.TOKEN_MAX} ASCII characters; "
                             f"got {len(self.token)}")
        self.upscaler, self.model_error, self.info = None, None, {}
        try:
            self.upscaler, self.info = load_upscaler(cfg)
        except Exception as e:  # noqa: BLE001 - any load failure becomes the message the game shows
            self.model_error = f"model {cfg.model}: {e}".replace("\n", " ")
            log(f"cannot load model: {self.model_error} (serving the error to clients)")
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((cfg.host, cfg.port))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.client: socket.socket | None = None
        self.pending: dict[socket.socket, Pending] = {}
        self.sel = selectors.DefaultSelector()
        self.peer = ""
        self.out_format = P.FMT_F16
        self.buf = bytearray(0)
        self.pack = RGBAPacker()
        self.in_bufs: dict = {}
        self.last_size: tuple[int, int] | None = None
        self.stats = {"frames": 0, "errors": 0, "connections": 0, "refused": 0}
        self.running = True
        self.frame_limit = P.FRAME_HEAD.size + P.frame_data_size(cfg.max_width, cfg.max_height, P.FMT_F32)
        self.limits = {P.FRAME: self.frame_limit, P.BYE: 0}

    # --- connection handling ---------------------------------------------------------

    def _send(self, sock: socket.socket, data) -> bool:
        try:
            if isinstance(data, list):
                P.send_parts(sock, data)  # header + pixels without joining them
            else:
                sock.sendall(data)
            return True
        except OSError:
            return False

    def _refuse(self, sock: socket.socket, peer: str, err: P.ProtocolError) -> None:
        self.stats["refused"] += 1
        log(f"{peer}: refused {P.ERROR_NAMES[err.code]}: {err}")
        self._send(sock, P.encode_error(err.code, str(err), True, err.frame_id))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def _accept(self) -> None:
        sock, addr = self.listener.accept()
        peer = f"{addr[0]}:{addr[1]}"
        if len(self.pending) >= MAX_PENDING:
            self._refuse(sock, peer, P.ProtocolError(P.E_BUSY, f"{MAX_PENDING} handshakes already pending"))
            return
        # the handshake is read without blocking, so a silent or slow connection cannot stall the game's frames
        sock.setblocking(False)
        self.pending[sock] = Pending(peer, time.monotonic() + self.cfg.handshake_timeout)
        self.sel.register(sock, selectors.EVENT_READ, "hello")

    def _end_pending(self, sock: socket.socket) -> Pending:
        self.sel.unregister(sock)
        sock.setblocking(True)
        sock.settimeout(1.0)
        return self.pending.pop(sock)

    def _hello_readable(self, sock: socket.socket) -> None:
        pend = self.pending[sock]
        try:
            chunk = sock.recv(HELLO_LIMIT + P.HEADER.size - len(pend.data))
        except BlockingIOError:
            return
        except OSError as e:
            chunk, pend.error = b"", str(e)
        if not chunk:
            self._end_pending(sock)
            self.stats["refused"] += 1
            log(f"{pend.peer}: closed during the handshake ({pend.error or f'after {len(pend.data)} bytes'})")
            sock.close()
            return
        pend.data += chunk
        try:
            if len(pend.data) < P.HEADER.size:
                return
            mtype, length = P.check_header(bytes(pend.data[:P.HEADER.size]), {P.HELLO: HELLO_LIMIT})
            if len(pend.data) < P.HEADER.size + length:
                return
            self._end_pending(sock)
            options = self._check_hello(memoryview(pend.data)[P.HEADER.size:P.HEADER.size + length])
        except P.ProtocolError as e:
            if sock in self.pending:
                self._end_pending(sock)
            self._refuse(sock, pend.peer, e)
            return
        self._welcome(sock, pend.peer, options)

    def _check_hello(self, p: memoryview) -> int:
        if len(p) < P.HELLO_HEAD.size:
            raise P.ProtocolError(P.E_BAD_HEADER, f"HELLO of {len(p)} bytes; expected >= {P.HELLO_HEAD.size}")
        version, options, n = P.HELLO_HEAD.unpack_from(p)
        if version != P.PROTOCOL_VERSION:
            raise P.ProtocolError(P.E_BAD_VERSION, f"protocol version {version}; this runtime speaks "
                                  f"{P.PROTOCOL_VERSION}")
        token = bytes(p[P.HELLO_HEAD.size:])
        if n != len(token) or not hmac.compare_digest(token, self.token.encode("ascii")):
            raise P.ProtocolError(P.E_BAD_TOKEN, "wrong token (the game's neural_ss/runtime/token or the "
                                  f"{TOKEN_ENV} the runtime was started with)")
        if self.model_error:
            raise P.ProtocolError(P.E_MODEL, self.model_error)
        if self.client is not None:
            raise P.ProtocolError(P.E_BUSY, f"already serving a game ({self.peer})")
        return options

    def _welcome(self, sock: socket.socket, peer: str, options: int) -> None:
        self.out_format = P.FMT_F32 if options & P.HELLO_OPT_F32_OUTPUT else P.FMT_F16
        i = self.info
        w = P.Welcome(P.PROTOCOL_VERSION, i["scale"], i["n_prev"], i["contract_version"], i["multiple"],
                      self.out_format, self.cfg.max_width, self.cfg.max_height, i)
        if not self._send(sock, P.encode_welcome(w)):
            sock.close()
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.cfg.read_timeout)
        self.client, self.peer = sock, peer
        self.sel.register(sock, selectors.EVENT_READ, "client")
        self.last_size = None
        self.upscaler.reset()
        self.stats["connections"] += 1
        log(f"{peer}: connected (model {i['name']}, x{i['scale']}, {i['provider']}, "
            f"output {P.FMT_NAMES[self.out_format]})")

    def _expire_pending(self) -> None:
        now = time.monotonic()
        for sock, pend in list(self.pending.items()):
            if now > pend.deadline:
                self._end_pending(sock)
                self._refuse(sock, pend.peer, P.ProtocolError(
                    P.E_TIMEOUT, f"no complete HELLO within {self.cfg.handshake_timeout} s"))

    def _drop_client(self, why: str) -> None:
        log(f"{self.peer}: disconnected ({why}); served {self.stats['frames']} frames so far")
        self.sel.unregister(self.client)
        try:
            self.client.close()
        except OSError:
            pass
        self.client = None

    def _serve_one(self) -> None:
        """Read and answer one message from the connected game."""
        sock = self.client
        try:
            raw = P.recv_exact(sock, P.HEADER.size)
        except (EOFError, OSError) as e:
            self._drop_client("closed" if isinstance(e, EOFError) and "after 0 of" in str(e) else str(e))
            return
        try:
            mtype, length = P.check_header(bytes(raw), self.limits)
            if mtype == P.BYE:
                self._drop_client("bye")
                return
            self._frame(sock, length)
        except P.ProtocolError as e:
            self.stats["errors"] += 1
            log(f"{self.peer}: {P.ERROR_NAMES[e.code]}{'' if e.fatal else ' (frame skipped)'}: {e}")
            self._send(sock, P.encode_error(e.code, str(e), e.fatal, e.frame_id))
            if e.fatal:
                self._drop_client("protocol error")
        except socket.timeout:
            self.stats["errors"] += 1
            msg = f"message incomplete after {self.cfg.read_timeout} s"
            log(f"{self.peer}: TIMEOUT: {msg}")
            self._send(sock, P.encode_error(P.E_TIMEOUT, msg, True))
            self._drop_client("timeout")
        except (EOFError, OSError) as e:
            self.stats["errors"] += 1
            log(f"{self.peer}: truncated message: {e}")
            self._send(sock, P.encode_error(P.E_BAD_HEADER, f"truncated message: {e}", True))
            self._drop_client("truncated message")

    def _frame(self, sock: socket.socket, length: int) -> None:
        cfg = self.cfg
        if length < P.FRAME_HEAD.size:
            raise P.ProtocolError(P.E_BAD_HEADER, f"FRAME payload of {length} bytes is shorter than its "
                                  f"{P.FRAME_HEAD.size}-byte head")
        head = bytes(P.recv_exact(sock, P.FRAME_HEAD.size))
        try:
            fh = P.decode_frame_head(head, length, cfg.max_width, cfg.max_height)
        except P.ProtocolError:
            # the length passed the limit, so the rest can be skipped and the stream stays in sync
            self._discard(sock, length - P.FRAME_HEAD.size)
            raise
        n = length - P.FRAME_HEAD.size
        if len(self.buf) < n:
            self.buf = bytearray(n)
        data = P.recv_exact(sock, n, self.buf)
        t0 = time.perf_counter()
        w, h, dt = fh.width, fh.height, P.FMT_DTYPES[fh.in_format]
        m = self.info["multiple"]
        if w % m or h % m:
            raise P.ProtocolError(P.E_BAD_FRAME, f"frame {fh.frame_id}: size {w}x{h} is not a multiple of {m}, "
                                  "which this model needs", fatal=False, frame_id=fh.frame_id)
        arr = np.frombuffer(data, dtype=dt)
        rgbd = arr[: w * h * 4].reshape(h, w, 4)
        motion = arr[w * h * 4:].reshape(h, w, 2)
        cut = fh.cut or (w, h) != self.last_size
        if fh.skipped and not cut:
            if cfg.gap_policy == "reset" or fh.skipped > cfg.max_gap:
                cut = True
            else:
                motion = motion * np.float32(fh.skipped + 1)  # constant-velocity guess for the unsent frames
        # the network takes planar buffers: one transposing copy each (also f16 -> f32), into arrays
        # kept between frames (ONNX Runtime does not hold on to its inputs after run())
        if self.in_bufs.get("key") != (h, w):
            self.in_bufs = {"key": (h, w), "rgbd": np.empty((4, h, w), np.float32),
                            "motion": np.empty((2, h, w), np.float32)}
        planar, mplanar = self.in_bufs["rgbd"], self.in_bufs["motion"]
        np.copyto(planar, rgbd.transpose(2, 0, 1))
        np.copyto(mplanar, motion.transpose(2, 0, 1))
        bad = self._check_pixels(planar, mplanar)
        if bad:
            raise P.ProtocolError(P.E_BAD_FRAME, f"frame {fh.frame_id}: {bad}", fatal=False, frame_id=fh.frame_id)
        t1 = time.perf_counter()
        if cfg.delay_ms > 0:
            time.sleep(cfg.delay_ms / 1000.0)
        try:
            out = self.upscaler.upscale(planar[:3], planar[3:], mplanar, jitter=fh.jitter, cut=cut)
        except Exception as e:  # noqa: BLE001 - a frame the model rejects must not stop the server
            self.last_size = None
            raise P.ProtocolError(P.E_MODEL, f"frame {fh.frame_id}: model failed: {str(e).splitlines()[0]}",
                                  fatal=False, frame_id=fh.frame_id) from None
        self.last_size = (w, h)
        t2 = time.perf_counter()
        rgba = self.pack(out, self.out_format)
        oh, ow = rgba.shape[:2]
        t3 = time.perf_counter()
        server_ms = (t3 - t0) * 1000.0
        ok = self._send(sock, [P.encode_result_head(fh.frame_id, ow, oh, self.out_format, (t2 - t1) * 1000.0,
                                                    server_ms), rgba.data.cast("B")])
        if ok:
            self.stats["frames"] += 1

    @staticmethod
    def _check_pixels(planar: np.ndarray, motion: np.ndarray) -> str:
        """The contract's value rules on planar buffers, cheaply: min/max propagate NaN, so no masks."""
        c = planar[:3]
        if not (c.min() >= 0 and c.max() < np.inf):
            return "colour has NaN/Inf/negative values; expected linear RGB >= 0 (RGBA r,g,b)"
        if not planar[3].min() >= 0:
            return "depth has NaN/negative values; expected linear view depth >= 0 (+inf on background) (RGBA a)"
        if not (motion.min() > -np.inf and motion.max() < np.inf):
            return "motion has NaN/Inf values; expected finite low-res pixels (RG)"
        return ""

    def _discard(self, sock: socket.socket, n: int) -> None:
        while n > 0:
            k = len(sock.recv(min(n, 1 << 16)))
            if k == 0:
                raise EOFError("connection closed inside a frame")
            n -= k

    # --- main loop -----------------------------------------------------------------------

    def serve_forever(self) -> None:
        if self.cfg.ready_file:
            write_ready_file(self.cfg.ready_file, {"port": self.port, "pid": os.getpid(),
                                                   "model_error": self.model_error})
        print(f"nss_runtime.server listening on {self.cfg.host}:{self.port}", flush=True)
        if not (self.cfg.token or os.environ.get(TOKEN_ENV)):
            print(f"token: {self.token}", flush=True)
        self.sel.register(self.listener, selectors.EVENT_READ, "listen")
        try:
            while self.running:
                for key, _ in self.sel.select(timeout=0.25):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "hello" and key.fileobj in self.pending:
                        self._hello_readable(key.fileobj)
                    elif key.data == "client" and key.fileobj is self.client:
                        self._serve_one()
                self._expire_pending()
                if self.cfg.parent_pid and not pid_alive(self.cfg.parent_pid):
                    log(f"parent process {self.cfg.parent_pid} is gone; exiting")
                    break
        finally:
            for sock in list(self.pending):
                self._end_pending(sock)
                sock.close()
            if self.client is not None:
                self._drop_client("server exiting")
            self.listener.close()
            if self.cfg.ready_file:
                try:
                    os.unlink(self.cfg.ready_file)
                except OSError:
                    pass
            log(f"exit: {self.stats}")


def parse_args(argv=None) -> ServerConfig:
    d = ServerConfig(model="")
    ap = argparse.ArgumentParser(prog="python -m nss_runtime.server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="exported NSS model (.onnx), or 'identity' (no network)")
    ap.add_argument("--scale", type=int, default=d.scale, help="scale of the 'identity' model")
    ap.add_argument("--port", type=int, default=d.port, help="TCP port on 127.0.0.1 (0: any free port)")
    ap.add_argument("--token", default=None, help=f"session token (prefer the {TOKEN_ENV} environment variable; "
                    "a random one is generated and printed when neither is given)")
    ap.add_argument("--providers", default=d.providers, help="ONNX Runtime providers: auto or a comma list")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    ap.add_argument("--ready-file", default=None, help="write {port, pid} here (atomically) once listening")
    ap.add_argument("--parent-pid", type=int, default=None, help="exit when this process (the game) ends")
    ap.add_argument("--max-width", type=int, default=d.max_width, help="largest low-res width accepted")
    ap.add_argument("--max-height", type=int, default=d.max_height, help="largest low-res height accepted")
    ap.add_argument("--handshake-timeout", type=float, default=d.handshake_timeout, help="seconds for a HELLO")
    ap.add_argument("--read-timeout", type=float, default=d.read_timeout,
                    help="seconds within which a started message must complete")
    ap.add_argument("--delay-ms", type=float, default=0.0,
                    help="add this much time to every frame (fault injection: a slower model)")
    ap.add_argument("--gap-policy", choices=["scale", "reset"], default=d.gap_policy,
                    help="frames the game skipped: extrapolate motion or reset history")
    a = ap.parse_args(argv)
    if not (1 <= a.max_width <= P.MAX_SIDE and 1 <= a.max_height <= P.MAX_SIDE):
        ap.error(f"--max-width/--max-height must be in 1..{P.MAX_SIDE}")
    providers = a.providers if a.providers == "auto" else [p.strip() for p in a.providers.split(",") if p.strip()]
    return ServerConfig(model=a.model, scale=a.scale, port=a.port, token=a.token, providers=providers,
                        threads=a.threads, ready_file=a.ready_file, parent_pid=a.parent_pid,
                        max_width=a.max_width, max_height=a.max_height, gap_policy=a.gap_policy,
                        handshake_timeout=a.handshake_timeout, read_timeout=a.read_timeout, delay_ms=a.delay_ms)


def main(argv=None) -> int:
    cfg = parse_args(argv)
    try:
        server = Server(cfg)
    except OSError as e:
        print(f"nss_runtime.server: cannot listen on {cfg.host}:{cfg.port}: {e.strerror or e}", file=sys.stderr)
        return 2

    def stop(signum, frame):
        server.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
