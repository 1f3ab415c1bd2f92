"""Part B §2.3 (Algorithm B.2, Euler) and §2.5 (Algorithm B.4, classifier-free guidance).

The sampler is checked on velocity fields whose Euler solution has a closed form.
"""
import math

import pytest
import torch
from torch import nn

from course_utils.part_b.sampling import (cfg_velocity, euler_integrate, sample_class_conditioned,
                                          sample_time_conditioned)
from course_utils.part_b.unet import ClassConditionalUNet, TimeConditionalUNet

X0 = torch.linspace(-1, 1, 2 * 28 * 28).reshape(2, 1, 28, 28)


@pytest.mark.parametrize("T", [1, 3, 8])
def test_constant_field_moves_by_exactly_the_velocity(T):
    v = torch.full_like(X0, 0.75)       # T steps of 0.75 / T: exact up to float rounding
    out = euler_integrate(lambda x, t: v, X0, T)
    torch.testing.assert_close(out, X0 + 0.75, rtol=0, atol=1e-6)


@pytest.mark.parametrize("T", [1, 2, 4, 10])
def test_field_equal_to_t_uses_left_endpoints(T):
    # x_T = x_0 + sum_{i=0}^{T-1} (1/T)(i/T) = x_0 + (T - 1) / (2T); T = 1 gives x_0
    out = euler_integrate(lambda x, t: torch.full_like(x, float(t)), X0, T)
    torch.testing.assert_close(out, X0 + (T - 1) / (2 * T), rtol=0, atol=1e-6)


def test_times_passed_to_the_velocity():
    seen = []
    euler_integrate(lambda x, t: seen.append(float(t)) or torch.zeros_like(x), X0, 4)
    assert seen == pytest.approx([0.0, 0.25, 0.5, 0.75])


@pytest.mark.parametrize("T", [1, 2, 5, 50])
def test_linear_field_gives_compound_growth(T):
    # dx/dt = x: each step multiplies by (1 + 1/T)
    out = euler_integrate(lambda x, t: x, X0, T)
    torch.testing.assert_close(out, X0 * (1 + 1 / T) ** T, rtol=1e-5, atol=1e-6)


def test_linear_field_converges_to_e():
    x0 = torch.ones(1, 1, 28, 28)
    errors = []
    for T in [10, 100, 1000]:
        out = euler_integrate(lambda x, t: x, x0, T)
        errors.append((out - math.e * x0).abs().max().item())
        # Euler's global error for x' = x on [0, 1] is e / (2T) to first order
        assert errors[-1] == pytest.approx(math.e / (2 * T), rel=0.1)
    assert errors[0] > errors[1] > errors[2]


@pytest.mark.parametrize("T", [1, 4])
def test_trajectory_has_T_plus_1_states(T):
    v = torch.ones_like(X0)
    out, traj = euler_integrate(lambda x, t: v, X0, T, return_trajectory=True)
    assert len(traj) == T + 1
    assert torch.equal(traj[0], X0)
    assert torch.equal(traj[-1], out)
    for k, state in enumerate(traj):
        torch.testing.assert_close(state, X0 + k / T, rtol=0, atol=1e-6)


@pytest.mark.parametrize("T", [0, -1])
def test_num_steps_below_one_errors(T):
    with pytest.raises(ValueError, match="num_steps"):
        euler_integrate(lambda x, t: x, X0, T)


# ---- classifier-free guidance ------------------------------------------------------------

class StubClassModel(nn.Module):
    """u(x, t, c) = k + 1 for a one-hot row of class k, -1 for the zero row (unconditional)."""

    in_channels = 1
    num_classes = 10

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.calls = 0

    def forward(self, x, t, c):
        self.calls += 1
        label_value = (c * torch.arange(1, 11, dtype=x.dtype)).sum(dim=1)   # k + 1, or 0
        value = torch.where(c.abs().sum(dim=1) > 0, label_value, torch.full_like(label_value, -1.0))
        return value[:, None, None, None].expand_as(x).clone()


C = torch.eye(10)[[0, 4]]   # classes 0 and 4


@pytest.mark.parametrize("gamma, expected", [
    (1.0, [1.0, 5.0]),                     # γ = 1: the conditional prediction
    (0.0, [-1.0, -1.0]),                   # γ = 0: the unconditional prediction
    (5.0, [-1 + 5 * 2.0, -1 + 5 * 6.0]),   # u_uncond + γ (u_cond - u_uncond)
])
def test_cfg_velocity_hand_computed(gamma, expected):
    v = cfg_velocity(StubClassModel(), C, gamma)(X0, 0.3)
    for i, e in enumerate(expected):
        torch.testing.assert_close(v[i], torch.full((1, 28, 28), e))


def make_class_model(seed=0):
    torch.manual_seed(seed)
    model = ClassConditionalUNet(1, 10, 4)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():   # non-trivial BN statistics so the class matters (see checks.part_b_networks.spice)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.2 + 0.05)
    return model.eval()


