"""A small MNIST digit classifier: the judge of sample quality (``metrics``) and of Part A's
MNIST illusions. Its 128 pooled features are the space the Fréchet distance is measured in.

Trained by ``python -m course_utils.common.classifier`` (the exact command that made the committed
weights is in ``course_utils/assets/README.md``). Inputs are (B, 1, 28, 28) images in [0, 1],
the range of Part B; anything outside is clamped, as a sample's overshoot would be on screen.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import ASSETS
from .progress import tqdm

CLASSIFIER_PATH = ASSETS / "digit_classifier.pt"
# Trained on low-passed digits: reads what survives of a digit seen from afar (hybrid images).
FAR_CLASSIFIER_PATH = ASSETS / "digit_classifier_far.pt"
FAR_SIGMAS = (1.5, 1.5)   # the MNIST hybrids low-pass with σ = 1.5 (kernel 11)


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class DigitClassifier(nn.Module):
    """conv 32, 32, pool, 64, 64, pool, 128, global average pool → 128 features → 10 logits.

    Global pooling instead of a wide fully connected layer keeps it at 139k parameters
    (0.6 MB) and makes the features insensitive to a pixel or two of shift.
    """

    num_features = 128

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(_conv(1, 32), _conv(32, 32), nn.MaxPool2d(2),
                                  _conv(32, 64), _conv(64, 64), nn.MaxPool2d(2),
                                  _conv(64, self.num_features), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(self.num_features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"the digit classifier takes (B, 1, 28, 28) images in [0, 1], got {shape}")
        # centred inputs train faster; 0.5 is the middle of [0, 1], not a dataset statistic
        return self.body(x.clamp(0, 1) - 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def random_affine(x: torch.Tensor, generator: torch.Generator, degrees: float = 12.0,
                  translate: float = 2.5, scale: tuple = (0.9, 1.1)) -> torch.Tensor:
    """A different small rotation, shift and zoom per image: 9,000 digits behave like many more.

    torchvision's RandomAffine draws one transform per call; one per image needs a grid per image.
    """
    n = x.shape[0]
    u = torch.rand(n, 4, generator=generator)
    angle = (u[:, 0] * 2 - 1) * math.radians(degrees)
    s = scale[0] + u[:, 1] * (scale[1] - scale[0])
    shift = (u[:, 2:] * 2 - 1) * translate * 2 / 28   # pixels → grid units ([-1, 1] spans 28 px)
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.inference_mode()
def predict(classifier: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Predicted digit of each image, (N,)."""
    classifier.eval()
    device = next(classifier.parameters()).device
    return torch.cat([classifier(b.to(device)).argmax(1).cpu() for b in images.split(batch_size)])


def accuracy(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``images`` the classifier reads as ``labels``."""
    return (predict(classifier, images) == torch.as_tensor(labels).cpu()).float().mean().item()


def random_blur(x: torch.Tensor, generator: torch.Generator, sigmas: tuple[float, float]) -> torch.Tensor:
    """The whole batch low-passed with one σ drawn uniformly from ``sigmas``: a digit seen from
    afar (the far-view judge of hybrid images is trained on these)."""
    from torchvision.transforms.functional import gaussian_blur

    sigma = sigmas[0] + (sigmas[1] - sigmas[0]) * torch.rand((), generator=generator).item()
    k = 2 * math.ceil(3 * sigma) + 1
    return gaussian_blur(x, [k, k], [sigma, sigma])


def train_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int = 12, batch_size: int = 128,
                     lr: float = 3e-3, seed: int = 0, progress: bool = True,
                     blur_sigmas: tuple[float, float] | None = None) -> DigitClassifier:
    """Adam with a one-cycle schedule on randomly warped digits (low-passed too, with a random σ
    in ``blur_sigmas``, for the far-view judge); returns the model in eval mode."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = DigitClassifier().to(images.device)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * steps_per_epoch)
    bar = tqdm(total=epochs * steps_per_epoch, desc="digit classifier", disable=not progress)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(images), generator=g).split(batch_size):
            x = random_affine(images[idx], g)
            if blur_sigmas is not None:
                x = random_blur(x, g, blur_sigmas)
            loss = F.cross_entropy(model(x), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return model.eval()


def save_classifier(model: DigitClassifier, path: str | Path = CLASSIFIER_PATH, **info) -> Path:
    """Weights (atomic write, architecture tag) plus ``info``: how it was trained and how well."""
    from .checkpoint import save_weights

    return save_weights(path, model, info=info)


def load_classifier(path: str | Path = CLASSIFIER_PATH, device: torch.device | str = "cpu") -> DigitClassifier:
    """The committed classifier (or one you trained); a clear error when the file is missing."""
    from .checkpoint import load_weights

    if not Path(path).exists():
        raise FileNotFoundError(f"no digit classifier at {path}; train one with "
                                "`python -m course_utils.common.classifier --data-root DATA --out PATH`")
    model = DigitClassifier()
    load_weights(path, model)
    return model.to(device).eval()


def main(argv=None):
    from .data import load_mnist

    parser = argparse.ArgumentParser(description="Train the digit classifier the quality metrics use.")
    parser.add_argument("--data-root", default=None, help="folder with MNIST/raw (downloads if missing)")
    parser.add_argument("--out", default=str(CLASSIFIER_PATH))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--far", action="store_true",
                        help=f"train the far-view judge: digits low-passed with σ in {FAR_SIGMAS}")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    x, y = load_mnist(args.data_root, train=True)
    x_test, y_test = load_mnist(args.data_root, train=False)
    blur = FAR_SIGMAS if args.far else None
    model = train_classifier(x, y, epochs=args.epochs, seed=args.seed, blur_sigmas=blur)
    if blur is not None:   # the far judge is judged on what it will see: low-passed digits
        x_test = random_blur(x_test, torch.Generator().manual_seed(args.seed), blur)
    acc = accuracy(model, x_test, y_test)
    path = save_classifier(model, args.out, held_out_accuracy=acc, num_train=len(x),
                           num_held_out=len(x_test), epochs=args.epochs, seed=args.seed,
                           blur_sigmas=blur)
    print(f"held-out accuracy {acc:.4f} on {len(x_test)} digits (trained on {len(x)}); saved {path}")


if __name__ == "__main__":
    main()
