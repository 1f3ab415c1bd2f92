"""Part B §1.2 (noising, B.1/B.2) and §2 (flow matching, B.3-B.5, class dropout of §2.4).

Expected values are computed by hand from the handout's equations on small constant inputs.
"""
import pytest
import torch
from torch import nn

from course_utils.part_b.flow import (drop_class, flow_matching_loss, interpolate, sample_path,
                                      target_velocity)
from course_utils.part_b.noising import add_noise, denoiser_loss


# ---- noising z = x + σ ε (B.2) -------------------------------------------------------------

def test_add_noise_is_x_plus_sigma_eps_with_the_generators_eps():
    x = torch.linspace(0, 1, 2 * 28 * 28).reshape(2, 1, 28, 28)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(123))
    z = add_noise(x, 0.5, generator=torch.Generator().manual_seed(123))
    torch.testing.assert_close(z, x + 0.5 * eps, rtol=0, atol=1e-7)
    # σ scales the same ε linearly
    z2 = add_noise(x, 2.0, generator=torch.Generator().manual_seed(123))
    torch.testing.assert_close(z2 - x, 4 * (z - x), rtol=1e-6, atol=1e-6)


def test_add_noise_literal_values():
    """torch's CPU N(0, 1) stream for seed 0 starts 1.5410, -0.2934, -2.1788, 0.5684, so
    z = x + 0.5 ε for x = (0, 1, 0.5, -1) is (0.7705, 0.8533, -0.5894, -0.7158)."""
    z = add_noise(torch.tensor([0.0, 1.0, 0.5, -1.0]), 0.5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z, torch.tensor([0.7705, 0.8533, -0.5894, -0.7158]),
                               rtol=0, atol=1e-4)


def test_add_noise_sigma_zero_returns_x():
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(add_noise(x, 0.0, generator=torch.Generator().manual_seed(0)), x)


def test_add_noise_uses_the_noise_passed_in():
    x, eps = torch.rand(2, 1, 28, 28), torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(add_noise(x, 0.3, eps), x + 0.3 * eps, rtol=0, atol=0)


def test_add_noise_statistics_and_fresh_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.full((64, 1, 28, 28), 0.25)
    z = add_noise(x, 0.5, generator=g)
    noise = z - x
    assert abs(noise.mean().item()) < 0.01          # 50k samples: std of the mean ~0.002
    assert abs(noise.std().item() - 0.5) < 0.01
    assert not torch.equal(add_noise(x, 0.5, generator=g), z)  # a second call draws new ε


class Zeros(nn.Module):
    def forward(self, *args):
        return torch.zeros_like(args[0])


class Identity(nn.Module):
    def forward(self, z):
        return z


def test_denoiser_loss_hand_computed():
    x = torch.full((2, 1, 28, 28), 0.5)
    # D(z) = 0: L = mean((0 - 0.5)^2) = 0.25 whatever the noise
    assert denoiser_loss(Zeros(), x, torch.Generator().manual_seed(0)).item() == pytest.approx(0.25)
    # D(z) = z: L = mean((σ ε)^2) = σ^2 mean(ε^2), with the generator's ε
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    got = denoiser_loss(Identity(), x, torch.Generator().manual_seed(5), sigma=0.5)
    assert got.item() == pytest.approx(0.25 * (eps ** 2).mean().item(), rel=1e-5)
    # σ = 0 and D(z) = z: a perfect denoiser
    assert denoiser_loss(Identity(), x, torch.Generator().manual_seed(5), sigma=0.0).item() == 0.0


def test_denoiser_loss_pure_noise_input():
    """§1.2.3: sigma=None feeds z = ε, independent of x."""
    x = torch.full((2, 1, 28, 28), 5.0)
    seen = {}

    class Record(nn.Module):
        def forward(self, z):
            seen["z"] = z
            return torch.zeros_like(z)

    loss = denoiser_loss(Record(), x, torch.Generator().manual_seed(9), sigma=None)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(seen["z"], eps)
    assert loss.item() == pytest.approx(25.0)


def test_denoiser_loss_is_differentiable():
    torch.manual_seed(0)
    model = nn.Conv2d(1, 1, 3, padding=1)
    loss = denoiser_loss(model, torch.rand(2, 1, 28, 28), torch.Generator().manual_seed(0))
    loss.backward()
    assert model.weight.grad is not None and model.weight.grad.abs().sum() > 0


# ---- flow path (B.3) and target (B.4) ----------------------------------------------------

def test_interpolate_endpoints_and_middle():
    x0 = torch.full((3, 1, 28, 28), 2.0)
    x1 = torch.full((3, 1, 28, 28), -2.0)
    xt = interpolate(x0, x1, torch.tensor([0.0, 1.0, 0.25]))
    assert torch.equal(xt[0], x0[0])                 # t = 0: noise
    assert torch.equal(xt[1], x1[1])                 # t = 1: data
    # t = 0.25: 0.75 * 2 + 0.25 * (-2) = 1
    torch.testing.assert_close(xt[2], torch.full((1, 28, 28), 1.0))


