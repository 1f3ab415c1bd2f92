"""The MNIST model that ships with the repository: Part A's offline backend.

It is Part B's class-conditioned flow-matching UNet (the §2.5 recipe, ``recipes.train_flow``),
trained wider and longer than a notebook's run so that every Part A lesson works on it: Part A
has pictures that mean something right after cloning, with no GPU and no download.
``course_utils/assets/README.md`` records the command that made the committed file; retraining
is that one command:

    python -m course_utils.part_a.pretrained --data-root DATA   # DATA holds MNIST/raw (downloads if not)
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .. import ASSETS
from ..part_b.reference import load_reference, reference_info, train_to_file
from ..part_b.unet import ClassConditionalUNet

MNIST_FLOW_PATH = ASSETS / "mnist_flow_class.pt"
# The committed backend's recipe: §2.5 with D = 32 and 120 epochs (see assets/README.md for what
# it measures against the notebooks' D = 16, 10-epoch model).
BACKEND_RECIPE = dict(flow_D=32, flow_batch=64, flow_lr=5e-3, flow_epochs=120)


def load_mnist_flow(path: str | Path = MNIST_FLOW_PATH, device: torch.device | str = "cpu") -> ClassConditionalUNet:
    """The committed class-conditioned flow UNet (its width is read from the file)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no MNIST flow model at {path}; make one with "
                                "`python -m course_utils.part_a.pretrained --data-root DATA`")
    return load_reference(path, device)


def mnist_flow_info(path: str | Path = MNIST_FLOW_PATH) -> dict:
    """How the committed model was trained (width, epochs, data size, seconds...)."""
    return reference_info(path)


def train_mnist_flow(data_root=None, out: str | Path = MNIST_FLOW_PATH, seed: int = 0,
                     device: str | None = None, **recipe) -> Path:
    """Train the §2.5 recipe with ``BACKEND_RECIPE`` (overridden by ``recipe``) on the whole
    training split, in a scratch folder; save the weights with a note of how they were made."""
    return train_to_file({**BACKEND_RECIPE, **recipe}, out, class_conditioned=True, data_root=data_root,
                         seed=seed, device=device)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the MNIST model Part A's offline backend uses.")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default=str(MNIST_FLOW_PATH))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--D", type=int, default=BACKEND_RECIPE["flow_D"])
    parser.add_argument("--epochs", type=int, default=BACKEND_RECIPE["flow_epochs"])
    parser.add_argument("--lr", type=float, default=BACKEND_RECIPE["flow_lr"])
    parser.add_argument("--batch", type=int, default=BACKEND_RECIPE["flow_batch"])
    args = parser.parse_args(argv)
    train_mnist_flow(args.data_root, args.out, args.seed, args.device, flow_D=args.D,
                     flow_epochs=args.epochs, flow_lr=args.lr, flow_batch=args.batch)


if __name__ == "__main__":
    main()
