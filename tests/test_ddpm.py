"""Part B's optional extension, DDPM (course_utils.part_b.ddpm and recipes.train_ddpm): the linear
schedule against diffusers and hand values, the forward process, the ancestral step against
diffusers' DDPMScheduler, a perfect ε-model through one step and through every loop, CFG
identities, the loss as the MSE of what the model was fed, the strided timesteps, and train_ddpm
on the smoke profile (one batch overfitted, a killed run resumed bitwise)."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils.part_b import ddpm
from course_utils.part_b.ddpm import (NUM_TIMESTEPS, Schedule, ancestral_step, cfg_eps, ddim_step, denoise,
                                      linear_schedule, q_sample, strided_timesteps, time_ddpm_loss, time_eps)

T = NUM_TIMESTEPS


def gen(seed):
    return torch.Generator().manual_seed(seed)


def diffusers_scheduler(**kw):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                         variance_type="fixed_small", clip_sample=False, prediction_type="epsilon", **kw)


# ---- the schedule ----------------------------------------------------------------------------

def test_the_schedule_is_diffusers_linear_ddpm_schedule():
    s = linear_schedule()
    ref = diffusers_scheduler()
    assert s.T == T == 300 and s.betas.dtype == torch.float32 and s.alphas_cumprod.shape == (T,)
    torch.testing.assert_close(s.betas, ref.betas, rtol=0, atol=0)
    torch.testing.assert_close(s.alphas_cumprod, ref.alphas_cumprod, rtol=0, atol=0)


def test_the_schedule_by_hand():
    s = linear_schedule()
    beta_1 = 1e-4 + (0.02 - 1e-4) / 299                   # evenly spaced, both ends included
    assert s.betas[0].item() == pytest.approx(1e-4, rel=1e-6)
    assert s.betas[1].item() == pytest.approx(beta_1, rel=1e-6)
    assert s.betas[-1].item() == pytest.approx(0.02, rel=1e-6)
    assert s.alphas_cumprod[0].item() == pytest.approx(1 - 1e-4, rel=1e-7)
    assert s.alphas_cumprod[1].item() == pytest.approx((1 - 1e-4) * (1 - beta_1), rel=1e-7)
    product = 1.0
    for k in range(T):
        product *= 1 - (1e-4 + k * (0.02 - 1e-4) / 299)
    assert s.alphas_cumprod[-1].item() == pytest.approx(product, rel=1e-5)
    assert 0.04 < product < 0.06                          # x_299 is nearly pure noise
    assert s.alpha_bar(-1).item() == 1.0 and s.alpha_bar(5) == s.alphas_cumprod[5]
    other = linear_schedule(4, 0.1, 0.4)
    torch.testing.assert_close(other.betas, torch.tensor([0.1, 0.2, 0.3, 0.4]))
    torch.testing.assert_close(other.alphas_cumprod, torch.tensor([0.9, 0.72, 0.504, 0.3024]))


def test_to_model_and_to_pixels_are_inverse():
    x = torch.tensor([0.0, 0.25, 1.0])
    torch.testing.assert_close(ddpm.to_model(x), torch.tensor([-1.0, -0.5, 1.0]))
    torch.testing.assert_close(ddpm.to_pixels(ddpm.to_model(x)), x)


# ---- the forward process and the loss ----------------------------------------------------------

def test_q_sample_by_hand():
    ac = torch.tensor([0.64, 0.36])                       # √ᾱ = 0.8, 0.6; √(1 − ᾱ) = 0.6, 0.8
    x0 = torch.tensor([1.0, -1.0]).view(2, 1, 1, 1)
    eps = torch.tensor([0.5, 2.0]).view(2, 1, 1, 1)
    got = q_sample(x0, torch.tensor([0, 1]), eps, ac)
    torch.testing.assert_close(got.flatten(), torch.tensor([0.8 + 0.3, -0.6 + 1.6]))
    got = q_sample(x0, torch.tensor([1, 1]), eps, ac)    # one t per image
    torch.testing.assert_close(got.flatten(), torch.tensor([0.6 + 0.4, -0.6 + 1.6]))


class Recorder(nn.Module):
    """ε_θ(x, s[, c]) = a x + b: keeps what it was fed."""

    num_classes = 10
    in_channels = 1

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.3))
        self.b = nn.Parameter(torch.tensor(-0.1))
        self.fed = []

    def forward(self, x, s, c=None):
        self.fed.append((x.detach().clone(), s.detach().clone(), None if c is None else c.detach().clone()))
        return self.a * x + self.b


def test_time_ddpm_loss_is_the_mse_of_what_the_model_was_fed():
    x0 = torch.rand(6, 1, 28, 28, generator=gen(1)) * 2 - 1
    ac = linear_schedule().alphas_cumprod
    model = Recorder()
    loss = time_ddpm_loss(model, x0, ac, gen(7))
    (xt, s, c), = model.fed
    g = gen(7)                                            # the draws, replayed: t first, then ε
    t = torch.randint(0, T, (6,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    assert c is None and s.shape == (6,) and s.dtype == torch.float32
    torch.testing.assert_close(s, t.float() / T, rtol=0, atol=0)
    torch.testing.assert_close(xt, q_sample(x0, t, eps, ac), rtol=0, atol=0)
    torch.testing.assert_close(loss, ((0.3 * xt - 0.1 - eps) ** 2).mean())
    loss.backward()
    assert model.a.grad is not None


def test_time_ddpm_loss_draws_t_uniformly_over_every_step():
    x0 = torch.zeros(4000, 1, 1, 1)
    model = Recorder()
    time_ddpm_loss(model, x0, linear_schedule().alphas_cumprod, gen(2))
    k = model.fed[0][1].double() * T
    assert (k - k.round()).abs().max() < 1e-4 and k.round().min() == 0 and k.round().max() == T - 1
    assert k.mean().item() == pytest.approx((T - 1) / 2, abs=5)


@pytest.mark.parametrize("p, dropped", [(0.0, 0), (1.0, 8)])
def test_class_ddpm_loss_feeds_one_hot_rows_dropped_with_p_uncond(p, dropped):
    x0 = torch.rand(8, 1, 28, 28, generator=gen(1)) * 2 - 1
    y = torch.arange(8) % 10
    model = Recorder()
    ddpm.class_ddpm_loss(model, x0, y, linear_schedule().alphas_cumprod, gen(3), p_uncond=p)
    c = model.fed[0][2]
    assert c.shape == (8, 10) and int((c.sum(1) == 0).sum()) == dropped
    if not dropped:
        assert torch.equal(c, F.one_hot(y, 10).float())


# ---- sampling: one step --------------------------------------------------------------------------

def oracle(x0, schedule):
    """A perfect ε-model: knows the clean images x0, so ε̂ is the noise x_t holds."""
    def eps_fn(x, t):
        a = schedule.alpha_bar(t)
        return (x - a.sqrt() * x0) / (1 - a).sqrt()
    return eps_fn


@pytest.mark.parametrize("t", [0, 1, 150, 299])
def test_a_perfect_model_lands_on_the_data_in_one_step_to_minus_one(t):
    s = linear_schedule()
    x0 = torch.rand(2, 1, 28, 28, generator=gen(0)) * 2 - 1
    x_t = q_sample(x0, torch.tensor([t, t]), torch.randn(x0.shape, generator=gen(1)), s.alphas_cumprod)
    eps = oracle(x0, s)(x_t, t)
    z = torch.randn(x0.shape, generator=gen(2))
    torch.testing.assert_close(ancestral_step(x_t, eps, t, -1, s, z), x0, atol=1e-4, rtol=0)  # z unused at t′ = −1
    torch.testing.assert_close(ddim_step(x_t, eps, t, -1, s), x0, atol=1e-4, rtol=0)
    torch.testing.assert_close(ddpm.estimate_x0(x_t, eps, s.alpha_bar(t)), x0, atol=1e-4, rtol=0)


@pytest.mark.parametrize("t", [1, 2, 100, 299])
def test_the_ancestral_step_is_diffusers_ddpm_step_with_fixed_small_variance(t):
    s, ref = linear_schedule(), diffusers_scheduler()
    x = torch.randn(2, 1, 8, 8, generator=gen(t))
    eps = torch.randn(2, 1, 8, 8, generator=gen(t + 1000))
    for seed in (5, 6):       # the same noise: diffusers draws it from the generator, in the output's shape
        z = torch.randn(x.shape, generator=gen(seed))
        expected = ref.step(eps, t, x, generator=gen(seed)).prev_sample
        torch.testing.assert_close(ancestral_step(x, eps, t, t - 1, s, z), expected, atol=1e-5, rtol=1e-5)
    # the noise's scale alone: two noises differ by √β̃ (z1 − z2)
    z1, z2 = torch.randn(x.shape, generator=gen(5)), torch.randn(x.shape, generator=gen(6))
    a_t, a_p = s.alpha_bar(t), s.alpha_bar(t - 1)
    beta_tilde = (1 - a_t / a_p) * (1 - a_p) / (1 - a_t)
    torch.testing.assert_close(ancestral_step(x, eps, t, t - 1, s, z1) - ancestral_step(x, eps, t, t - 1, s, z2),
                               beta_tilde.sqrt() * (z1 - z2), atol=1e-6, rtol=1e-4)
    assert beta_tilde.item() == pytest.approx(ref._get_variance(t).item(), rel=1e-5)


def test_the_last_ancestral_step_adds_no_noise_and_is_diffusers_step_at_zero():
    s, ref = linear_schedule(), diffusers_scheduler()
    x = torch.randn(2, 1, 8, 8, generator=gen(1))
    eps = torch.randn(2, 1, 8, 8, generator=gen(2))
    out = ancestral_step(x, eps, 0, -1, s, torch.randn(x.shape, generator=gen(3)))
    torch.testing.assert_close(out, ancestral_step(x, eps, 0, -1, s, None), rtol=0, atol=0)
    torch.testing.assert_close(out, ref.step(eps, 0, x).prev_sample, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, ddpm.estimate_x0(x, eps, s.alpha_bar(0)), atol=1e-5, rtol=1e-5)


def test_a_strided_ancestral_step_is_diffusers_step_with_those_timesteps():
    s, ref = linear_schedule(), diffusers_scheduler()
    steps = strided_timesteps(10)
    ref.set_timesteps(timesteps=steps)
    x = torch.randn(2, 1, 8, 8, generator=gen(1))
    eps = torch.randn(2, 1, 8, 8, generator=gen(2))
    for t, t_prev in zip(steps, steps[1:] + [-1]):
        z = torch.randn(x.shape, generator=gen(t))
        expected = ref.step(eps, t, x, generator=gen(t)).prev_sample
        torch.testing.assert_close(ancestral_step(x, eps, t, t_prev, s, z), expected, atol=1e-5, rtol=1e-5)


# ---- sampling: the loops ---------------------------------------------------------------------

@pytest.mark.parametrize("num_steps", [T, 10, 1])
@pytest.mark.parametrize("deterministic", [False, True], ids=["ancestral", "ddim"])
def test_a_perfect_model_returns_the_data_through_the_whole_loop(num_steps, deterministic):
    s = linear_schedule()
    x0 = torch.rand(2, 1, 28, 28, generator=gen(0)) * 2 - 1
    x_T = torch.randn(x0.shape, generator=gen(1))
    timesteps = None if num_steps == T else strided_timesteps(num_steps)
    out, states = denoise(oracle(x0, s), x_T, s, timesteps, deterministic, gen(2), return_trajectory=True)
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=0)
    assert len(states) == num_steps + 1 and states[0] is x_T and states[-1] is out


def test_denoise_draws_fresh_noise_from_the_generator_except_at_the_last_step():
    s = linear_schedule(3, 0.1, 0.3)
    x_T = torch.zeros(1, 1, 2, 2)
    seen = []
    zero_eps = lambda x, t: seen.append(t) or torch.zeros_like(x)   # noqa: E731
    a = denoise(zero_eps, x_T, s, generator=gen(4))
    b = denoise(zero_eps, x_T, s, generator=gen(4))
    c = denoise(zero_eps, x_T, s, generator=gen(5))
    assert seen == [2, 1, 0] * 3
    assert torch.equal(a, b) and not torch.equal(a, c)
    g = gen(4)
    z2, z1 = torch.randn(x_T.shape, generator=g), torch.randn(x_T.shape, generator=g)
    x = ancestral_step(x_T, torch.zeros_like(x_T), 2, 1, s, z2)
    x = ancestral_step(x, torch.zeros_like(x), 1, 0, s, z1)
    torch.testing.assert_close(a, ancestral_step(x, torch.zeros_like(x), 0, -1, s, None), rtol=0, atol=0)


class StubClass(nn.Module):
    """ε(x, s, c) = x / 2 + s + (index of c's one + 1) / 10, 0 for a zero row; per row, no batch effects."""

    num_classes = 10
    in_channels = 1

    def __init__(self, ignore_c=False):
        super().__init__()
        self.ignore_c, self.p = ignore_c, nn.Parameter(torch.zeros(()))
        self.calls = []

    def forward(self, x, s, c):
        self.calls.append((x.shape[0], s.detach().clone()))
        k = torch.zeros(x.shape[0]) if self.ignore_c else (c * torch.arange(1, 11)).sum(1) / 10
        return x / 2 + s.view(-1, 1, 1, 1) + k.view(-1, 1, 1, 1)


def test_cfg_identities():
    model = StubClass()
    c = F.one_hot(torch.tensor([2, 7]), 10).float()
    x = torch.randn(2, 1, 4, 4, generator=gen(0))
    t = 120
    s = torch.full((2,), t / T)
    cond, uncond = model(x, s, c), model(x, s, torch.zeros_like(c))
    torch.testing.assert_close(cfg_eps(model, c, 1.0, T)(x, t), cond)
    torch.testing.assert_close(cfg_eps(model, c, 0.0, T)(x, t), uncond)
    torch.testing.assert_close(cfg_eps(model, c, 5.0, T)(x, t), uncond + 5.0 * (cond - uncond))
    blind = StubClass(ignore_c=True)
    for gamma in (0.0, 1.0, 3.0, 7.5):
        torch.testing.assert_close(cfg_eps(blind, c, gamma, T)(x, t), blind(x, s, c))
    batch, times = model.calls[2]                        # γ = 1: one batched pass of 2B rows, t / T per row
    assert batch == 4 and torch.equal(times, torch.full((4,), t / T))


def test_time_eps_feeds_t_over_T_once_per_image():
    model = Recorder()
    x = torch.randn(3, 1, 4, 4)
    time_eps(model, T)(x, 150)
    assert torch.equal(model.fed[0][1], torch.full((3,), 0.5))


# ---- strided timesteps -----------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2, 3, 10, 50, 299, 300])
def test_strided_timesteps_descend_from_T_minus_one_to_zero(n):
    steps = strided_timesteps(n)
    assert len(steps) == n == len(set(steps)) and all(isinstance(t, int) for t in steps)
    assert steps[0] == T - 1 and all(a > b for a, b in zip(steps, steps[1:]))
    if n > 1:
        assert steps[-1] == 0
    if n == T:
        assert steps == list(range(T - 1, -1, -1))


def test_strided_timesteps_reject_bad_counts():
    assert strided_timesteps(1) == [T - 1] and strided_timesteps(2) == [T - 1, 0]
    assert strided_timesteps(4, T=10) == [9, 6, 3, 0]
    for bad in (0, 2.5, T + 1):
        with pytest.raises(ValueError):
            strided_timesteps(bad)


# ---- the notebooks' entry points -------------------------------------------------------------

class StubTime(nn.Module):
    in_channels = 1

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(0.2))

    def forward(self, x, s):
        return self.p * x + s.view(-1, 1, 1, 1)


