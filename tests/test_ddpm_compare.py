"""Notebook 19's measurements (course_utils.part_b.compare): the DDPM as Part A's NoiseModel, Part A's
loop against ddpm.denoise, the counted network evaluations, and the comparisons' results."""
import math

import pytest
import torch
from torch import nn

from course_utils.common.metrics import Quality, load_judge
from course_utils.part_a.diffusion import cfg_eps as part_a_cfg_eps
from course_utils.part_a.diffusion import denoise_loop
from course_utils.part_a.noise_models import FlowNoiseModel, NoiseModel
from course_utils.part_a.schedule import check_timesteps
from course_utils.part_b import compare, ddpm
from course_utils.part_b.compare import (ANCESTRAL, DDIM, FLOW, DDPMNoiseModel, Point, Sampler,
                                         count_network_evaluations)
from course_utils.part_b.train import History
from course_utils.part_b.unet import ClassConditionalUNet, TimeConditionalUNet, one_hot


def tiny_class_unet(seed=0):
    torch.manual_seed(seed)
    return ClassConditionalUNet(num_hiddens=4).eval()


@pytest.fixture(scope="module")
def judge():
    from course_utils.common.data import load_mnist

    x, _ = load_mnist(train=False, download=False)
    return load_judge(x, 10)


# ---- the adapter --------------------------------------------------------------------------------

def test_the_adapter_is_the_unet_fed_t_over_300_and_the_one_hot_class():
    unet = tiny_class_unet()
    model = DDPMNoiseModel(unet)
    assert isinstance(model, NoiseModel) and model.image_shape == (1, 28, 28)
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    c = one_hot(torch.tensor([3, 0, 7]))
    eps, variance = model(x, 123, c)
    assert variance is None
    with torch.no_grad():
        assert torch.equal(eps, unet(x, torch.full((3,), 123 / 300), c))
        # one condition for the whole batch, and no condition = the all-zero class
        assert torch.equal(model(x, 40, c[:1])[0], unet(x, torch.full((3,), 40 / 300), c[:1].expand(3, -1)))
        assert torch.equal(model(x, 40, None)[0], unet(x, torch.full((3,), 40 / 300), torch.zeros(3, 10)))
    with pytest.raises(ValueError, match="timestep"):
        model(x, 300, c)


def test_the_adapter_of_a_time_conditioned_unet_ignores_the_condition():
    torch.manual_seed(0)
    unet = TimeConditionalUNet(num_hiddens=4).eval()
    model = DDPMNoiseModel(unet, class_conditioned=False)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x, 299, one_hot(torch.tensor([1, 2])))[0], unet(x, torch.full((2,), 299 / 300)))


def test_the_adapters_scheduler_is_the_ddpm_schedule():
    scheduler = DDPMNoiseModel(tiny_class_unet()).scheduler
    schedule = ddpm.linear_schedule()
    assert scheduler.config.num_train_timesteps == 300 and scheduler.config.variance_type == "fixed_small"
    assert torch.equal(scheduler.betas, schedule.betas)
    assert torch.equal(scheduler.alphas_cumprod, schedule.alphas_cumprod)


def test_part_a_timesteps_run_from_the_noisiest_to_zero():
    ts = compare.part_a_timesteps(30)
    assert ts[0] == 299 and ts[-1] == 0 and len(ts) == 31
    assert check_timesteps(ts, 300) == ts
    assert compare.part_a_timesteps(299) == list(range(299, -1, -1))


# ---- Part A's loop is DDPM's ancestral sampler --------------------------------------------------

def test_part_a_loop_over_all_300_timesteps_is_ddpm_denoise_with_the_same_noise():
    """Step for step: Part A's loop (§1.4 with stride 1, §1.6's CFG) on the adapter and
    ddpm.denoise on the UNet visit the same states; Part A stops at t = 0 with the posterior mean,
    which is ddpm's step 1 → 0 without its noise."""
    unet = tiny_class_unet()
    model = DDPMNoiseModel(unet)
    schedule = ddpm.linear_schedule()
    c = one_hot(torch.tensor([2, 5]))
    x_T = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    timesteps = list(range(299, -1, -1))
    with torch.inference_mode():
        final, kept = denoise_loop(part_a_cfg_eps(model, c, torch.zeros(1, 10), 3.0), x_T, 0, model.scheduler,
                                   timesteps, torch.Generator().manual_seed(7), keep_every=1, progress=False)
        eps_fn = ddpm.cfg_eps(unet, c, 3.0, 300)
        _, states = ddpm.denoise(eps_fn, x_T, schedule, timesteps, generator=torch.Generator().manual_seed(7),
                                 return_trajectory=True)
        assert [t for t, _ in kept] == timesteps[:-1]
        for k, (t, x) in enumerate(kept):
            torch.testing.assert_close(x, states[k], atol=1e-4, rtol=1e-4, msg=f"state at t = {t}")
        last = ddpm.ancestral_step(states[298], eps_fn(states[298], 1), 1, 0, schedule, z=None)  # x at t = 1
    torch.testing.assert_close(final, last, atol=1e-4, rtol=1e-4)


