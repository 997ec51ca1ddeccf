"""The network: geometry building blocks, shapes, forward/step equivalence, cost, checkpoints."""
import math

import numpy as np
import pytest
import torch

from nss_runtime import contract
from nss_train.models.geometry import (accumulate_flows, accumulate_flows_lowres, bilinear_up_folded_jittered, colour_forward,
                                colour_inverse, depth_normalise, fold_zero_upsampled, sample_nearest, upsample_motion,
                                warp, warp_zero_upsampled_folded, zero_upsample)
from nss_train.models.registry import CheckpointError, build_model, load_checkpoint, preset_config, save_checkpoint

ARCHS = ("fast", "nsrr")  # the N-previous-frames presets (accum has its own tests)


def test_zero_upsample_places_values_in_block():
    x = torch.arange(1, 7, dtype=torch.float32).reshape(1, 1, 2, 3)
    for s, jit, (ox, oy) in [(2, (0.0, 0.0), (1, 1)), (4, (0.0, 0.0), (2, 2)), (2, (-0.5, -0.5), (0, 0)),
                             (4, (0.3, -0.3), (3, 0)), (4, (-0.2, 0.1), (1, 2))]:
        up = zero_upsample(x, torch.tensor([jit]), s)
        assert up.shape == (1, 1, 2 * s, 3 * s)
        expect = torch.zeros_like(up)
        expect[0, 0, oy::s, ox::s] = x[0, 0]
        assert torch.equal(up, expect), (s, jit)


def test_warp_zero_motion_is_identity_and_shift_moves_content():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 20, generator=g)
    assert torch.allclose(warp(x, torch.zeros(2, 2, 16, 20)), x, atol=1e-6)
    # prev = p + motion: out(p) = x(p + (3, -2)), i.e. content moves by (-3, +2)
    flow = torch.zeros(2, 2, 16, 20)
    flow[:, 0], flow[:, 1] = 3.0, -2.0
    out = warp(x, flow)
    assert torch.allclose(out[:, :, 2:, :17], x[:, :, :14, 3:], atol=1e-6)
    assert out[:, :, :2].abs().max() == 0 and out[:, :, :, 17:].abs().max() == 0  # outside: zeros
    # a half-pixel shift interpolates linearly
    flow[:, 0], flow[:, 1] = 0.5, 0.0
    assert torch.allclose(warp(x, flow)[..., :-1], 0.5 * (x[..., :-1] + x[..., 1:]), atol=1e-6)


def test_accumulated_motion_over_4_frames_is_composed_shift():
    H, W = 24, 32
    shifts = [(1.0, 0.0), (0.0, 2.0), (-1.5, 1.0), (2.0, 0.5)]
    motions = [torch.tensor(s).view(1, 2, 1, 1).expand(1, 2, H, W).contiguous() for s in shifts]
    flows = accumulate_flows(motions)
    for k in range(4):
        expect = torch.tensor([sum(s[0] for s in shifts[:k + 1]), sum(s[1] for s in shifts[:k + 1])])
        assert torch.allclose(flows[k].mean((0, 2, 3)), expect, atol=1e-5), k
        assert (flows[k] - expect.view(1, 2, 1, 1)).abs().max() < 1e-5
    # spatially varying: frame t-k moves a point q to q + a_k (q - c); composition is a product of scalings
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    c = torch.tensor([W / 2, H / 2]).view(2, 1, 1)
    q = torch.stack([xs, ys]) - c
    a = [0.05, -0.03, 0.04, 0.02]
    flows = accumulate_flows([(ak * q)[None] for ak in a])
    prod = 1.0
    for k in range(4):
        prod *= 1 + a[k]
        inner = (slice(None), slice(None), slice(4, H - 4), slice(4, W - 4))
        assert torch.allclose(flows[k][inner], ((prod - 1) * q)[None][inner], atol=1e-4), k


