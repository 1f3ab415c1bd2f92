"""The MNIST model that ships with the repository: Part A's offline backend.

It is Part B's class-conditioned flow-matching UNet, trained by ``recipes.train_flow`` with the
``cpu`` profile, so Part A has pictures that mean something right after cloning, with no GPU and
no download. ``course_utils/assets/README.md`` records the command that made the committed file;
retraining is that one command:

    python -m course_utils.pretrained --data-root DATA   # DATA holds MNIST/raw (downloads if not)
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from .checkpoint import load_weights, save_weights
from .unet import ClassConditionalUNet

ASSETS = Path(__file__).resolve().parent / "assets"
MNIST_FLOW_PATH = ASSETS / "mnist_flow_class.pt"


def load_mnist_flow(path: str | Path = MNIST_FLOW_PATH, device: torch.device | str = "cpu") -> ClassConditionalUNet:
    """The committed class-conditioned flow UNet (its width is read from the file)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no MNIST flow model at {path}; make one with "
                                "`python -m course_utils.pretrained --data-root DATA`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = ClassConditionalUNet(**{k: v for k, v in state["arch"].items() if k != "class"})
    load_weights(path, model)
    return model.to(device).eval()


def train_mnist_flow(data_root=None, out: str | Path = MNIST_FLOW_PATH, profile_name: str = "cpu",
                     seed: int = 0) -> Path:
    """Train with ``profile_name``'s class-conditioned recipe in a scratch folder; save the weights."""
    import os

    from .data import load_mnist
    from .profiles import get_profile
    from .recipes import train_flow

    profile = get_profile(profile_name)
    images, labels = load_mnist(data_root, train=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["COURSE_CKPT_DIR"] = scratch   # a fresh run, not a resumed notebook checkpoint
        model, history = train_flow(images, labels, profile, "cpu", class_conditioned=True, seed=seed)
    seconds = time.perf_counter() - start
    path = save_weights(out, model, info=dict(profile=profile.name, seed=seed, num_train=len(images),
                                              epochs=profile.flow_epochs, seconds=round(seconds),
                                              final_loss=float(sum(history.losses[-50:]) / 50)))
    print(f"trained in {seconds:.0f} s on {len(images)} digits; saved {path}")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the MNIST model Part A's offline backend uses.")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default=str(MNIST_FLOW_PATH))
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train_mnist_flow(args.data_root, args.out, args.profile, args.seed)


if __name__ == "__main__":
    main()
