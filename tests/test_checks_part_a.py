"""Part A's offline checks: the course's solutions pass, blanks and typical mistakes fail with the
hint that names the mistake, ``use`` falls back to the solution, and the checks are deterministic
and leave the notebook's RNG alone. (tests/variants/ holds the alternative correct versions and
more mistakes of every exercise.)"""
import pytest
import torch

from course_utils import checks
from course_utils.part_a import diffusion
from course_utils.part_a.diffusion import add_jump_variance, watch
from course_utils.part_a.noise_models import OracleNoiseModel
from course_utils.part_a.schedule import if_scheduler, strided_timesteps, use_timesteps
from course_utils.solutions import part_a as solutions

PART_A = ["forward", "one_step_denoise", "iterative_denoise", "iterative_denoise_cfg", "sdedit", "inpaint",
          "anagram_eps", "hybrid_eps"]


def reference(name):
    return checks.EXERCISES[name].load_reference()


def loop_with(noise):
    """The §1.4 loop with the noise of each step t → t′ computed by ``noise(ac, t, t_prev, variance, mean, eps)``."""
    def iterative_denoise(model, im_noisy, i_start, cond, timesteps, generator=None):
        ac, x = model.alphas_cumprod, im_noisy
        for t, t_prev in zip(timesteps[i_start:-1], timesteps[i_start + 1:]):
            eps, var = model(x, t, cond)
            x0 = (x - (1 - ac[t]).sqrt() * eps) / ac[t].sqrt()
            alpha = ac[t] / ac[t_prev]
            x = ac[t_prev].sqrt() * (1 - alpha) / (1 - ac[t]) * x0 + alpha.sqrt() * (1 - ac[t_prev]) / (1 - ac[t]) * x
            if t_prev > 0:
                x = noise(ac, t, t_prev, var, x, eps)
        return x
    return iterative_denoise


def cfg_loop_with(variance_of):
    def iterative_denoise_cfg(model, im_noisy, i_start, cond, uncond, scale, timesteps, generator=None):
        ac, x = model.alphas_cumprod, im_noisy
        for t, t_prev in zip(timesteps[i_start:-1], timesteps[i_start + 1:]):
            (e_c, v_c), (e_u, v_u) = model(x, t, cond), model(x, t, uncond)
            eps = e_u + scale * (e_c - e_u)
            x0 = (x - (1 - ac[t]).sqrt() * eps) / ac[t].sqrt()
            alpha = ac[t] / ac[t_prev]
            x = ac[t_prev].sqrt() * (1 - alpha) / (1 - ac[t]) * x0 + alpha.sqrt() * (1 - ac[t_prev]) / (1 - ac[t]) * x
            if t_prev > 0:
                x = add_jump_variance(ac, t, t_prev, None if v_c is None else variance_of(v_c, v_u), x)
        return x
    return iterative_denoise_cfg


WRONG = [
    ("iterative_denoise", loop_with(lambda ac, t, tp, v, x, e: x + v.abs() * torch.randn_like(x)),
     "not σ: turn it into σ"),
    ("iterative_denoise", loop_with(lambda ac, t, tp, v, x, e: add_jump_variance(ac, t, tp, v, torch.zeros_like(x))
                                    * 0 + x + (1 - ac[t] / ac[tp]).sqrt() * e), "not the model's ε̂"),
    ("iterative_denoise", loop_with(lambda ac, t, tp, v, x, e: add_jump_variance(ac, tp, t, v, x)), "NaN"),
    ("iterative_denoise", loop_with(lambda ac, t, tp, v, x, e: x + torch.rand_like(x) * 0.1),
     "posterior mean + σ z"),
    ("iterative_denoise_cfg", cfg_loop_with(lambda v_c, v_u: (v_c + v_u) / 2), "not the average of both"),
    ("iterative_denoise_cfg", cfg_loop_with(lambda v_c, v_u: v_u), "conditional pass"),
    ("sdedit", lambda model, im, i_start, cond, uncond, scale, timesteps, generator=None: solutions.sdedit(
        model, im, i_start + 1, cond, uncond, scale, timesteps, generator), "i_start + 1"),
    ("one_step_denoise", lambda model, x_t, t, cond: model(x_t, t, cond), "return x̂_0 alone"),
    ("forward", lambda im, t, alphas_cumprod=None, noise=None, generator=None: im, "is wrong"),
]


@pytest.mark.parametrize("name", PART_A)
def test_the_reference_passes(name):
    assert checks.EXERCISES[name].reference == f"solutions.part_a:{name}"
    result = checks.run(name, reference(name))
    assert result.passed, result.message


@pytest.mark.parametrize("name", PART_A)
def test_a_blank_exercise_is_not_written_yet(name):
    def blank(*args, **kwargs):
        raise NotImplementedError

    result = checks.run(name, blank)
    assert not result.passed and "not written yet" in result.message