def test_upsample_motion_scales_values():
    m = torch.ones(1, 2, 4, 5) * torch.tensor([1.5, -0.5]).view(1, 2, 1, 1)
    up = upsample_motion(m, 4)
    assert up.shape == (1, 2, 16, 20)
    assert torch.allclose(up, torch.tensor([6.0, -2.0]).view(1, 2, 1, 1).expand_as(up))


def test_colour_and_depth_transforms_match_contract():
    x = np.array([0.0, 0.3, 1.0, 7.0, 5000.0, -1.0], np.float32)
    assert np.allclose(colour_forward(torch.from_numpy(x)).numpy(), contract.colour_forward(x), atol=1e-7)
    y = np.array([0.0, 0.2, 0.5, 0.99, 0.9999], np.float32)
    assert np.allclose(colour_inverse(torch.from_numpy(y)).numpy(), contract.colour_inverse(y), rtol=1e-5)
    d = np.array([0.0, 1.0, 10.0, 1e10, np.inf, np.nan], np.float32)
    assert np.allclose(depth_normalise(torch.from_numpy(d)).numpy(), contract.depth_normalise(d), atol=1e-7)


def _inputs(B, T, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    colour = torch.rand(B, T, 3, h, w, generator=g) * 4
    depth = torch.rand(B, T, 1, h, w, generator=g) * 30
    depth[..., :2, :] = 1e10  # background rows
    motion = torch.randn(B, T, 2, h, w, generator=g) * 1.5
    jitter = torch.rand(B, T, 2, generator=g) - 0.5
    return colour, depth, motion, jitter


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("scale", [2, 4])
def test_output_shape(name, scale):
    m = build_model(preset_config(name, scale=scale, n_prev=2)).eval()
    h, w = 8, 12
    with torch.no_grad():
        out = m(*_inputs(2, 3, h, w))
    assert out.shape == (2, 3, h * scale, w * scale)
    assert torch.isfinite(out).all() and (out >= 0).all()


def test_bad_size_and_window_length_raise_clear_errors():
    m = build_model(preset_config("fast", scale=2, n_prev=2))
    with pytest.raises(ValueError, match=r"low-res size 13x8: .*multiples of 2"):
        m(*_inputs(1, 3, 8, 13))
    with pytest.raises(ValueError, match="window has 4 frames; .* 3"):
        m(*_inputs(1, 4, 8, 12))
    with pytest.raises(ValueError, match="unknown preset"):
        preset_config("huge")
    with pytest.raises(ValueError, match="scale 3 unsupported"):
        preset_config("fast", scale=3)


def _window(seq, t, start, N):
    """The window for frame t of a shot starting at `start`: frames before it are copies of `start` with zero
    motion, and the shot's first frame has zero motion (contract reset semantics)."""
    colour, depth, motion, jitter = seq
    idx = [max(t - k, start) for k in range(N, -1, -1)]
    c, d, m, j = colour[:, idx], depth[:, idx], motion[:, idx].clone(), jitter[:, idx]
    for i, f in enumerate(idx):
        if f == start:
            m[:, i] = 0
    return c, d, m, j


@pytest.mark.parametrize("name,cache", [("nsrr", True), ("nsrr", False), ("fast", True)])
def test_step_equals_forward_over_sequence_with_reset(name, cache):
    N, h, w, n = 3, 8, 12, 9
    cfg = preset_config(name, scale=2, n_prev=N)
    if name == "nsrr":
        cfg.cache_features = cache
    torch.manual_seed(0)
    m = build_model(cfg).eval()
    seq = _inputs(2, n, h, w, seed=1)
    cuts = [0, 5]
    hist = m.init_history(2, h, w)
    with torch.no_grad():
        for t in range(n):
            start = max(c for c in cuts if c <= t)
            reset = torch.full((2,), float(t in cuts))
            out, *hist = m.step(*(x[:, t] for x in seq), reset, *hist)
            ref = m(*_window(seq, t, start, N))
            assert torch.allclose(colour_forward(out), colour_forward(ref), atol=1e-5), (t, name)
            assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4), (t, name)