def test_cfg_with_a_real_unet_gamma_1_is_conditional_gamma_0_unconditional():
    model = make_class_model()
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        cond = model(x, 0.3, C)
        uncond = model(x, 0.3, None)
        assert (cond - uncond).abs().max() > 1e-3
        torch.testing.assert_close(cfg_velocity(model, C, 1.0)(x, 0.3), cond, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(cfg_velocity(model, C, 0.0)(x, 0.3), uncond, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(cfg_velocity(model, C, 3.0)(x, 0.3), uncond + 3 * (cond - uncond),
                                   atol=1e-4, rtol=1e-4)


def test_sample_class_conditioned_is_euler_with_cfg_from_the_generators_noise():
    """With the stub, every step adds (u_uncond + γ (u_cond - u_uncond)) / T: the sample is
    x_0 + (-1 + γ (k + 2)) for class k, x_0 being the generator's first N(0, I) draw."""
    model = StubClassModel()
    out = sample_class_conditioned(model, [0, 4], num_steps=4, guidance=5.0,
                                   generator=torch.Generator().manual_seed(7))
    x0 = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(out[0], x0[0] + 9.0)
    torch.testing.assert_close(out[1], x0[1] + 29.0)
    assert model.calls == 4          # one batched (cond + uncond) forward pass per step


def test_sample_class_conditioned_is_deterministic_with_a_generator():
    model = make_class_model()
    labels = [0, 1, 2, 9]
    a = sample_class_conditioned(model, labels, 3, 5.0, torch.Generator().manual_seed(1))
    b = sample_class_conditioned(model, labels, 3, 5.0, torch.Generator().manual_seed(1))
    c = sample_class_conditioned(model, labels, 3, 5.0, torch.Generator().manual_seed(2))
    assert a.shape == (4, 1, 28, 28)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    out, traj = sample_class_conditioned(model, labels, 3, 5.0, torch.Generator().manual_seed(1),
                                         return_trajectory=True)
    assert len(traj) == 4 and torch.equal(out, a)


def test_sample_class_conditioned_rejects_bad_labels():
    with pytest.raises(ValueError):
        sample_class_conditioned(make_class_model(), [3, 10], 2, 5.0, torch.Generator().manual_seed(0))


def test_sample_time_conditioned_matches_manual_euler():
    torch.manual_seed(0)
    model = TimeConditionalUNet(1, 4).eval()
    out, traj = sample_time_conditioned(model, 2, 3, torch.Generator().manual_seed(3),
                                        return_trajectory=True)
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for i in range(3):
            x = x + model(x, torch.full((2,), i / 3)) / 3
    assert len(traj) == 4 and out.shape == (2, 1, 28, 28)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=1e-5)
    again = sample_time_conditioned(model, 2, 3, torch.Generator().manual_seed(3))
    assert torch.equal(again, out)


def test_sample_class_conditioned_default_guidance_is_5():
    """§2.5: classifier-free guidance with γ = 5.0 unless told otherwise."""
    out = sample_class_conditioned(StubClassModel(), [0], num_steps=2,
                                   generator=torch.Generator().manual_seed(0))
    x0 = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0 + (-1 + 5 * 2.0))


# ---- the exercises' signatures: sampler=, t of shape (B,), the GIF's trajectory ---------------

class RecordT(nn.Module):
    in_channels = 1
    num_classes = 10

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.ts = []

    def forward(self, x, t, c=None):
        self.ts.append(t)
        return torch.ones_like(x)


def test_the_course_calls_the_unet_with_t_of_shape_B():
    model = RecordT()
    sample_time_conditioned(model, 3, 2, torch.Generator().manual_seed(0))
    sample_class_conditioned(model, [1, 2, 3], 2, 5.0, torch.Generator().manual_seed(0))
    assert [tuple(t.shape) for t in model.ts] == [(3,), (3,), (6,), (6,)]
    assert [t.tolist() for t in model.ts[:2]] == [[0.0] * 3, [0.5] * 3]


def test_euler_sample_and_cfg_are_the_integrators_with_the_exercises_signatures():
    from course_utils.part_b.sampling import euler_sample, euler_sample_cfg

    out = euler_sample(lambda x, t: torch.full_like(x, 0.75), X0, 3)
    torch.testing.assert_close(out, X0 + 0.75, rtol=0, atol=1e-6)
    out = euler_sample_cfg(StubClassModel(), C, X0, 2, 5.0)
    torch.testing.assert_close(out, X0 + torch.tensor([9.0, 29.0])[:, None, None, None].expand_as(X0))


def two_pass_cfg(model, c, x0, num_steps, guidance):
    x = x0
    for i in range(num_steps):
        t = torch.full((x.shape[0],), i / num_steps)
        u_cond, u_uncond = model(x, t, c), model(x, t, torch.zeros_like(c))
        x = x + (u_uncond + guidance * (u_cond - u_uncond)) / num_steps
    return x


def test_a_notebooks_sampler_is_used_and_the_trajectory_is_what_the_model_was_fed():
    model = make_class_model()
    g = lambda: torch.Generator().manual_seed(1)   # noqa: E731
    out, traj = sample_class_conditioned(model, [0, 5], 3, 5.0, g(), return_trajectory=True)
    used = []

    def sampler(*args):
        used.append(1)
        return two_pass_cfg(*args)

    out2, traj2 = sample_class_conditioned(model, [0, 5], 3, 5.0, g(), return_trajectory=True,
                                           sampler=sampler)
    assert used == [1], "sample_class_conditioned ignored the sampler it was handed"
    torch.testing.assert_close(out2, out, atol=1e-5, rtol=1e-5)
    assert len(traj) == len(traj2) == 4
    for a, b in zip(traj, traj2):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(traj[0], torch.randn(2, 1, 28, 28, generator=g()))
    assert traj[-1] is out2 or torch.equal(traj[-1], out)