def test_interpolate_random_inputs_endpoints():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(2, 1, 28, 28, generator=g), torch.rand(2, 1, 28, 28, generator=g)
    torch.testing.assert_close(interpolate(x0, x1, torch.zeros(2)), x0, rtol=0, atol=0)
    torch.testing.assert_close(interpolate(x0, x1, torch.ones(2)), x1, rtol=0, atol=0)
    torch.testing.assert_close(interpolate(x0, x1, torch.full((2,), 0.5)), (x0 + x1) / 2)


def test_target_velocity_is_x1_minus_x0():
    x0 = torch.full((1, 1, 28, 28), 1.5)
    x1 = torch.full((1, 1, 28, 28), 0.25)
    assert torch.equal(target_velocity(x0, x1), torch.full((1, 1, 28, 28), -1.25))


# ---- flow matching loss (B.5) --------------------------------------------------------------

X0 = torch.full((2, 1, 28, 28), 1.0)
X1 = torch.full((2, 1, 28, 28), 3.0)
T = torch.tensor([0.25, 0.5])


def test_flow_loss_with_zero_model_is_mean_square_of_target():
    # u = 0: L = mean((3 - 1)^2) = 4
    assert flow_matching_loss(Zeros(), X1, X0, T).item() == pytest.approx(4.0)
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(4, 1, 28, 28, generator=g), torch.rand(4, 1, 28, 28, generator=g)
    got = flow_matching_loss(Zeros(), x1, x0, torch.rand(4, generator=g))
    assert got.item() == pytest.approx(((x1 - x0) ** 2).mean().item(), rel=1e-6)


def test_flow_loss_is_zero_for_the_exact_velocity_and_16_for_the_reversed_one():
    class Exact(nn.Module):
        def __init__(self, sign):
            super().__init__()
            self.sign = sign

        def forward(self, xt, t, c=None):
            return self.sign * (X1 - X0)

    assert flow_matching_loss(Exact(1), X1, X0, T).item() == 0.0
    # u = x0 - x1 = -2: L = mean((2 - (-2))^2) = 16
    assert flow_matching_loss(Exact(-1), X1, X0, T).item() == pytest.approx(16.0)


def test_flow_loss_feeds_the_model_xt_and_t():
    seen = {}

    class Record(nn.Module):
        def forward(self, xt, t, c=None):
            seen.update(xt=xt, t=t, c=c)
            return torch.zeros_like(xt)

    flow_matching_loss(Record(), X1, X0, T)
    # x_t = (1 - t) 1 + t 3 = 1 + 2t: 1.5 at t = 0.25, 2.0 at t = 0.5
    torch.testing.assert_close(seen["xt"][0], torch.full((1, 28, 28), 1.5))
    torch.testing.assert_close(seen["xt"][1], torch.full((1, 28, 28), 2.0))
    torch.testing.assert_close(seen["t"].reshape(-1), T)
    assert seen["c"] is None
    c = torch.eye(10)[[3, 7]]
    flow_matching_loss(Record(), X1, X0, T, c)
    assert torch.equal(seen["c"], c)


def test_flow_loss_mixed_stub_hand_computed():
    """u = x_t: L = mean((x1 - x0 - x_t)^2) = mean((2 - 1 - 2t)^2) = ((0.5)^2 + 0^2) / 2."""
    class Xt(nn.Module):
        def forward(self, xt, t):
            return xt

    assert flow_matching_loss(Xt(), X1, X0, T).item() == pytest.approx(0.125)


def test_sample_path_draws_standard_noise_and_uniform_t():
    g = torch.Generator().manual_seed(0)
    x1 = torch.rand(4000, 1, 28, 28)
    x0, t = sample_path(x1, g)
    assert x0.shape == x1.shape and t.shape == (4000,)
    assert abs(x0.mean().item()) < 0.01 and abs(x0.std().item() - 1) < 0.01
    assert t.min() >= 0 and t.max() <= 1
    assert abs(t.mean().item() - 0.5) < 0.02 and abs(t.var().item() - 1 / 12) < 0.01
    # no correlation between the noise and the data
    assert abs(torch.corrcoef(torch.stack([x0.flatten(), x1.flatten()]))[0, 1]) < 0.01


# ---- class dropout (§2.4) ----------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.5])
def test_drop_class_zeroes_about_p_of_the_rows_and_keeps_the_rest(p):
    n = 20000
    labels = torch.arange(n) % 10
    c = torch.eye(10)[labels]
    out = drop_class(c, p, torch.Generator().manual_seed(0))
    dropped = (out == 0).all(dim=1)
    # binomial std: sqrt(p (1 - p) / n) <= 0.0036; allow ~4 std
    assert abs(dropped.float().mean().item() - p) < 0.015
    assert torch.equal(out[~dropped], c[~dropped])   # kept rows exactly unchanged
    assert out.shape == c.shape


def test_drop_class_extremes_and_determinism():
    c = torch.eye(10)[torch.arange(100) % 10]
    assert torch.equal(drop_class(c, 0.0, torch.Generator().manual_seed(0)), c)
    assert torch.equal(drop_class(c, 1.0, torch.Generator().manual_seed(0)), torch.zeros_like(c))
    a = drop_class(c, 0.3, torch.Generator().manual_seed(4))
    b = drop_class(c, 0.3, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