def test_history_spec_matches_init_history():
    for name in ARCHS:
        m = build_model(preset_config(name, scale=2, n_prev=4))
        spec = m.history_spec(6, 10)
        hist = m.init_history(1, 6, 10)
        assert [tuple(x.shape) for x in hist] == [s for _, s in spec]
        assert [n for n, _ in spec] == ["hist_x", "hist_motion", "hist_jitter"]


@pytest.mark.parametrize("s", [2, 4])
def test_gather_geometry_equals_the_grid_sample_reference(s):
    """fast's row-lookup geometry is the NSRR geometry (zero-upsample -> bilinear warp -> fold) computed
    differently, not an approximation: same values within float rounding, incl. off-frame taps and jitter."""
    g = torch.Generator().manual_seed(s)
    B, C, h, w = 3, 4, 9, 13
    x = torch.randn(B, C, h, w, generator=g)
    jit = torch.rand(B, 2, generator=g) - 0.5
    flow = torch.randn(B, 2, h, w, generator=g) * 3  # some taps land outside the frame
    flow_hr = torch.nn.functional.interpolate(flow, scale_factor=s, mode="nearest") * s
    wt = torch.rand(B, h, w, generator=g)
    ref = torch.nn.functional.pixel_unshuffle(warp(zero_upsample(x, jit, s), flow_hr), s) * wt[:, None]
    # as 3 frames of one batch item: channels (c, n, phase)
    got = warp_zero_upsampled_folded(x[None], jit[None], flow[None], s, weight=wt[None])
    ref = ref.reshape(B, C, s * s, h, w).transpose(0, 1).reshape(1, C * B * s * s, h, w)
    assert (got - ref).abs().max() < 1e-4 and ref.abs().sum() > 0
    # fast's residual base: ONE bilinear resample at the output pixels' positions among the JITTERED samples
    from nss_train.eval.baselines import jittered_grid
    up = torch.nn.functional.pixel_shuffle(bilinear_up_folded_jittered(x[:, :3], jit, s), s)
    ref_up = torch.nn.functional.grid_sample(x[:, :3], jittered_grid(jit, h, w, s), mode="bilinear",
                                             padding_mode="border", align_corners=False)
    assert (up - ref_up).abs().max() < 1e-5
    up0 = torch.nn.functional.pixel_shuffle(bilinear_up_folded_jittered(x[:, :3], torch.zeros_like(jit), s), s)
    ref0 = torch.nn.functional.interpolate(x[:, :3], scale_factor=s, mode="bilinear", align_corners=False)
    assert (up0 - ref0).abs().max() < 1e-5 and (up - ref0).abs().max() > 1e-2  # the jitter matters
    assert torch.equal(fold_zero_upsampled(x, jit, s), torch.nn.functional.pixel_unshuffle(zero_upsample(x, jit, s), s))
    # nearest lookup: integer flows move content exactly, border-clamped
    shift = torch.zeros(B, 2, h, w)
    shift[:, 0], shift[:, 1] = 2.0, -1.0
    ref = torch.nn.functional.pad(x, (0, 2, 1, 0), mode="replicate")[:, :, :h, 2:]
    assert torch.equal(sample_nearest(x, shift), ref)
    assert torch.equal(sample_nearest(x, shift + 0.3), ref)


def test_flops_fast_is_15x_cheaper_and_real_time_budget():
    nsrr = build_model(preset_config("nsrr", scale=2)).flops_per_output_pixel(180, 320)
    fast = build_model(preset_config("fast", scale=2)).flops_per_output_pixel(180, 320)
    assert nsrr / fast >= 15
    assert fast * 640 * 360 <= 5e9  # 2x to 640x360: ~30 ms of convolutions at ORT's ~170 GFLOP/s here
    assert 250_000 < nsrr < 400_000  # the paper's network is ~0.3 MFLOP per output pixel


