"""The offline checks of Part B (course_utils.checks.part_b_networks and part_b_flow).

For each exercise: the course's own code passes, a blank one is "not written yet", typical wrong
ones fail with the hint that names their mistake, and ``use`` hands back the student's code only
when it passed. The students below have the reference's signature, as in the student notebooks.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import checks
from course_utils.part_b.blocks import Conv, ConvBlock, DownConv, FCBlock, UpBlock
from course_utils.part_b.unet import UnconditionalUNet

NETWORKS = ["Flatten", "Unflatten", "ConvBlock", "DownBlock", "UpBlock", "FCBlock",
            "UnconditionalUNet", "TimeConditionalUNet", "ClassConditionalUNet"]
ALGORITHMS = ["time_flow_loss", "class_flow_loss", "euler_integrate", "cfg_velocity"]
ALL = NETWORKS + ALGORITHMS


def reference(name):
    return checks.EXERCISES[name].load_reference()


# ---- blank students ----------------------------------------------------------------------

def blank_function(*args, **kwargs):
    raise NotImplementedError


class BlankBlock(nn.Sequential):
    def __init__(self, *args):
        raise NotImplementedError


class BlankUNet(nn.Module):
    def __init__(self, in_channels=1, num_hiddens=128):
        raise NotImplementedError

    def trunk(self, x, modulate_unflatten=None, modulate_up1=None):
        raise NotImplementedError

    def forward(self, x):            # given in the student notebook
        return self.trunk(x)


class BlankTrunk(UnconditionalUNet):     # __init__ written, trunk not yet
    def trunk(self, x, modulate_unflatten=None, modulate_up1=None):
        raise NotImplementedError


class BlankTimeUNet(UnconditionalUNet):
    def __init__(self, in_channels=1, num_hiddens=64):
        raise NotImplementedError

    def forward(self, x, t):
        raise NotImplementedError


class BlankClassUNet(UnconditionalUNet):
    def __init__(self, in_channels=1, num_classes=10, num_hiddens=64):
        raise NotImplementedError

    def forward(self, x, t, c=None):
        raise NotImplementedError


BLANK = {name: BlankBlock for name in NETWORKS[:6]} | {
    "UnconditionalUNet": BlankUNet, "TimeConditionalUNet": BlankTimeUNet,
    "ClassConditionalUNet": BlankClassUNet} | {name: blank_function for name in ALGORITHMS}


# ---- wrong blocks ------------------------------------------------------------------------

def sequential(make):
    """A block class whose __init__(*args) builds nn.Sequential(*make(*args))."""
    class Block(nn.Sequential):
        def __init__(self, *args):
            super().__init__(*make(*args))
    return Block


class ReLUConv(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(nn.Conv2d(i, o, 3, 1, 1), nn.BatchNorm2d(o), nn.ReLU())


WRONG_BLOCKS = [
    ("Flatten", sequential(lambda: [nn.MaxPool2d(7), nn.GELU()]), "not take its maximum"),
    ("Flatten", sequential(lambda: [nn.AvgPool2d(7)]), "GELU after the pooling is missing"),
    ("Flatten", sequential(lambda: [nn.GELU(), nn.AvgPool2d(7)]), "after the pooling, not before"),
    ("Flatten", sequential(lambda: [nn.Flatten()]), "nn.Flatten only reshapes"),
    ("Unflatten", sequential(lambda c: [nn.Conv2d(c, c, 7, 7, 0), nn.BatchNorm2d(c), nn.GELU()]),
     "the handout's has ConvTranspose2d(6→6, kernel 7, stride 7, padding 0)"),
    ("Unflatten", sequential(lambda c: [nn.ConvTranspose2d(c, c, 7, 7, 0), nn.GELU()]),
     "lacks the handout's BatchNorm2d(6)"),
    ("Unflatten", sequential(lambda c: [nn.ConvTranspose2d(c, c, 4, 2, 1), nn.BatchNorm2d(c), nn.GELU()]),
     "kernel 7, stride 7"),
    ("ConvBlock", sequential(lambda i, o: [Conv(i, o), Conv(i, o)]), "the handout's has Conv2d(5→5"),
    ("ConvBlock", sequential(lambda i, o: [Conv(i, o)]), "the handout's continues with Conv2d(5→5"),
    ("ConvBlock", sequential(lambda i, o: [ReLUConv(i, o), ReLUConv(o, o)]), "is ReLU; the handout's has GELU"),
    ("DownBlock", sequential(lambda i, o: [ConvBlock(i, o), DownConv(o, o)]),
     "the handout's has Conv2d(3→5, kernel 3, stride 2, padding 1)"),
    ("DownBlock", sequential(lambda i, o: [DownConv(i, o)]), "continues with Conv2d(5→5"),
    ("UpBlock", sequential(lambda i, o: [nn.ConvTranspose2d(i, o, 3, 2, 1), nn.BatchNorm2d(o), nn.GELU(),
                                         ConvBlock(o, o)]), "kernel 4, stride 2, padding 1"),
    ("UpBlock", sequential(lambda i, o: [nn.Upsample(scale_factor=2), Conv(i, o), ConvBlock(o, o)]),
     "is Upsample; the handout's has ConvTranspose2d(3→5, kernel 4"),
    ("FCBlock", sequential(lambda i, o: [nn.Linear(i, o), nn.Linear(o, o)]), "lacks the handout's GELU"),
    ("FCBlock", sequential(lambda i, o: [nn.Linear(i, o), nn.ReLU(), nn.Linear(o, o)]), "is ReLU"),
    ("FCBlock", sequential(lambda i, o: [nn.Linear(i, o), nn.GELU(), nn.Linear(i, o)]), "Linear(8→8)"),
]


class NamedConvBlock(nn.Module):
    """Right, but with its own names and forward: the weights are matched by shape."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.first, self.second = Conv(in_channels, out_channels), Conv(out_channels, out_channels)

    def forward(self, x):
        return self.second(self.first(x))


