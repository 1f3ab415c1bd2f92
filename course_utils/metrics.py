"""Sample quality as numbers: class accuracy, and a Fréchet distance in the classifier's features.

The Fréchet distance between two Gaussians fitted to feature sets,

    FD = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^½),

is FID's formula in the digit classifier's 128-d feature space instead of Inception's. It is
biased upward at small sample sizes, so a number means little alone: ``Judge`` always reports it
next to the real-vs-real floor (two disjoint sets of real digits of the same size).
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
        self.reference = feature_stats(classifier_features(classifier, real_images[order[n:2 * n]]))
        self.floor = frechet_distance_from_stats(*feature_stats(feats_a), *self.reference)

    def __call__(self, samples: torch.Tensor, labels: torch.Tensor | None = None) -> Quality:
        fd = frechet_distance_from_stats(*feature_stats(classifier_features(self.classifier, samples)),
                                         *self.reference)
        acc = accuracy(self.classifier, samples, labels) if labels is not None else None
        return Quality(len(samples), fd, self.floor, acc)


def balanced_labels(n: int) -> torch.Tensor:
    """0, 1, ..., 9, 0, 1, ...: n labels with every digit equally often (±1)."""
    return torch.arange(n) % 10


def load_judge(real_images: torch.Tensor, n: int, device="cpu", seed: int = 0) -> Judge:
    """A ``Judge`` with the committed classifier; n is capped at half the real digits given."""
    from .classifier import load_classifier

    return Judge(load_classifier(device=device), real_images, n=min(n, len(real_images) // 2), seed=seed)


def judge_class_conditioned(model, judge: Judge, guidance: float, num_steps: int, seed: int = 0,
                            batch_size: int = 250) -> Quality:
    """``judge.n`` CFG samples, every digit equally often, scored for accuracy and FD."""
    from .sampling import sample_class_conditioned

    labels = balanced_labels(judge.n)
    g = torch.Generator().manual_seed(seed)
    samples = torch.cat([sample_class_conditioned(model, part, num_steps, guidance, g).cpu()
                         for part in labels.split(batch_size)])
    return judge(samples, labels)


def judge_time_conditioned(model, judge: Judge, num_steps: int, seed: int = 0, batch_size: int = 250) -> Quality:
    """``judge.n`` unconditional samples, scored by FD (no intended digit to check)."""
    from .sampling import sample_time_conditioned

    g = torch.Generator().manual_seed(seed)
    sizes = [min(batch_size, judge.n - k) for k in range(0, judge.n, batch_size)]
    samples = torch.cat([sample_time_conditioned(model, m, num_steps, g).cpu() for m in sizes])
    return judge(samples)
