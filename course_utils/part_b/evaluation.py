"""Part B's models judged: samples drawn from a trained flow UNet and scored, and its held-out loss.

The scores come from ``common.metrics`` (class accuracy, and the Fréchet distance next to its
real-vs-real floor); this module draws the samples they score: CFG samples with every digit
equally often (§2.5) or unconditional ones (§2.3). And the flow-matching loss on held-out digits,
with the same draws for every model compared (§2.6).
"""
from __future__ import annotations

import torch

from ..common.data import check_training_data
from ..common.metrics import Judge, Quality, balanced_labels
from .flow import flow_matching_loss, sample_path
from .sampling import sample_class_conditioned, sample_time_conditioned
from .unet import one_hot


def judge_class_conditioned(model, judge: Judge, guidance: float, num_steps: int, seed: int = 0,
                            batch_size: int = 250) -> Quality:
    """``judge.n`` CFG samples, every digit equally often, scored for accuracy and FD."""
    labels = balanced_labels(judge.n)
    g = torch.Generator().manual_seed(seed)
    samples = torch.cat([sample_class_conditioned(model, part, num_steps, guidance, g).cpu()
                         for part in labels.split(batch_size)])
    return judge(samples, labels)


def judge_time_conditioned(model, judge: Judge, num_steps: int, seed: int = 0, batch_size: int = 250) -> Quality:
    """``judge.n`` unconditional samples, scored by FD (no intended digit to check)."""
    g = torch.Generator().manual_seed(seed)
    sizes = [min(batch_size, judge.n - k) for k in range(0, judge.n, batch_size)]
    samples = torch.cat([sample_time_conditioned(model, m, num_steps, g).cpu() for m in sizes])
    return judge(samples)


@torch.no_grad()
def heldout_flow_loss(model, images: torch.Tensor, labels: torch.Tensor | None = None, seed: int = 0,
                      batch_size: int = 500) -> float:
    """The flow-matching loss (B.5) on held-out digits, with x₀ and t drawn from ``seed``.

    Every model judged with the same seed sees the same (x₁, x₀, t) triples, so differences are
    the models' own, not the draw's. With ``labels`` the class is always given (no dropout).
    """
    check_training_data(images, labels)   # held-out digits in [0, 1], as the training data
    model.eval()
    device = next(model.parameters()).device
    # all draws up front, so the batch size does not change which x₀ and t each digit gets
    x0_all, t_all = sample_path(images.float().cpu(), torch.Generator().manual_seed(seed))
    total = 0.0
    for k in range(0, len(images), batch_size):
        x1, x0, t = (a[k:k + batch_size].float().to(device) for a in (images, x0_all, t_all))
        c = None if labels is None else one_hot(labels[k:k + batch_size].cpu()).to(device)
        total += flow_matching_loss(model, x1, x0, t, c).item() * len(x1)
    return total / len(images)
