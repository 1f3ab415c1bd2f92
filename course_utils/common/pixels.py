"""Pixel ranges, checked where images enter the algorithms.

Part A works on images in [-1, 1] (IF's convention; MNIST digits with a black background at -1),
Part B on images in [0, 1] (as ``load_mnist`` returns them). An image in the other range, or in
[0, 255], runs without any error and gives quietly wrong pictures, so each entry point checks:

- ``check_signed_range`` (Part A, a *clean* image: ``forward``, SDEdit, inpainting): values beyond
  ±1.5 (the range IF's own thresholding allows) are an error naming ``x / 127.5 - 1`` for [0, 255]
  pixels. A [0, 1] image is caught where it can be told apart from a [-1, 1] one: a batch of
  one-channel (MNIST) images with no negative value and mostly 0, where the background should be
  -1 (fix: ``x * 2 - 1``). A colour photo in [0, 1] cannot be told from a bright photo in
  [-1, 1] and is not caught: it comes out washed out (grey where it should be black).
- ``check_noisy_range`` (Part A, a noisy x_t or pure noise): only what noise cannot reach (beyond
  ±20: pixels in [0, 255]); standard-normal noise and noised images always pass.
- Part B's ``common.data.check_training_data`` ([0, 1], strict): names ``x / 255`` and
  ``(x + 1) / 2``.
"""
from __future__ import annotations

import math

import torch

SIGNED_LIMIT = 1.5     # IF's dynamic thresholding keeps x̂_0 within ±1.5 (sample_max_value)
NOISY_LIMIT = 20.0     # √ᾱ x_0 + √(1 − ᾱ) ε never gets near this for x_0 in [-1, 1]


def _range(images: torch.Tensor, name: str) -> tuple[float, float]:
    lo, hi = (v.item() for v in torch.aminmax(images.detach().float()))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} holds NaN or inf (values in [{lo:g}, {hi:g}]): check how it was made")
    return lo, hi


def check_signed_range(images: torch.Tensor, name: str = "image") -> torch.Tensor:
    """A clean Part A image: in [-1, 1] (with IF's ±1.5 slack), and not a [0, 1] MNIST batch."""
    if images.numel() == 0:
        return images
    lo, hi = _range(images, name)
    got = f"got values in [{lo:.3g}, {hi:.3g}]"
    if hi > SIGNED_LIMIT and lo >= -0.01:
        raise ValueError(f"{name} must be in [-1, 1] but looks like pixels in [0, 255] ({got}): "
                         "convert with x / 127.5 - 1 (backend.image(...) and images.load_image "
                         "return [-1, 1] already)")
    if hi > SIGNED_LIMIT or lo < -SIGNED_LIMIT:
        raise ValueError(f"{name} must be a clean image in [-1, 1], {got}. From [0, 255] pixels "
                         "convert with x / 127.5 - 1, from [0, 1] with x * 2 - 1; a noisy image "
                         "x_t goes to the denoising functions, not here")
    if images.ndim == 4 and images.shape[1] == 1 and lo >= 0 and hi > 0.5 \
            and (images.detach() <= 0.05).float().mean().item() > 0.5:
        raise ValueError(f"{name} looks like MNIST digits in [0, 1] ({got}, mostly 0 and nothing "
                         "negative), but Part A works in [-1, 1], where the background is -1: "
                         "convert with x * 2 - 1 (Part B's load_mnist gives [0, 1]; "
                         "digits.example_digits gives [-1, 1])")
    return images


def check_noisy_range(images: torch.Tensor, name: str = "x_t") -> torch.Tensor:
    """A noisy Part A image (or pure noise): catches only [0, 255] pixels, never noise."""
    if images.numel() == 0:
        return images
    lo, hi = _range(images, name)
    if max(abs(lo), abs(hi)) > NOISY_LIMIT:
        raise ValueError(f"{name} holds values in [{lo:.3g}, {hi:.3g}], far beyond a noised image "
                         "in [-1, 1] (a few units at most): pixels in [0, 255]? Part A works in "
                         "[-1, 1]: convert the clean image with x / 127.5 - 1 before noising it")
    return images