# ---- wrong UNets -------------------------------------------------------------------------

class Trunk(UnconditionalUNet):
    """The course's UNet with a trunk of its own; the variants change one step."""

    def cat(self, a, b):
        return torch.cat([a, b], dim=1)

    def trunk(self, x, modulate_unflatten=None, modulate_up1=None):
        x0 = self.conv_in(x)
        x1 = self.down1(x0)
        x2 = self.down2(x1)
        h = self.unflatten(self.flatten(x2))
        if modulate_unflatten is not None:
            h = modulate_unflatten(h)
        h = self.up1(self.cat(x2, h))
        if modulate_up1 is not None:
            h = modulate_up1(h)
        h = self.up2(self.cat(x1, h))
        return self.head(self.conv_out(self.cat(x0, h)))


class SkipOnBatch(Trunk):
    def cat(self, a, b):
        return torch.cat([a, b], dim=0)


class SkipSwapped(Trunk):
    def cat(self, a, b):
        return torch.cat([b, a], dim=1)


class IgnoresModulation(Trunk):
    def trunk(self, x, modulate_unflatten=None, modulate_up1=None):
        return super().trunk(x)


class NarrowUp1(UnconditionalUNet):
    def __init__(self, in_channels=1, num_hiddens=128):
        super().__init__(in_channels, num_hiddens)
        self.up1 = UpBlock(2 * num_hiddens, num_hiddens)


class Time(UnconditionalUNet):
    """A student's time-conditioned UNet; the variants change how t enters."""

    def __init__(self, in_channels=1, num_hiddens=64):
        super().__init__(in_channels, num_hiddens)
        self.fc1_t = FCBlock(1, 2 * num_hiddens)
        self.fc2_t = FCBlock(1, num_hiddens)

    def column(self, t, x):
        return torch.as_tensor(t, dtype=x.dtype).expand(x.shape[0]).reshape(-1, 1)

    def modulate(self, h, e):
        return h * e

    def forward(self, x, t):
        t = self.column(t, x)
        t1, t2 = self.fc1_t(t)[:, :, None, None], self.fc2_t(t)[:, :, None, None]
        return self.trunk(x, lambda h: self.modulate(h, t1), lambda h: self.modulate(h, t2))


class TimeOtherOrder(Time):
    """Right: fc2_t registered before fc1_t."""

    def __init__(self, in_channels=1, num_hiddens=64):
        UnconditionalUNet.__init__(self, in_channels, num_hiddens)
        self.fc2_t = FCBlock(1, num_hiddens)
        self.fc1_t = FCBlock(1, 2 * num_hiddens)


class TimeAdded(Time):
    def modulate(self, h, e):
        return h + e


class TimeNotReshaped(Time):
    def column(self, t, x):
        return torch.as_tensor(t, dtype=x.dtype).expand(x.shape[0])


