"""Part A on MNIST: does each lesson work? One number per lesson, over many digits or seeds.

A figure shows a few inputs; these functions run the same algorithm on a whole batch of
held-out digits (or seeds) and let the digit classifier read the results:

- **kept**: the share read as the digit the lesson wants (the input's own class when denoising,
  the prompt's when editing), and
- **KID**: the kernel distance to real held-out digits in the classifier's features
  (``metrics.kernel_distance``, ×10³), next to its real-vs-real value at the same n
  (``metrics.Judge``): it sees what a share cannot, such as blur, or samples that are all alike.
  Unlike the Fréchet distance it is unbiased at n = 100: two sets of real digits score ≈ 0
  (a little below as often as above), and a larger number means farther from real digits.
  ``Score.fd`` keeps the Fréchet distance (and its floor) for tables at large n.
- Images are read by the digit **judge** (``judge.DigitJudge``), which can answer "not a digit";
  a rejected image counts as not read as intended.

Every function takes a ``Backend`` (the MNIST one) and returns ``Score`` rows, printed next to
the notebook's figure and tabulated by ``benchmarks/quality.py``.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import torch

from ..common.classifier import load_classifier, predict
from ..common.judge import REJECT
from ..common.metrics import Judge
from ..common.plotting import show_images
from .diffusion import blur_denoise, forward, iterative_denoise, iterative_denoise_cfg, one_step_denoise, sample
from .edits import inpaint, sdedit


def lesson_inputs(per_class: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Shipped held-out digits (``per_class`` of each class, 100 by default) in Part A's [-1, 1],
    class-major, and their labels."""
    from .digits import lesson_digits

    return lesson_digits(per_class)


def lesson_judge(device="cpu") -> tuple:
    """(judge, Judge): the digit judge that reads each image (it can answer ``REJECT``, "not a
    digit", which never matches an intended digit), and KID / FD in the plain classifier's
    features against 100 real digits that are never a lesson input, with the real-vs-real value
    from the other 100 (``digits.reference_digits``)."""
    from ..common.judge import load_judge
    from .digits import reference_digits

    classifier = load_classifier(device=device)
    return load_judge(device=device), Judge(classifier, (reference_digits() + 1) / 2, n=100)


@dataclass
class Score:
    what: str                 # the method or setting, in words
    n: int                    # inputs (or seeds) it was measured on
    kept: float               # share read as the intended digit
    fd: float | None = None   # Fréchet distance to real digits (None: not measured)
    floor: float | None = None
    also: float | None = None  # a second reading where a lesson has one (e.g. "still the original")
    kid: float | None = None   # kernel distance to real digits (unbiased; None: not measured)
    kid_floor: float | None = None  # the same for real digits vs real digits

    def __str__(self) -> str:
        text = f"{self.what:<34} {self.kept:6.1%} read as intended"
        if self.also is not None:
            text += f", {self.also:6.1%} as the original"
        if self.kid is not None:
            text += f", KID×10³ {1e3 * self.kid:6.2f} (real vs real {1e3 * self.kid_floor:+.2f})"
        elif self.fd is not None:
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
    return Score(what, len(images), kept, q.fd, q.floor, also, q.kid, q.kid_floor)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def denoising(backend, classifier, judge, images, labels, i_start: int, timesteps, scale: float | None = None,
              seed: int = 0) -> tuple[list[Score], dict]:
    """§1.2–1.6 on one batch: every digit noised to t = timesteps[i_start] (its own label as the
    prompt), then denoised by a Gaussian blur, one step, iterative steps and, with ``scale``,
    iterative steps with CFG. Returns the scores and the images, by method."""
    model, t = backend.model, timesteps[i_start]
    cond, uncond = one_hots(labels).to(backend.device), backend.embed("")
    x_t = forward(images, t, model.alphas_cumprod, generator=_gen(seed))
    out = {
        "Gaussian blur (§1.2)": blur_denoise(x_t),
        f"one step from t = {t} (§1.3)": one_step_denoise(model, x_t, t, cond),
        f"iterative from t = {t} (§1.4)": iterative_denoise(model, x_t, i_start, cond, timesteps,
                                                            _gen(seed + 1), progress=False),
    }
    if scale is not None:
        out[f"iterative + CFG γ = {scale:g} (§1.6)"] = iterative_denoise_cfg(
            model, x_t, i_start, cond, uncond, scale, timesteps, _gen(seed + 1), progress=False)
    out = {what: x.clamp(-1, 1).cpu() for what, x in out.items()}
    return [score(what, x, labels, classifier, judge) for what, x in out.items()], {"noisy": x_t.cpu(), **out}


