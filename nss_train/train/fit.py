"""Train the supersampling network.

    python -m nss_train.train.fit                       # accum on the built-in dataset (rendered first if absent)
    python -m nss_train.train.fit --data DIR --out runs/mine --preset nsrr --steps 20000
    python -m nss_train.train.fit --out runs/mine --resume             # continue exactly where it stopped
    python -m nss_train.train.fit --devices 2 [--num-nodes 2 --node-rank R --master-addr HOST]   # DDP

A plain PyTorch loop (nanoGPT style). Every `--val-every` steps: validation PSNR/SSIM
on held-out sequences (display values, see nss_train.train.losses.DISPLAY), TensorBoard
scalars and input/output/target images, and atomic `last.pt` / `best.pt`
checkpoints in --out. Ctrl-C saves `last.pt` first. The batch of step i is a pure
function of (seed, i), so --resume continues the same run exactly (weights,
optimizer, step, RNG, data order).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import random
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nss_runtime.contract import SCALES
from nss_runtime import frames as FR
from nss_train.eval.metrics import psnr_from_mse, ssim
from nss_train.train.losses import NSSLoss, srgb_encode, to_display
from nss_train.models.geometry import colour_inverse
from nss_train.models.registry import (CheckpointError, architecture, build_model, config_from_dict, param_count,
                                       preset_config, read_checkpoint, save_checkpoint)

log = logging.getLogger("nss_train.train.fit")


@dataclass
class TrainConfig:
    data: list[str] | None = None  # dataset roots/sequences; None: the built-in default dataset (rendered if absent)
    out: str = "runs/default"
    preset: str = "accum"  # the shipped default (models/accum_x2.pt)
    n_prev: int = 0  # previous frames; 0: the preset's own (accum 16, nsrr 4, fast 2), or the --init checkpoint's
    steps: int = 400
    batch: int = 8  # global batch (split over DDP ranks)
    crop: int = 48  # square training crop, low-res pixels
    lr: float = 5e-4
    min_lr_frac: float = 0.1  # cosine decay to lr * min_lr_frac
    warmup: int = 20
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    val_fraction: float = 0.2
    val_every: int = 100
    val_windows: int = 48  # validation windows per evaluation (evenly spaced)
    log_every: int = 10
    image_every: int = 0  # 0: with every validation
    seed: int = 0
    vgg_weights: str | None = None
    l1_weight: float = 1.0  # loss = 1 - SSIM + l1_weight * L1 (no VGG weights): larger leans towards PSNR
    bloom_weight: float = 0.0  # + bloom_weight * losses.bloom_loss (linear energy a glow pass spreads)
    seq_len: int = 8  # recurrent presets (accum): frames per training window (truncated BPTT through all of them)
    loss_skip: int = 2  # recurrent presets: the first frames of a window (history still empty) carry no loss
    cache_gb: float = 2.0  # decoded frames kept in memory (windows of recurrent presets reuse many frames)
    val_data: list[str] | None = None  # validation roots/sequences (excluded from --data); None: split --data
    amp: str = "auto"  # auto (bf16 autocast on CUDA) | on | off
    workers: int = 0
    skip_bad: bool = False  # drop windows touching missing/corrupt frames (e.g. a render still running)
    max_minutes: float = 0.0  # >0: save and stop after this wall time (resume later)
    devices: int = 1
    num_nodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29517
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch CPU threads (0: torch's default)
    init: str | None = None  # fine-tune: start from this checkpoint's weights and architecture (fresh optimizer)


DEFAULT_DATA = "data/default"


class FitError(RuntimeError):
    """A one-line, user-facing training failure."""


# --- data --------------------------------------------------------------------------------

def ensure_default_dataset(root: str = DEFAULT_DATA) -> Path:
    """The built-in default dataset: render it with nss_train.sources.render if absent or incomplete (resumable)."""
    from nss_train.sources import render as R

    root_p = Path(root)
    complete = False
    if root_p.is_dir():
        seqs = FR.list_sequences(root_p)
        complete = len(seqs) >= R.DEFAULT_SEQUENCES and all(
            FR.frame_path(s, FR.read_meta(s).frames - 1).is_file() for s in seqs)
    if not complete:
        log.info("default dataset %s absent or incomplete: rendering it with Blender (a few minutes)", root)
        R.render_dataset(root_p)
    return root_p


def batch_indices(n: int, batch: int, step: int, seed: int) -> tuple[int, list[int]]:
    """(epoch, dataset indices) of global step `step`: a fresh permutation per epoch, a pure function of seed."""
    per_epoch = max(1, n // batch)
    epoch, j = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    idx = perm[j * batch:(j + 1) * batch]
    return epoch, idx if idx else perm[:batch]


def collate(items: list[dict], multiple: int = 1) -> dict:
    """Stack samples; trim H, W (top-left) to multiples of `multiple` (validation on full frames)."""
    out = {}
    for k in ("colour", "depth", "motion", "jitter", "target", "reset"):
        if k in items[0]:
            out[k] = torch.stack([it[k] for it in items])
    h, w = out["colour"].shape[-2:]
    h2, w2 = h - h % multiple, w - w % multiple
    if (h2, w2) != (h, w):
        s = out["target"].shape[-1] // w
        for k in ("colour", "depth", "motion"):
            out[k] = out[k][..., :h2, :w2]
        out["target"] = out["target"][..., : h2 * s, : w2 * s]
    return out


def bicubic(colour_lr: torch.Tensor, jitter: torch.Tensor, s: int) -> torch.Tensor:
    """The validation baseline: jitter-aligned bicubic of linear colour (one bicubic resample at the output
    pixels' positions among the jittered samples, in the mapped space so HDR highlights do not ring), -> linear.
    The same function as nss_train.eval.evaluate's bicubic baseline."""
    from nss_train.eval.baselines import upsample
    return colour_inverse(upsample(colour_lr, jitter, s, "bicubic"))


# --- distributed -------------------------------------------------------------------------

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_dist(cfg: TrainConfig, local_rank: int) -> Dist:
    world = cfg.devices * cfg.num_nodes
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:  # launched by torchrun
        d = Dist(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
        init = "env://"
    elif world > 1:
        d = Dist(cfg.node_rank * cfg.devices + local_rank, world, local_rank)
        init = f"tcp://{cfg.master_addr}:{cfg.master_port}"
    else:
        return Dist()
    backend = "nccl" if (torch.cuda.is_available() and cfg.device != "cpu") else "gloo"
    torch.distributed.init_process_group(backend, init_method=init, world_size=d.world, rank=d.rank)
    return d


def pick_device(cfg: TrainConfig, d: Dist) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise FitError("--device cuda: no CUDA device available")
        torch.cuda.set_device(d.local_rank % torch.cuda.device_count())
        return torch.device("cuda", d.local_rank % torch.cuda.device_count())
    return torch.device("cpu")


# --- rng state (weights_only-loadable) ------------------------------------------------------

def get_rng() -> dict:
    st = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]), "python_pos": random.getstate()[2],
          "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
          "numpy_pos": int(np.random.get_state()[2])}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate((3, tuple(st["python"]), st["python_pos"]))
    np.random.set_state(("MT19937", st["numpy"].numpy().astype(np.uint32), st["numpy_pos"], 0, 0.0))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