class TimeNormalisedTwice(Time):
    def column(self, t, x):
        return super().column(t, x) / 50


class TimeNoFloat(Time):
    def column(self, t, x):
        return t.reshape(-1, 1)


class Class(UnconditionalUNet):
    """A student's class-conditioned UNet; the variants change how c and t enter."""

    def __init__(self, in_channels=1, num_classes=10, num_hiddens=64):
        super().__init__(in_channels, num_hiddens)
        self.num_classes = num_classes
        D = num_hiddens
        self.fc1_t, self.fc2_t = FCBlock(1, 2 * D), FCBlock(1, D)
        self.fc1_c, self.fc2_c = FCBlock(num_classes, 2 * D), FCBlock(num_classes, D)

    def condition(self, c, x):
        return c

    def modulate(self, h, ce, te):
        return ce * h + te

    def forward(self, x, t, c=None):
        t = torch.as_tensor(t, dtype=x.dtype).expand(x.shape[0]).reshape(-1, 1)
        c = self.condition(c, x)
        e = [fc(v)[:, :, None, None] for fc, v in
             [(self.fc1_c, c), (self.fc1_t, t), (self.fc2_c, c), (self.fc2_t, t)]]
        return self.trunk(x, lambda h: self.modulate(h, e[0], e[1]), lambda h: self.modulate(h, e[2], e[3]))


class ClassRolesSwapped(Class):
    def modulate(self, h, ce, te):
        return ce + te * h


class ClassIgnored(Class):
    def modulate(self, h, ce, te):
        return te * h


class ClassOneHotAgain(Class):
    def condition(self, c, x):
        return F.one_hot(c, self.num_classes).float()


WRONG_UNETS = [
    ("UnconditionalUNet", SkipOnBatch, "concatenated on the wrong dimension (dim 0, the batch)"),
    ("UnconditionalUNet", SkipSwapped, "the handout's order is cat([down2, unflatten])"),
    ("UnconditionalUNet", IgnoresModulation, "trunk ignores modulate_unflatten and modulate_up1"),
    ("UnconditionalUNet", NarrowUp1, "self.up1"),
    ("UnconditionalUNet", BlankTrunk, "not written yet"),
    ("TimeConditionalUNet", TimeAdded, "t1 and t2 are added"),
    ("TimeConditionalUNet", TimeNotReshaped, "reshape it to a (B, 1) column"),
    ("TimeConditionalUNet", TimeNormalisedTwice, "multiplied by 0.02: t is already in [0, 1]"),
    ("TimeConditionalUNet", TimeNoFloat, "one Python float t"),
    ("ClassConditionalUNet", ClassRolesSwapped, "c and t swap roles (yours: c1 + t1 · unflatten)"),
    ("ClassConditionalUNet", ClassIgnored, "c is ignored"),
    ("ClassConditionalUNet", ClassOneHotAgain, "c arrives as one-hot rows"),
    ("ClassConditionalUNet", Time, "TypeError"),   # the time-conditioned UNet, built as the class one
]


# ---- wrong algorithms --------------------------------------------------------------------

def time_loss(bug=None):
    def time_flow_loss(model, x1, generator=None):
        B = x1.shape[0]
        if bug == "t first":
            t = torch.rand(B, generator=generator)
            x0 = torch.randn(x1.shape, generator=generator)
        else:
            x0 = torch.randn(x1.shape, generator=generator)
            t = torch.rand(1 if bug == "one t" else B, generator=generator)
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
    def euler_integrate(velocity, x0, num_steps, return_trajectory=False):
        x, dt = (x0.clone() if bug == "in place, copied" else x0), 1.0 / num_steps
        trajectory = [x0]
        for i in range(num_steps):
            u = velocity(x0 if bug == "at x0" else x, (i + 1) * dt if bug == "end" else i * dt)
            if bug == "no dt":
                x = x + u
            elif bug in ("in place", "in place, copied"):
                x += dt * u
            else:
                x = x + dt * u
            trajectory.append(x)
        if bug == "no x0":
            trajectory = trajectory[1:]
        return (x, trajectory) if return_trajectory else x
    return euler_integrate


def cfg(bug=None):
    def cfg_velocity(model, c, guidance):
        uncond = torch.zeros_like(c)
        if bug == "class 0":
            uncond[:, 0] = 1.0

        def velocity(x, t):
            u_cond, u_uncond = model(x, t, c), model(x, t, uncond)
            if bug == "from cond":
                return u_cond + guidance * (u_cond - u_uncond)
            if bug == "swapped":
                return u_cond + guidance * (u_uncond - u_cond)
            return u_uncond + guidance * (u_cond - u_uncond)
        return velocity
    return cfg_velocity


