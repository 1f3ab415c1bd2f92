"""The offline checks of notebook 19's DDPM exercises (course_utils.checks.part_b_ddpm): ddpm_schedule,
ddpm_loss, ddpm_sample and ddpm_sample_cfg.

For each: the reference solution and the course's own engine (part_b.ddpm) pass, a blank one is
"not written yet", mistakes beyond tests/variants/ fail with the hint that names them, and ``use``
hands back the student's code only when it passed. More variants: tests/variants/ddpm_*.py.
"""
import pytest
import torch
import torch.nn.functional as F

from course_utils import checks
from course_utils.part_b import ddpm

ALL = ["ddpm_schedule", "ddpm_loss", "ddpm_sample", "ddpm_sample_cfg"]


class Given:
    """The engine's Schedule interface on a given ᾱ (the checks pass made-up ones)."""

    def __init__(self, ac):
        self.alphas_cumprod, self.T = ac, len(ac)

    def alpha_bar(self, t):
        return self.alphas_cumprod[t] if t >= 0 else torch.ones((), dtype=self.alphas_cumprod.dtype)


def course_schedule(T=300, beta_start=1e-4, beta_end=0.02):
    s = ddpm.linear_schedule(T, beta_start, beta_end)
    return s.betas, s.alphas, s.alphas_cumprod


def course_sample(model, x_T, alphas_cumprod, generator=None):
    return ddpm.denoise(ddpm.time_eps(model, len(alphas_cumprod)), x_T, Given(alphas_cumprod), generator=generator)


def course_sample_cfg(model, c, x_T, alphas_cumprod, guidance, generator=None):
    eps = ddpm.cfg_eps(model, c, guidance, len(alphas_cumprod))
    return ddpm.denoise(eps, x_T, Given(alphas_cumprod), generator=generator)


COURSE = {"ddpm_schedule": course_schedule, "ddpm_loss": ddpm.time_ddpm_loss, "ddpm_sample": course_sample,
          "ddpm_sample_cfg": course_sample_cfg}


def reference(name):
    return checks.EXERCISES[name].load_reference()


def blank_function(*args, **kwargs):
    raise NotImplementedError


# ---- mistakes and right versions beyond tests/variants/ ------------------------------------

def schedule_float64(T=300, beta_start=1e-4, beta_end=0.02):
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return betas, 1 - betas, torch.cumprod(1 - betas, 0)


def loss_with(bug):
    def ddpm_loss(model, x0, alphas_cumprod, generator=None):
        T = len(alphas_cumprod)
        t = torch.randint(0, T, (x0.shape[0],), generator=generator)
        eps = (torch.rand if bug == "uniform" else torch.randn)(x0.shape, generator=generator)
        if bug == "one eps":
            eps = torch.randn(x0.shape[1:], generator=generator).expand_as(x0)
        a = alphas_cumprod[t].reshape(-1, 1, 1, 1)
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
        if bug == "swapped":
            x_t = (1 - a).sqrt() * x0 + a.sqrt() * eps
        if bug == "noise only":
            x_t = eps
        if bug == "no t":
            return F.mse_loss(model(x_t), eps)
        return F.mse_loss(model(x_t, t / T), eps)
    return ddpm_loss


def sampler_with(bug):
    def ddpm_sample(model, x_T, alphas_cumprod, generator=None):
        T = len(alphas_cumprod)
        x = x_T * 1.0 if bug != "renoised" else x_T * 0.5
        for t in range(T - 1, -1, -1):
            a_t = alphas_cumprod[t]
            a_p = alphas_cumprod[t - 1] if t > 0 else torch.tensor(1.0)
            s = t / T if bug == "float t" else torch.full((x.shape[0],), t / T)
            eps = model(x, s)
            alpha = a_t / a_p
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            mean = a_p.sqrt() * (1 - alpha) / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_p) / (1 - a_t) * x
            sigma = ((1 - alpha) * (1 - a_p) / (1 - a_t)).sqrt()
            if bug == "reseeded":
                z = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
            elif bug == "one z per image":
                z = torch.randn(x.shape[0], 1, 1, 1, generator=generator).expand_as(x)
            elif bug == "same z for all":
                z = torch.randn(x.shape[1:], generator=generator).expand_as(x)
            elif bug == "eps as z":
                z = eps
            else:
                z = torch.randn(x.shape, generator=generator)
            x = mean + sigma * z if t > 0 else mean
        return (x, x0) if bug == "tuple" else x
    return ddpm_sample


