"""The offline checks of Part B's algorithm exercises (course_utils.checks.part_b_flow): add_noise
(13), time_flow_loss and euler_sample (16), class_flow_loss and euler_sample_cfg (17); the networks'
checks are tested in tests/test_checks_part_b_networks.py.

For each exercise: the reference solution and the course's own function pass, a blank one is "not
written yet", typical wrong ones fail with the hint that names their mistake, right ones written
otherwise (other draw order, global RNG, other t shapes, separate passes) pass, and ``use`` hands
back the student's code only when it passed. More variants: tests/variants/.
"""
import pytest
import torch
import torch.nn.functional as F

from course_utils import checks
from course_utils.part_b import noising, sampling, train

ALL = ["add_noise", "time_flow_loss", "euler_sample", "class_flow_loss", "euler_sample_cfg"]
COURSE = {"add_noise": noising.add_noise, "time_flow_loss": train.time_flow_loss,
          "euler_sample": sampling.euler_sample, "class_flow_loss": train.class_flow_loss,
          "euler_sample_cfg": sampling.euler_sample_cfg}


def reference(name):
    return checks.EXERCISES[name].load_reference()


def blank_function(*args, **kwargs):
    raise NotImplementedError


# ---- students: right (bug=None) and wrong ---------------------------------------------------

def noise_with(bug=None):
    def add_noise(x, sigma, noise=None, generator=None):
        if noise is None and bug == "global rng":     # right: torch's global RNG
            noise = torch.randn_like(x)
        if noise is None or bug == "ignores noise":
            noise = torch.randn(x.shape, generator=generator)
        return x + (sigma ** 2 if bug == "sigma squared" else sigma) * noise
    return add_noise


def time_loss(bug=None):
    def time_flow_loss(model, x1, generator=None):
        B = x1.shape[0]
        if bug == "t first":                          # right: another draw order
            t = torch.rand(B, generator=generator)
            x0 = torch.randn(x1.shape, generator=generator)
        elif bug == "global rng":                     # right: torch.randn_like, t of shape (B, 1, 1, 1)
            x0 = torch.randn_like(x1)
            t = torch.rand(B, 1, 1, 1)
        else:
            x0 = torch.randn(x1.shape, generator=generator)
            t = torch.rand(1 if bug == "one t" else B, generator=generator)
        if bug == "normal t":
            t = torch.randn(B, generator=generator)
        tb = t.reshape(-1, 1, 1, 1)
        xt = (1 - tb) * x1 + tb * x0 if bug == "swapped" else (1 - tb) * x0 + tb * x1
        target = x0 - x1 if bug == "sign" else x1 - x0
        u = model(xt, t)
        return ((u - target) ** 2).sum() if bug == "sum" else F.mse_loss(u, target)
    return time_flow_loss


def class_loss(bug=None):
    def class_flow_loss(model, x1, y, generator=None, p_uncond=0.1):
        B = x1.shape[0]
        x0 = torch.randn(x1.shape, generator=generator)
        t = torch.rand(B, generator=generator)
        keep = torch.rand(1 if bug == "one coin" else B, generator=generator).expand(B) >= p_uncond
        if bug == "bernoulli":      # right too: another draw of the mask
            keep = torch.bernoulli(torch.full((B,), 1 - p_uncond), generator=generator).bool()
        if bug == "first rows":
            keep = torch.arange(B) >= round(p_uncond * B)
        if bug == "inverted":
            keep = ~keep
        if bug == "before one-hot":
            c = F.one_hot(y * keep, 10).float()
        elif bug == "labels":
            c = y * keep
        else:
            c = F.one_hot(y, 10).float() * keep[:, None]
        tb = t[:, None, None, None]
        return F.mse_loss(model((1 - tb) * x0 + tb * x1, t, c), x1 - x0)
    return class_flow_loss


def euler(bug=None):
    def euler_sample(model, x0, num_steps):
        x, dt = (x0.clone() if bug == "in place, copied" else x0), 1.0 / num_steps
        for i in range(num_steps):
            t = torch.full((x0.shape[0],), (i + 1) * dt if bug == "end" else i * dt)
            if bug == "float t":                      # right: the time as a Python float
                t = i * dt
            u = model(x0 if bug == "at x0" else x, t)
            if bug == "no dt":
                x = x + u
            elif bug in ("in place", "in place, copied"):
                x += dt * u
            else:
                x = x + dt * u
        return x
    return euler_sample


