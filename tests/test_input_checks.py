"""Issue 20's inputs that failed raw or silently: each now gets an error naming the range or the
backend and the fix; legitimate inputs (noisy x_t, pure noise, [-1, 1] images) still pass."""
import re

import numpy as np
import pytest
import torch
from torch import nn

from course_utils.common.data import check_training_data
from course_utils.part_a import diffusion, edits
from course_utils.part_a.backend import mnist_backend
from course_utils.part_a.digits import example_digits
from course_utils.part_a.noise_models import FlowNoiseModel, OracleNoiseModel, tiny_noise_model
from course_utils.part_a.schedule import check_timesteps, strided_timesteps
from course_utils.part_b.sampling import euler_integrate, sample_class_conditioned, sample_time_conditioned
from course_utils.part_b.unet import ClassConditionalUNet, TimeConditionalUNet

TS = strided_timesteps(stride=330)              # [990, 660, 330, 0]
RGB = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
DIGITS = example_digits(3, 4)                     # (4, 1, 28, 28) in [-1, 1]
T5 = torch.zeros(1, 77, 4096)
ONE_HOT = torch.eye(10)[3:4]


@pytest.fixture(scope="module")
def flow_model():
    return FlowNoiseModel(ClassConditionalUNet(1, 10, 2))


@pytest.fixture(scope="module")
def if_model():
    return tiny_noise_model()


def sdedit(im, i_start=1, timesteps=TS):
    return edits.sdedit(OracleNoiseModel(im.clamp(-1, 1)), im, i_start, T5, T5, timesteps=timesteps,
                        progress=False)


RANGE_CASES = {
    "forward on [0, 255] pixels": (lambda: diffusion.forward(RGB * 127.5 + 127.5, 500),
                                   r"\[-1, 1\].*\[0, 255\].*x / 127\.5 - 1"),
    "forward on MNIST digits in [0, 1]": (lambda: diffusion.forward((DIGITS + 1) / 2, 500),
                                          r"MNIST digits in \[0, 1\].*background is -1.*x \* 2 - 1"),
    "forward on a noisy image": (lambda: diffusion.forward(RGB * 3, 500),
                                 r"clean image in \[-1, 1\].*x / 127\.5 - 1.*x \* 2 - 1"),
    "sdedit on [0, 255] pixels": (lambda: sdedit(RGB * 127.5 + 127.5), r"x / 127\.5 - 1"),
    "sdedit on MNIST digits in [0, 1]": (lambda: sdedit((DIGITS + 1) / 2), r"x \* 2 - 1"),
    "inpaint on [0, 255] pixels": (lambda: edits.inpaint(OracleNoiseModel(RGB), RGB * 127.5 + 127.5,
                                                         edits.box_mask(4, 4, 8, 8, size=16), T5, T5,
                                                         timesteps=TS, progress=False),
                                   r"x / 127\.5 - 1"),
    "denoising [0, 255] pixels as x_t": (lambda: diffusion.iterative_denoise(
        OracleNoiseModel(RGB), RGB * 127.5 + 127.5, 0, T5, TS, progress=False), r"\[0, 255\].*x / 127\.5 - 1"),
    "upsampling [0, 255] pixels": (lambda: mnist_backend().upsample(DIGITS * 127.5 + 127.5, "a 3"),
                                   r"x / 127\.5 - 1"),
    "NaN image": (lambda: diffusion.forward(torch.full((1, 3, 4, 4), float("nan")), 500), r"NaN or inf"),
    # Part B: [0, 1] expected
    "fit on [-1, 1] images": (lambda: check_training_data(torch.rand(4, 1, 28, 28) * 2 - 1),
                              r"\[0, 1\].*\[-1, 1\].*\(x \+ 1\) / 2"),
    "fit on [0, 255] images": (lambda: check_training_data(torch.rand(4, 1, 28, 28) * 255),
                               r"\[0, 1\].*x / 255"),
}

