"""The temporal preset `accum` (nss_train/models/accum.py): tests that see its wiring, on synthetic jittered scenes.

They run the model code itself (its initialisation, and the shipped checkpoint models/accum_x2.pt), never an
exported file. The scenes: a continuous pattern with detail above the low-res Nyquist frequency (below the
output's), point-sampled at the Halton(2, 3) jittered sample positions, target = the pattern box-filtered over
each output pixel. Edits each test catches (checked by applying them): see docs/model.md, "accum: what the
tests catch".
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nss_train.models.accum as A
from nss_train.models.geometry import colour_forward, colour_inverse
from nss_train.models.registry import load_checkpoint
from nss_train.sources.render import halton

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "accum_x2.pt"


# --- synthetic scenes ---------------------------------------------------------------------------

def pattern(u, v, kind: int = 0):
    """Linear RGB of a continuous pattern at (u, v) in low-res px: frequencies 0.35-0.62 cycles per low-res px."""
    if kind == 2:  # flat
        return np.stack([np.full_like(u, 0.1), np.full_like(u, 0.8), np.full_like(u, 0.3)]).astype(np.float32)
    if kind == 0:
        a = np.sin(2 * np.pi * (0.62 * u + 0.11 * v)) * np.sin(2 * np.pi * (0.07 * u + 0.58 * v))
        b = np.sin(2 * np.pi * (0.35 * u - 0.4 * v))
    else:
        a = np.sin(2 * np.pi * (0.45 * u - 0.3 * v))
        b = np.sin(2 * np.pi * (0.2 * u + 0.55 * v)) * np.sin(2 * np.pi * 0.5 * u)
    return np.stack([0.45 + 0.35 * a, 0.45 + 0.25 * b, 0.45 + 0.2 * a * b]).astype(np.float32)


def scene(n: int, size: int = 24, s: int = 2, vel=(0.0, 0.0), cut_at: int | None = None, kinds=None,
          ss: int = 3) -> list[dict]:
    """n frames of a pattern moving by `vel` low-res px per frame; contract motion = -vel (prev = p + m)."""
    frames = []
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    Y, X = np.mgrid[0:size * s, 0:size * s].astype(np.float32)
    for t in range(n):
        j = np.array([halton(t + 1, 2) - 0.5, halton(t + 1, 3) - 0.5], np.float32)
        kind = kinds[t] if kinds else 0
        sx, sy = vel[0] * t, vel[1] * t
        colour = pattern(xx + 0.5 + j[0] - sx, yy + 0.5 + j[1] - sy, kind)
        target = sum(pattern((X + (a + 0.5) / ss) / s - sx, (Y + (b + 0.5) / ss) / s - sy, kind)
                     for a in range(ss) for b in range(ss)) / ss ** 2
        motion = np.stack([np.full((size, size), -vel[0]), np.full((size, size), -vel[1])]).astype(np.float32)
        frames.append({"colour": colour, "depth": np.full((1, size, size), 5.0, np.float32), "motion": motion,
                       "jitter": j, "target": target.astype(np.float32), "cut": t == 0 or t == cut_at})
    return frames


def run(model, frames, hist=None) -> list[np.ndarray]:
    """Stream frames through model.step as the runtime does (reset on the first frame and on cuts)."""
    outs = []
    with torch.no_grad():
        for f in frames:
            c, d, m = (torch.from_numpy(np.ascontiguousarray(f[k]))[None] for k in ("colour", "depth", "motion"))
            if hist is None:
                hist = model.init_history(1, c.shape[2], c.shape[3])
            r = torch.tensor([1.0 if f["cut"] else 0.0])
            rgb, *hist = model.step(c, d, m, torch.from_numpy(f["jitter"])[None], r, *hist)
            outs.append(rgb[0].numpy())
    return outs


def psnr(a, b, border: int = 3) -> float:
    a, b = (np.clip(x[:, border:-border, border:-border], 0, 1) for x in (a, b))
    return 10 * math.log10(1 / float(np.mean((a - b) ** 2)))


def psnrs(model, frames) -> list[float]:
    return [psnr(o, f["target"]) for o, f in zip(run(model, frames), frames)]


def bilinear(f) -> np.ndarray:
    return F.interpolate(torch.from_numpy(f["colour"])[None], scale_factor=2, mode="bilinear",
                         align_corners=False)[0].numpy()


MODELS = ["init"] + (["shipped"] if SHIPPED.is_file() else [])


@pytest.fixture(params=MODELS, scope="module")
def model(request):
    if request.param == "init":
        torch.manual_seed(0)
        m = A.Accum(A.AccumConfig(scale=2)).eval()
        m._nss_init = True
        return m
    m, cfg, _ = load_checkpoint(SHIPPED)
    assert cfg.scale == 2
    return m


# --- temporal behaviour ---------------------------------------------------------------------------

def test_static_scene_accumulates_and_a_cut_starts_over(model):
    """Static jittered scene: PSNR rises over the frames (the history gathers sub-pixel samples), falls back on a
    cut, rises again; the accumulated result beats the single-frame bilinear upsample by a margin."""
    fr = scene(20, cut_at=12)
    p = psnrs(model, fr)
    bil = float(np.mean([psnr(bilinear(f), f["target"]) for f in fr]))
    assert p[11] > p[0] + 1.5, p
    assert p[11] > bil + 2.0, (p, bil)
    assert p[12] < p[11] - 1.5, p  # the cut drops the history
    assert abs(p[12] - p[0]) < 0.5, p  # ... to where a first frame starts
    assert p[19] > p[12] + 1.5, p


def _moving(model, vel, transform=None):
    fr = scene(14, vel=vel)
    if transform:
        for f in fr:
            transform(f)
    return float(np.mean(psnrs(model, fr)[4:]))


@pytest.mark.parametrize("vel", [(0.37, 0.21), (-0.6, 0.45)])
def test_motion_sign_and_warp_matter(model, vel):
    """A moving pattern: the contract's motion (prev = p + m) beats the flipped sign and beats no warp at all.
    Margin: 1.5 dB for the initialisation (a TAA upsampler: it trusts the history); 0.75 dB for the trained model,
    which rejects a mis-warped history faster on this pattern above the low-res Nyquist frequency (measured: it
    beats no warp by 1.04 dB at the first velocity, by 3.3 dB at the second; with the warp dropped or the sign
    flipped the difference is 0)."""
    margin = 1.5 if getattr(model, "_nss_init", False) else 0.75
    good = _moving(model, vel)
    flipped = _moving(model, vel, lambda f: f.update(motion=-f["motion"]))
    still = _moving(model, vel, lambda f: f.update(motion=0 * f["motion"]))
    assert good > flipped + margin, (good, flipped)
    assert good > still + margin, (good, still)


def test_jitter_is_used_with_the_contract_sign(model):
    """Static scene: telling the model the true jitter beats a zeroed and a negated jitter."""
    good = _moving(model, (0.0, 0.0))
    zeroed = _moving(model, (0.0, 0.0), lambda f: f.update(jitter=0 * f["jitter"]))
    negated = _moving(model, (0.0, 0.0), lambda f: f.update(jitter=-f["jitter"]))
    assert good > zeroed + 1.0, (good, zeroed)
    assert good > negated + 1.5, (good, negated)


def test_reset_forgets_the_history(model):
    """A cut to a different scene: the output of the cut frame equals a fresh start on it, whatever the history
    held; without the cut flag the old scene would leak in."""
    fr = scene(10, kinds=[0] * 6 + [1] * 4, cut_at=6)
    outs = run(model, fr)
    fresh = run(model, fr[6:])
    assert np.abs(outs[6] - fresh[0]).max() < 1e-5
    assert np.abs(outs[9] - fresh[3]).max() < 1e-5
    # history garbage is ignored on a reset frame
    s = model.cfg.scale
    junk = (torch.rand(1, A.HIST_CHANNELS, 24 * s, 24 * s),)
    assert np.abs(run(model, fr[6:7], hist=junk)[0] - fresh[0]).max() < 1e-5
    # and the flag matters: the same frame without a cut is different
    fr[6]["cut"] = False
    assert np.abs(run(model, fr)[6] - fresh[0]).max() > 1e-2


def test_rectification_rejects_stale_history(model):
    """Content changes without a cut (a disocclusion, a light switched on): the history is clamped to the current
    samples' neighbourhood box, so the new colour shows at once instead of ghosting in over many frames."""
    fr = scene(9, kinds=[0] * 6 + [2] * 3)
    p = psnrs(model, fr)
    assert p[6] > 35.0, p


