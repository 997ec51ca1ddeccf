"""Pictures of a comparison: side-by-side panels with zooms on the most detailed regions, error maps, and
atomic PNG/text writes. Images are (3, H, W) display values in [0, 1]."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

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