class OracleEps(nn.Module):
    """An ε-UNet that knows the clean digit: ε = (x_t − √ᾱ_t x0) / √(1 − ᾱ_t), t = round(300 s)."""

    num_classes = 10

    def __init__(self, x0):
        super().__init__()
        self.x0 = x0
        self.register_buffer("alphas_cumprod", ddpm.linear_schedule().alphas_cumprod)
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x, s, c):
        a = self.alphas_cumprod[(s * 300).round().long()].reshape(-1, 1, 1, 1)
        return (x - a.sqrt() * self.x0) / (1 - a).sqrt()


def test_part_a_sampling_on_an_oracle_ddpm_returns_the_data():
    x0 = ddpm.to_model(torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0)))
    model = DDPMNoiseModel(OracleEps(x0))
    out = compare.part_a_digits(model, torch.tensor([1, 4, 9]), 5.0, compare.part_a_timesteps(30),
                                torch.Generator().manual_seed(0))
    assert out.shape == (3, 1, 28, 28)
    torch.testing.assert_close(out, ddpm.to_pixels(x0).expand(3, -1, -1, -1), atol=0.01, rtol=0)


# ---- counting network evaluations --------------------------------------------------------------

def test_counting_adds_up_every_image_of_every_pass_and_stops_after():
    unet = tiny_class_unet()
    with torch.no_grad(), count_network_evaluations(unet) as count:
        unet(torch.zeros(3, 1, 28, 28), torch.zeros(3), torch.zeros(3, 10))
        unet(torch.zeros(5, 1, 28, 28), torch.zeros(5), torch.zeros(5, 10))
    assert count.images == 8
    with torch.no_grad():
        unet(torch.zeros(2, 1, 28, 28), torch.zeros(2), torch.zeros(2, 10))
    assert count.images == 8 and not unet._forward_pre_hooks


@pytest.mark.parametrize("sampler", [Sampler(FLOW, 1), Sampler(FLOW, 3), Sampler(ANCESTRAL, 4), Sampler(ANCESTRAL, 300),
                                     Sampler(DDIM, 5)], ids=str)
def test_cfg_costs_two_evaluations_per_image_and_step_for_both_methods(sampler, judge):
    point = compare.measure(tiny_class_unet(), sampler, judge, 5.0, seed=0)
    assert point.nfe == sampler.nfe == 2 * sampler.steps
    assert (point.method, point.steps) == (sampler.method, sampler.steps)
    assert point.quality.n == judge.n and 0 <= point.quality.accuracy <= 1


def test_ddpm_steps_walk_the_strided_timesteps():
    assert ddpm.strided_timesteps(300) == list(range(299, -1, -1))
    ts = ddpm.strided_timesteps(20)
    assert len(ts) == 20 and ts[0] == 299 and ts[-1] == 0
    with pytest.raises(ValueError):
        Sampler("Heun", 4)


def test_the_sweep_gives_each_method_its_own_model(judge):
    flow, ddpm_net = tiny_class_unet(0), tiny_class_unet(1)
    points = compare.sweep(flow, ddpm_net, compare.samplers([2], [3], [2]), judge, 5.0)
    assert [(p.method, p.steps, p.nfe) for p in points] == [(FLOW, 2, 4), (ANCESTRAL, 3, 6), (DDIM, 2, 4)]
    # the flow point is the flow model's: measuring it alone on flow gives the same numbers
    again = compare.measure(flow, Sampler(FLOW, 2), judge, 5.0)
    assert again.quality.fd == pytest.approx(points[0].quality.fd)


# ---- Part A's loop on both models ---------------------------------------------------------------