def test_sample_time_ddpm_with_the_notebooks_sampler_gives_the_courses_samples():
    from course_utils.solutions.part_b_ddpm import ddpm_sample

    calls = []

    def spy(*args):
        calls.append(1)
        return ddpm_sample(*args)

    model = StubTime()
    default, states = ddpm.sample_time_ddpm(model, 2, generator=gen(3), return_trajectory=True)
    mine, my_states = ddpm.sample_time_ddpm(model, 2, generator=gen(3), return_trajectory=True, sampler=spy)
    assert calls == [1] and default.shape == (2, 1, 28, 28)
    torch.testing.assert_close(mine, default, rtol=0, atol=0)
    assert len(states) == len(my_states) == T + 1
    torch.testing.assert_close(torch.stack(my_states), torch.stack(states), rtol=0, atol=0)
    with pytest.raises(TypeError):
        ddpm.sample_time_ddpm(model, 2, timesteps=[299, 0], sampler=spy)


def test_sample_class_ddpm_with_the_notebooks_sampler_gives_the_courses_samples():
    from course_utils.solutions.part_b_ddpm import ddpm_sample_cfg

    model = StubClass()
    default = ddpm.sample_class_ddpm(model, [1, 4], 3.0, generator=gen(3))
    mine = ddpm.sample_class_ddpm(model, [1, 4], 3.0, generator=gen(3), sampler=ddpm_sample_cfg)
    torch.testing.assert_close(mine, default, rtol=1e-5, atol=1e-5)   # two passes against one batched pass
    strided = ddpm.sample_class_ddpm(model, [1, 4], 3.0, timesteps=strided_timesteps(5), generator=gen(3))
    assert strided.shape == (2, 1, 28, 28) and torch.isfinite(strided).all()


