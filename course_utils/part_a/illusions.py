"""How often do MNIST visual anagrams and hybrids work? A digit judge reads both views.

Every reading is by a judge that can say "not a digit" (``common.judge.DigitJudge``, or the
far-view judge for a hybrid's far view): a plain 10-way classifier reads a mirrored 3 (ε) as a
5 with high confidence, so a rate it gave said nothing; a rejected view counts as not read right.

An anagram of (d₁, d₂) succeeds when the judge reads the image as d₁ and the flipped image as d₂.
A hybrid of (far, near) succeeds when the judge reads the image itself (up close) as ``near`` and
the **far-view judge** reads its **far view** as ``far``. The far view (``far_view``) is what an
eye gets from across a room: the image shrunk to ``FAR_SIZE`` (10) pixels with antialiasing and
blown up again smoothly, the very image the notebook shows as "afar". The far-view judge is a
second classifier trained on low-passed digits (``classifier.FAR_CLASSIFIER_PATH``): the sharp
one reads only about 10% of real held-out digits' far views right, so its far view would be
guesswork; ``far_view_check`` shows that the far judge reads the far views of real digits of
every class. Rates are over many seeds, so a pair's figure is not a lucky draw.

Each rate comes with a **baseline**: the same two readings of plain CFG samples of one prompt
(for an anagram, a plain d₁ — a 6 turned around is already a 9; for a hybrid, a plain ``near``
digit). An illusion only counts as working where its rate clearly beats its baseline.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

import torch.nn.functional as F

from ..common.classifier import FAR_CLASSIFIER_PATH, load_classifier, predict
from .diffusion import sample
from .digits import parse_digit
from .edits import FLIP, View, hybrid_image, visual_anagram


@dataclass
class SuccessRate:
    pair: tuple          # the two prompts
    n: int               # images generated (one per seed)
    first: float         # share read as the first digit (upright / from afar)
    second: float        # share read as the second digit (flipped / up close)
    both: float          # share where both readings are right
    baseline: float      # the same "both" for plain samples of one prompt (see the module doc)

    def __str__(self) -> str:
        return (f"{self.pair[0]!r} / {self.pair[1]!r}: both views right in {self.both:.0%} of {self.n} "
                f"(first {self.first:.0%}, second {self.second:.0%}; plain-sample baseline {self.baseline:.0%})")


def _both(pair, read_first, read_second) -> torch.Tensor:
    d1, d2 = (parse_digit(p) for p in pair)
    return read_first == d1, read_second == d2


def _rates(pair, read_first, read_second, baseline_first, baseline_second) -> SuccessRate:
    ok1, ok2 = _both(pair, read_first, read_second)
    base1, base2 = _both(pair, baseline_first, baseline_second)
    return SuccessRate(tuple(pair), len(ok1), ok1.float().mean().item(), ok2.float().mean().item(),
                       (ok1 & ok2).float().mean().item(), (base1 & base2).float().mean().item())


def _plain(backend, prompt, n, scale, timesteps, seed):
    return sample(backend.model, backend.embed(prompt), n, backend.embed(""), scale, timesteps,
                  torch.Generator().manual_seed(seed), backend.device, progress=False)


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    return (x.cpu() + 1) / 2   # Part A's [-1, 1] → the classifier's [0, 1]


def anagram_success(backend, classifier, pair, n: int = 50, scale: float = 5.0, view: View = FLIP,
                    timesteps=None, seed: int = 0) -> tuple[SuccessRate, torch.Tensor]:
    """(rates, the n anagrams) for one prompt pair, n seeds drawn as one batch."""
    cond1, cond2, uncond = backend.embed(pair[0]), backend.embed(pair[1]), backend.embed("")
    x = visual_anagram(backend.model, cond1, cond2, uncond, scale, view, n, timesteps,
                       torch.Generator().manual_seed(seed), backend.device, progress=False)
    plain = _plain(backend, pair[0], n, scale, timesteps, seed)
    return _rates(pair, predict(classifier, _to_unit(x)), predict(classifier, _to_unit(view.apply(x))),
                  predict(classifier, _to_unit(plain)), predict(classifier, _to_unit(view.apply(plain)))), x


def load_far_judge(device="cpu"):
    return load_classifier(FAR_CLASSIFIER_PATH, device)


FAR_SIZE = 10   # pixels across of a 28-pixel digit seen from afar (the far judge reads 98% of real ones)


def far_view(images: torch.Tensor, size: int | None = None, out_size: int | None = None) -> torch.Tensor:
    """What an eye gets of ``images`` (B, C, H, W) from across a room: shrunk to ``size`` pixels
    with antialiasing (``out_size=None``: returned that small), or blown up again smoothly
    (bilinear) to ``out_size``; the far judge reads the latter at the original size. ``size``
    None: ``FAR_SIZE`` for a 28×28 digit, a quarter of the width for a larger image."""
    width = images.shape[-1]
    size = size if size is not None else (FAR_SIZE if width <= 28 else width // 4)
    small = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    if out_size is None:
        return small
    return F.interpolate(small, size=(out_size, out_size), mode="bilinear", align_corners=False)


def _far(images: torch.Tensor, size: int) -> torch.Tensor:
    return far_view(images, size, images.shape[-1])


def far_view_check(far_judge, images: torch.Tensor, labels: torch.Tensor, size: int = FAR_SIZE) -> torch.Tensor:
    """Per class, the share of real digits (images in [0, 1]) whose far view the far judge reads
    right: the judge is fair only if every class is read, not just some."""
    read = predict(far_judge, _far(images, size).clamp(0, 1))
    labels = labels.cpu()
    return torch.stack([(read[labels == d] == d).float().mean() for d in range(10)])


def hybrid_success(backend, classifier, pair, n: int = 50, scale: float = 5.0, kernel_size: int = 13,
                   sigma: float = 1.5, timesteps=None, seed: int = 0, far_judge=None,
                   far_size: int = FAR_SIZE) -> tuple[SuccessRate, torch.Tensor]:
    """(rates, the n hybrids) for one (far, near) pair, built with the low-pass (kernel_size,
    sigma); up close read by ``classifier`` (the digit judge), the far view (``far_view`` at
    ``far_size`` pixels) by ``far_judge``."""
    far_judge = far_judge if far_judge is not None else load_far_judge(backend.device)
    far, near = backend.embed(pair[0]), backend.embed(pair[1])
    x = hybrid_image(backend.model, far, near, backend.embed(""), scale, kernel_size, sigma, n, timesteps,
                     torch.Generator().manual_seed(seed), backend.device, progress=False)
    plain = _plain(backend, pair[1], n, scale, timesteps, seed)

    def far_and_near(images):
        images = images.cpu()
        return (predict(far_judge, _to_unit(_far(images, far_size)).clamp(0, 1)),
                predict(classifier, _to_unit(images)))

    return _rates(pair, *far_and_near(x), *far_and_near(plain)), x
