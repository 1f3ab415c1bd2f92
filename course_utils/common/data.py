"""MNIST as tensors: loaded once through torchvision, held on the device, batched by index.

Decoding one PIL image per item in a DataLoader costs more than a small UNet's step on a CPU;
a (N, 1, 28, 28) float tensor and a random permutation per epoch cost nothing.
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import torch
from torchvision import datasets

from .env import in_colab


def default_data_root() -> Path:
    if os.environ.get("COURSE_DATA_ROOT"):
        return Path(os.environ["COURSE_DATA_ROOT"])
    return Path("/content/data") if in_colab() else Path("data")


def load_mnist(root: str | Path | None = None, train: bool = True, download: bool = True,
               device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0, 1] of shape (N, 1, 28, 28) and integer labels (N,), on ``device``."""
    root = Path(root) if root is not None else default_data_root()
    raw = root / "MNIST" / "raw"
    split = "train" if train else "t10k"
    files = [raw / f"{split}-images-idx3-ubyte", raw / f"{split}-labels-idx1-ubyte"]
    try:
        ds = datasets.MNIST(root=str(root), train=train, download=download)
        images, labels = ds.data, ds.targets
        if images.shape[1:] != (28, 28) or len(images) != len(labels) or labels.max() > 9:
            raise ValueError(f"images {tuple(images.shape)} and labels {tuple(labels.shape)} "
                             f"(max {labels.max().item()}) are not MNIST's")
    except Exception as err:
        if all(f.exists() for f in files):   # there, but unreadable: not a download problem
            raise RuntimeError(
                f"the MNIST files {files[0].name} / {files[1].name} under {raw.resolve()} are "
                f"damaged ({type(err).__name__}: {err}). Delete them (and their .gz) and rerun with "
                "download=True, or copy good ones there.") from err
        if not download:  # torchvision's "Dataset not found"
            missing = ", ".join(f.name for f in files if not f.exists())
            raise FileNotFoundError(
                f"MNIST not found under {raw.resolve()} (missing {missing}) and download is "
                "disabled. Pass download=True (needs internet), or point root (or COURSE_DATA_ROOT) "
                "at a folder holding MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.") from err
        raise RuntimeError(f"could not download MNIST into {root.resolve()} ({err}). Download it "
                           "on a machine with internet and copy the MNIST/raw folder there, "
                           "or set COURSE_DATA_ROOT to a folder that has it.") from err
    return images.unsqueeze(1).float().div_(255).to(device), labels.clone().to(device)


def check_training_data(images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
    """Fail before training on what would otherwise train silently into nonsense."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim != 4:
        what = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor (N, C, H, W) in [0, 1], got {what}; "
                         "for uint8 pixels use images.float() / 255 (load_mnist does this)")
    lo, hi = torch.aminmax(images.detach())
    if not (torch.isfinite(lo) and torch.isfinite(hi)) or lo < 0 or hi > 1:
        hint = ""
        if lo >= 0 and hi > 1.5:
            hint = " (0..255 pixels? divide them by 255: x / 255)"
        elif -1.01 <= lo < 0 and hi <= 1.01:
            hint = " (images in [-1, 1], Part A's convention? convert them with (x + 1) / 2)"
        raise ValueError(f"images must lie in [0, 1]; these range over [{lo.item():g}, {hi.item():g}]"
                         f"{hint}. The losses and samplers assume [0, 1], as load_mnist returns.")
    if labels is None:
        return
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}; "
                         "convert them with labels.long()")
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), one per image; got "
                         f"{tuple(labels.shape)}")


def iterate_batches(num_items: int, batch_size: int, generator: torch.Generator,
                    limit: int | None = None):
    """Index batches of one shuffled epoch; ``limit`` caps the images seen in the epoch."""
    order = torch.randperm(num_items, generator=generator)
    if limit is not None:
        order = order[:limit]
    yield from order.split(batch_size)


def average_image(images: torch.Tensor) -> torch.Tensor:
    """The pixel-wise mean of a set of images, keeping a batch dimension of 1."""
    return images.mean(dim=0, keepdim=True)


def _write_idx(path: Path, array: torch.Tensor) -> None:
    """Write uint8 data in the IDX format that torchvision's MNIST reads."""
    dims = tuple(array.shape)
    header = struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    with gzip.open(str(path) + ".gz", "wb") as f:
        f.write(header + array.contiguous().numpy().tobytes())
    path.write_bytes(header + array.contiguous().numpy().tobytes())


def render_digits(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Digit glyphs drawn with PIL's built-in font, jittered: MNIST-like, class-structured.

    Gives tests and CI a dataset with the real shapes and ten distinguishable classes
    without any download.
    """
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=20)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        font = ImageFont.load_default()
    out = torch.zeros(len(labels), 28, 28, dtype=torch.uint8)
    shifts = torch.randint(-2, 3, (len(labels), 2), generator=generator)
    for i, label in enumerate(labels.tolist()):
        img = Image.new("L", (28, 28))
        ImageDraw.Draw(img).text((14 + int(shifts[i, 0]), 14 + int(shifts[i, 1])), str(label),
                                 fill=255, font=font, anchor="mm")
        out[i] = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(28, 28)
    return out


def make_fake_mnist(root: str | Path, num_train: int = 512, num_test: int = 128,
                    seed: int = 0) -> Path:
    """Write a small synthetic MNIST under ``root``/MNIST/raw; returns ``root``."""
    root = Path(root)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    for split, n in (("train", num_train), ("t10k", num_test)):
        labels = torch.arange(n) % 10
        labels = labels[torch.randperm(n, generator=g)].to(torch.uint8)
        _write_idx(raw / f"{split}-images-idx3-ubyte", render_digits(labels, g))
        _write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return root
