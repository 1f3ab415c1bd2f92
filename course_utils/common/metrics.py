"""Sample quality as numbers: class accuracy, and a Fréchet distance in the classifier's features.

The Fréchet distance between two Gaussians fitted to feature sets,

    FD = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½),

is FID's formula in the digit classifier's 128-d feature space instead of Inception's. It is
biased upward at small sample sizes, so a number means little alone: ``Judge`` always reports it
next to the real-vs-real floor (two disjoint sets of real digits of the same size).

The kernel distance (KID's formula, ``kernel_distance``) is the unbiased estimate of MMD² with
the polynomial kernel k(x, y) = (x·y / d + 1)³ in the same features: its expected value is 0
when both sets come from one distribution, whatever n, so two sets of real digits score ≈ 0
(slightly negative as often as positive) and a larger value means farther from real digits.
Use it where n is small (Part A's lessons, n = 100); FD where n is large.

Nothing here knows a model: ``part_b.evaluation`` draws Part B's samples and judges them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .classifier import DigitClassifier, accuracy


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) covariance of (N, d) features, in float64."""
    f = features.double()
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (N, d) features with N ≥ 2, got {tuple(features.shape)}")
    return f.mean(0), torch.cov(f.T)


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(m)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance_from_stats(mu1, cov1, mu2, cov2) -> float:
    """FD of N(μ₁, Σ₁) and N(μ₂, Σ₂).

    Tr (Σ₁Σ₂)^½ = Tr (Σ₁^½ Σ₂ Σ₁^½)^½, and the latter matrix is symmetric PSD, so an
    eigendecomposition suffices (no general matrix square root, no complex round-off).
    """
    mu1, cov1, mu2, cov2 = (torch.as_tensor(a, dtype=torch.float64) for a in (mu1, cov1, mu2, cov2))
    root1 = _sqrtm_psd(cov1)
    tr_covmean = torch.linalg.eigvalsh(root1 @ cov2 @ root1).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    # ≥ 0 exactly; rounding in the square roots of near-zero eigenvalues can dip a hair below
    return max(0.0, float(diff @ diff + cov1.trace() + cov2.trace() - 2 * tr_covmean))


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    return frechet_distance_from_stats(*feature_stats(features_a), *feature_stats(features_b))


def polynomial_kernel(a: torch.Tensor, b: torch.Tensor, degree: int = 3, coef: float = 1.0) -> torch.Tensor:
    """k(x, y) = (x·y / d + coef)^degree for all pairs of rows of (N, d) and (M, d): (N, M)."""
    return (a @ b.T / a.shape[1] + coef) ** degree


def kernel_distance(features_a: torch.Tensor, features_b: torch.Tensor, degree: int = 3,
                    coef: float = 1.0) -> float:
    """Unbiased MMD² of two (N, d), (M, d) feature sets (KID's estimator, one subset of all rows):

        mean_{i≠j} k(aᵢ, aⱼ) + mean_{i≠j} k(bᵢ, bⱼ) − 2 mean_{i,j} k(aᵢ, bⱼ).

    Expected value 0 for two samples of one distribution at any n, so it can dip below 0.
    """
    a, b = features_a.double(), features_b.double()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"need (N, d) and (M, d) features with N, M ≥ 2, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    n, m = len(a), len(b)
    k_aa, k_bb = polynomial_kernel(a, a, degree, coef), polynomial_kernel(b, b, degree, coef)
    within_a = (k_aa.sum() - k_aa.diagonal().sum()) / (n * (n - 1))
    within_b = (k_bb.sum() - k_bb.diagonal().sum()) / (m * (m - 1))
    return float(within_a + within_b - 2 * polynomial_kernel(a, b, degree, coef).mean())


