"""Shared code of tools/compare_upscalers.py and tools/run_demo.py: the runtime process on the host,
display-space image helpers and the comparison metrics.

Images here are numpy float arrays (3, H, W). "Display" values are what the player sees: sRGB-encoded,
in [0, 1] (an 8-bit grab / 255). "Linear light" is the display value decoded with the sRGB curve.

Metrics (every one computed on display values against the reference):
  psnr_of_mean_mse   10 log10(1 / mean over frames of the per-frame MSE): one bad frame is not averaged away
                     in dB, as it is by a mean of per-frame PSNRs;
  ssim               nss_train.losses.ssim (11x11 Gaussian, sigma 1.5), mean over frames;
  flip               NVIDIA FLIP (flip-evaluator, LDR, 67 ppd; nss_train.evaluate.flip_error), mean over frames;
  flicker            mean |(out_t - out_t-1) - (ref_t - ref_t-1)|: temporal change the reference does not have
                     (and change it has that the method misses), unwarped: the same camera path is on both sides.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNTIME_DIR = REPO_ROOT / "addons" / "neural_ss" / "runtime"


class ToolError(RuntimeError):
    """One-line, user-facing reason a tool could not run."""


# --- the runtime on the host ----------------------------------------------------------------

class Runtime:
    """The addon's runtime server (`python -m nss_runtime.server`) as a subprocess with a fresh token;
    stop() ends it (also on errors). `port` and `token` are what a game needs (--nss-runtime-port/-token)."""

    def __init__(self, model: str, out: Path, threads: int | None = None, extra: tuple[str, ...] = ()):
        self.token = secrets.token_hex(16)
        out.mkdir(parents=True, exist_ok=True)
        self.ready = out / "runtime.ready.json"
        self.log_path = out / "runtime.log"
        self.ready.unlink(missing_ok=True)
        env = dict(os.environ, NSS_RUNTIME_TOKEN=self.token,
                   PYTHONPATH=str(RUNTIME_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        cmd = [sys.executable, "-m", "nss_runtime.server", "--model", model, "--ready-file", str(self.ready),
               "--parent-pid", str(os.getpid()), *extra]
        if threads:
            cmd += ["--threads", str(threads)]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        while not self.ready.exists():
            if self.proc.poll() is not None or time.monotonic() - t0 > 120:
                self.stop()
                raise ToolError(f"the runtime did not start: {self.log_path.read_text()[-500:]}")
            time.sleep(0.05)
        info = json.loads(self.ready.read_text())
        if info.get("model_error"):
            self.stop()
            raise ToolError(info["model_error"])
        self.port = int(info["port"])

    def game_args(self) -> list[str]:
        """User arguments that make the addon use this runtime (the Python path, not the node's GPU runtime)
        through its bridge, upscaling every frame (lock-step)."""
        return ["--nss-runtime", "python", "--nss-runtime-port", str(self.port), "--nss-runtime-token", self.token,
                "--nss-lockstep"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# --- colour -----------------------------------------------------------------------------------

def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB display value (clamped to [0, 1] first: a Linear tonemap)."""
    c = np.clip(linear, 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1 / 2.4) - 0.055)


def srgb_decode(display: np.ndarray) -> np.ndarray:
    """sRGB display value in [0, 1] -> linear light."""
    d = np.clip(display, 0.0, 1.0)
    return np.where(d <= 0.04045, d / 12.92, np.power((d + 0.055) / 1.055, 2.4))