SCHEDULE_CASES = {
    "i_start 2.5": (lambda: sdedit(RGB, 2.5), r"i_start.*must be an integer, got 2\.5 \(float\).*0\.\.3"),
    "i_start a string": (lambda: sdedit(RGB, "1"), r"i_start.*must be an integer, got '1' \(str\)"),
    "i_start a timestep": (lambda: sdedit(RGB, 660), r"got 660 \(660 is a timestep: its index is "
                                                     r"timesteps\.index\(660\) = 1\)"),
    "iterative_denoise i_start 1.5": (lambda: diffusion.iterative_denoise(
        OracleNoiseModel(RGB), torch.randn(2, 3, 16, 16), 1.5, T5, TS, progress=False), r"i_start.*integer.*1\.5"),
    "float timesteps": (lambda: sdedit(RGB, 1, [990.0, 660.0, 330.0, 0.0]),
                        r"timesteps\[0\]\) must be an integer, got 990\.0.*strided_timesteps"),
    "increasing timesteps": (lambda: sdedit(RGB, 1, [0, 330, 660, 990]), r"must decrease"),
    "timestep 1000": (lambda: check_timesteps([1000, 0]), r"0\.\.999, got \[1000\]"),
    "model at t = 2.5": (lambda: tiny_noise_model()(torch.randn(1, 3, 64, 64), 2.5, T5),
                         r"t must be an integer timestep in 0\.\.999, got 2\.5"),
    "Part B num_steps 2.5": (lambda: euler_integrate(lambda x, t: x, torch.zeros(1), 2.5),
                             r"num_steps must be a positive integer.*got 2\.5; use int"),
    "Part B sampler num_steps 0": (lambda: sample_time_conditioned(TimeConditionalUNet(1, 2), 2, 0),
                                   r"num_steps must be a positive integer"),
    "Part B sampler n 2.0": (lambda: sample_time_conditioned(TimeConditionalUNet(1, 2), 2.0, 4),
                             r"n must be a positive integer.*got 2\.0"),
    "Part B CFG sampler num_steps '4'": (lambda: sample_class_conditioned(ClassConditionalUNet(1, 10, 2), [1], "4"),
                                         r"num_steps must be a positive integer.*'4'"),
}


@pytest.mark.parametrize("name", [*RANGE_CASES, *SCHEDULE_CASES])
def test_bad_input_gets_a_clear_error(name):
    call, message = {**RANGE_CASES, **SCHEDULE_CASES}[name]
    with pytest.raises(ValueError) as err:
        call()
    assert re.search(message, str(err.value), re.S), str(err.value)


def test_legitimate_inputs_still_pass(if_model, flow_model):
    g = torch.Generator().manual_seed(0)
    diffusion.forward(RGB, 500)
    diffusion.forward(DIGITS, 500)                                  # background at -1
    diffusion.forward(torch.zeros(1, 1, 8, 8), 10)                  # grey, nothing to tell apart
    diffusion.forward(torch.rand(2, 1, 8, 8), 10)                   # no background: cannot tell
    diffusion.forward(RGB * 1.4, 500)                               # IF's thresholding slack
    diffusion.forward(torch.rand(2, 3, 16, 16), 500)                # a bright photo: allowed
    diffusion.forward(RGB, np.int64(500))
    noise = torch.randn(4, 3, 64, 64, generator=g) * 3             # noise is never rejected
    diffusion.one_step_denoise(if_model, noise[:1], 500, T5)
    diffusion.iterative_denoise(OracleNoiseModel(RGB), torch.randn(2, 3, 16, 16), np.int64(1), T5,
                                [np.int64(t) for t in TS], progress=False)
    diffusion.iterative_denoise(OracleNoiseModel(RGB), torch.randn(2, 3, 16, 16), torch.tensor(2), T5,
                                list(torch.tensor(TS)), progress=False)
    edits.sdedit(flow_model, DIGITS[:1], 2, ONE_HOT, torch.zeros(1, 10), timesteps=TS, progress=False)
    flow_model(torch.randn(3, 1, 28, 28), 500.0, ONE_HOT)
    flow_model(torch.randn(3, 1, 28, 28), 500, None)
    euler_integrate(lambda x, t: x, torch.zeros(1), np.int64(3))