@torch.inference_mode()
def classifier_features(classifier: DigitClassifier, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    classifier.eval()
    device = next(classifier.parameters()).device
    return torch.cat([classifier.features(b.to(device)).cpu() for b in images.split(batch_size)])


@dataclass
class Quality:
    n: int                      # samples compared (and real digits in each reference set)
    fd: float                   # samples vs real
    floor: float                # real vs real, same n
    accuracy: float | None      # share read as the intended digit (class-conditioned only)
    kid: float | None = None    # kernel distance samples vs real (unbiased: ≈ 0 for real digits)
    kid_floor: float | None = None  # real vs real, same n

    @property
    def ratio(self) -> float:
        return self.fd / self.floor

    def __str__(self) -> str:
        acc = "" if self.accuracy is None else f"class accuracy {self.accuracy:.1%}, "
        return f"{acc}FD {self.fd:.2f} = {self.ratio:.1f}× the real-vs-real floor {self.floor:.2f} (n = {self.n})"


class Judge:
    """Scores sets of samples against real held-out digits with the digit classifier.

    The real digits are split into two disjoint sets of ``n``: B is the reference every sample
    set is compared with, A gives the floor FD(A, B). Samples should number ``n`` too.
    """

    def __init__(self, classifier: DigitClassifier, real_images: torch.Tensor, n: int = 500, seed: int = 0):
        if len(real_images) < 2 * n:
            raise ValueError(f"need 2 × {n} real digits for the reference and the floor, have "
                             f"{len(real_images)}; lower n")
        order = torch.randperm(len(real_images), generator=torch.Generator().manual_seed(seed))
        self.classifier, self.n = classifier, n
        feats_a = classifier_features(classifier, real_images[order[:n]])
        self.reference_features = classifier_features(classifier, real_images[order[n:2 * n]])
        self.reference = feature_stats(self.reference_features)
        self.floor = frechet_distance_from_stats(*feature_stats(feats_a), *self.reference)
        self.kid_floor = kernel_distance(feats_a, self.reference_features)

    def __call__(self, samples: torch.Tensor, labels: torch.Tensor | None = None) -> Quality:
        feats = classifier_features(self.classifier, samples)
        fd = frechet_distance_from_stats(*feature_stats(feats), *self.reference)
        acc = accuracy(self.classifier, samples, labels) if labels is not None else None
        return Quality(len(samples), fd, self.floor, acc, kernel_distance(feats, self.reference_features),
                       self.kid_floor)


def balanced_labels(n: int) -> torch.Tensor:
    """0, 1, ..., 9, 0, 1, ...: n labels with every digit equally often (±1)."""
    return torch.arange(n) % 10


def load_judge(real_images: torch.Tensor, n: int, device="cpu", seed: int = 0) -> Judge:
    """A ``Judge`` with the committed classifier; n is capped at half the real digits given."""
    from .classifier import load_classifier

    return Judge(load_classifier(device=device), real_images, n=min(n, len(real_images) // 2), seed=seed)


# ---- several seeds: is a difference real, or one lucky draw? -------------------------------------

def over_seeds(measure, seeds) -> list[Quality]:
    """``measure(seed)`` for each seed: the same setting judged on several independent sample sets."""
    return [measure(seed) for seed in seeds]


def spread(qualities: list[Quality]) -> str:
    """'mean [min – max]' of the FD ratio (and of the accuracy) over seeds, for a printout."""
    ratios = [q.ratio for q in qualities]
    text = f"FD/floor {sum(ratios) / len(ratios):5.1f}× [{min(ratios):.1f}–{max(ratios):.1f}]"
    if qualities[0].accuracy is not None:
        accs = [100 * q.accuracy for q in qualities]
        text = f"accuracy {sum(accs) / len(accs):5.1f}% [{min(accs):.1f}–{max(accs):.1f}], " + text
    return text + f" over {len(qualities)} seeds, n = {qualities[0].n} each"


def plot_quality_over_seeds(xs, runs: list[list[Quality]], xlabel: str, title: str | None = None,
                            name: str | None = None, log_x: bool = False, xticklabels=None):
    """As ``plotting.plot_quality``, for several seeds per setting: each seed a faint dot, the
    mean a line, so a reader sees at once whether the seeds agree."""
    import matplotlib.pyplot as plt

    from .plotting import save_figure

    with_acc = runs[0][0].accuracy is not None
    fig, axes = plt.subplots(1, 1 + with_acc, figsize=(5.0 * (1 + with_acc), 3.6), squeeze=False)
    panels = [(axes[0, 0], lambda q: q.ratio, "FD / real-vs-real floor")]
    if with_acc:
        panels.append((axes[0, 1], lambda q: 100 * q.accuracy, "read as intended digit (%)"))
    for ax, value, ylabel in panels:
        for x, qs in zip(xs, runs):
            ax.plot([x] * len(qs), [value(q) for q in qs], "o", color="C0", alpha=0.35, ms=5)
        ax.plot(xs, [sum(map(value, qs)) / len(qs) for qs in runs], "-", color="C0",
                label=f"mean of {len(runs[0])} seeds")
        ax.set(xlabel=xlabel, ylabel=ylabel)
        if log_x:
            ax.set_xscale("log", base=2)
        if xticklabels is not None:
            ax.set_xticks(xs, xticklabels)
        ax.grid(alpha=0.3)
    axes[0, 0].axhline(1, color="gray", ls="--", lw=1, label="real vs real")
    axes[0, 0].set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    if with_acc:
        axes[0, 1].set_ylim(0, 101)
    fig.suptitle(title or f"sample quality (n = {runs[0][0].n} per seed)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, name)
    return fig
