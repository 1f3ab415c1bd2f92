"""Part A on MNIST: does each lesson work? One number per lesson, over many digits or seeds.

A figure shows a few inputs; these functions run the same algorithm on a whole batch of
held-out digits (or seeds) and let the digit classifier read the results:

- **kept**: the share read as the digit the lesson wants (the input's own class when denoising,
  the prompt's when editing), and
- **FD**: the Fréchet distance to real held-out digits in the classifier's features, always with
  the real-vs-real floor at the same n (``metrics.Judge``): blurry averages read as the right
  digit but sit far from real digits; sharp samples of the wrong digit do the opposite.

Every function takes a ``Backend`` (the MNIST one) and returns ``Score`` rows, printed next to
the notebook's figure and tabulated by ``benchmarks/quality.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .classifier import predict
from .diffusion import blur_denoise, forward, iterative_denoise, iterative_denoise_cfg, one_step_denoise, sample
from .edits import inpaint, sdedit
from .metrics import Judge


@dataclass
class Score:
    what: str                 # the method or setting, in words
    n: int                    # inputs (or seeds) it was measured on
    kept: float               # share read as the intended digit
    fd: float | None = None   # Fréchet distance to real digits (None: not measured)
    floor: float | None = None
    also: float | None = None  # a second reading where a lesson has one (e.g. "still the original")

    def __str__(self) -> str:
        text = f"{self.what:<34} {self.kept:6.1%} read as intended"
        if self.also is not None:
            text += f", {self.also:6.1%} as the original"
        if self.fd is not None:
            text += f", FD {self.fd:5.2f} ({self.fd / self.floor:4.1f}× the floor {self.floor:.2f})"
        return text + f"   [n = {self.n}]"


def table(scores: list[Score], title: str) -> str:
    return "\n".join([title] + [f"  {s}" for s in scores])


def one_hots(labels: torch.Tensor) -> torch.Tensor:
    """(B, 10) digit conditions: the MNIST backend's prompt "a d" for every label d."""
    return torch.nn.functional.one_hot(labels, 10).float()


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    return ((x.cpu() + 1) / 2).clamp(0, 1)   # Part A's [-1, 1] → the classifier's [0, 1]


def score(what: str, images: torch.Tensor, intended: torch.Tensor, classifier, judge: Judge | None = None,
          original: torch.Tensor | None = None) -> Score:
    """Read ``images`` (in [-1, 1]) with the classifier; FD against the judge's real digits."""
    read = predict(classifier, _to_unit(images))
    kept = (read == intended).float().mean().item()
    also = None if original is None else (read == original).float().mean().item()
    if judge is None:
        return Score(what, len(images), kept, also=also)
    q = judge(_to_unit(images))
    return Score(what, len(images), kept, q.fd, q.floor, also)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def denoising(backend, classifier, judge, images, labels, i_start: int, timesteps, scale: float,
              seed: int = 0) -> list[Score]:
    """§1.2–1.6 on one batch: every digit noised to t = timesteps[i_start] (its own label as the
    prompt), then denoised by a Gaussian blur, one step, iterative steps, and iterative with CFG."""
    model, t = backend.model, timesteps[i_start]
    cond, uncond = one_hots(labels).to(backend.device), backend.embed("")
    x_t = forward(images, t, model.alphas_cumprod, generator=_gen(seed))
    out = {
        "Gaussian blur (§1.2)": blur_denoise(x_t),
        f"one step from t = {t} (§1.3)": one_step_denoise(model, x_t, t, cond),
        f"iterative from t = {t} (§1.4)": iterative_denoise(model, x_t, i_start, cond, timesteps,
                                                            _gen(seed + 1), progress=False),
        f"iterative + CFG γ = {scale:g} (§1.6)": iterative_denoise_cfg(model, x_t, i_start, cond, uncond, scale,
                                                                    timesteps, _gen(seed + 1), progress=False),
    }
    return [score(what, x.clamp(-1, 1), labels, classifier, judge) for what, x in out.items()]


def sampling(backend, classifier, judge, n: int, timesteps, scales=(None, 5.0), seed: int = 0) -> list[Score]:
    """§1.5/1.6: n samples from pure noise, every digit equally often as the prompt, without CFG
    (``None``) and with each γ in ``scales``."""
    labels = torch.arange(n) % 10
    cond, uncond = one_hots(labels).to(backend.device), backend.embed("")
    rows = []
    for scale in scales:
        x = sample(backend.model, cond, n, None if scale is None else uncond, scale, timesteps, _gen(seed),
                   backend.device, progress=False)
        rows.append(score("no CFG (§1.5)" if scale is None else f"CFG γ = {scale:g} (§1.6)", x, labels,
                          classifier, judge))
    return rows


def sdedit_rates(backend, classifier, images, labels, i_starts, timesteps, scale: float,
                 target: torch.Tensor | None = None, seed: int = 0) -> list[Score]:
    """§1.7 (``target`` None: the prompt is each digit's own label) and §1.7.3 (prompt ``target``):
    at every i_start, the share read as the prompt and the share still read as the original."""
    intended = labels if target is None else target
    cond, uncond = one_hots(intended).to(backend.device), backend.embed("")
    rows = []
    for i in i_starts:
        x = sdedit(backend.model, images, i, cond, uncond, scale, timesteps, _gen(seed), progress=False)
        rows.append(score(f"i_start = {i} (t = {timesteps[i] if i < len(timesteps) else 0})", x, intended,
                          classifier, original=labels))
    return rows


def inpaint_rates(backend, classifier, images, labels, mask, timesteps, scale: float,
                  seed: int = 0) -> list[Score]:
    """§1.7.2: the masked part regenerated, with each digit's own label as the prompt (CFG) and
    with the empty prompt; the share whose completed image reads as the original digit."""
    uncond = backend.embed("")
    rows = []
    for what, cond in ((f'own digit as prompt, CFG γ = {scale:g}', one_hots(labels).to(backend.device)),
                       ('empty prompt ""', uncond)):
        x = inpaint(backend.model, images, mask, cond, uncond, scale, timesteps, _gen(seed), progress=False)
        rows.append(score(what, x, labels, classifier))
    return rows