def test_signed_kernel_reaches_the_output():
    """The signed kernel is added to the softmax one: head biases making it an unsharp mask (centre +4k, the 4
    edge taps -k) make a single reset frame of a step edge overshoot the edge's two levels, which no positive
    normalised kernel can; all-zero signed weights (the initialisation) leave the output unchanged."""
    torch.manual_seed(0)
    m = A.Accum(A.AccumConfig()).eval()
    net = m.net
    assert net.n_sharp == 9 * 4
    c = torch.full((1, 3, 8, 8), 0.2)
    c[..., 4:] = 0.6
    args = (torch.ones(1, 1, 8, 8), torch.zeros(1, 2, 8, 8), torch.zeros(1, 2), torch.ones(1), *m.init_history(1, 8, 8))
    with torch.no_grad():
        plain, _ = m.step(c, *args)
        r0 = net.n_alpha + net.n_kern + 1 + net.n_resid
        k = 0.15
        for q in range(4):
            for t, (dy, dx) in enumerate(A.TAPS):
                v = 4 * k if (dy, dx) == (0, 0) else (-k if abs(dy) + abs(dx) == 1 else 0.0)
                net.head.bias[r0 + q * 9 + t] = v
        sharp, _ = m.step(c, *args)
    lo, hi = float(plain.min()), float(plain.max())
    assert lo >= 0.2 - 1e-4 and hi <= 0.6 + 1e-4  # softmax kernel: a convex combination
    assert float(sharp.max()) > 0.6 + 0.02 and float(sharp.min()) < 0.2 - 0.02, (float(sharp.min()), float(sharp.max()))


