"""Part A on MNIST: digit prompts, digit images and the examples each section uses.

The MNIST backend's "text" is a digit label: "a 3" (or "3", "three") is the one-hot vector of
3, and "" is all zeros, the unconditional input Part B trained with class dropout. Images are
(1, 1, 28, 28) in [-1, 1] (black background at -1), like IF's but grey and smaller.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from .. import ASSETS

EXAMPLES_PATH = ASSETS / "mnist_examples.pt"
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEST_DIGIT = 7   # the MNIST backend's "test image" is a held-out 7


def parse_digit(prompt: str) -> int | None:
    """"a 3", "3", "three", "the digit 3" → 3; "" → None (no digit); anything else is an error."""
    text = prompt.strip().lower()
    if text == "":
        return None
    text = re.sub(r"^(a|an|the digit|digit|the number|number)\s+", "", text)
    if text.isdigit() and len(text) == 1:
        return int(text)
    if text in WORDS:
        return WORDS.index(text)
    raise KeyError(f'the MNIST backend understands digit prompts only: "a 0" ... "a 9" (or "3", '
                   f'"three"), and "" for no digit; got {prompt!r}. For text prompts use BACKEND="deepfloyd"')


class DigitPrompts:
    """prompt → (1, 10) condition for the class-conditioned UNet: one-hot, or zeros for ""."""

    def __getitem__(self, prompt: str) -> torch.Tensor:
        c = torch.zeros(1, 10)
        digit = parse_digit(prompt)
        if digit is not None:
            c[0, digit] = 1
        return c

    def __len__(self):
        return 11


@lru_cache(maxsize=1)
def _examples() -> tuple[torch.Tensor, torch.Tensor]:
    state = torch.load(EXAMPLES_PATH, weights_only=True)
    return state["images"].float() / 127.5 - 1, state["labels"]


def example_digits(digit: int, count: int = 10) -> torch.Tensor:
    """Held-out MNIST images of ``digit`` that ship with the package, (count, 1, 28, 28) in [-1, 1]."""
    images, labels = _examples()
    found = images[labels == digit]
    if count > len(found):
        raise ValueError(f"only {len(found)} examples of {digit} ship with the package")
    return found[:count].clone()


def lesson_digits(per_class: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels): the first ``per_class`` shipped held-out digits of each class, the inputs
    every Part A lesson is measured on (100 by default), class-major."""
    images, labels = _examples()
    keep = torch.cat([torch.nonzero(labels == d).flatten()[:per_class] for d in range(10)])
    return images[keep].clone(), labels[keep].clone()


def reference_digits() -> torch.Tensor:
    """The shipped held-out digits that are never a lesson input (the 11th to 30th of each
    class): the real side of a lesson's Fréchet distance and of its real-vs-real floor."""
    images, labels = _examples()
    keep = torch.cat([torch.nonzero(labels == d).flatten()[10:] for d in range(10)])
    return images[keep].clone()


def typed_digit(digit: int) -> torch.Tensor:
    """A digit in PIL's default font: clean, but not handwriting — off the MNIST manifold."""
    from ..common.data import render_digits

    glyph = render_digits(torch.tensor([digit]), torch.Generator().manual_seed(0))
    return glyph[:, None].float() / 127.5 - 1


# Strokes in a 0..1 box, as one would draw them with a mouse: polylines per digit.
_STROKES = {
    2: [[(0.25, 0.3), (0.35, 0.18), (0.55, 0.15), (0.7, 0.25), (0.7, 0.42), (0.25, 0.82), (0.78, 0.82)]],
    4: [[(0.6, 0.15), (0.22, 0.6), (0.8, 0.6)], [(0.62, 0.35), (0.62, 0.88)]],
    5: [[(0.72, 0.15), (0.32, 0.15), (0.28, 0.45), (0.55, 0.42), (0.72, 0.55), (0.68, 0.78),
         (0.45, 0.85), (0.25, 0.78)]],
    7: [[(0.22, 0.18), (0.78, 0.18), (0.42, 0.88)]],
}


def sketch_digit(digit: int, width: float = 0.1) -> torch.Tensor:
    """A mouse-drawn-looking digit (straight strokes of even width), (1, 1, 28, 28) in [-1, 1]."""
    if digit not in _STROKES:
        raise ValueError(f"sketches exist for {sorted(_STROKES)}; draw others in Colab (DRAW = True)")
    size = 112
    img = Image.new("L", (size, size))
    d = ImageDraw.Draw(img)
    for stroke in _STROKES[digit]:
        d.line([(x * size, y * size) for x, y in stroke], fill=255, width=int(width * size), joint="curve")
    return pil_to_digit(img, invert=False)


def pil_to_digit(img: Image.Image, invert: bool | None = None) -> torch.Tensor:
    """Any picture as an MNIST-style digit: grey, 28×28, white on black (inverted when the
    background is light, as on a drawing canvas), in [-1, 1]."""
    img = img.convert("L")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side))
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).float().view(1, 1, side, side) / 255
    x = F.interpolate(x, size=(28, 28), mode="area")
    if invert if invert is not None else x.mean() > 0.5:
        x = 1 - x
    return x * 2 - 1


def digit_image(name: str) -> torch.Tensor:
    """"test image" (a held-out 7), a digit prompt ("a 2": a held-out 2), "typed 4", "drawn 4",
    or a path/URL of any picture (made grey, 28×28, white on black)."""
    names = ('"test image", a digit prompt ("a 0" ... "a 9"), "typed 4", "drawn 4", or the path '
             'or URL of a picture')
    if name == "test image":
        return example_digits(TEST_DIGIT, 1)
    for prefix, make in (("typed ", typed_digit), ("drawn ", sketch_digit)):
        if name.startswith(prefix):
            digit = name[len(prefix):].strip()
            if not (digit.isdigit() and len(digit) == 1):
                raise ValueError(f"{name!r}: {prefix.strip()} digits are 0..9, e.g. {prefix}4")
            return make(int(digit))
    try:
        return example_digits(parse_digit(name), 1)
    except (KeyError, TypeError):
        pass
    looks_like_a_file = name.startswith(("http://", "https://")) or "/" in name or Path(name).suffix
    if not looks_like_a_file and not Path(name).expanduser().exists():
        raise ValueError(f"{name!r} is neither a digit nor a picture; the MNIST backend takes {names}")
    from .images import _open

    return pil_to_digit(_open(name))


def drawings(use_canvas: bool = True, count: int = 2) -> dict[str, torch.Tensor]:
    """§1.7.1 on MNIST: digits drawn in a Colab canvas, or two stroke sketches elsewhere."""
    from ..common.env import in_colab
    from .drawing import draw_pil

    if use_canvas and in_colab():
        return {f"drawing {k + 1}": pil_to_digit(draw_pil()) for k in range(count)}
    return {"drawn 4": sketch_digit(4), "drawn 2": sketch_digit(2)}


@torch.inference_mode()
def generate(unet, cond: torch.Tensor, num_steps: int, generator: torch.Generator, n: int = 1,
             guidance_scale: float = 5.0) -> torch.Tensor:
    """Part B's own sampler (Euler on the flow, CFG): the MNIST counterpart of ``IFPipeline``."""
    from ..part_b.sampling import cfg_velocity, euler_integrate

    device = next(unet.parameters()).device
    c = cond.to(device).expand(n, -1)
    x0 = torch.randn((n, 1, 28, 28), generator=generator).to(device)
    x1 = euler_integrate(cfg_velocity(unet, c, guidance_scale), x0, num_steps)
    return (x1 * 2 - 1).clamp(-1, 1).cpu()
