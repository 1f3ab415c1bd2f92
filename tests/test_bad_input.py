"""Bad input never passes silently: each case gets an error that names the value and the fix."""
import re

import pytest
import torch
from torch import nn

from course_utils.common.data import load_mnist, make_fake_mnist
from course_utils.part_a.diffusion import forward
from course_utils.part_a.digits import digit_image
from course_utils.part_a.edits import box_mask, inpaint
from course_utils.part_a.noise_models import OracleNoiseModel
from course_utils.part_a.schedule import strided_timesteps
from course_utils.part_b.train import fit
from course_utils.part_b.unet import ClassConditionalUNet, TimeConditionalUNet, one_hot

IM = torch.zeros(2, 3, 16, 16)
TS = strided_timesteps(stride=330)
MASK = box_mask(4, 4, 8, 8, size=16)


def run_inpaint(mask):
    cond = torch.zeros(1, 77, 4096)
    return inpaint(OracleNoiseModel(IM), IM, mask, cond, cond, timesteps=TS, progress=False)


def run_fit(images, labels=None):
    model = nn.Conv2d(1, 1, 3, padding=1)
    objective = lambda m, x, y, g: m(x).pow(2).mean()   # noqa: E731
    return fit(model, objective, images, labels, epochs=1, batch_size=4,
               optimizer=torch.optim.SGD(model.parameters(), lr=0.0))


CASES = {
    # item 6: Part A edits and the forward process
    "inpaint mask of 0..255": (lambda: run_inpaint(MASK * 255), r"\[0, 1\].*divide a 0\.\.255 mask by 255"),
    "inpaint mask of another batch": (lambda: run_inpaint(MASK.expand(3, 1, 16, 16)),
                                      r"\(3, 1, 16, 16\).*one mask \(batch 1\).*one per image \(batch 2\)"),
    "inpaint 2-D mask": (lambda: run_inpaint(MASK[0, 0]), r"\(16, 16\).*mask\[None, None\]"),
    "inpaint mask of the wrong size": (lambda: run_inpaint(box_mask(4, 4, 8, 8, size=64)),
                                       r"\(64, 64\).*\(16, 16\).*box_mask\(.*size=16\)"),
    "forward at t = -1": (lambda: forward(IM, -1), r"0\.\.999, got -1"),
    "forward at t = 1000": (lambda: forward(IM, 1000), r"0\.\.999, got 1000"),
    "forward at t = 2.5": (lambda: forward(IM, 2.5), r"integer timestep.*got 2\.5"),
    # item 9: training data, labels, t, digit names
    "fit on 0..255 pixels": (lambda: run_fit(torch.rand(8, 1, 28, 28) * 255), r"\[0, 1\].*divide them by 255"),
    "fit on uint8 pixels": (lambda: run_fit(torch.zeros(8, 1, 28, 28, dtype=torch.uint8)),
                            r"torch\.uint8.*float\(\) / 255"),
    "fit on NaN pixels": (lambda: run_fit(torch.full((8, 1, 28, 28), float("nan"))), r"\[0, 1\].*nan"),
    "fit with float labels": (lambda: run_fit(torch.rand(8, 1, 28, 28), torch.zeros(8)),
                              r"dtype torch\.float32.*labels\.long\(\)"),
    "fit with one label too few": (lambda: run_fit(torch.rand(8, 1, 28, 28), torch.zeros(7, dtype=torch.long)),
                                   r"shape \(8,\).*got \(7,\)"),
    "one_hot of float labels": (lambda: one_hot(torch.tensor([1.0, 2.0])), r"dtype torch\.float32.*labels\.long\(\)"),
    "model with float labels": (lambda: ClassConditionalUNet(1, 10, 2)(torch.rand(2, 1, 28, 28), torch.rand(2),
                                                                      torch.tensor([1.0, 2.0])),
                                r"dtype torch\.float32.*integers.*c\.long\(\)"),
    "t of the wrong length": (lambda: TimeConditionalUNet(1, 2)(torch.rand(2, 1, 28, 28), torch.rand(3)),
                              r"one per image \(2.*got shape \(3,\)"),
    'digit_image("a 12")': (lambda: digit_image("a 12"), r"'a 12' is neither a digit nor a picture.*\"a 0\""),
    'digit_image("typed 12")': (lambda: digit_image("typed 12"), r"typed digits are 0\.\.9"),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_input_raises_a_value_error_naming_the_fix(name):
    call, message = CASES[name]
    with pytest.raises(ValueError) as err:
        call()
    assert re.search(message, str(err.value), re.S), str(err.value)


def test_a_good_inpaint_mask_still_works_in_all_its_shapes():
    for mask in (MASK, MASK.expand(2, 1, 16, 16), MASK.expand(1, 3, 16, 16)):
        assert torch.allclose(run_inpaint(mask), IM, atol=1e-3)   # the oracle knows the image


def test_digit_image_still_names_a_missing_picture_file():
    with pytest.raises(FileNotFoundError, match="no image at"):
        digit_image("my_digit.png")


# ---- a damaged MNIST is named as such, not as missing or as a failed download -----------------

@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
@pytest.mark.parametrize("download", [False, True])
def test_a_damaged_mnist_file_is_named_not_reported_missing(tmp_path, damage, download):
    root = make_fake_mnist(tmp_path, num_train=20, num_test=10)
    path = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x13" * len(data), "empty": b""}[damage])
    with pytest.raises(RuntimeError) as err:
        load_mnist(root, download=download)
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and "damaged" in msg and "Delete them" in msg
    assert "not found" not in msg and "download MNIST" not in msg


def test_missing_mnist_names_the_missing_file(tmp_path):
    root = make_fake_mnist(tmp_path, num_train=20, num_test=10)
    (root / "MNIST" / "raw" / "train-labels-idx1-ubyte").unlink()
    (root / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="missing train-labels-idx1-ubyte"):
        load_mnist(root, download=False)
