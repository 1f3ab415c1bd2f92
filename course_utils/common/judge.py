"""A digit judge that can say "this is not a digit".

The plain ``DigitClassifier`` must pick one of ten digits for any image, and it does so with high
confidence on shapes no person would call a digit: a mirrored 3 (ε) is read as a 5, a 7 upside
down (a π) as a 7. A success rate measured with it on generated images (anagrams, hybrids, the
lessons) then says little. The judge here has an 11th class, ``REJECT`` ("not a digit"),
trained on off-manifold shapes that a generator can produce, all made from training digits
(``off_manifold``):

- ``mirror``: mirrored left–right, except 0, 1, 8 (they stay digits);
- ``upside_down``: flipped top–bottom, except 0, 1, 3, 8;
- ``rot90``: rotated by ±90°, except 0, 1, 8;
- ``rot180``: rotated by 180°, except 0, 1, 8 and 6 / 9 (which become each other);
- ``overlay``: two digits of different classes superposed (pixelwise max);
- ``blob``: a digit blurred to a blob (Gaussian σ 2.5–4, rescaled to full contrast).

After training, the reject logit is lowered by a margin calibrated on the training digits
(``calibrate``: at most 1% of them rejected). ``predict`` (the classifier's, unchanged) returns
``REJECT`` (10) for such images, so anywhere a
prediction is compared with an intended digit, a rejected image counts as not read right.
The 128 features (and so the Fréchet / kernel distances) stay those of the plain classifier:
``metrics`` does not use this judge.

Trained by ``python -m course_utils.common.judge --data-root DATA`` (the exact command that made
the committed weights is in ``course_utils/assets/README.md``); ``benchmarks/judge.py`` prints
its validation numbers per shape kind on held-out digits.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import ASSETS
from .classifier import CLASSIFIER_PATH, DigitClassifier, predict, random_affine
from .progress import tqdm

JUDGE_PATH = ASSETS / "digit_judge.pt"
REJECT = 10          # the judge's 11th class: "not a digit"

# digits that stay a digit under each transform (excluded from that kind of reject)
KINDS = {
    "mirror": {0, 1, 8},
    "upside_down": {0, 1, 3, 8},
    "rot90": {0, 1, 8},
    "rot180": {0, 1, 6, 8, 9},
    "overlay": set(),
    "blob": set(),
}


class DigitJudge(DigitClassifier):
    """The ``DigitClassifier`` body with 11 outputs: digits 0–9 and ``REJECT``.

    ``reject_offset`` (a saved buffer, set by ``calibrate``) is subtracted from the reject logit:
    the judge says "not a digit" only when that is clearly likelier than any digit.
    """

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(self.num_features, 11)
        self.register_buffer("reject_offset", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.features(x))
        return torch.cat([logits[:, :REJECT], logits[:, REJECT:] - self.reject_offset], 1)


@torch.inference_mode()
def calibrate(judge: DigitJudge, images: torch.Tensor, labels: torch.Tensor, max_rejected: float = 0.01,
              step: float = 0.25, largest: float = 4.0) -> float:
    """Set the smallest ``reject_offset`` (multiples of ``step``) at which at most ``max_rejected``
    of ``images`` (real digits: the training set, never held-out ones) are rejected; returns it."""
    judge.eval()
    judge.reject_offset.zero_()
    logits = torch.cat([judge(b) for b in images.split(500)])
    margin = logits[:, REJECT] - logits[:, :REJECT].max(1).values   # > offset: rejected
    offset = 0.0
    while (margin > offset).float().mean().item() > max_rejected and offset < largest:
        offset += step
    judge.reject_offset.fill_(offset)
    return offset


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    from torchvision.transforms.functional import gaussian_blur

    k = 2 * math.ceil(3 * sigma) + 1
    return gaussian_blur(x, [k, k], [sigma, sigma])


def transform(kind: str, x: torch.Tensor, partner: torch.Tensor | None = None,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Images (B, 1, 28, 28) in [0, 1] turned into shapes of ``kind`` (``partner``: the second
    digit of an overlay, same shape as ``x``)."""
    if kind == "mirror":
        return x.flip(-1)
    if kind == "upside_down":
        return x.flip(-2)
    if kind == "rot90":
        sign = 1 if generator is None else int(torch.randint(2, (), generator=generator)) * 2 - 1
        return torch.rot90(x, sign, dims=(-2, -1))
    if kind == "rot180":
        return torch.rot90(x, 2, dims=(-2, -1))
    if kind == "overlay":
        if partner is None:
            raise ValueError("an overlay needs a partner digit per image")
        return torch.maximum(x, partner)
    if kind == "blob":
        sigma = 2.5 + 1.5 * (0.5 if generator is None else torch.rand((), generator=generator).item())
        b = _blur(x, sigma)
        return b / b.amax(dim=(-2, -1), keepdim=True).clamp(min=1e-6)
    raise ValueError(f"unknown kind {kind!r}; one of {sorted(KINDS)}")


def off_manifold(images: torch.Tensor, labels: torch.Tensor, kind: str, n: int,
                 generator: torch.Generator) -> torch.Tensor:
    """``n`` shapes of ``kind`` made from ``images`` (digits whose class stays a digit under the
    transform are never used)."""
    allowed = torch.tensor([int(y) not in KINDS[kind] for y in labels.tolist()])
    pool = allowed.nonzero().squeeze(1)
    if len(pool) == 0:
        raise ValueError(f"no digit of a class usable for {kind!r}")
    idx = pool[torch.randint(len(pool), (n,), generator=generator)]
    partner = None
    if kind == "overlay":   # a partner of another class for each image
        j = torch.randint(len(images), (n,), generator=generator)
        same = labels[j] == labels[idx]
        for _ in range(20):
            if not same.any():
                break
            j[same] = torch.randint(len(images), (int(same.sum()),), generator=generator)
            same = labels[j] == labels[idx]
        keep = ~same
        idx, j = idx[keep], j[keep]
        partner = images[j]
    return transform(kind, images[idx], partner, generator)