# --- geometry wiring --------------------------------------------------------------------------------

def test_dilate_motion_takes_the_closest_neighbour():
    d = torch.zeros(1, 1, 5, 5)
    d[0, 0, 2, 2] = 0.9  # near pixel (normalised depth: larger = closer)
    m = torch.zeros(1, 2, 5, 5)
    m[0, :, 2, 2] = torch.tensor([1.5, -2.0])
    m[0, :, 0, 0] = torch.tensor([7.0, 7.0])  # a far pixel's own motion stays its own where nothing is closer
    out = A.dilate_motion(m, d)
    for y in range(1, 4):
        for x in range(1, 4):
            assert out[0, :, y, x].tolist() == [1.5, -2.0]
    assert out[0, :, 0, 0].tolist() == [7.0, 7.0]  # tie (all far): the centre wins
    assert out[0, :, 4, 4].tolist() == [0.0, 0.0]


def test_the_step_uses_dilated_motion(model):
    """A near pixel moving over a still background: its 3x3 neighbours move with it (dilation), so giving
    the motion only to the near pixel or to its whole 3x3 block yields the same output."""
    fr = scene(4)
    for f in fr:
        f["depth"][0, 10, 12] = 0.5  # nearer than the background (5.0)
    sparse = [dict(f) for f in fr]
    block = [dict(f) for f in fr]
    for t in range(1, 4):
        ms = np.zeros_like(fr[t]["motion"])
        ms[:, 10, 12] = (1.4, -0.8)
        v = np.array([1.4, -0.8], np.float32)[:, None, None]
        mb = np.zeros_like(ms)
        mb[:, 9:12, 11:14] = v
        sparse[t]["motion"], block[t]["motion"] = ms, mb
    a, b = run(model, sparse), run(model, block)
    assert np.abs(a[3] - b[3]).max() < 1e-5
    assert np.abs(a[3] - run(model, fr)[3]).max() > 1e-3  # and the motion does move the history