@pytest.mark.parametrize("name, wrong, hint", WRONG, ids=[f"{n}-{h[:24]}" for n, _, h in WRONG])
def test_a_typical_mistake_fails_with_its_hint(name, wrong, hint):
    result = checks.run(name, wrong)
    assert not result.passed
    assert hint in result.message, result.message


@pytest.mark.parametrize("name", PART_A)
def test_use_falls_back_to_the_reference(name, capsys):
    def blank(*args, **kwargs):
        raise NotImplementedError

    assert checks.use(name, blank) is reference(name)
    assert "the cells below use the course's" in capsys.readouterr().out
    assert getattr(checks, name)(reference(name)) is reference(name)
    assert "every check passed" in capsys.readouterr().out


def test_checks_are_deterministic_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = [checks.run(name, reference(name)).message for name in ("iterative_denoise", "sdedit")]
    assert torch.equal(torch.get_rng_state(), before)
    wrong = WRONG[0][1]
    assert checks.run("iterative_denoise", wrong).message == checks.run("iterative_denoise", wrong).message
    assert first == [checks.run(name, reference(name)).message for name in ("iterative_denoise", "sdedit")]


@pytest.mark.parametrize("learned", [True, False], ids=["learned range", "fixed"])
def test_add_jump_variance_is_what_the_scheduler_adds(learned):
    """The stateless helper the students call equals the scheduler-based path (diffusers'
    DDPMScheduler._get_variance with the strided timesteps set), on every jump."""
    ts = strided_timesteps()
    scheduler = use_timesteps(if_scheduler(variance_type="learned_range" if learned else "fixed_small"), ts)
    image = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    variance = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1 if learned else None
    for t, t_prev in zip(ts[:-2], ts[1:-1]):
        ours = add_jump_variance(scheduler.alphas_cumprod, t, t_prev, variance, image, torch.Generator().manual_seed(t))
        z = torch.randn(image.shape, generator=torch.Generator().manual_seed(t))
        scheduled = scheduler._get_variance(t, variance)   # log σ² (learned range) or σ² (fixed)
        theirs = image + (torch.exp(0.5 * scheduled) if learned else scheduled.sqrt()) * z
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)


def test_the_solutions_reproduce_the_course_loops():
    """Same model, same generator: the notebooks' figures do not change with the student's loops."""
    x0 = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model = checks.part_a.ToyModel((3, 16, 16))
    c, u = torch.randn(1, 4, 8) + 0.5, torch.randn(1, 4, 8) - 0.5
    ts = strided_timesteps(990, 110)
    g = lambda: torch.Generator().manual_seed(3)   # noqa: E731
    pairs = [
        (solutions.iterative_denoise(model, x0, 2, c, ts, g()), diffusion.iterative_denoise(model, x0, 2, c, ts, g(), progress=False)),
        (solutions.iterative_denoise_cfg(model, x0, 2, c, u, 5.0, ts, g()),
         diffusion.iterative_denoise_cfg(model, x0, 2, c, u, 5.0, ts, g(), progress=False)),
    ]
    from course_utils.part_a import edits
    mask = edits.box_mask(0, 0, 16, 8, size=16)
    pairs.append((solutions.sdedit(model, x0, 3, c, u, 5.0, ts, g()), edits.sdedit(model, x0, 3, c, u, 5.0, ts, g(), progress=False)))
    pairs.append((solutions.inpaint(model, x0, mask, c, u, 5.0, ts, g()),
                  edits.inpaint(model, x0, mask, c, u, 5.0, ts, g(), progress=False)))
    for ours, course in pairs:
        torch.testing.assert_close(ours, course, rtol=0, atol=0)


def test_watch_records_the_states_a_loop_visits():
    x0 = torch.rand(1, 3, 16, 16) * 2 - 1
    oracle = OracleNoiseModel(x0)
    ts = strided_timesteps(990, 90)
    im_noisy = diffusion.forward(x0, ts[2], generator=torch.Generator().manual_seed(0))
    watched = watch(oracle, total=len(ts) - 3, progress=False)
    out = solutions.iterative_denoise(watched, im_noisy, 2, None, ts, torch.Generator().manual_seed(1))
    assert [t for t, _ in watched.states] == ts[2:-1]
    assert torch.equal(watched.states[0][1], im_noisy)
    plain, kept = diffusion.iterative_denoise(oracle, im_noisy, 2, None, ts, torch.Generator().manual_seed(1),
                                              keep_every=1, progress=False)
    torch.testing.assert_close(out, plain, rtol=0, atol=0)
    assert len(watched.states) == len(kept) == len(ts) - 3
    assert all(torch.equal(a, b) and s == r for (s, a), (r, b) in zip(watched.states, kept))