def box_down(x: np.ndarray, k: int) -> np.ndarray:
    """(C, k*h, k*w) -> (C, h, w), mean of each k x k block (of whatever x holds)."""
    if k == 1:
        return x
    c, h, w = x.shape
    if h % k or w % k:
        raise ValueError(f"box_down: {w}x{h} is not a multiple of {k}")
    return x.reshape(c, h // k, k, w // k, k).mean(axis=(2, 4))


def box_down_display(display: np.ndarray, k: int) -> np.ndarray:
    """A display image rendered at k x the size -> display image at 1x, averaged in LINEAR light
    (decode sRGB, mean of each k x k block, encode): what k x k samples per pixel look like on screen."""
    if k == 1:
        return display.astype(np.float32)
    return srgb_encode(box_down(srgb_decode(display.astype(np.float64)), k)).astype(np.float32)


# --- metrics ----------------------------------------------------------------------------------

def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return psnr_of_mean_mse([mse(a, b)])


def psnr_of_mean_mse(mses: list[float]) -> float:
    """PSNR (dB, peak 1) of the mean of per-frame MSEs."""
    if not mses:
        raise ValueError("psnr_of_mean_mse: no frames")
    m = float(np.mean(mses))
    return float("inf") if m == 0 else float(10 * np.log10(1.0 / m))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    import torch

    from nss_train.losses import ssim as _ssim

    t = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]  # noqa: E731
    return float(_ssim(t(a), t(b)))


def flip(ref: np.ndarray, test: np.ndarray) -> float:
    import torch

    from nss_train.evaluate import flip_error

    t = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # noqa: E731
    return flip_error(t(ref), t(test))


def flicker(out: list[np.ndarray], ref: list[np.ndarray]) -> list[float]:
    """Per consecutive pair t-1, t: mean |(out_t - out_t-1) - (ref_t - ref_t-1)| (len(out) - 1 values)."""
    if len(out) != len(ref):
        raise ValueError(f"flicker: {len(out)} frames vs {len(ref)} reference frames")
    return [float(np.mean(np.abs((out[t] - out[t - 1]) - (ref[t] - ref[t - 1])))) for t in range(1, len(out))]


def temporal_change(ref: list[np.ndarray]) -> list[float]:
    """Per consecutive pair: mean |ref_t - ref_t-1| (the reference's own change, for scale)."""
    return [float(np.mean(np.abs(ref[t] - ref[t - 1]))) for t in range(1, len(ref))]


def alignment(out: list[np.ndarray], ref: list[np.ndarray]) -> dict:
    """Is each frame i closer to reference frame i than to i-1 and i+1? (frames that have both neighbours
    on one side are checked against the one they have). A method that renders other frames than the
    reference (off by one in time, or a different camera path) fails here."""
    bad: list[dict] = []
    checked = 0
    for i, o in enumerate(out):
        own = mse(o, ref[i])
        for j in (i - 1, i + 1):
            if 0 <= j < len(ref):
                checked += 1
                other = mse(o, ref[j])
                if not own < other:
                    bad.append({"frame": i, "neighbour": j, "mse_own": own, "mse_neighbour": other})
    return {"aligned": not bad, "comparisons": checked, "failures": bad}