WRONG_ALGORITHMS = [
    ("time_flow_loss", time_loss("swapped"), "x0 and x1 swapped"),
    ("time_flow_loss", time_loss("sign"), "the target velocity is x1 − x0"),
    ("time_flow_loss", time_loss("t first"), "t is the generator's first draw"),
    ("time_flow_loss", time_loss("one t"), "draw one t per image"),
    ("time_flow_loss", time_loss("sum"), "do not sum it"),
    ("class_flow_loss", class_loss("before one-hot"), "dropped after one-hot encoding, not before"),
    ("class_flow_loss", class_loss("labels"), "labels, not one-hot rows"),
    ("class_flow_loss", class_loss("inverted"), "the probability of dropping the class, not of keeping it"),
    ("class_flow_loss", class_loss("one coin"), "one coin for the whole batch"),
    ("class_flow_loss", class_loss("first rows"), "drop at random"),
    ("euler_integrate", euler("no dt"), "the step size dt = 1/T"),
    ("euler_integrate", euler("end"), "at the start of each step"),
    ("euler_integrate", euler("at x0"), "at the current x"),
    ("euler_integrate", euler("in place"), "x0 was changed in place"),
    ("euler_integrate", euler("in place, copied"), "every state is the final x"),
    ("euler_integrate", euler("no x0"), "T + 1 states"),
    ("cfg_velocity", cfg("from cond"), "start from the unconditional velocity"),
    ("cfg_velocity", cfg("swapped"), "u_cond and u_uncond are swapped"),
    ("cfg_velocity", cfg("class 0"), "the all-zero row"),
]

WRONG = WRONG_BLOCKS + WRONG_UNETS + WRONG_ALGORITHMS


# ---- the tests ---------------------------------------------------------------------------

def test_every_part_b_exercise_is_registered():
    assert set(ALL) <= set(checks.EXERCISES)
    assert {checks.EXERCISES[name].reference.split(":")[0] for name in ALL} <= {
        "part_b.blocks", "part_b.unet", "part_b.train", "part_b.sampling"}


@pytest.mark.parametrize("name", ALL)
def test_the_reference_passes(name):
    result = checks.run(name, reference(name))
    assert result.passed, result.message


@pytest.mark.parametrize("name", ALL)
def test_a_blank_student_is_not_written_yet(name):
    result = checks.run(name, BLANK[name])
    assert not result.passed
    assert "not written yet" in result.message


@pytest.mark.parametrize("name, student, hint", WRONG,
                         ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(WRONG)])
def test_a_typical_mistake_fails_with_its_hint(name, student, hint):
    result = checks.run(name, student)
    assert not result.passed
    assert hint in result.message, result.message


@pytest.mark.parametrize("name, student", [
    ("Flatten", sequential(lambda: [nn.AdaptiveAvgPool2d(1), nn.GELU()])),
    ("ConvBlock", NamedConvBlock),
    ("UnconditionalUNet", Trunk),
    ("TimeConditionalUNet", Time),
    ("TimeConditionalUNet", TimeOtherOrder),
    ("ClassConditionalUNet", Class),
    ("time_flow_loss", time_loss()),
    ("class_flow_loss", class_loss()),
    ("class_flow_loss", class_loss("bernoulli")),
    ("euler_integrate", euler()),
    ("cfg_velocity", cfg()),
])
def test_a_right_student_written_otherwise_passes(name, student):
    result = checks.run(name, student)
    assert result.passed, result.message


@pytest.mark.parametrize("name", ALL)
def test_use_returns_the_student_only_when_it_passed(name, capsys):
    wrong = next(student for n, student, _ in WRONG if n == name)
    assert checks.use(name, wrong) is reference(name)
    assert "the cells below use the course's" in capsys.readouterr().out
    assert checks.use(name, reference(name)) is reference(name)
    own = {"ConvBlock": NamedConvBlock, "euler_integrate": euler()}.get(name)
    if own is not None:
        assert checks.use(name, own) is own


def test_the_checks_leave_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.run("ClassConditionalUNet", reference("ClassConditionalUNet"))
    checks.run("class_flow_loss", class_loss("inverted"))
    assert torch.equal(torch.rand(3), expected)