def cfg_with(bug):
    def ddpm_sample_cfg(model, c, x_T, alphas_cumprod, guidance, generator=None):
        T = len(alphas_cumprod)
        x = x_T
        for t in range(T - 1, -1, -1):
            s = torch.full((x.shape[0],), t / T)
            if bug == "no t":
                e_c, e_u = model(x, c), model(x, torch.zeros_like(c))
            elif bug == "no c":
                e_c, e_u = model(x, s, c), model(x, s)
            elif bug == "labels":
                e_c, e_u = model(x, s, c.argmax(1)), model(x, s, torch.zeros(len(c), dtype=torch.long))
            else:
                e_c, e_u = model(x, s, c), model(x, s, torch.zeros_like(c))
            eps = e_u + guidance * (e_c - e_u)
            a_t = alphas_cumprod[t]
            a_p = alphas_cumprod[t - 1] if t > 0 else torch.tensor(1.0)
            alpha = a_t / a_p
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            x = a_p.sqrt() * (1 - alpha) / (1 - a_t) * x0 + alpha.sqrt() * (1 - a_p) / (1 - a_t) * x
            if t > 0:
                x = x + ((1 - alpha) * (1 - a_p) / (1 - a_t)).sqrt() * torch.randn(x.shape, generator=generator)
        return x
    return ddpm_sample_cfg


WRONG = [
    ("ddpm_schedule", schedule_float64, "expected torch.float32"),
    ("ddpm_loss", loss_with("uniform"), "not a uniform one (torch.rand)"),
    ("ddpm_loss", loss_with("one eps"), "an independent noise image per digit"),
    ("ddpm_loss", loss_with("swapped"), "√ᾱ_t and √(1 − ᾱ_t) swapped"),
    ("ddpm_loss", loss_with("noise only"), "not the noise ε alone"),
    ("ddpm_loss", loss_with("no t"), "called without t"),
    ("ddpm_sample", sampler_with("renoised"), "start the loop from x = x_T"),
    ("ddpm_sample", sampler_with("reseeded"), "repeats the previous step's"),
    ("ddpm_sample", sampler_with("one z per image"), "one independent normal number per pixel"),
    ("ddpm_sample", sampler_with("same z for all"), "an independent noise image per digit"),
    ("ddpm_sample", sampler_with("eps as z"), "not the model's ε̂"),
    ("ddpm_sample", sampler_with("tuple"), "return the final x alone"),
    ("ddpm_sample_cfg", cfg_with("no t"), "without t"),
    ("ddpm_sample_cfg", cfg_with("no c"), "called without c"),
    ("ddpm_sample_cfg", cfg_with("labels"), "c stays one-hot float rows"),
]

RIGHT = [
    ("ddpm_sample", sampler_with("float t")),     # t / T as a Python float: one value for the batch
    ("ddpm_sample", sampler_with(None)),
    ("ddpm_sample_cfg", cfg_with(None)),
    ("ddpm_loss", loss_with(None)),
    ("ddpm_schedule", course_schedule),
]


# ---- the tests ---------------------------------------------------------------------------

def test_every_ddpm_exercise_is_registered_to_its_solution_in_notebook_19():
    for name in ALL:
        assert checks.EXERCISES[name].reference == f"solutions.part_b_ddpm:{name}"
        assert checks.EXERCISES[name].notebook == "19"


@pytest.mark.parametrize("name", ALL)
def test_the_reference_and_the_courses_own_function_pass(name):
    for fn in (reference(name), COURSE[name]):
        result = checks.run(name, fn)
        assert result.passed, result.message


@pytest.mark.parametrize("name", ALL)
def test_a_blank_student_is_not_written_yet(name):
    result = checks.run(name, blank_function)
    assert not result.passed
    assert "not written yet" in result.message


@pytest.mark.parametrize("name, student, hint", WRONG, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(WRONG)])
def test_a_typical_mistake_fails_with_its_hint(name, student, hint):
    result = checks.run(name, student)
    assert not result.passed
    assert hint in result.message, result.message


@pytest.mark.parametrize("name, student", RIGHT, ids=[f"{n}-{i}" for i, (n, _) in enumerate(RIGHT)])
def test_a_right_student_written_otherwise_passes(name, student):
    result = checks.run(name, student)
    assert result.passed, result.message


@pytest.mark.parametrize("name", ALL)
def test_use_returns_the_student_only_when_it_passed(name, capsys):
    wrong = next(student for n, student, _ in WRONG if n == name)
    assert checks.use(name, wrong) is reference(name)
    assert "the cells below use the course's" in capsys.readouterr().out
    own = next(student for n, student in RIGHT if n == name)
    assert checks.use(name, own) is own


def test_the_checks_leave_the_global_rng_alone_and_are_deterministic():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = checks.run("ddpm_sample", sampler_with("reseeded"))
    assert checks.run("ddpm_loss", loss_with(None)).passed
    assert torch.equal(torch.rand(3), expected)
    assert checks.run("ddpm_sample", sampler_with("reseeded")).message == first.message
