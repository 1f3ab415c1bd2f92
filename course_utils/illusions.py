"""How often do MNIST visual anagrams and hybrids work? The digit classifier reads both views.

An anagram of (d₁, d₂) succeeds when the classifier reads the image as d₁ and the flipped image
as d₂. A hybrid of (far, near) succeeds when it reads the image itself (up close) as ``near``
and its low frequencies (the same Gaussian low-pass the hybrid was built with: what survives
at a distance) as ``far``. Rates are over many seeds, so a pair's figure is not a lucky draw.

Each rate comes with a **baseline**: the same two readings of plain CFG samples of one prompt
(for an anagram, a plain d₁ — a 6 turned around is already a 9; for a hybrid, a plain ``near``
digit — the classifier, trained on sharp digits, reads many blurred blobs as an 8). An illusion
only counts as working where its rate clearly beats its baseline.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .classifier import predict
from .digits import parse_digit
from .diffusion import sample
from .edits import FLIP, View, hybrid_image, lowpass, visual_anagram


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


def hybrid_success(backend, classifier, pair, n: int = 50, scale: float = 5.0, kernel_size: int = 13,
                   sigma: float = 1.5, timesteps=None, seed: int = 0) -> tuple[SuccessRate, torch.Tensor]:
    """(rates, the n hybrids) for one (far, near) pair."""
    far, near = backend.embed(pair[0]), backend.embed(pair[1])
    x = hybrid_image(backend.model, far, near, backend.embed(""), scale, kernel_size, sigma, n, timesteps,
                     torch.Generator().manual_seed(seed), backend.device, progress=False)
    plain = _plain(backend, pair[1], n, scale, timesteps, seed)

    def far_and_near(images):
        return predict(classifier, _to_unit(lowpass(images, kernel_size, sigma))), predict(classifier, _to_unit(images))

    return _rates(pair, *far_and_near(x), *far_and_near(plain)), x
