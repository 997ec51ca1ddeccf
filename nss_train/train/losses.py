"""Training loss (1 - SSIM + 0.1 * VGG-16 perceptual) and the display transform it and the metrics use.

fit applies the loss on DISPLAY values (the sRGB curve of the model's Reinhard-mapped
output, `srgb_encode`), the space the metrics use, so dark regions weigh in training
as much as they do in PSNR/SSIM/FLIP. SSIM here is the plain SSIM in [-1, 1]; 1 - SSIM
gets full weight (the seed halved it).

VGG-16 is written out below (no torchvision, nothing downloaded): its weights
come from a local file in torchvision's layout (`features.N.weight/bias`, e.g.
vgg16-397923af.pth), given with --vgg-weights. Without one, training uses
1 - SSIM + L1 and says so in the log.

Metrics (nss_train.eval.metrics: PSNR, SSIM, FLIP) are computed on DISPLAY values: Reinhard
tone map, then the sRGB transfer curve, clipped to [0, 1] (`to_display`). PSNR over several
frames is the PSNR of their mean MSE (`psnr_from_mse`), everywhere.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from nss_train.eval.metrics import ssim
from nss_train.models.geometry import colour_forward

log = logging.getLogger("nss_train.train.losses")

DISPLAY = "Reinhard x/(1+x), then sRGB transfer curve, clipped to [0, 1]"


# --- display transform ----------------------------------------------------------------------

def srgb_encode(x: torch.Tensor) -> torch.Tensor:
    """nss_runtime.display.srgb_encode in torch, differentiable (the gradient of the curve stays finite at 0)."""
    x = torch.clamp(x, 0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * torch.pow(torch.clamp(x, min=0.0031308), 1 / 2.4) - 0.055)


def to_display(linear: torch.Tensor) -> torch.Tensor:
    """Linear HDR RGB -> display values in [0, 1] (see DISPLAY)."""
    return srgb_encode(colour_forward(linear))


# --- VGG-16 --------------------------------------------------------------------------------

# torchvision's vgg16 "features": numbers are conv widths, "M" a 2x2 max-pool.
VGG16_LAYOUT = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
# indices in `features` of the ReLUs whose outputs the perceptual loss compares: relu1_2, relu2_2, relu3_3, relu4_3
VGG16_TAPS = (3, 8, 15, 22)


class VGG16Features(nn.Module):
    """VGG-16 convolutional trunk, up to relu4_3, with torchvision's parameter names (features.N.*)."""

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in VGG16_LAYOUT:
            if len(layers) > VGG16_TAPS[-1]:
                break
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        self.features = nn.Sequential(*layers[: VGG16_TAPS[-1] + 1])
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG16_TAPS:
                out.append(x)
        return out

    @staticmethod
    def from_file(path: str | Path) -> "VGG16Features":
        """Load ImageNet weights from a local torchvision-layout state dict; clear error otherwise."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"--vgg-weights {path}: no such file (expected torchvision's vgg16 state dict, "
                                    "e.g. vgg16-397923af.pth)")
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"--vgg-weights {path}: unreadable ({type(e).__name__}); expected a torch state dict") from None
        if isinstance(sd, dict) and "state_dict" in sd:
            sd = sd["state_dict"]
        m = VGG16Features()
        want = {k for k in m.state_dict() if k.startswith("features.")}
        if not isinstance(sd, dict):
            raise ValueError(f"--vgg-weights {path}: expected a state dict with keys like 'features.0.weight'")
        got = {k: v for k, v in sd.items() if k in want}
        missing = sorted(want - set(got))
        if missing:
            raise ValueError(f"--vgg-weights {path}: missing {len(missing)} VGG-16 tensor(s) (first: {missing[0]}); "
                             "expected torchvision's vgg16 layout")
        for k, v in got.items():
            if tuple(v.shape) != tuple(m.state_dict()[k].shape):
                raise ValueError(f"--vgg-weights {path}: {k} has shape {tuple(v.shape)}; expected "
                                 f"{tuple(m.state_dict()[k].shape)} (is it VGG-16?)")
        m.load_state_dict(got, strict=False)
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
        return m


# --- the loss ---------------------------------------------------------------------------------

BLOOM_POOLS = (4, 8)  # output px: the scales over which a bloom/glow pass spreads a bright pixel's energy


def bloom_loss(pred_linear: torch.Tensor, target_linear: torch.Tensor) -> torch.Tensor:
    """L1 of log(1 + box-mean) of LINEAR HDR colour over BLOOM_POOLS blocks (averaged): the energy a bloom spreads.

    Godot's glow runs after the upscaler on its linear output, so a bright thin line whose linear energy is
    lost (averaging samples in Reinhard space lowers it: 0 and 10 average to 0.83, not 5) darkens a whole
    halo that the display-space loss barely sees (Reinhard compresses values > 1). Measured in engine:
    motion_and_effects with glow off, accum beats FSR2 by 1.5-1.7 dB; with glow on it lost by 0.2-0.3 dB.
    log1p keeps the rare specular peaks (up to ~29,000 linear in the targets) from dominating.
    Tried once (weight 4, 10,000 steps fine-tuned from the shipped accum): the term stayed flat (0.008) and
    motion_and_effects moved < 0.1 dB; not in the shipped recipe (docs/accum.md)."""
    pools = [k for k in BLOOM_POOLS if k <= min(pred_linear.shape[-2:])]  # images smaller than a block skip it
    terms = [(torch.log1p(F.avg_pool2d(pred_linear.clamp(min=0.0), k))
              - torch.log1p(F.avg_pool2d(target_linear.clamp(min=0.0), k))).abs().mean() for k in pools]
    return sum(terms) / len(terms) if terms else pred_linear.new_zeros(())


class NSSLoss(nn.Module):
    """1 - SSIM + 0.1 * perceptual(VGG-16); 1 - SSIM + L1 when no VGG weights are given (on display images)."""

    def __init__(self, vgg_weights: str | Path | None = None, perceptual_weight: float = 0.1,
                 l1_weight: float = 1.0, bloom_weight: float = 0.0):
        super().__init__()
        self.vgg = VGG16Features.from_file(vgg_weights) if vgg_weights else None
        self.perceptual_weight, self.l1_weight, self.bloom_weight = perceptual_weight, l1_weight, bloom_weight
        if self.vgg is None:
            log.warning("no --vgg-weights given: training with 1 - SSIM + %.2g * L1 (no perceptual term)", l1_weight)
        else:
            log.info("loss: 1 - SSIM + %.2g * VGG-16 perceptual (weights %s)", perceptual_weight, vgg_weights)

    @property
    def description(self) -> str:
        blocks = " / ".join(f"{k}x{k}" for k in BLOOM_POOLS)
        bloom = (f" + {self.bloom_weight:g} * bloom (L1 of log(1 + {blocks} box means) of linear colour)"
                 if self.bloom_weight else "")
        if self.vgg is None:
            return (f"1 - SSIM + {self.l1_weight:g} * L1 on display values (sRGB curve of the Reinhard map){bloom}; "
                    "no VGG weights given, so no perceptual term")
        return (f"1 - SSIM + {self.perceptual_weight:g} * VGG-16 perceptual on display values (sRGB curve of the "
                f"Reinhard map){bloom}")

    def forward(self, pred: torch.Tensor, target: torch.Tensor, pred_linear: torch.Tensor | None = None,
                target_linear: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """pred / target: display values; pred_linear / target_linear: linear HDR (needed when bloom_weight > 0)."""
        pred, target = pred.float(), target.float()
        s = 1.0 - ssim(pred, target)
        parts = {"ssim": float(s.detach())}
        loss = s
        if self.vgg is None:
            l1 = (pred - target).abs().mean()
            loss = loss + self.l1_weight * l1
            parts["l1"] = float(l1.detach())
        else:
            fp, ft = self.vgg(pred.clamp(0, 1)), self.vgg(target)
            perc = sum((a - b).abs().mean() for a, b in zip(fp, ft)) / len(fp)
            loss = loss + self.perceptual_weight * perc
            parts["perceptual"] = float(perc.detach())
        if self.bloom_weight:
            bl = bloom_loss(pred_linear.float(), target_linear.float())
            loss = loss + self.bloom_weight * bl
            parts["bloom"] = float(bl.detach())
        parts["total"] = float(loss.detach())
        return loss, parts