def mixed_rejects(images, labels, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` off-manifold shapes, every kind equally often (a kind's count rounded down, the rest
    random kinds)."""
    kinds = list(KINDS)
    counts = torch.bincount(torch.randint(len(kinds), (n,), generator=generator), minlength=len(kinds))
    parts = [off_manifold(images, labels, k, int(c), generator) for k, c in zip(kinds, counts) if c > 0]
    return torch.cat(parts)


def train_judge(images: torch.Tensor, labels: torch.Tensor, epochs: int = 10, batch_size: int = 128,
                reject_share: float = 0.5, lr: float = 2e-3, seed: int = 0, init: str | Path | None = None,
                progress: bool = True) -> DigitJudge:
    """Adam with a one-cycle schedule on randomly warped digits plus, per batch, ``reject_share`` ×
    batch off-manifold shapes labelled ``REJECT`` (warped too). ``init``: a ``DigitClassifier``
    file to start the body and the ten digit outputs from."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = DigitJudge()
    if init is not None:
        from .classifier import load_classifier

        plain = load_classifier(init)
        model.body.load_state_dict(plain.body.state_dict())
        with torch.no_grad():
            model.head.weight[:10] = plain.head.weight
            model.head.bias[:10] = plain.head.bias
    model = model.to(images.device)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=epochs * steps_per_epoch)
    n_reject = max(1, round(batch_size * reject_share))
    bar = tqdm(total=epochs * steps_per_epoch, desc="digit judge", disable=not progress)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(images), generator=g).split(batch_size):
            rejects = mixed_rejects(images, labels, n_reject, g)
            x = random_affine(torch.cat([images[idx], rejects]), g)
            y = torch.cat([labels[idx], torch.full((len(rejects),), REJECT, dtype=labels.dtype,
                                                  device=labels.device)])
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return model.eval()


def validate(judge: nn.Module, images: torch.Tensor, labels: torch.Tensor, per_kind: int = 1000,
             seed: int = 1) -> dict:
    """On held-out digits: ``real_right`` (share read as their own digit; a rejection is wrong),
    ``real_rejected``, and per kind the share of its shapes ``accepted`` as some digit."""
    g = torch.Generator().manual_seed(seed)
    read = predict(judge, images)
    out = {"real_right": (read == labels).float().mean().item(),
           "real_rejected": (read == REJECT).float().mean().item(), "accepted": {}}
    for kind in KINDS:
        shapes = off_manifold(images, labels, kind, per_kind, g)
        out["accepted"][kind] = (predict(judge, shapes) != REJECT).float().mean().item()
    acc = out["accepted"]
    out["accepted_all"] = sum(acc.values()) / len(acc)
    return out


def format_validation(v: dict, n_real: int) -> str:
    lines = [f"held-out real digits read right: {v['real_right']:.1%} of {n_real} "
             f"(rejected as not a digit: {v['real_rejected']:.1%})",
             "off-manifold shapes accepted as a digit:"]
    lines += [f"  {kind:12s} {share:6.1%}" for kind, share in v["accepted"].items()]
    lines.append(f"  {'all kinds':12s} {v['accepted_all']:6.1%}")
    return "\n".join(lines)


def validation_summary(path: str | Path = JUDGE_PATH) -> str:
    """One line: the validation numbers stored with a judge when it was made (``main``)."""
    info = torch.load(path, map_location="cpu", weights_only=True)["info"]
    v = info["validation"]
    kinds = ", ".join(f"{kind} {share:.0%}" for kind, share in v["accepted"].items())
    return (f"digit judge: {v['real_right']:.1%} of {info['num_held_out']:,} held-out real digits read right; "
            f"shapes that are no digit accepted as one: {v['accepted_all']:.1%} ({kinds})")


def load_judge(path: str | Path = JUDGE_PATH, device: torch.device | str = "cpu") -> DigitJudge:
    from .checkpoint import load_weights

    if not Path(path).exists():
        raise FileNotFoundError(f"no digit judge at {path}; train one with "
                                "`python -m course_utils.common.judge --data-root DATA --out PATH`")
    model = DigitJudge()
    load_weights(path, model)
    return model.to(device).eval()


def main(argv=None):
    from .checkpoint import save_weights
    from .data import load_mnist

    parser = argparse.ArgumentParser(description="Train the digit judge (ten digits + 'not a digit').")
    parser.add_argument("--data-root", default=None, help="folder with MNIST/raw (downloads if missing)")
    parser.add_argument("--out", default=str(JUDGE_PATH))
    parser.add_argument("--init", default=str(CLASSIFIER_PATH),
                        help="DigitClassifier weights to start from ('' for none)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    x, y = load_mnist(args.data_root, train=True)
    x_test, y_test = load_mnist(args.data_root, train=False)
    start = time.time()
    model = train_judge(x, y, epochs=args.epochs, seed=args.seed, reject_offset=offset, init=args.init or None)
    offset = calibrate(model, x, y)
    seconds = time.time() - start
    v = validate(model, x_test, y_test)
    path = save_weights(args.out, model, info=dict(validation=v, num_train=len(x), num_held_out=len(x_test),
                                                   epochs=args.epochs, seed=args.seed, reject_offset=offset, init=Path(args.init).name
                                                   if args.init else None, seconds=round(seconds)))
    print(format_validation(v, len(x_test)))
    print(f"trained in {seconds:.0f} s on {len(x)} digits (reject offset {offset}: ≤ 1% of them "
          f"rejected); saved {path}")


if __name__ == "__main__":
    main()