def test_checkpoint_roundtrip_and_errors(tmp_path):
    cfg = preset_config("fast", scale=2, n_prev=2)
    m = build_model(cfg)
    opt = torch.optim.Adam(m.parameters(), 1e-4)
    p = tmp_path / "a.pt"
    save_checkpoint(p, m, opt, step=7, rng={"torch": torch.get_rng_state()}, metrics={"psnr": 30.0})
    m2, cfg2, ck = load_checkpoint(p)
    assert cfg2 == cfg and ck["step"] == 7 and ck["metrics"]["psnr"] == 30.0
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    raw = p.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="trunc.pt: unreadable or truncated"):
        load_checkpoint(tmp_path / "trunc.pt")
    torch.save({"hello": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an nss_train checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="text.pt: unreadable"):
        load_checkpoint(tmp_path / "text.pt")
    with pytest.raises(CheckpointError, match="differs from the requested"):
        load_checkpoint(p, expect=preset_config("fast", scale=4, n_prev=2))
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_accumulate_flows_lowres_chains_each_motion_at_the_accumulated_position():
    """flow_k(p) = flow_{k-1}(p) + motion_k(nearest(p + flow_{k-1}(p))): each older motion is read where the
    pixel WAS, not where it is (an unchained sum flows[-1] + motions[:, k] is wrong wherever motion varies)."""
    h, w = 6, 9
    g = torch.Generator().manual_seed(3)
    motions = torch.randint(-2, 3, (1, 3, 2, h, w), generator=g).float()  # integer: nearest lookups are exact
    got = accumulate_flows_lowres(motions)
    exp = torch.zeros_like(got)
    for y in range(h):
        for x in range(w):
            fx, fy = motions[0, 0, 0, y, x].item(), motions[0, 0, 1, y, x].item()
            exp[0, 0, :, y, x] = torch.tensor([fx, fy])
            for k in (1, 2):
                u = min(max(int(x + fx), 0), w - 1)  # border-clamped
                v = min(max(int(y + fy), 0), h - 1)
                fx, fy = fx + motions[0, k, 0, v, u].item(), fy + motions[0, k, 1, v, u].item()
                exp[0, k, :, y, x] = torch.tensor([fx, fy])
    assert torch.equal(got, exp)
    unchained = torch.cumsum(motions, 1)
    assert not torch.equal(got, unchained)  # the test data can tell the two apart
    # constant motion composes to k+1 times the motion
    const = torch.tensor([0.75, -1.25]).view(1, 1, 2, 1, 1).expand(2, 4, 2, h, w)
    assert torch.allclose(accumulate_flows_lowres(const)[:, 3], 4 * const[:, 0])


def test_colour_transform_inverse_inverts_it():
    x = torch.cat([torch.linspace(0, 1, 101), torch.logspace(0, math.log10(998.0), 200)])
    assert torch.allclose(colour_inverse(colour_forward(x)), x, rtol=2e-4, atol=1e-6)
    y = torch.linspace(0, contract.COLOUR_TRANSFORM_MAX, 500)
    assert torch.allclose(colour_forward(colour_inverse(y)), y, atol=1e-6)
    assert colour_inverse(colour_forward(torch.tensor([5000.0]))).item() == pytest.approx(999.0, rel=1e-3)  # clamp
    assert colour_forward(torch.tensor([-1.0])).item() == 0.0


def test_geometry_positions_stay_fp32_in_fp16_models():
    """fp16 has 0.5-px steps above 1024 and 2-px steps above 2048: positions and indices must be computed in fp32
    / int64 even when a model runs in fp16 (exported with --fp16), or the identity warp moves pixels."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 2, 1280, generator=g).half()
    assert (warp(x, torch.zeros(1, 2, 2, 1280).half()).float() - x.float()).abs().max() < 2e-3
    x = torch.rand(1, 3, 2, 2100, generator=g).half()
    assert torch.equal(sample_nearest(x, torch.zeros(1, 2, 2, 2100).half()), x)
    x = torch.rand(1, 1, 4, 2, 1280, generator=g).half()
    jit = torch.tensor([[[0.25, -0.25]]]).half()
    got = warp_zero_upsampled_folded(x, jit, torch.zeros(1, 1, 2, 2, 1280).half(), 2)
    assert torch.equal(got, fold_zero_upsampled(x[:, 0], jit[:, 0], 2))