BACKEND_CASES = {
    "T5 embedding to the MNIST model": (
        "flow", torch.randn(2, 1, 28, 28), T5,
        r"T5 prompt embedding, DeepFloyd IF's; this model is the MNIST backend's.*one-hot digit \(1 or 2, 10\)"
        r".*backend\.embed\(\"a 3\"\)"),
    "one-hot digit to IF's UNet": (
        "if", torch.randn(2, 3, 64, 64), ONE_HOT,
        r"MNIST one-hot digit, the MNIST backend's; this model is DeepFloyd IF's UNet.*\(1 or 2, 77, 4096\)"),
    "labels to the MNIST model": ("flow", torch.randn(2, 1, 28, 28), torch.tensor([3, 4]),
                                  r"one-hot digit \(1 or 2, 10\).*got shape \(2,\)"),
    "wrong batch of one-hots": ("flow", torch.randn(2, 1, 28, 28), torch.zeros(3, 10),
                                r"one-hot digit \(1 or 2, 10\).*got shape \(3, 10\)"),
    "no condition to IF": ("if", torch.randn(1, 3, 64, 64), None, r"T5 prompt embedding.*got None"),
    "T5 embedding of another width to IF": ("if", torch.randn(1, 3, 64, 64), torch.zeros(1, 77, 1024),
                                            r"\(1 or 1, 77, 4096\).*got shape \(1, 77, 1024\)"),
}


@pytest.mark.parametrize("name", BACKEND_CASES)
def test_a_condition_of_the_other_backend_is_named_before_the_model_runs(name, if_model, flow_model):
    which, x, cond, message = BACKEND_CASES[name]
    model = flow_model if which == "flow" else if_model
    calls = []
    net = model.unet
    hook = net.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ValueError) as err:
            model(x, 500, cond)
    finally:
        hook.remove()
    assert re.search(message, str(err.value), re.S), str(err.value)
    assert calls == [], "the condition must be checked before the network runs"


def test_mnist_images_to_if_and_rgb_to_mnist_name_the_backend(if_model, flow_model):
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\) images are the MNIST backend's"):
        if_model(torch.randn(1, 1, 28, 28), 500, T5)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\) images are DeepFloyd IF's"):
        flow_model(torch.randn(1, 3, 64, 64), 500, ONE_HOT)


def test_cfg_and_two_prompt_guidance_still_pass_the_condition_checks(if_model):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    plain = lambda z: if_model(z, 500, T5)[0]   # noqa: E731
    # cond = uncond: ε_u + γ (ε_c − ε_u) is the model's own ε̂, whatever γ
    eps, _ = diffusion.cfg_eps(if_model, T5, T5, 7.0)(x, 500)
    torch.testing.assert_close(eps, plain(x), rtol=1e-4, atol=1e-4)
    # one prompt everywhere: (ε(x) + view⁻¹(ε(view(x)))) / 2
    eps, _ = edits.anagram_eps(if_model, T5, T5, T5)(x, 500)
    torch.testing.assert_close(eps, (plain(x) + edits.FLIP.invert(plain(edits.FLIP.apply(x)))) / 2,
                               rtol=1e-4, atol=1e-4)


def test_part_b_models_are_not_range_checked_inside_the_loss():
    """The whole training set is checked once in fit; a loss on noisy inputs must still run."""
    model = nn.Conv2d(1, 1, 3, padding=1)
    from course_utils.part_b.noising import denoiser_loss
    assert torch.isfinite(denoiser_loss(model, torch.randn(2, 1, 8, 8)))


def test_upsampling_a_sample_that_overshoots_clamps_it():
    """A generated sample may leave [-1, 1] (the untrained tiny model's by far): stage II and the
    bicubic stand-in get it clamped, not an error; [0, 255] pixels stay an error (above)."""
    wild = DIGITS * 300.0
    backend = mnist_backend()
    up = backend.upsample(wild, "a 3")
    assert up.shape[-1] == 4 * wild.shape[-1]
    assert torch.equal(up, backend.upsample(wild.clamp(-1, 1), "a 3"))