# ---- training --------------------------------------------------------------------------------

def test_eps_prediction_overfits_one_batch(fake_mnist):
    """Four digits with fixed t and ε: the UNet can memorise the noise."""
    from course_utils.part_b.unet import TimeConditionalUNet

    x0 = ddpm.to_model(fake_mnist[0][:4])
    ac = linear_schedule().alphas_cumprod
    t, eps = torch.tensor([60, 120, 180, 240]), torch.randn(x0.shape, generator=gen(0))
    torch.manual_seed(0)
    model = TimeConditionalUNet(1, 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(120):
        loss = ddpm.eps_loss(model, x0, ac, t, eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.5                        # E ε² = 1
    assert sum(losses[-5:]) / 5 < 0.05 * losses[0]


def smoke(**overrides):
    from course_utils.common.profiles import get_profile

    return get_profile("smoke", **{"keep_epochs": (), **overrides})


def test_train_ddpm_on_one_batch_lowers_the_loss(fake_mnist, monkeypatch, tmp_path):
    from course_utils.part_b.recipes import train_ddpm

    monkeypatch.setenv("COURSE_CKPT_DIR", str(tmp_path))
    X = fake_mnist[0][:16]
    model, history = train_ddpm(X, None, smoke(ddpm_epochs=40, ddpm_lr=1e-2, images_per_epoch=16), "cpu")
    losses = history.losses
    assert len(losses) == 40 and (tmp_path / "smoke" / "ddpm_time" / "last.pt").exists()
    assert losses[0] > 0.8                        # E ε² = 1 for a model that knows nothing
    assert sum(losses[-5:]) / 5 < 0.6 * losses[0]
    assert type(model).__name__ == "TimeConditionalUNet"


class Crash(Exception):
    pass


def test_train_ddpm_killed_after_an_epoch_resumes_to_the_uninterrupted_run(fake_mnist, monkeypatch, tmp_path,
                                                                            capsys):
    from course_utils.part_b.recipes import train_ddpm

    monkeypatch.setenv("COURSE_CKPT_DIR", str(tmp_path))
    X = fake_mnist[0][:64]
    profile = smoke(ddpm_epochs=4)                # 2 batches of 16 per epoch
    full, full_history = train_ddpm(X, None, profile, "cpu", name="full")
    calls = []

    def killed_in_epoch_3(*args):
        calls.append(1)
        if len(calls) == 5:                       # the first batch of epoch 3
            raise Crash()
        return time_ddpm_loss(*args)

    with pytest.raises(Crash):
        train_ddpm(X, None, profile, "cpu", name="crash", loss=killed_in_epoch_3)
    torch.manual_seed(777)                        # a fresh kernel: the global RNG is elsewhere
    model, history = train_ddpm(X, None, profile, "cpu", name="crash")
    assert "Resuming from the checkpoint after epoch 2" in capsys.readouterr().out
    assert history.resumed_from == 2
    assert history.losses == full_history.losses  # exact, per step
    for k, v in full.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k


def test_train_ddpm_takes_the_notebooks_loss(fake_mnist, monkeypatch, tmp_path):
    """The solution of notebook 19's exercise, passed as loss=, draws as the course's loss does."""
    from course_utils.part_b.recipes import train_ddpm
    from course_utils.solutions.part_b_ddpm import ddpm_loss

    monkeypatch.setenv("COURSE_CKPT_DIR", str(tmp_path))
    X = fake_mnist[0][:32]
    calls = []

    def spy(*args):
        calls.append(1)
        return ddpm_loss(*args)

    profile = smoke(ddpm_epochs=2)
    _, mine = train_ddpm(X, None, profile, "cpu", name="mine", loss=spy)
    _, default = train_ddpm(X, None, profile, "cpu", name="default")
    assert len(calls) == 4 and mine.losses == default.losses


def test_train_ddpm_class_conditioned_runs_and_samples(fake_mnist, monkeypatch, tmp_path):
    from course_utils.part_b.recipes import train_ddpm

    monkeypatch.setenv("COURSE_CKPT_DIR", str(tmp_path))
    X, Y = fake_mnist[0][:32], fake_mnist[1][:32]
    model, history = train_ddpm(X, Y, smoke(ddpm_epochs=1), "cpu", class_conditioned=True)
    assert type(model).__name__ == "ClassConditionalUNet" and len(history.losses) == 2
    assert (tmp_path / "smoke" / "ddpm_class" / "last.pt").exists()
    samples = ddpm.sample_class_ddpm(model, [3, 7], 5.0, timesteps=strided_timesteps(4), generator=gen(0))
    assert samples.shape == (2, 1, 28, 28) and torch.isfinite(samples).all()