def test_warp_history_moves_by_scaled_motion_and_flags_outside():
    h = torch.zeros(1, 4, 8, 8)
    h[0, :, 3, 5] = 1.0
    m = torch.zeros(1, 2, 4, 4)
    m[0, 0] = 0.5  # low-res px -> 1 output px: prev = p + m
    out, valid = A.warp_history(h, m, 2)
    assert float(out[0, 0, 3, 4]) == pytest.approx(1.0, abs=1e-5)  # H_w(p) = H(p + s m)
    assert float(valid[0, 0, 3, 6]) == 1.0 and float(valid[0, 0, 3, 7]) == 0.0  # 7.5 + 1 > 8: outside
    m[0, 0] = 2.0
    _, valid = A.warp_history(h, m, 2)
    assert float(valid[0, 0, 0, 3]) == 1.0 and float(valid[0, 0, 0, 4]) == 0.0  # x + 4 leaves the frame


def test_untrained_model_is_a_taa_upsampler():
    """At initialisation: flat input -> flat output (normalised kernel, no residual); a reset frame uses no
    history; then the accumulated sample weight grows by one frame's weight per frame (a running mean, the
    blend weights 1/2, 2/3, ... when the jitter repeats) and a jitter whose samples fall nearer an output
    sub-pixel weighs more there."""
    torch.manual_seed(0)
    m = A.Accum(A.AccumConfig()).eval()
    c = torch.full((1, 3, 8, 8), 0.7)
    hist = m.init_history(1, 8, 8)
    j = torch.tensor([[0.1, 0.1]])
    args = (torch.ones(1, 1, 8, 8), torch.zeros(1, 2, 8, 8), j)
    with torch.no_grad():
        rgb, h1 = m.step(c, *args, torch.ones(1), *hist)
        assert torch.allclose(rgb, torch.full_like(rgb, 0.7), atol=1e-4)
        _, h2 = m.step(c, *args, torch.zeros(1), h1)
        _, h3 = m.step(c, *args, torch.zeros(1), h2)
    acc = [float(h[0, 3, 2:-2, 2:-2].mean()) for h in (h1, h2, h3)]
    assert acc[1] == pytest.approx(2 * acc[0], rel=1e-3) and acc[2] == pytest.approx(3 * acc[0], rel=1e-3)
    w = A.sample_weight(torch.tensor([[-0.25, -0.25], [0.25, 0.25]]), 2, 0.25)  # sub-pixel 0 is at (-.25, -.25)
    assert float(w[0, 0]) > 2 * float(w[1, 0]) and float(w[1, 3]) > 2 * float(w[0, 3])
    y = torch.linspace(0, 0.99, 50)
    assert torch.allclose(colour_forward(colour_inverse(y)), y, atol=1e-6)


def test_cost_within_budget():
    rows = A.cost_table(A.AccumConfig(scale=2), 180, 320)
    total = sum(v for _, v in rows)
    assert 2000 < total <= 20000, rows  # issue 13: <= 20 kFLOP per output pixel at 2x, every op counted
    assert any("warp" in k for k, _ in rows) and any("softmax" in k for k, _ in rows)


# --- training through time ---------------------------------------------------------------------------

def test_sequence_gradients_reach_back_through_the_history():
    """Truncated BPTT: the loss on the last frame of a window depends on the first frame's colour."""
    torch.manual_seed(0)
    m = A.Accum(A.AccumConfig())
    fr = scene(6, size=8)
    st = {k: torch.from_numpy(np.stack([f[k] for f in fr]))[None] for k in ("colour", "depth", "motion", "jitter")}
    colour = st["colour"].clone().requires_grad_(True)
    out = m.forward_sequence(colour, st["depth"], st["motion"], st["jitter"])
    out[:, -1].sum().backward()
    assert float(colour.grad[0, 0].abs().sum()) > 0
    assert out.shape == (1, 6, 3, 16, 16)