# --- validation ----------------------------------------------------------------------------

@torch.no_grad()
def validate(model, ds, device, n_windows: int, amp_ctx) -> dict:
    """Display-space PSNR/SSIM of the model and of bicubic on evenly spaced validation windows. PSNR is of the
    MEAN squared error over the windows: in a mean of per-window PSNRs, a flat window where bicubic is exact
    (PSNR -> inf, capped at 120 dB) outweighs everything else and misleads the choice of best.pt."""
    model.eval()
    mult = model.cfg.multiple
    s = model.cfg.scale
    idx = np.unique(np.linspace(0, len(ds) - 1, min(n_windows, len(ds))).round().astype(int)).tolist()
    acc = {"mse": 0.0, "ssim": 0.0, "bicubic_mse": 0.0, "bicubic_ssim": 0.0}
    sample = None
    for i in idx:
        b = collate([ds[i]], mult)
        b = {k: v.to(device) for k, v in b.items()}
        with amp_ctx():  # a recurrent model: the window's last frame, after accumulating the window from a reset
            out = model(*_window_inputs(model, b)).float()
        target = b["target"][:, -1] if b["target"].dim() == 5 else b["target"]
        tgt, bic = to_display(target), to_display(bicubic(b["colour"][:, -1], b["jitter"][:, -1], s))
        o = to_display(out)
        acc["mse"] += float(((o.clamp(0, 1) - tgt.clamp(0, 1)) ** 2).mean())
        acc["ssim"] += float(ssim(o, tgt))
        acc["bicubic_mse"] += float(((bic.clamp(0, 1) - tgt.clamp(0, 1)) ** 2).mean())
        acc["bicubic_ssim"] += float(ssim(bic, tgt))
        if sample is None:
            near = F.interpolate(to_display(b["colour"][:, -1]), scale_factor=s, mode="nearest")
            sample = torch.cat([near, o, tgt], -1)[0].clamp(0, 1).cpu()  # input | output | target
    model.train()
    m = {k: v / len(idx) for k, v in acc.items()}
    to_db = psnr_from_mse  # the PSNR of the mean MSE, as nss_train.eval.evaluate reports it
    return {"psnr": to_db(m["mse"]), "ssim": m["ssim"], "bicubic_psnr": to_db(m["bicubic_mse"]),
            "bicubic_ssim": m["bicubic_ssim"], "image": sample}