def test_flow_to_eps_and_ddpm_under_part_a_return_comparable_points(judge):
    flow, ddpm_net = tiny_class_unet(0), tiny_class_unet(1)
    ts = compare.part_a_timesteps(3)
    points = [compare.measure_part_a(FlowNoiseModel(flow, scheduler=compare.ddpm_scheduler()), judge, 5.0, ts,
                                     label="flow → ε"),
              compare.measure_part_a(DDPMNoiseModel(ddpm_net), judge, 5.0, ts, label="DDPM ε")]
    for p in points:
        assert p.steps == 3 and p.nfe == 6   # Part A evaluates at every timestep but t = 0, twice with CFG
        q = p.quality
        assert q.n == judge.n and 0 <= q.accuracy <= 1 and q.fd >= 0 and q.floor == judge.floor
        assert q.kid is not None and q.kid_floor == judge.kid_floor
    text = compare.link_findings(*points)
    assert "flow → ε" in text and "DDPM ε" in text


# ---- epochs, training cost and the printouts ---------------------------------------------------

def test_epochs_in_common_and_the_weights_after_the_last_epoch():
    flow, ddpm_run = History(epochs=10), History(epochs=20)
    assert compare.epochs_in_common(flow, ddpm_run, keep_epochs=(1, 5, 10)) == [1, 5, 10]
    assert compare.epochs_in_common(History(epochs=10), History(epochs=10), keep_epochs=(1, 5, 10)) == [1, 5, 10]
    assert compare.epochs_in_common(History(epochs=8), History(epochs=12), keep_epochs=(1, 5, 10)) == [1, 5]
    net = tiny_class_unet()
    assert compare.at_epoch(net, History(epochs=3), 3) is net


def test_training_seconds_per_epoch_scales_one_batch_to_the_epoch(fake_mnist):
    from course_utils.part_b.recipes import ddpm_objective
    from course_utils.part_b.train import class_flow_objective

    X, Y = fake_mnist
    seconds = compare.training_seconds_per_epoch(
        {"flow": (class_flow_objective(0.1), 16), "ddpm": (ddpm_objective(True, "cpu"), 32)},
        lambda: ClassConditionalUNet(num_hiddens=4), X, Y, "cpu", batches=2, repeats=1, precision="fp32")
    assert set(seconds) == {"flow", "ddpm"}
    assert all(0 < s < math.inf for s in seconds.values())


def _point(method, steps, ratio, acc, epoch=None):
    return Point(method, steps, 2 * steps, Quality(100, ratio * 2.0, 2.0, acc, 0.01 * ratio, 0.001), 1.0, epoch)


def test_best_and_cheapest_within_read_the_numbers():
    points = [_point(FLOW, 4, 3.0, 0.9), _point(FLOW, 16, 1.5, 1.0), _point(DDIM, 20, 1.4, 1.0),
              _point(ANCESTRAL, 300, 1.2, 1.0)]
    assert compare.best(points) is points[3]
    assert compare.cheapest_within(points, 1.5) is points[1]
    assert compare.cheapest_within(points, 1.0) is None
    text = compare.nfe_findings(points)
    assert "1.20×" in text and "equal cost" not in text   # no step count measured by both
    assert "flow matching, Euler: best FD/floor 1.50× at 32 NFE/image" in text
    assert "the DDPM's best (DDPM, ancestral, 300 steps: FD/floor 1.20×" in text and "at none of" in text
    cheap_flow = points + [_point(FLOW, 2, 1.1, 1.0)]
    assert "matched by flow matching from 2 Euler steps (4 NFE/image: 150× fewer)" in compare.nfe_findings(cheap_flow)
    table = compare.table(points)
    assert len(table.splitlines()) == 2 + len(points) + 1 and "KID" in table


def test_epoch_findings_count_the_wins_and_the_cost_ratio():
    flow = [_point(FLOW, 16, 5.0, 0.5, 1), _point(FLOW, 16, 2.0, 1.0, 10)]
    ddpm_pts = [_point(DDIM, 16, 4.0, 0.6, 1), _point(DDIM, 16, 3.0, 0.9, 10)]
    text = compare.epoch_findings(flow, ddpm_pts, {"flow matching": 2.0, "DDPM": 3.0})
    assert "flow matching closer in 1 of 2 epochs" in text and "ratio 1.50" in text
