"""Evaluation: metrics, the baselines (incl. the TAA upscaler), and the evaluate CLI end to end."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nss_train.eval import baselines as B
from nss_train.eval.metrics import flip_error, psnr, ssim
from nss_train.train.losses import NSSLoss, VGG16Features, to_display
from nss_train.models.registry import build_model, preset_config, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_psnr_ssim_flip_basic_properties():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 32, 32, generator=g)
    y = (x + 0.1).clamp(0, 1)
    mse = float(((x - y) ** 2).mean())
    assert abs(float(psnr(x, y)) - 10 * np.log10(1 / mse)) < 1e-4
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6)
    n1 = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    n2 = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert 1.0 > float(ssim(x, n1)) > float(ssim(x, n2))
    assert flip_error(x[0], x[0]) == 0.0
    assert 0 < flip_error(x[0], n1[0]) < flip_error(x[0], n2[0])
    # display transform: Reinhard then sRGB, in [0, 1]
    d = to_display(torch.tensor([0.0, 1.0, 1e6]))
    assert d[0] == 0 and abs(float(d[1]) - 0.7353569) < 1e-5 and float(d[2]) <= 1.0


def test_loss_is_full_weight_ssim_and_vgg_needs_local_weights(tmp_path, caplog):
    x = torch.rand(1, 3, 24, 24)
    loss, parts = NSSLoss(None)(x, x)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)
    y = torch.rand(1, 3, 24, 24)
    loss, parts = NSSLoss(None, l1_weight=0.0)(x, y)
    assert float(loss) == pytest.approx(1.0 - float(ssim(x, y)), abs=1e-6)  # not halved
    assert "no --vgg-weights" in caplog.text
    # a torchvision-layout state dict loads; the perceptual term then joins the loss
    sd = {k: torch.randn_like(v) * 0.01 for k, v in VGG16Features().state_dict().items() if k.startswith("features")}
    torch.save(sd, tmp_path / "vgg.pth")
    lf = NSSLoss(tmp_path / "vgg.pth")
    loss, parts = lf(x, y)
    assert "perceptual" in parts and parts["total"] == pytest.approx(parts["ssim"] + 0.1 * parts["perceptual"], rel=1e-5)
    del sd["features.0.weight"]
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth: missing 1 VGG-16 tensor"):
        NSSLoss(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth: no such file"):
        NSSLoss(tmp_path / "nope.pth")


def test_bloom_term_sees_the_lost_energy_of_a_bright_thin_line():
    """A 1-px HDR line at half its energy: the display loss hardly notices (Reinhard compresses > 1), the bloom
    term does (it is what Godot's glow spreads); equal images cost nothing; the term joins the total."""
    from nss_train.train.losses import bloom_loss
    target = torch.full((1, 3, 32, 32), 0.05)
    target[..., 16, :] = 10.0
    half = target.clone()
    half[..., 16, :] = 5.0
    blur = target.clone()  # the same energy over 2 rows of one block: no bloom loss, though display values differ more
    blur[..., 16:18, :] = 0.05 + (10.0 - 0.05) / 2
    assert float(bloom_loss(target, target)) == 0.0
    assert float(bloom_loss(half, target)) > 5 * float(bloom_loss(blur, target))
    disp_half = float((to_display(half) - to_display(target)).abs().mean())
    disp_blur = float((to_display(blur) - to_display(target)).abs().mean())
    assert disp_half < disp_blur  # the display L1 ranks them the other way round
    lf = NSSLoss(None, bloom_weight=2.0)
    loss, parts = lf(to_display(half), to_display(target), half, target)
    assert parts["total"] == pytest.approx(parts["ssim"] + parts["l1"] + 2.0 * parts["bloom"], rel=1e-5)
    assert "bloom" in lf.description


def _scene(H, W, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, H // 4, W // 4, generator=g)
    return F.interpolate(base, size=(H, W), mode="bicubic", align_corners=False).clamp(0, 1) * 2  # linear HDR-ish


def _sample(hi, s, jitter, shift=(0.0, 0.0)):
    """Point-sample a high-res image at low-res pixel centres + jitter (low-res px), content shifted by `shift`."""
    _, _, H, W = hi.shape
    h, w = H // s, W // s
    ys = (torch.arange(h) + 0.5 + jitter[1] - shift[1]) * s
    xs = (torch.arange(w) + 0.5 + jitter[0] - shift[0]) * s
    gy = ys / H * 2 - 1
    gx = xs / W * 2 - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)[None]
    return F.grid_sample(hi, grid, mode="bilinear", padding_mode="border", align_corners=False)


def test_jitter_alignment_and_taa_accumulates_subpixel_detail():
    s, H, W = 2, 64, 96
    hi = _scene(H, W)
    tgt = to_display(hi)
    from nss_train.sources.render import jitter_for
    taa, bil = B.make("taa", s), B.make("bilinear", s)
    crop = (..., slice(8, -8), slice(8, -8))
    p_taa = p_bil = p_bil_nojit = 0.0
    for i in range(16):
        j = torch.tensor([jitter_for(i)])
        lo = _sample(hi, s, j[0].tolist())
        z = torch.zeros(1, 2, H // s, W // s)
        out_t = taa.step(lo, z[:, :1], z, j, torch.tensor([float(i == 0)]))
        out_b = bil.step(lo, z[:, :1], z, j, torch.tensor([0.0]))
        p_taa = float(psnr(to_display(out_t)[crop], tgt[crop]))
        p_bil = float(psnr(to_display(out_b)[crop], tgt[crop]))
        nojit = B.make("bilinear", s).step(lo, z[:, :1], z, torch.zeros(1, 2), torch.tensor([0.0]))
        p_bil_nojit = float(psnr(to_display(nojit)[crop], tgt[crop]))
    print("taa", p_taa, "bilinear", p_bil, "no jitter compensation", p_bil_nojit)
    assert p_taa > p_bil + 1.0, (p_taa, p_bil)  # accumulation over jittered frames recovers detail
    assert p_bil > p_bil_nojit, (p_bil, p_bil_nojit)  # jitter compensation helps


def test_taa_reprojects_with_motion_and_resets():
    s, H, W = 2, 64, 96
    hi = _scene(H, W, seed=1)
    taa = B.make("taa", s)
    z = torch.zeros(1, 2, H // s, W // s)
    # content moves 1 low-res px right per frame: prev = p + motion -> motion = (-1, 0)
    mot = z.clone()
    mot[:, 0] = -1.0
    for i in range(8):
        lo = _sample(hi, s, [0.0, 0.0], shift=(float(i), 0.0))
        out = taa.step(lo, z[:, :1], mot if i else z, torch.zeros(1, 2), torch.tensor([float(i == 0)]))
    shifted = torch.roll(hi, shifts=7 * s, dims=-1)
    crop = (..., slice(8, -8), slice(24, -8))
    assert float(psnr(to_display(out)[crop], to_display(shifted)[crop])) > 25
    # a reset forgets the history: the output equals the bilinear upsample of the current frame
    lo = _sample(_scene(H, W, seed=5), s, [0.0, 0.0])
    out = taa.step(lo, z[:, :1], z, torch.zeros(1, 2), torch.tensor([1.0]))
    ref = B.make("bilinear", s).step(lo, z[:, :1], z, torch.zeros(1, 2), torch.tensor([1.0]))
    assert torch.allclose(out, ref, atol=1e-6)


def test_evaluate_cli_end_to_end(tiny_dataset, tmp_path):
    from nss_train.data.datasets import split_sequences
    train, val = split_sequences(tiny_dataset, val_fraction=0.5, seed=0)
    m = build_model(preset_config("fast", scale=2, n_prev=2))
    ck = tmp_path / "m.pt"
    save_checkpoint(ck, m, None, step=3, data={"train_sequences": [str(p) for p in train],
                                                "val_sequences": [str(p) for p in val]})
    cmd = [sys.executable, "-m", "nss_train.eval.evaluate", "--model", str(ck), "--threads", "1", "--crop-size", "32"]
    r = subprocess.run(cmd + ["--data", *map(str, val)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "m.eval.json").read_text())
    assert set(res["summary"]) == {"model", "bilinear", "bicubic", "taa"}
    assert res["frames"] == 6 and len(res["per_frame"]["taa"]["psnr"]) == 6
    for n, v in res["summary"].items():
        assert 5 < v["psnr"] < 60 and 0 < v["flip"] < 1 and v["temporal"] >= 0, n
    md = (tmp_path / "m.eval.md").read_text()
    assert "| taa |" in md and "| model |" in md and "Reinhard" in md
    assert (tmp_path / "m.eval_plot.png").stat().st_size > 1000
    assert len(list((tmp_path / "m.eval_crops").glob("*.png"))) == 1
    # sequences the model trained on are refused, in one line
    r = subprocess.run(cmd + ["--data", *map(str, train)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and "was used to TRAIN this model" in r.stderr and "Traceback" not in r.stderr


def test_one_srgb_curve_and_one_psnr():
    """The training loss's torch sRGB curve is the runtime's numpy one; every PSNR is psnr_from_mse of an MSE."""
    from nss_runtime.display import psnr_from_mse, psnr_reinhard, srgb_encode as srgb_np
    from nss_train.eval import metrics as M
    from nss_train.train.losses import srgb_encode as srgb_torch

    x = np.concatenate([np.linspace(-0.1, 1.2, 2001), np.logspace(-6, -2, 200)]).astype(np.float32)
    assert np.allclose(srgb_torch(torch.from_numpy(x)).numpy(), srgb_np(x), atol=1e-6)
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 8, 8)), rng.random((3, 8, 8))
    mse = float(np.mean((a - b) ** 2))
    assert M.psnr(a, b) == psnr_from_mse(mse) == M.psnr_of_mean_mse([mse, mse])
    assert float(M.psnr(torch.from_numpy(a)[None], torch.from_numpy(b)[None])) == pytest.approx(psnr_from_mse(mse))
    assert psnr_reinhard(a, b) == psnr_from_mse(float(np.mean((a / (1 + a) - b / (1 + b)) ** 2)))
    assert psnr_from_mse(0.0) == pytest.approx(120.0)
