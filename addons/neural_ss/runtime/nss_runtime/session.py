"""Runs an exported NSS model (tools/export_onnx.py) one frame at a time: numpy + onnxruntime only.

    s = Session("models/fast_x2.onnx", providers="auto", threads=2)
    out = s.upscale(colour, depth, motion, jitter=(0.0, 0.0), cut=False)   # (3, s*h, s*w) linear RGB
    out = s.upscale_packed(rgbd, motion)                                    # (s*h, s*w, 3) linear RGB

The graph is recurrent: besides the frame it takes the history tensors the
network keeps between frames and returns their updated values. The Session
owns that history, feeds `reset=1` on the first frame, on a camera cut and
when the frame size changes (the contract's reset semantics are implemented
inside the graph), and otherwise hands back what the previous call returned.

The model's metadata (key METADATA_KEY in the ONNX metadata_props, a JSON
object written by the exporter) names the inputs/outputs, the history
tensors and their shapes as functions of the low-res size, the scale, the
preset and the contract version. A file without it is not one of ours.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .contract import COLOUR_TRANSFORM, CONTRACT_VERSION, SCALES, ContractError, check_buffer, check_jitter

# --- the exported graph's interface (the exporter imports these; one definition) ---
METADATA_KEY = "nss"
FORMAT = "nss-onnx"
FORMAT_VERSION = 1
FRAME_INPUTS = ("colour", "depth", "motion", "jitter", "reset")  # then the history inputs, in metadata order
RGB_OUTPUT = "rgb"  # then the updated history outputs, in metadata order

PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
PROVIDER_ALIASES = {"tensorrt": PROVIDER_ORDER[0], "trt": PROVIDER_ORDER[0], "cuda": PROVIDER_ORDER[1],
                    "cpu": PROVIDER_ORDER[2]}

_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


class SessionError(ContractError):
    """The model file, its metadata or a frame is unusable. The message says which and why."""


@dataclass
class ModelInfo:
    """What the Session knows about its model (from the embedded metadata and ONNX Runtime)."""

    path: str
    name: str
    preset: str
    scale: int
    n_prev: int
    contract_version: int
    multiple: int  # low-res height and width must be multiples of this
    fp16: bool
    colour_transform: str
    provider: str  # the execution provider actually running the graph
    input_names: list[str]
    output_names: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)  # {"name", "input", "output", "shape"}
    meta: dict[str, Any] = field(default_factory=dict)  # the full metadata object


def _shape_dim(expr: Any, h: int, w: int) -> int:
    """One history dimension: an int, or 'h' / 'w' optionally followed by '*k' or '/k'."""
    if isinstance(expr, int):
        return expr
    m = re.fullmatch(r"\s*([hw])\s*(?:([*/])\s*(\d+))?\s*", str(expr))
    if not m:
        raise SessionError(f"history shape entry {expr!r} not understood; expected an int or 'h', 'w', 'h*k', 'w/k'")
    v = h if m.group(1) == "h" else w
    if m.group(2) == "*":
        v *= int(m.group(3))
    elif m.group(2) == "/":
        v //= int(m.group(3))
    return v


def history_shapes(meta: dict[str, Any], h: int, w: int) -> list[tuple[int, ...]]:
    """Shapes of the history tensors for a low-res frame of h x w."""
    return [tuple(_shape_dim(d, h, w) for d in e["shape"]) for e in meta["history"]]


def read_metadata(custom: dict[str, str], where: str) -> dict[str, Any]:
    """Parse and validate the NSS metadata of a model (ONNX metadata_props as a dict)."""
    raw = custom.get(METADATA_KEY)
    if raw is None:
        raise SessionError(f"{where}: not an NSS model (no '{METADATA_KEY}' metadata entry; "
                           "export one with tools/export_onnx.py)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as e:
        raise SessionError(f"{where}: metadata '{METADATA_KEY}' is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise SessionError(f"{where}: metadata format is {meta.get('format') if isinstance(meta, dict) else meta!r}; "
                           f"expected {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise SessionError(f"{where}: metadata format_version is {meta.get('format_version')!r}; this runtime reads "
                           f"version {FORMAT_VERSION} (re-export the model with this version's tools/export_onnx.py)")
    if meta.get("contract_version") != CONTRACT_VERSION:
        raise SessionError(f"{where}: model was exported for frame contract version {meta.get('contract_version')!r}; "
                           f"this runtime speaks version {CONTRACT_VERSION}")
    if meta.get("colour_transform") != COLOUR_TRANSFORM:
        raise SessionError(f"{where}: model colour transform is {meta.get('colour_transform')!r}; "
                           f"expected {COLOUR_TRANSFORM!r}")
    for key, typ in (("scale", int), ("n_prev", int), ("multiple", int), ("history", list), ("preset", str)):
        if not isinstance(meta.get(key), typ):
            raise SessionError(f"{where}: metadata field {key!r} is {meta.get(key)!r}; expected a {typ.__name__}")
    if meta["scale"] not in SCALES:
        raise SessionError(f"{where}: metadata scale {meta['scale']} unsupported; expected one of {SCALES}")
    if meta["multiple"] < 1:
        raise SessionError(f"{where}: metadata multiple {meta['multiple']}; expected >= 1")
    for i, e in enumerate(meta["history"]):
        if not isinstance(e, dict) or not {"name", "input", "output", "shape"} <= set(e):
            raise SessionError(f"{where}: metadata history[{i}] is {e!r}; expected name, input, output, shape")
        for d in e["shape"]:
            _shape_dim(d, 8, 8)
    return meta


def resolve_providers(providers: str | Sequence[str], available: Sequence[str]) -> list[str]:
    """Providers to ask ONNX Runtime for, best first, always ending with CPU. Warns about what is missing.

    `providers`: "auto", a list of names, or a comma-separated string; "cpu", "cuda", "tensorrt" are accepted."""
    if isinstance(providers, str):
        if providers.strip().lower() == "auto":
            return [p for p in PROVIDER_ORDER if p in available] or ["CPUExecutionProvider"]
        providers = providers.split(",")
    wanted = [PROVIDER_ALIASES.get(p.strip().lower(), p.strip()) for p in providers if p.strip()]
    if not wanted:
        raise SessionError("providers is an empty list; expected 'auto' or provider names such as "
                           "['CUDAExecutionProvider', 'CPUExecutionProvider']")
    chosen = [p for p in wanted if p in available]
    missing = [p for p in wanted if p not in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    if missing:
        warnings.warn(f"nss_runtime: execution provider(s) {missing} not available in this onnxruntime "
                      f"(available: {list(available)}); using {chosen}", RuntimeWarning, stacklevel=3)
    return chosen


def _with_options(providers: list[str]) -> list:
    """TensorRT builds an engine per input shape, which takes minutes: keep them in a per-user cache."""
    out = []
    for p in providers:
        if p == "TensorrtExecutionProvider":
            cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "nss_runtime", "trt")
            out.append((p, {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache}))
        else:
            out.append(p)
    return out


class Session:
    """One exported NSS model plus the frame history of one camera stream."""

    def __init__(self, model_path: str | os.PathLike, providers: str | Sequence[str] = "auto",
                 threads: int | None = None, validate: bool = True, spin_wait: bool = False):
        import onnxruntime as ort

        path = os.fspath(model_path)
        if not os.path.isfile(path):
            raise SessionError(f"{path}: model file not found (export one with tools/export_onnx.py)")
        if threads is not None and (not isinstance(threads, int) or threads < 0):
            raise SessionError(f"threads={threads!r}; expected None (onnxruntime's default) or a count >= 0")
        chosen = resolve_providers(providers, ort.get_available_providers())
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3  # ORT prints harmless warnings about unused initialisers otherwise
        # Idle ORT threads busy-wait by default; the game and other processes need those cores
        # (measured here: 8-25 % faster frames with spinning off on a loaded 2-core machine).
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin_wait else "0")
        if threads is not None:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        try:
            self._sess = ort.InferenceSession(path, sess_options=so, providers=_with_options(chosen))
        except Exception as e:  # ORT raises its own Fail/InvalidProtobuf/... types
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SessionError(f"{path}: onnxruntime cannot load this model ({msg})") from None
        used = self._sess.get_providers()
        if used[0] != chosen[0]:
            warnings.warn(f"nss_runtime: {chosen[0]} failed to start; running on {used[0]}", RuntimeWarning,
                          stacklevel=2)
        meta = read_metadata(self._sess.get_modelmeta().custom_metadata_map, path)
        inputs = {i.name: i for i in self._sess.get_inputs()}
        outputs = [o.name for o in self._sess.get_outputs()]
        want_in = list(FRAME_INPUTS) + [e["input"] for e in meta["history"]]
        want_out = [RGB_OUTPUT] + [e["output"] for e in meta["history"]]
        if sorted(inputs) != sorted(want_in) or outputs != want_out:
            raise SessionError(f"{path}: graph inputs {sorted(inputs)} / outputs {outputs} do not match its "
                               f"metadata (expected inputs {want_in}, outputs {want_out})")
        self._in_dtypes = {n: _ORT_DTYPES.get(i.type, np.float32) for n, i in inputs.items()}
        self.info = ModelInfo(path=path, name=str(meta.get("name", os.path.basename(path))), preset=meta["preset"],
                              scale=meta["scale"], n_prev=meta["n_prev"], contract_version=meta["contract_version"],
                              multiple=meta["multiple"], fp16=bool(meta.get("fp16", False)),
                              colour_transform=meta["colour_transform"], provider=used[0], input_names=want_in,
                              output_names=want_out, history=meta["history"], meta=meta)
        self.validate = validate
        self._size: tuple[int, int] | None = None  # (w, h) of the history
        self._history: list[np.ndarray] | None = None
        self.frames = 0  # frames upscaled since the last reset

    # -- history -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the history: the next frame is treated as a camera cut."""
        self._history = None
        self.frames = 0

    def _fresh_history(self, h: int, w: int) -> list[np.ndarray]:
        # Values are irrelevant: reset=1 makes the graph replace them with copies of the current frame.
        return [np.zeros(shape, dtype=self._in_dtypes[e["input"]])
                for e, shape in zip(self.info.history, history_shapes(self.info.meta, h, w))]

    # -- frames --------------------------------------------------------------------------------
    def check_size(self, w: int, h: int) -> None:
        m = self.info.multiple
        if w % m or h % m or w < m or h < m:
            raise SessionError(f"frame size {w}x{h} not supported by {self.info.name}: width and height must be "
                               f"positive multiples of {m} (e.g. {max(m, w // m * m)}x{max(m, h // m * m)})")

    def upscale(self, colour: np.ndarray, depth: np.ndarray, motion: np.ndarray,
                jitter: Sequence[float] = (0.0, 0.0), cut: bool = False) -> np.ndarray:
        """Upscale one frame. colour (3,h,w), depth (1,h,w), motion (2,h,w): float32 contract units.

        Returns (3, s*h, s*w) float32 linear RGB. Frames must come in display order.
        """
        try:
            if self.validate:
                colour = check_buffer("colour", colour, None, "upscale")
                size = (colour.shape[2], colour.shape[1])
                depth = check_buffer("depth", depth, size, "upscale")
                motion = check_buffer("motion", motion, size, "upscale")
                jit = check_jitter(jitter, "upscale")
            else:  # shapes only (O(1)); the caller vouches for the values
                colour, depth, motion = (np.ascontiguousarray(a, np.float32) for a in (colour, depth, motion))
                size = colour.shape[1:] if colour.ndim == 3 else None
                for name, a, c in (("colour", colour, 3), ("depth", depth, 1), ("motion", motion, 2)):
                    if a.ndim != 3 or a.shape[0] != c or a.shape[1:] != size:
                        want = f"({c}, {size[0]}, {size[1]})" if size else f"({c}, height, width)"
                        raise SessionError(f"upscale: buffer {name!r} has shape {a.shape}; expected {want}")
                jit = np.asarray(jitter, np.float32).reshape(2)
        except ContractError as e:
            raise SessionError(str(e)) from None
        h, w = colour.shape[1:]
        self.check_size(w, h)
        reset = bool(cut) or self._history is None or self._size != (w, h)
        if reset:
            if self._history is None or self._size != (w, h):
                self._history = self._fresh_history(h, w)
            self._size = (w, h)
            self.frames = 0
        feed = {"colour": colour[None], "depth": depth[None], "motion": motion[None],
                "jitter": jit.reshape(1, 2).astype(self._in_dtypes["jitter"]),
                "reset": np.array([1.0 if reset else 0.0], dtype=self._in_dtypes["reset"])}
        for e, a in zip(self.info.history, self._history):
            feed[e["input"]] = a
        for n in ("colour", "depth", "motion"):
            if self._in_dtypes[n] != np.float32:
                feed[n] = feed[n].astype(self._in_dtypes[n])
        try:
            rgb, *hist = self._sess.run(None, feed)
        except Exception as e:  # ORT's own error types; one line, and the session stays usable
            self.reset()
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SessionError(f"{self.info.name}: onnxruntime failed on a {w}x{h} frame ({msg})") from None
        self._history = hist
        self.frames += 1
        return rgb[0].astype(np.float32, copy=False)

    def upscale_packed(self, rgbd: np.ndarray, motion: np.ndarray, jitter: Sequence[float] = (0.0, 0.0),
                       cut: bool = False, alpha: bool = False) -> np.ndarray:
        """Upscale one frame as the Godot capture sends it (interleaved, top-down rows).

        rgbd (h, w, 4) float32: linear r, g, b and view depth; motion (h, w, 2) float32: (dx, dy) in low-res
        pixels. Returns (s*h, s*w, 3) float32 linear RGB, or (s*h, s*w, 4) with alpha = 1 when `alpha`
        (what an RGBA texture upload wants).
        """
        rgbd = np.asarray(rgbd)
        motion = np.asarray(motion)
        if rgbd.ndim != 3 or rgbd.shape[2] != 4:
            raise SessionError(f"upscale_packed: rgbd has shape {rgbd.shape}; expected (height, width, 4)")
        if motion.shape != rgbd.shape[:2] + (2,):
            raise SessionError(f"upscale_packed: motion has shape {motion.shape}; expected "
                               f"{rgbd.shape[:2] + (2,)} to match rgbd {rgbd.shape}")
        planar = np.ascontiguousarray(rgbd.transpose(2, 0, 1))
        out = self.upscale(planar[:3], planar[3:], np.ascontiguousarray(motion.transpose(2, 0, 1)), jitter, cut)
        if alpha:
            hwc = np.empty(out.shape[1:] + (4,), np.float32)
            hwc[..., :3] = out.transpose(1, 2, 0)
            hwc[..., 3] = 1.0
            return hwc
        return np.ascontiguousarray(out.transpose(1, 2, 0))