# --- sequence windows for training (nss_train.data.datasets.WindowDataset(sequence=True)) ----------------------

def _write_scene(root: Path, name: str, frames: list[dict]) -> Path:
    from nss_runtime import frames as FR
    d = root / name
    d.mkdir(parents=True)
    for i, f in enumerate(frames):
        FR.write_frame(FR.frame_path(d, i), FR.Frame(colour=f["colour"], depth=f["depth"], motion=f["motion"],
                                                     target=f["target"]))
    size = frames[0]["colour"].shape[1:]
    FR.write_meta(d, FR.SequenceMeta(lowres=(size[1], size[0]), scale=2, frames=len(frames),
                                     jitter=[[float(v) for v in f["jitter"]] for f in frames],
                                     cuts=[bool(f["cut"]) for f in frames], source={"tool": "test_accum"}))
    return d


def _err(item, t: int, jitter, motion) -> tuple[float, float]:
    """(error of the low-res colour against the target sampled at the jittered positions, error of frame t's
    target against frame t-1's target warped with `motion`) of one window item."""
    s = 2
    col, tgt = item["colour"][t], item["target"]
    h, w = col.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    gx = (xs + jitter[0]) * s / (w * s) * 2 - 1
    gy = (ys + jitter[1]) * s / (h * s) * 2 - 1
    smp = F.grid_sample(tgt[t][None], torch.stack([gx, gy], -1)[None], align_corners=False)[0]
    e_j = float((smp - col).abs()[:, 2:-2, 2:-2].mean())
    warped = A.warp_history(tgt[t - 1][None], motion[None], s)[0][0]
    e_m = float((warped - tgt[t]).abs()[:, 6:-6, 6:-6].mean())
    return e_j, e_m


def test_sequence_windows_reset_flags_and_consistent_augmentation(tmp_path):
    from nss_train.data.datasets import WindowDataset
    _write_scene(tmp_path, "a", scene(10, size=16, vel=(0.55, -0.3), cut_at=6))
    ds = WindowDataset(tmp_path, n_prev=7, sequence=True, augment=False)
    assert len(ds) == 3  # windows ending at frames 7, 8, 9; no padding
    it = ds[0]
    assert it["target"].shape == (8, 3, 32, 32) and it["reset"].tolist() == [1, 0, 0, 0, 0, 0, 1, 0]
    aug = WindowDataset(tmp_path, n_prev=7, sequence=True, augment=True, crop=(12, 12), seed=3)
    for epoch in range(6):  # several dihedral ops: motion and jitter must follow the pixels
        aug.set_epoch(epoch)
        it = aug[1]
        t = 3
        e_j, e_m = _err(it, t, it["jitter"][t], it["motion"][t])
        e_j_bad, _ = _err(it, t, -it["jitter"][t], it["motion"][t])
        _, e_m_bad = _err(it, t, it["jitter"][t], -it["motion"][t])
        assert e_j < 0.7 * e_j_bad, (epoch, e_j, e_j_bad)
        assert e_m < 0.5 * e_m_bad, (epoch, e_m, e_m_bad)


# --- exported graph: ONNX Runtime Session and the runtime server ----------------------------------------

@pytest.fixture(scope="module")
def accum_onnx(tmp_path_factory, export_onnx):
    """A tiny accum x2 (same ops, few channels) exported with tools/export_onnx.py, with non-zero head weights
    so every path of the graph shows in its output."""
    torch.manual_seed(1)
    cfg = A.tiny_config(A.AccumConfig(scale=2))
    m = A.Accum(cfg).eval()
    with torch.no_grad():
        for p in m.net.head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path_factory.mktemp("accum_onnx") / "tiny_accum_x2.onnx"
    export_onnx.export(m, cfg, path, gpu_program=False)
    return path, m