def cfg(bug=None):
    def euler_sample_cfg(model, c, x0, num_steps, guidance):
        uncond = torch.zeros_like(c)
        if bug == "class 0":
            uncond[:, 0] = 1.0
        x, B = x0, x0.shape[0]
        for i in range(num_steps):
            t = torch.full((B,), i / num_steps)
            if bug == "batched":                      # right: one pass of 2B images
                u_cond, u_uncond = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([c, uncond])).chunk(2)
            else:
                u_cond, u_uncond = model(x, t, c), model(x, t, uncond)
            if bug == "from cond":
                u = u_cond + guidance * (u_cond - u_uncond)
            elif bug == "swapped":
                u = u_cond + guidance * (u_uncond - u_cond)
            else:
                u = u_uncond + guidance * (u_cond - u_uncond)
            x = x + u / num_steps
        return x
    return euler_sample_cfg


WRONG = [
    ("add_noise", noise_with("sigma squared"), "not σ²"),
    ("add_noise", noise_with("ignores noise"), "when noise is given, use it"),
    ("time_flow_loss", time_loss("swapped"), "x0 and x1 swapped"),
    ("time_flow_loss", time_loss("sign"), "the target velocity is x1 − x0"),
    ("time_flow_loss", time_loss("normal t"), "not a normal one"),
    ("time_flow_loss", time_loss("one t"), "draw one t per image"),
    ("time_flow_loss", time_loss("sum"), "do not sum it"),
    ("class_flow_loss", class_loss("before one-hot"), "dropped after one-hot encoding, not before"),
    ("class_flow_loss", class_loss("labels"), "labels, not one-hot rows"),
    ("class_flow_loss", class_loss("inverted"), "the probability of dropping the class, not of keeping it"),
    ("class_flow_loss", class_loss("one coin"), "one coin for the whole batch"),
    ("class_flow_loss", class_loss("first rows"), "drop at random"),
    ("euler_sample", euler("no dt"), "the step size 1/T"),
    ("euler_sample", euler("end"), "at the start of each step"),
    ("euler_sample", euler("at x0"), "at the current x"),
    ("euler_sample", euler("in place"), "x0 was changed in place"),
    ("euler_sample_cfg", cfg("from cond"), "start from the unconditional velocity"),
    ("euler_sample_cfg", cfg("swapped"), "u_cond and u_uncond are swapped"),
    ("euler_sample_cfg", cfg("class 0"), "the all-zero row"),
]

RIGHT = [
    ("add_noise", noise_with()),
    ("add_noise", noise_with("global rng")),
    ("time_flow_loss", time_loss()),
    ("time_flow_loss", time_loss("t first")),
    ("time_flow_loss", time_loss("global rng")),
    ("class_flow_loss", class_loss()),
    ("class_flow_loss", class_loss("bernoulli")),
    ("euler_sample", euler()),
    ("euler_sample", euler("float t")),
    ("euler_sample", euler("in place, copied")),
    ("euler_sample_cfg", cfg()),
    ("euler_sample_cfg", cfg("batched")),
]


# ---- the tests ---------------------------------------------------------------------------

def test_every_part_b_algorithm_is_registered_to_its_solution():
    for name in ALL:
        assert checks.EXERCISES[name].reference == f"solutions.part_b_flow:{name}"
    assert {checks.EXERCISES[name].notebook for name in ALL} == {"13", "16", "17"}
    assert not {"euler_integrate", "cfg_velocity"} & set(checks.EXERCISES)


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


@pytest.mark.parametrize("name, student, hint", WRONG,
                         ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(WRONG)])
def test_a_typical_mistake_fails_with_its_hint(name, student, hint):
    result = checks.run(name, student)
    assert not result.passed
    assert hint in result.message, result.message


@pytest.mark.parametrize("name, student", RIGHT, ids=[f"{name}-{i}" for i, (name, _) in enumerate(RIGHT)])
def test_a_right_student_written_otherwise_passes(name, student):
    result = checks.run(name, student)
    assert result.passed, result.message


@pytest.mark.parametrize("name", ALL)
def test_use_returns_the_student_only_when_it_passed(name, capsys):
    wrong = next(student for n, student, _ in WRONG if n == name)
    assert checks.use(name, wrong) is reference(name)
    assert "the cells below use the course's" in capsys.readouterr().out
    assert checks.use(name, reference(name)) is reference(name)
    own = next(student for n, student in RIGHT if n == name)
    assert checks.use(name, own) is own


def test_the_checks_leave_the_global_rng_alone_and_are_deterministic():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = checks.run("class_flow_loss", class_loss("inverted"))
    assert checks.run("time_flow_loss", time_loss("global rng")).passed
    assert torch.equal(torch.rand(3), expected)
    assert checks.run("class_flow_loss", class_loss("inverted")).message == first.message
