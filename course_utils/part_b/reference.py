"""Models that ship with the repository, trained longer than a notebook's run, and their recipes.

A notebook trains in minutes on a laptop; these show what the same recipe gives when it is
given time. Each is made by one command (``course_utils/assets/README.md`` records how long it
took and on what):

    python -m course_utils.part_b.reference --data-root DATA   # §2.2's time-conditioned UNet

Part A's offline backend (``part_a.pretrained``) is trained here too, with its own recipe.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from .. import ASSETS
from ..common.checkpoint import load_weights, save_weights
from .unet import ClassConditionalUNet, TimeConditionalUNet

TIME_REFERENCE_PATH = ASSETS / "mnist_flow_time.pt"
# §2.2's recipe (Adam, ExponentialLR to a tenth, batch 64) with the handout's TimeConditionalUNet
# at D = 32, 60 epochs, and the weights' moving average: where notebook 16's D = 16, 10-epoch run
# stays at scribbles (FD ≈ 20-26× the floor), this is what the lesson looks like when it works.
TIME_REFERENCE_RECIPE = dict(flow_D=32, flow_batch=64, flow_lr=5e-3, flow_epochs=60, ema_decay=0.999)


@contextmanager
def _checkpoints_in(folder: str | Path | None):
    """Train in ``folder`` (kept: a killed run resumes) or in a scratch folder (never a notebook's)."""
    old = os.environ.get("COURSE_CKPT_DIR")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["COURSE_CKPT_DIR"] = str(folder or scratch)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("COURSE_CKPT_DIR", None)
            else:
                os.environ["COURSE_CKPT_DIR"] = old


def train_to_file(recipe: dict, out: str | Path, class_conditioned: bool, data_root=None, seed: int = 0,
                  device: str | None = None, ckpt_dir: str | Path | None = None,
                  keep_epochs: tuple = ()) -> Path:
    """Train §2.2 (or §2.5 with ``class_conditioned``) with ``recipe`` (Profile fields, plus
    ``ema_decay``) on the whole training split; save the weights with a note of how they were made."""
    from ..common.data import load_mnist
    from ..common.env import get_device
    from ..common.profiles import get_profile
    from .recipes import train_flow

    device = torch.device(device) if device else get_device()
    fields = {k: v for k, v in recipe.items() if k != "ema_decay"}
    profile = get_profile("full", images_per_epoch=None, keep_epochs=tuple(keep_epochs), **fields)
    images, labels = load_mnist(data_root, train=True)
    start = time.perf_counter()
    with _checkpoints_in(ckpt_dir):
        model, history = train_flow(images, labels if class_conditioned else None, profile, device,
                                    class_conditioned=class_conditioned, seed=seed,
                                    ema_decay=recipe.get("ema_decay"))
    seconds = time.perf_counter() - start
    path = save_weights(out, model.cpu(), info=dict(recipe, seed=seed, num_train=len(images),
                                                    device=str(device), seconds=round(seconds),
                                                    final_loss=float(sum(history.losses[-50:]) / 50)))
    print(f"trained in {seconds:.0f} s on {len(images)} digits ({device}); saved {path}")
    return path


def load_reference(path: str | Path = TIME_REFERENCE_PATH, device: torch.device | str = "cpu"):
    """A committed flow UNet (time- or class-conditioned, its width read from the file)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no committed model at {path}; make it with "
                                "`python -m course_utils.part_b.reference --data-root DATA`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    arch = dict(state["arch"])
    net = {"TimeConditionalUNet": TimeConditionalUNet, "ClassConditionalUNet": ClassConditionalUNet}[arch.pop("class")]
    model = net(**arch)
    load_weights(path, model)
    return model.to(device).eval()


def reference_info(path: str | Path = TIME_REFERENCE_PATH) -> dict:
    """How a committed model was trained (width, epochs, data size, seconds, device...)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {**state.get("info", {}), "D": state["arch"].get("num_hiddens")}


def describe_reference(info: dict) -> str:
    """One line: what the committed model is and how it was made (from its own record)."""
    steps = info["flow_epochs"] * -(-info["num_train"] // info["flow_batch"])
    ema = f", weights averaged (EMA {info['ema_decay']:g})" if info.get("ema_decay") else ""
    return (f"D = {info['D']}, batch {info['flow_batch']}, Adam lr {info['flow_lr']:g} decayed tenfold{ema}, "
            f"{info['flow_epochs']} epochs of {info['num_train']:,} digits ({steps:,} steps), "
            f"trained in {info['seconds'] / 60:.0f} min on {info['device']}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train the committed time-conditioned flow UNet (§2.2, longer).")
    parser.add_argument("--data-root", default=None, help="folder holding MNIST/raw (downloads if not)")
    parser.add_argument("--out", default=str(TIME_REFERENCE_PATH))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--ckpt-dir", default=None, help="keep the run's checkpoints here (a killed run resumes)")
    parser.add_argument("--keep", type=int, nargs="*", default=(), help="epochs whose weights to keep")
    args = parser.parse_args(argv)
    train_to_file(TIME_REFERENCE_RECIPE, args.out, class_conditioned=False, data_root=args.data_root,
                  seed=args.seed, device=args.device, ckpt_dir=args.ckpt_dir, keep_epochs=args.keep)


if __name__ == "__main__":
    main()