def detailed_regions(img: np.ndarray, n: int, size: tuple[int, int]) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of the n non-overlapping size=(h, w) windows of img (3, H, W) with the most
    high-frequency energy (sum of absolute neighbour differences)."""
    g = img.mean(0)
    e = np.zeros_like(g)
    e[:-1, :] += np.abs(np.diff(g, axis=0))
    e[:, :-1] += np.abs(np.diff(g, axis=1))
    ii = np.pad(e.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    zh, zw = size
    H, W = g.shape
    step_y, step_x = max(1, zh // 4), max(1, zw // 4)
    cands = []
    ys = sorted(set(range(0, H - zh + 1, step_y)) | {H - zh})
    xs = sorted(set(range(0, W - zw + 1, step_x)) | {W - zw})
    for y in ys:
        for x in xs:
            s = ii[y + zh, x + zw] - ii[y, x + zw] - ii[y + zh, x] + ii[y, x]
            cands.append((float(s), y, x))
    cands.sort(reverse=True)
    picked: list[tuple[int, int]] = []
    for _, y, x in cands:
        if all(abs(y - py) >= zh or abs(x - px) >= zw for py, px in picked):
            picked.append((y, x))
            if len(picked) == n:
                break
    return picked


def to_u8(img: np.ndarray) -> np.ndarray:
    """(3, H, W) display in [0, 1] -> (H, W, 3) uint8."""
    return (np.clip(img, 0, 1).transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)


def side_by_side(path: Path, panels: list[tuple[str, np.ndarray]], n_zooms: int = 2, zoom: int = 3,
                 palette: bool = False) -> list:
    """Top row: the panels (label, (3, H, W) display image) side by side at full size. Below: for each of the
    n_zooms most detailed regions of the FIRST panel (the reference), the same region of every panel
    enlarged `zoom` times (nearest). palette: 256 colours. Written atomically. Returns the regions [(y, x, h, w)]."""
    from PIL import Image, ImageDraw

    imgs = [to_u8(p) for _, p in panels]
    h, w, _ = imgs[0].shape
    zh, zw = h // zoom, w // zoom
    regions = detailed_regions(panels[0][1], n_zooms, (zh, zw))
    rows = [np.concatenate(imgs, axis=1)]
    for y, x in regions:
        rows.append(np.concatenate([np.asarray(Image.fromarray(a[y:y + zh, x:x + zw]).resize((w, h), Image.NEAREST))
                                    for a in imgs], axis=1))
    img = Image.fromarray(np.concatenate(rows, axis=0))
    d = ImageDraw.Draw(img)
    for k, (name, _) in enumerate(panels):
        d.rectangle((k * w + 2, 2, k * w + 8 + 6 * len(name), 14), fill=(0, 0, 0))
        d.text((k * w + 5, 3), name, fill=(255, 255, 0))
        for r, (y, x) in enumerate(regions):
            label = f"{name} {zoom}x @({x},{y})"
            d.rectangle((k * w + 2, (r + 1) * h + 2, k * w + 8 + 6 * len(label), (r + 1) * h + 14), fill=(0, 0, 0))
            d.text((k * w + 5, (r + 1) * h + 3), label, fill=(255, 255, 0))
    for y, x in regions:  # where the zooms come from, on the reference
        d.rectangle((x, y, x + zw - 1, y + zh - 1), outline=(255, 0, 255))
    save_png(img, path, palette)
    return [(y, x, zh, zw) for y, x in regions]


def save_png(img, path: Path, palette: bool = False) -> None:
    """Write a PIL image atomically; palette: a 256-colour copy (about half the bytes) for results kept in the
    repository."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    if palette:
        img = img.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    tmp = path.with_suffix(".tmp.png")
    img.save(tmp, optimize=True)
    os.replace(tmp, path)


def error_map(path: Path, ref_mean: np.ndarray, err_a: np.ndarray, err_b: np.ndarray, names: tuple[str, str],
              tiles: tuple[int, int] = (8, 8), palette: bool = False) -> dict:
    """Where method a loses to method b: left the mean reference frame, right the per-pixel difference of their
    mean squared errors over the frames (mid grey: equal; white: a has the larger error; black: b has), gain 20.
    Returns {"file", "tiles": share of b's total squared error by which a is worse, per tile (rows x cols)}."""
    from PIL import Image, ImageDraw

    d = err_a - err_b
    grey = np.clip(0.5 + 20.0 * d, 0.0, 1.0)
    img = np.concatenate([np.clip(ref_mean, 0, 1).transpose(1, 2, 0), np.stack([grey] * 3, -1)], axis=1)
    im = Image.fromarray((img * 255 + 0.5).astype(np.uint8))
    h, w = d.shape
    label = f"white: {names[0]} worse, black: {names[1]} worse (MSE difference x20)"
    dr = ImageDraw.Draw(im)
    dr.rectangle((w + 2, 2, w + 8 + 6 * len(label), 14), fill=(0, 0, 0))
    dr.text((w + 5, 3), label, fill=(255, 255, 0))
    save_png(im, path, palette)
    ty, tx = tiles
    edges_y, edges_x = np.linspace(0, h, ty + 1).astype(int), np.linspace(0, w, tx + 1).astype(int)
    tot = float(err_b.sum()) or 1.0
    grid = [[round(float(d[edges_y[i]:edges_y[i + 1], edges_x[j]:edges_x[j + 1]].sum()) / tot, 4) for j in range(tx)]
            for i in range(ty)]
    return {"file": path.name, "methods": list(names), "tiles": grid,
            "what": f"per tile: ({names[0]} - {names[1]}) squared error / {names[1]}'s total; sum = relative MSE change"}


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