def test_onnx_session_matches_pytorch_through_cuts_and_size_changes(export_onnx, accum_onnx):
    from nss_runtime.contract import colour_forward
    from nss_runtime.session import Session

    path, m = accum_onnx
    sess = Session(path, providers=["CPUExecutionProvider"], threads=1)
    assert sess.info.preset == "accum" and sess.info.history[0]["shape"] == [1, 4, "h*2", "w*2"]
    assert sess.info.meta.get("jitter") is True  # the game must jitter its low-res render for this model
    err = lambda a, b: float(np.abs(colour_forward(a) - colour_forward(b)).max())  # noqa: E731
    frames = export_onnx.random_sequence(7, 12, 20, seed=3, cut_at=4)
    ref = export_onnx.torch_sequence(m, frames)
    got = export_onnx.session_sequence(sess, frames)
    assert max(err(a, b) for a, b in zip(ref, got)) <= 1e-4
    no_cut = [dict(f, cut=(i == 0)) for i, f in enumerate(frames)]
    assert err(export_onnx.session_sequence(sess, no_cut)[5], got[5]) > 1e-3  # the history matters
    # a resolution change resets by itself: same as a fresh session on that frame
    other = export_onnx.random_sequence(2, 14, 16, seed=4)
    changed = sess.upscale(other[0]["colour"], other[0]["depth"], other[0]["motion"], other[0]["jitter"])
    sess.reset()
    fresh = sess.upscale(other[0]["colour"], other[0]["depth"], other[0]["motion"], other[0]["jitter"])
    assert changed.shape == (3, 28, 32) and np.array_equal(changed, fresh)


def test_runtime_server_runs_accum_with_cuts_and_size_changes(accum_onnx, tmp_path):
    from nss_runtime.session import Session
    from test_server import RunningServer

    path, _ = accum_onnx
    ref = Session(str(path), threads=1)
    rng = np.random.default_rng(0)
    srv = RunningServer(str(path), tmp_path)
    try:
        with srv.client(f32_output=True) as c:
            sizes = [(16, 8)] * 3 + [(20, 12)] * 2
            cuts = [False, True, False, False, False]
            for i, ((w, h), cut) in enumerate(zip(sizes, cuts)):
                rgbd = rng.uniform(0, 2, (h, w, 4)).astype(np.float32)
                rgbd[..., 3] = rng.uniform(1, 50, (h, w))
                motion = rng.uniform(-1, 1, (h, w, 2)).astype(np.float32)
                jit = (float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.5)))
                r = c.upscale(i, rgbd, motion, cut=cut, jitter=jit)
                want = ref.upscale_packed(rgbd, motion, jitter=jit, cut=cut)
                assert r.image.shape == (2 * h, 2 * w, 4)
                np.testing.assert_allclose(r.image[..., :3], want, rtol=1e-5, atol=1e-5)
    finally:
        srv.stop()


# --- nss_train.train.fit: sequence training (TBPTT) of a recurrent preset -----------------------------------

def test_fit_trains_accum_on_sequences_and_resumes(tmp_path):
    import subprocess
    import sys

    data = tmp_path / "data"
    for k, vel in enumerate([(0.0, 0.0), (0.4, -0.2), (-0.3, 0.5)]):
        _write_scene(data, f"s{k}", scene(9, size=16, vel=vel, cut_at=5 if k == 1 else None, ss=2))
    out = tmp_path / "run"
    base = [sys.executable, "-m", "nss_train.train.fit", "--data", str(data), "--out", str(out), "--preset", "accum",
            "--seq-len", "6", "--loss-skip", "1", "--batch", "2", "--crop", "12", "--val-every", "2",
            "--val-windows", "1", "--threads", "1", "--log-every", "1"]
    r = subprocess.run(base + ["--steps", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "windows of 6 frames, truncated back-propagation" in r.stderr + r.stdout
    assert "DISPLAY space" in r.stderr + r.stdout and "no VGG weights" in r.stderr + r.stdout
    r = subprocess.run(base + ["--steps", "3", "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    m, cfg, ck = load_checkpoint(out / "last.pt")
    assert ck["step"] == 3 and cfg.name == "accum" and ck["train"]["seq_len"] == 6
    assert (out / "tb").is_dir()