def sampling(backend, classifier, judge, n: int, timesteps, scales=(None, 5.0), seed: int = 0) -> tuple[list[Score], dict]:
    """§1.5/1.6: n samples from pure noise, every digit equally often as the prompt, without CFG
    (``None``) and with each γ in ``scales`` (same seed: same starting noise). Returns the
    scores and the samples, by setting."""
    labels = torch.arange(n) % 10
    cond, uncond = one_hots(labels).to(backend.device), backend.embed("")
    rows, out = [], {}
    for scale in scales:
        what = "no CFG (§1.5)" if scale is None else f"CFG γ = {scale:g} (§1.6)"
        out[what] = sample(backend.model, cond, n, None if scale is None else uncond, scale, timesteps, _gen(seed),
                           backend.device, progress=False).cpu()
        rows.append(score(what, out[what], labels, classifier, judge))
    return rows, out


def sdedit_rates(backend, classifier, images, labels, i_starts, timesteps, scale: float,
                 target: torch.Tensor | None = None, seed: int = 0, judge: Judge | None = None) -> list[Score]:
    """§1.7 (``target`` None: the prompt is each digit's own label) and §1.7.3 (prompt ``target``):
    at every i_start, the share read as the prompt and the share still read as the original."""
    intended = labels if target is None else target
    cond, uncond = one_hots(intended).to(backend.device), backend.embed("")
    rows = []
    for i in [i for i in i_starts if i < len(timesteps)]:
        x = sdedit(backend.model, images, i, cond, uncond, scale, timesteps, _gen(seed), progress=False)
        rows.append(score(f"i_start = {i} (t = {timesteps[i]})", x, intended,
                          classifier, judge, original=labels))
    return rows


def inpaint_rates(backend, classifier, images, labels, mask, timesteps, scale: float,
                  seed: int = 0) -> tuple[list[Score], dict]:
    """§1.7.2: the masked part regenerated, with each digit's own label as the prompt (CFG) and
    with the empty prompt; the share whose completed image reads as the original digit."""
    uncond = backend.embed("")
    rows, out = [], {}
    for what, cond in ((f'own digit as prompt, CFG γ = {scale:g}', one_hots(labels).to(backend.device)),
                       ('empty prompt ""', uncond)):
        out[what] = inpaint(backend.model, images, mask, cond, uncond, scale, timesteps, _gen(seed),
                            progress=False).cpu()
        rows.append(score(what, out[what], labels, classifier))
    return rows, out


def pick_columns(rows: dict, intended: torch.Tensor, classifier, unread=()) -> list[int]:
    """One input per class: the first one that some method gets wrong, else the first one. A
    figure of 10 columns then shows the failures there are instead of hiding them."""
    wrong = torch.zeros(len(intended), dtype=torch.bool)
    for what, x in rows.items():
        if what not in unread:
            wrong |= predict(classifier, _to_unit(x)) != intended
    columns = []
    for d in range(10):
        members = torch.nonzero(intended == d).flatten()
        if len(members):
            failing = members[wrong[members]]
            columns.append(int((failing if len(failing) else members)[0]))
    return columns


def show_readings(rows: dict, intended: torch.Tensor, classifier, columns=None, name: str | None = None,
                  suptitle: str | None = None, size: float = 0.95, unread=("input", "noisy", "masked")):
    """One column per input, one row per method; each image titled with what the classifier
    reads ("no digit" where the judge rejects it), and a ✗ where that is not the intended digit. By default one input per class, a
    failing one where there is one (``pick_columns``): failures stay in the figure. Rows named
    in ``unread`` (inputs, not results) get no reading."""
    columns = pick_columns(rows, intended, classifier, unread) if columns is None else list(columns)
    images, titles = [], []
    for what, x in rows.items():
        read = predict(classifier, _to_unit(x[columns])).tolist()
        for k, r in zip(columns, read):
            images.append(x[k].cpu())
            seen = "no digit" if r == REJECT else f"{r}"   # the judge's "not a digit"
            titles.append("" if what in unread else seen + ("" if r == int(intended[k]) else " ✗"))
    labels = [textwrap.fill(what.split(" (§")[0], 14) for what in rows]   # short enough to stand beside a row
    return show_images(images, titles, ncols=len(columns), row_labels=labels, value_range=(-1, 1),
                       size=size, suptitle=suptitle, name=name)