def _window_inputs(model, b: dict) -> tuple:
    """The model's inputs from a collated window: a recurrent model also takes the window's resets."""
    frames = (b["colour"], b["depth"], b["motion"], b["jitter"])
    return (*frames, b["reset"]) if model.recurrent else frames


# --- the loop ----

class Mapped(torch.nn.Module):
    """The model's window forward in the mapped space (unclamped, for the loss), as a module DDP can wrap."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, colour, depth, motion, jitter, reset=None):
        if self.model.recurrent:  # every frame of the window [B,T,3,sh,sw]
            return self.model.forward_sequence(colour, depth, motion, jitter, reset)
        return self.model.forward_mapped(colour, depth, motion, jitter)


def lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))


# settings that may change on a resume (the others are the run's own and come from its checkpoint)
RESUME_MAY_CHANGE = {"steps", "out", "val_every", "log_every", "max_minutes", "workers", "threads", "devices",
                     "num_nodes", "node_rank", "master_addr", "master_port", "device", "image_every", "amp",
                     "cache_gb"}


@dataclass
class Run:
    """Everything one training holds, built by the steps of `train` and used by its loop."""
    cfg: TrainConfig
    d: Dist
    device: torch.device
    model: torch.nn.Module
    net: torch.nn.Module  # Mapped(model), DDP-wrapped on several ranks
    opt: torch.optim.Optimizer
    loss_fn: NSSLoss
    train_ds: object
    val_ds: object
    amp: bool
    data_summary: dict
    step: int = 0
    best_psnr: float = -1.0
    metrics: dict = field(default_factory=dict)
    writer: object = None

    def amp_ctx(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def save(self, path: Path) -> None:
        save_checkpoint(path, self.model, self.opt, step=self.step, rng=get_rng(), data=self.data_summary,
                        metrics=dict(self.metrics), extra={"train": asdict(self.cfg), "loss": self.loss_fn.description})


def resolve_config(cfg: TrainConfig, d: Dist, resume: str | None, overwrite: bool) -> dict | None:
    """The checkpoint to resume (its run's settings copied into cfg), or None for a new run."""
    last = Path(cfg.out) / "last.pt"
    if not resume:
        if last.exists() and not overwrite:
            raise FitError(f"{last} exists: pass --resume to continue that run, --overwrite to start over, "
                           "or a different --out")
        return None
    path = last if resume == "last" else Path(resume)
    ckpt = read_checkpoint(path)
    saved = ckpt.get("train", {})
    for f in fields(TrainConfig):
        if f.name in saved and f.name not in RESUME_MAY_CHANGE:
            setattr(cfg, f.name, saved[f.name])
    if d.main:
        log.info("resuming %s from step %d", path, ckpt["step"])
    return ckpt


def resolve_data(cfg: TrainConfig, d: Dist) -> tuple[list[Path], list[Path]]:
    """(training, validation) sequence directories; renders the default dataset when cfg.data is None."""
    from nss_train.data.datasets import sequence_dirs, split_sequences

    if cfg.data is None:
        if d.main:
            ensure_default_dataset()
        if d.world > 1:
            torch.distributed.barrier()
        cfg.data = [DEFAULT_DATA]
    if isinstance(cfg.data, str):
        cfg.data = [cfg.data]
    if cfg.val_data:  # explicit held-out sequences (a dataset that grows between resumes keeps its split)
        val_dirs = sorted({p.resolve() for p in sequence_dirs(cfg.val_data)})
        train_dirs = [p for p in sequence_dirs(cfg.data) if p.resolve() not in set(val_dirs)]
    else:
        train_dirs, val_dirs = split_sequences(cfg.data, val_fraction=cfg.val_fraction, seed=cfg.seed)
    if not val_dirs:
        raise FitError(f"{', '.join(cfg.data)}: needs at least 2 sequences (one held out for validation); found "
                       f"{len(train_dirs)}")
    return train_dirs, val_dirs


def resolve_init(cfg: TrainConfig, ckpt: dict | None) -> tuple[object, dict | None]:
    """For fine-tuning (--init): (its model config, its checkpoint); sets cfg.n_prev (0: the preset's own)."""
    if not cfg.init:
        if not cfg.n_prev:
            cfg.n_prev = preset_config(cfg.preset, scale=SCALES[0]).n_prev
        return None, None
    init_src = ckpt if ckpt is not None else read_checkpoint(cfg.init)
    init_cfg = config_from_dict(init_src["config"], where=f"{cfg.init}: config")
    if cfg.n_prev and cfg.n_prev != init_cfg.n_prev:
        raise FitError(f"--init {cfg.init}: model has n_prev {init_cfg.n_prev}; --n-prev is {cfg.n_prev}")
    cfg.n_prev = init_cfg.n_prev
    return init_cfg, init_src


def make_datasets(cfg: TrainConfig, recurrent: bool, train_dirs: list[Path], val_dirs: list[Path]):
    """Recurrent models train on windows of seq_len consecutive frames (history reset at the window start and on
    cuts), with the loss on every frame after the first loss_skip; the others on n_prev + 1 frame windows."""
    from nss_train.data.datasets import WindowDataset

    if recurrent and (cfg.seq_len < 2 or not 0 <= cfg.loss_skip < cfg.seq_len):
        raise FitError(f"--seq-len {cfg.seq_len} / --loss-skip {cfg.loss_skip}: expected seq-len >= 2 and "
                       "0 <= loss-skip < seq-len")
    win = dict(n_prev=cfg.seq_len - 1, sequence=True) if recurrent else dict(n_prev=cfg.n_prev)
    train_ds = WindowDataset(train_dirs, crop=(cfg.crop, cfg.crop), augment=True, seed=cfg.seed,
                             skip_bad=cfg.skip_bad, cache_bytes=int(cfg.cache_gb * 2 ** 30), **win)
    val_ds = WindowDataset(val_dirs, crop=None, augment=False, skip_bad=cfg.skip_bad, **win)
    return train_ds, val_ds


def model_config(cfg: TrainConfig, scale: int, init_cfg, ckpt: dict | None):
    """The model config of this run (the preset's, or the --init checkpoint's), checked against the data and a
    resumed checkpoint."""
    mcfg = preset_config(cfg.preset, scale=scale, n_prev=cfg.n_prev)
    if init_cfg is not None:
        mcfg = init_cfg
        if mcfg.scale != scale:
            raise FitError(f"--init {cfg.init}: model is x{mcfg.scale}; the data is x{scale}")
    if cfg.crop % mcfg.multiple:
        raise FitError(f"--crop {cfg.crop}: must be a multiple of {mcfg.multiple} for preset {cfg.preset!r}")
    if ckpt is not None and config_from_dict(ckpt["config"]) != mcfg:
        raise CheckpointError(f"{cfg.out}: checkpoint model config {ckpt['config']} differs from this run's "
                              f"{asdict(mcfg)}")
    return mcfg


def build_run(cfg: TrainConfig, d: Dist, device, mcfg, ckpt, init_ckpt, datasets, data_summary) -> Run:
    """The model (restored from a resumed checkpoint, or with --init's weights), its optimizer and the loss."""
    torch.manual_seed(cfg.seed)
    model = build_model(mcfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best_psnr = 0, -1.0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["step"])
        best_psnr = float(ckpt.get("metrics", {}).get("best_psnr", -1.0))
        set_rng(ckpt["rng"])
    elif init_ckpt is not None:
        model.load_state_dict(init_ckpt["model"])
        if d.main:
            log.info("fine-tuning from %s (step %s of its run)", cfg.init, init_ckpt.get("step"))
    net = Mapped(model)
    if d.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    loss_fn = NSSLoss(cfg.vgg_weights, l1_weight=cfg.l1_weight, bloom_weight=cfg.bloom_weight).to(device)
    use_amp = cfg.amp == "on" or (cfg.amp == "auto" and device.type == "cuda")
    return Run(cfg, d, device, model, net, opt, loss_fn, *datasets, use_amp, data_summary, step, best_psnr,
               dict(ckpt.get("metrics", {})) if ckpt else {})


def open_log(run: Run) -> None:
    """TensorBoard writer and the run's description (main rank only)."""
    cfg, model, out = run.cfg, run.model, Path(run.cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    from torch.utils.tensorboard import SummaryWriter
    run.writer = SummaryWriter(str(out / "tb"), purge_step=run.step if run.step else None)
    s = run.data_summary
    log.info("model %s x%d, %s params, %.0f FLOPs/output px; data %s: %d train windows (%d seq), "
             "%d val windows (%d seq); loss %s; device %s%s", model.cfg.name, s["scale"], f"{param_count(model):,}",
             model.flops_per_output_pixel(), ", ".join(cfg.data), len(run.train_ds), len(s["train_sequences"]),
             len(run.val_ds), len(s["val_sequences"]), run.loss_fn.description, run.device,
             f", DDP x{run.d.world}" if run.d.world > 1 else "")
    if model.recurrent:
        log.info("recurrent preset: windows of %d frames, truncated back-propagation through all of them, "
                 "history reset at each window start and on cuts; loss on frames %d..%d of each window, in "
                 "DISPLAY space (Reinhard + sRGB, as the metrics)",
                 cfg.seq_len, cfg.loss_skip, cfg.seq_len - 1)


def train_step(run: Run) -> tuple[float, dict]:
    """One optimizer step on this rank's share of the step's batch; returns (lr, loss parts)."""
    cfg, d, recurrent = run.cfg, run.d, run.model.recurrent
    per_rank = max(1, cfg.batch // d.world)
    epoch, idx = batch_indices(len(run.train_ds), cfg.batch, run.step, cfg.seed)
    run.train_ds.set_epoch(epoch)
    mine = idx[d.rank * per_rank:(d.rank + 1) * per_rank] or idx[:per_rank]
    b = collate([run.train_ds[i] for i in mine])
    b = {k: v.to(run.device, non_blocking=True) for k, v in b.items()}
    lr = lr_at(cfg, run.step)
    for g in run.opt.param_groups:
        g["lr"] = lr
    with run.amp_ctx():
        pred = run.net(*_window_inputs(run.model, b))
    if recurrent:  # frames loss_skip.. of every window, in display space (what the metrics measure)
        k = cfg.loss_skip
        p_, t_ = pred[:, k:].float().flatten(0, 1), b["target"][:, k:].flatten(0, 1)
    else:
        # in display space too (the sRGB curve of the Reinhard map: what PSNR/SSIM/FLIP measure)
        p_, t_ = pred.float(), b["target"]
    # pred is Reinhard-mapped; the bloom term needs it linear (colour_inverse clamps it to the contract's cap)
    lin = colour_inverse(p_) if cfg.bloom_weight else None
    loss, parts = run.loss_fn(srgb_encode(p_), to_display(t_), lin, t_)
    if not torch.isfinite(loss):
        raise FitError(f"loss became {float(loss)} at step {run.step}; lower --lr (now {cfg.lr})")
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    run.opt.step()
    run.step += 1
    return lr, parts


def validate_and_checkpoint(run: Run) -> None:
    """Validation figures to TensorBoard and the console; best.pt when they improve, last.pt always."""
    from tqdm import tqdm

    cfg, step, writer, metrics = run.cfg, run.step, run.writer, run.metrics
    v = validate(run.model, run.val_ds, run.device, cfg.val_windows, run.amp_ctx)
    img = v.pop("image")
    for k, val in v.items():
        writer.add_scalar(f"val/{k}", val, step)
    if cfg.image_every == 0 or step % cfg.image_every == 0:
        writer.add_image("val/input_output_target", img, step)
    writer.flush()
    metrics.update({f"val_{k}": val for k, val in v.items()})
    metrics["step"] = step
    tqdm.write(f"step {step}: val PSNR {v['psnr']:.2f} dB (bicubic {v['bicubic_psnr']:.2f}), "
               f"SSIM {v['ssim']:.4f} (bicubic {v['bicubic_ssim']:.4f})")
    out = Path(cfg.out)
    if v["psnr"] > run.best_psnr:
        run.best_psnr = v["psnr"]
        metrics["best_psnr"] = run.best_psnr
        metrics["best_step"] = step
        run.save(out / "best.pt")
    metrics["best_psnr"] = run.best_psnr
    run.save(out / "last.pt")


def loop(run: Run, stop: dict) -> None:
    """Steps until cfg.steps (or --max-minutes): logging, validation and checkpoints on their schedules."""
    from tqdm import tqdm

    cfg, d = run.cfg, run.d
    t0 = time.time()
    bar = tqdm(total=cfg.steps, initial=run.step, desc="fit", unit="step", disable=not d.main, dynamic_ncols=True)
    try:
        while run.step < cfg.steps:
            if stop["flag"]:
                raise KeyboardInterrupt
            lr, parts = train_step(run)
            step = run.step
            bar.update(1)
            if d.main and (step % cfg.log_every == 0 or step == cfg.steps):
                bar.set_postfix(loss=f"{parts['total']:.4f}", lr=f"{lr:.2e}")
                for k, v in parts.items():
                    run.writer.add_scalar(f"loss/{k}", v, step)
                run.writer.add_scalar("lr", lr, step)
            if step % cfg.val_every == 0 or step == cfg.steps:
                if d.main:
                    validate_and_checkpoint(run)
                if d.world > 1:
                    torch.distributed.barrier()
            if cfg.max_minutes and (time.time() - t0) > 60 * cfg.max_minutes and step < cfg.steps:
                if d.main:
                    log.warning("--max-minutes %.1f reached at step %d: saving; continue with --resume",
                                cfg.max_minutes, step)
                    run.metrics["step"] = step
                    run.save(Path(cfg.out) / "last.pt")
                break
    finally:
        bar.close()


def _catch_sigint(d: Dist, stop: dict):
    """Ctrl-C sets stop["flag"]; the loop stops at the next step boundary so last.pt is exactly "after step N".
    Returns the previous handler (None when not installed)."""
    if not (d.main and threading.current_thread() is threading.main_thread()):
        return None

    def on_sigint(signum, frame):
        if stop["flag"]:
            raise KeyboardInterrupt  # second Ctrl-C: give up now
        stop["flag"] = True
    return signal.signal(signal.SIGINT, on_sigint)


def train(cfg: TrainConfig, resume: str | None = None, overwrite: bool = False, local_rank: int = 0) -> dict:
    """Run (or resume) a training; returns the final metrics. Raises FitError/CheckpointError/FrameError."""
    d = setup_dist(cfg, local_rank)
    device = pick_device(cfg, d)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    ckpt = resolve_config(cfg, d, resume, overwrite)
    train_dirs, val_dirs = resolve_data(cfg, d)
    init_cfg, init_src = resolve_init(cfg, ckpt)
    recurrent = architecture(init_cfg.name if init_cfg is not None else cfg.preset).MODEL.recurrent
    datasets = make_datasets(cfg, recurrent, train_dirs, val_dirs)
    scale = datasets[0].scale
    mcfg = model_config(cfg, scale, init_cfg, ckpt)
    init_ckpt = init_src if init_cfg is not None and ckpt is None else None
    summary = {"root": ", ".join(cfg.data), "scale": scale,
               "train_sequences": [str(p) for p in train_dirs], "val_sequences": [str(p) for p in val_dirs],
               "train_windows": len(datasets[0]), "val_windows": len(datasets[1])}
    run = build_run(cfg, d, device, mcfg, ckpt, init_ckpt, datasets, summary)
    if d.main:
        open_log(run)
    t0 = time.time()
    run.model.train()
    stop = {"flag": False}
    old_handler = _catch_sigint(d, stop)
    try:
        loop(run, stop)
    except KeyboardInterrupt:
        if d.main:
            run.metrics["step"] = run.step
            run.save(Path(cfg.out) / "last.pt")
            from tqdm import tqdm
            tqdm.write(f"interrupted at step {run.step}: saved {Path(cfg.out) / 'last.pt'}; continue with --resume")
        raise
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
        if run.writer is not None:
            run.writer.close()
        if d.world > 1:
            torch.distributed.destroy_process_group()
    run.metrics["minutes"] = (time.time() - t0) / 60
    return run.metrics


# --- CLI ------------------------------------------------------------------------------------------

def _worker(local_rank: int, cfg: TrainConfig, resume, overwrite) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    train(cfg, resume, overwrite, local_rank)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nss_train.train.fit", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        val = getattr(defaults, f.name)
        typ = {"int": int, "float": float, "str": str}.get(type(val).__name__, str)
        if f.name == "data":
            p.add_argument(flag, nargs="+", default=None, metavar="DIR",
                           help="dataset root(s) or sequence directories (default: the built-in dataset)")
        elif f.name == "val_data":
            p.add_argument(flag, nargs="+", default=None, metavar="DIR",
                           help="validation roots or sequence directories, left out of --data (default: a "
                                "--val-fraction split of --data by sequence)")
        elif isinstance(val, bool):
            p.add_argument(flag, action="store_true", help=" ")
        else:
            p.add_argument(flag, type=typ, default=val, help=" ")
    p.add_argument("--resume", nargs="?", const="last", default=None, metavar="CKPT",
                   help="continue from OUT/last.pt (or the given checkpoint)")
    p.add_argument("--overwrite", action="store_true", help="start over even if OUT/last.pt exists")
    a = vars(p.parse_args(argv))
    resume, overwrite = a.pop("resume"), a.pop("overwrite")
    cfg = TrainConfig(**a)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if cfg.devices > 1 and "WORLD_SIZE" not in os.environ:
            torch.multiprocessing.spawn(_worker, args=(cfg, resume, overwrite), nprocs=cfg.devices)
            print(f"done: {cfg.devices} processes; checkpoints in {cfg.out}")
            return 0
        m = train(cfg, resume, overwrite)
    except KeyboardInterrupt:
        return 130
    except (FitError, CheckpointError, FR.FrameError, ValueError, FileNotFoundError) as e:
        print(f"nss_train.train.fit: error: {e}", file=sys.stderr)
        return 1
    print(f"done: step {m.get('step')}, val PSNR {m.get('val_psnr', float('nan')):.2f} dB "
          f"(bicubic {m.get('val_bicubic_psnr', float('nan')):.2f}), best {m.get('best_psnr', float('nan')):.2f} dB; "
          f"checkpoints in {cfg.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
