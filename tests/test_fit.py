"""Training: a tiny model overfits one window; Ctrl-C + --resume continues the same run exactly; checkpoints."""
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from nss_train.data.datasets import WindowDataset
from nss_train.train.fit import batch_indices
from nss_train.train.losses import NSSLoss
from nss_train.models.geometry import colour_forward
from nss_train.models.registry import build_model, load_checkpoint, preset_config

ROOT = Path(__file__).resolve().parents[1]
FIT_ARGS = ["--preset", "fast", "--steps", "14", "--val-every", "3", "--batch", "2", "--crop", "16", "--n-prev", "2",
            "--val-windows", "2", "--log-every", "1", "--threads", "1", "--lr", "1e-3",
            "--bloom-weight", "0.5"]  # the bloom term through the whole CLI path (resumes exactly too)


def _fit(data, out, *extra, **kw):
    cmd = [sys.executable, "-m", "nss_train.train.fit", "--data", str(data), "--out", str(out), *FIT_ARGS, *extra]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


@pytest.mark.parametrize("name", ["fast", "nsrr"])
def test_tiny_model_overfits_one_window(tiny_dataset, name):
    torch.manual_seed(0)
    ds = WindowDataset(tiny_dataset, n_prev=2, crop=(16, 16), augment=False)
    s = ds[len(ds) // 2]
    b = {k: s[k][None] for k in ("colour", "depth", "motion", "jitter", "target")}
    cfg = preset_config(name, scale=2, n_prev=2)
    if name == "nsrr":  # narrower, so the test stays quick on 2 cores
        cfg.feat_channels, cfg.reweight_channels = (8, 4), (8,)
        cfg.unet_enc, cfg.unet_dec = ((16, 16), (16, 16), (32, 32)), ((16, 16), (16,))
    m = build_model(cfg)
    loss_fn = NSSLoss(None)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    tgt = colour_forward(b["target"])
    losses = []
    for i in range(250):
        loss, _ = loss_fn(m.forward_mapped(b["colour"], b["depth"], b["motion"], b["jitter"]), tgt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    first, last = losses[0], min(losses[-10:])
    assert last < first / 5, (first, last)


def test_batch_order_is_a_function_of_seed_and_step():
    a = [batch_indices(10, 4, i, seed=3) for i in range(6)]
    assert a == [batch_indices(10, 4, i, seed=3) for i in range(6)]
    assert a != [batch_indices(10, 4, i, seed=4) for i in range(6)]
    assert sorted(a[0][1] + a[1][1]) != sorted(a[2][1] + a[3][1]) or a[0][0] != a[2][0]
    assert [e for e, _ in a] == [0, 0, 1, 1, 2, 2]


def test_interrupt_and_resume_continue_exactly(tiny_dataset, tmp_path):
    # reference: one uninterrupted run
    ref = _fit(tiny_dataset, tmp_path / "ref")
    out_ref, _ = ref.communicate(timeout=600)
    assert ref.returncode == 0, out_ref[-2000:]

    # the same run, interrupted with Ctrl-C (SIGINT) once it has saved a checkpoint
    run = tmp_path / "run"
    p = _fit(tiny_dataset, run)
    t0 = time.time()
    while not (run / "last.pt").exists() and p.poll() is None and time.time() - t0 < 600:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out1, _ = p.communicate(timeout=600)
    stopped = torch.load(run / "last.pt", weights_only=True)["step"]
    if p.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived (machine too fast for this test)")
    assert p.returncode == 130, out1[-2000:]
    assert f"interrupted at step {stopped}" in out1
    assert 3 <= stopped < 14

    # starting again without --resume refuses to overwrite
    p = _fit(tiny_dataset, run)
    out2, _ = p.communicate(timeout=600)
    assert p.returncode == 1 and "pass --resume" in out2

    p = _fit(tiny_dataset, run, "--resume")
    out3, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out3[-2000:]
    assert f"resuming {run / 'last.pt'} from step {stopped}" in out3
    a, cfg_a, ck_a = load_checkpoint(tmp_path / "ref" / "last.pt")
    b, cfg_b, ck_b = load_checkpoint(run / "last.pt")
    assert ck_a["step"] == ck_b["step"] == 14 and cfg_a == cfg_b
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(va, vb, atol=1e-6), k
    assert abs(ck_a["metrics"]["val_psnr"] - ck_b["metrics"]["val_psnr"]) < 1e-4
    assert (run / "best.pt").exists() and any((run / "tb").iterdir())
    for key in ("train_sequences", "val_sequences"):
        assert ck_b["data"][key]
    assert not set(ck_b["data"]["train_sequences"]) & set(ck_b["data"]["val_sequences"])


def test_resume_from_truncated_or_foreign_checkpoint_fails_clearly(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    p = _fit(tiny_dataset, run, "--resume")
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 1
    assert "last.pt: unreadable or truncated checkpoint" in out and "Traceback" not in out
    # a checkpoint of another model config
    m = build_model(preset_config("nsrr", scale=2, n_prev=2))
    from nss_train.models.registry import save_checkpoint
    save_checkpoint(run / "last.pt", m, None, step=1, rng=None)
    p = _fit(tiny_dataset, run, "--resume")
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 1 and "differs" in out and "Traceback" not in out, out[-1500:]
