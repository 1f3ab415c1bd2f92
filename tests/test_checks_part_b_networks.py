"""The offline checks of the Part B networks (course_utils.checks.part_b_networks).

For each exercise: the reference solution and the course's own network pass, a blank one is "not
written yet", typical wrong ones fail with the hint that names their mistake, right ones written
otherwise (other names, other registration order, nn.Module instead of nn.Sequential) pass, and
``use`` hands back the student's code only when it passed. More variants: tests/variants/.
"""
import pytest
import torch
from torch import nn

from course_utils import checks
from course_utils.checks.part_b_networks import copy_weights, spice
from course_utils.part_b import unet
from course_utils.part_b.blocks import Conv, ConvBlock, DownBlock, DownConv, FCBlock, Flatten, Unflatten, UpBlock

NETWORKS = ["Flatten", "Unflatten", "ConvBlock", "DownBlock", "UpBlock", "FCBlock",
            "UnconditionalUNet", "TimeConditionalUNet", "ClassConditionalUNet"]
COURSE = {"Flatten": Flatten, "Unflatten": Unflatten, "ConvBlock": ConvBlock, "DownBlock": DownBlock,
          "UpBlock": UpBlock, "FCBlock": FCBlock, "UnconditionalUNet": unet.UnconditionalUNet,
          "TimeConditionalUNet": unet.TimeConditionalUNet, "ClassConditionalUNet": unet.ClassConditionalUNet}


def reference(name):
    return checks.EXERCISES[name].load_reference()


# ---- blank students ----------------------------------------------------------------------

class BlankBlock(nn.Sequential):
    def __init__(self, *args):
        raise NotImplementedError


class BlankUNet(nn.Module):
    def __init__(self, in_channels=1, num_hiddens=128):
        raise NotImplementedError

    def forward(self, x):
        raise NotImplementedError


class BlankForward(nn.Module):     # __init__ written, forward not yet
    def __init__(self, in_channels=1, num_hiddens=128):
        super().__init__()
        self.head = nn.Conv2d(in_channels, in_channels, 3, 1, 1)

    def forward(self, x):
        raise NotImplementedError


class BlankTimeUNet(nn.Module):
    def __init__(self, in_channels=1, num_hiddens=64):
        raise NotImplementedError

    def forward(self, x, t):
        raise NotImplementedError


class BlankClassUNet(nn.Module):
    def __init__(self, in_channels=1, num_classes=10, num_hiddens=64):
        raise NotImplementedError

    def forward(self, x, t, c):
        raise NotImplementedError


BLANK = {name: BlankBlock for name in NETWORKS[:6]} | {
    "UnconditionalUNet": BlankUNet, "TimeConditionalUNet": BlankTimeUNet, "ClassConditionalUNet": BlankClassUNet}


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
    """Right, with its own names and forward."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.first, self.second = Conv(in_channels, out_channels), Conv(out_channels, out_channels)

    def forward(self, x):
        return self.second(self.first(x))


class BackwardsConvBlock(nn.Module):
    """Right: the second Conv registered before the first (the weights follow the forward pass)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.b = Conv(out_channels, out_channels)
        self.a = Conv(in_channels, out_channels)

    def forward(self, x):
        return self.b(self.a(x))


class BackwardsReLUConvBlock(BackwardsConvBlock):
    """Wrong, and registered backwards: the hint follows the forward pass, not the registration."""

    def __init__(self, in_channels, out_channels):
        super().__init__(in_channels, out_channels)
        self.a = ReLUConv(in_channels, out_channels)


# ---- UNets written as a student writes them ------------------------------------------------

class Net(nn.Module):
    """A student's UNet (all three kinds), with its own names; the variants change one step."""

    def __init__(self, in_channels=1, num_hiddens=64):
        super().__init__()
        self.trunk(in_channels, num_hiddens)

    def trunk(self, in_channels, D):
        self.enc = nn.ModuleList([ConvBlock(in_channels, D), DownBlock(D, D), DownBlock(D, 2 * D)])
        self.pool, self.unpool = Flatten(), Unflatten(2 * D)
        self.dec = nn.ModuleList([UpBlock(4 * D, D), UpBlock(2 * D, D), ConvBlock(2 * D, D)])
        self.out = nn.Conv2d(D, in_channels, 3, 1, 1)

    def cat(self, skip, h):
        return torch.cat([skip, h], dim=1)

    def modulate(self, h, k, cond):
        return h

    def run(self, x, cond=None):
        a = self.enc[0](x)
        b = self.enc[1](a)
        c = self.enc[2](b)
        h = self.modulate(self.unpool(self.pool(c)), 0, cond)
        h = self.modulate(self.dec[0](self.cat(c, h)), 1, cond)
        h = self.dec[1](self.cat(b, h))
        return self.out(self.dec[2](self.cat(a, h)))

    def forward(self, x):
        return self.run(x)


class SkipOnBatch(Net):
    def cat(self, skip, h):
        return torch.cat([skip, h], dim=0)


class SkipSwapped(Net):
    def cat(self, skip, h):
        return torch.cat([h, skip], dim=1)


class NoSkip(Net):
    def cat(self, skip, h):
        return torch.cat([h, h], dim=1)


class NarrowUp1(Net):
    def __init__(self, in_channels=1, num_hiddens=128):
        super().__init__(in_channels, num_hiddens)
        self.dec[0] = UpBlock(2 * num_hiddens, num_hiddens)


class Time(Net):
    """A student's time-conditioned UNet: FCBlocks registered first, applied where they modulate."""

    def __init__(self, in_channels=1, num_hiddens=64):
        nn.Module.__init__(self)
        self.emb = nn.ModuleList([FCBlock(1, 2 * num_hiddens), FCBlock(1, num_hiddens)])
        self.trunk(in_channels, num_hiddens)

    def column(self, t):
        return t.view(-1, 1)

    def modulate(self, h, k, t):
        return h * self.emb[k](t)[:, :, None, None]

    def forward(self, x, t):
        return self.run(x, self.column(t))


class TimeAdded(Time):
    def modulate(self, h, k, t):
        return h + self.emb[k](t)[:, :, None, None]


class TimeNotReshaped(Time):
    def column(self, t):
        return t


class TimeNormalisedTwice(Time):
    def column(self, t):
        return t.view(-1, 1) / 50


class TimeNotViewed(Time):
    def modulate(self, h, k, t):
        return h * self.emb[k](t)


class Class(Net):
    """A student's class-conditioned UNet: c's FCBlocks registered and called before t's."""

    def __init__(self, in_channels=1, num_classes=10, num_hiddens=64):
        super().__init__(in_channels, num_hiddens)
        D = num_hiddens
        self.c_emb = nn.ModuleList([FCBlock(num_classes, 2 * D), FCBlock(num_classes, D)])
        self.t_emb = nn.ModuleList([FCBlock(1, 2 * D), FCBlock(1, D)])

    def condition(self, c):
        return c

    def combine(self, h, ce, te):
        return ce * h + te

    def modulate(self, h, k, cond):
        c, t = cond
        ce = self.c_emb[k](self.condition(c))[:, :, None, None]
        return self.combine(h, ce, self.t_emb[k](t)[:, :, None, None])

    def forward(self, x, t, c):
        return self.run(x, (c, t[:, None]))


class ClassRolesSwapped(Class):
    def combine(self, h, ce, te):
        return ce + te * h


class ClassIgnored(Class):
    def combine(self, h, ce, te):
        return te * h


class ClassOneHotAgain(Class):
    def condition(self, c):
        return nn.functional.one_hot(c, 10).float()


WRONG_UNETS = [
    ("UnconditionalUNet", SkipOnBatch, "concatenated on the wrong dimension (dim 0, the batch)"),
    ("UnconditionalUNet", SkipSwapped, "the course's order is cat([down2, unflatten])"),
    ("UnconditionalUNet", NoSkip, "does not receive cat([down2, unflatten])"),
    ("UnconditionalUNet", NarrowUp1, "layer 1 of self.dec.0 (the handout's up1) is ConvTranspose2d(8→4"),
    ("UnconditionalUNet", BlankForward, "not written yet"),
    ("TimeConditionalUNet", TimeAdded, "t1 and t2 are added"),
    ("TimeConditionalUNet", TimeNotReshaped, "reshape it to a (B, 1) column"),
    ("TimeConditionalUNet", TimeNormalisedTwice, "multiplied by 0.02: t is already in [0, 1]"),
    ("TimeConditionalUNet", TimeNotViewed, "viewed as (B, 2D, 1, 1)"),
    ("ClassConditionalUNet", ClassRolesSwapped, "c and t swap roles (yours: c1 + t1 · unflatten)"),
    ("ClassConditionalUNet", ClassIgnored, "c is ignored"),
    ("ClassConditionalUNet", ClassOneHotAgain, "c arrives as one-hot rows"),
    ("ClassConditionalUNet", Time, "TypeError"),   # the time-conditioned UNet, built as the class one
]

WRONG = WRONG_BLOCKS + WRONG_UNETS


# ---- the tests ---------------------------------------------------------------------------

def test_every_network_exercise_is_registered_to_its_solution():
    assert set(NETWORKS) <= set(checks.EXERCISES)
    for name in NETWORKS:
        ex = checks.EXERCISES[name]
        assert ex.reference == f"solutions.part_b_networks:{name}"
        assert ex.methods == (("__init__",) if name in NETWORKS[:6] else ("__init__", "forward"))


@pytest.mark.parametrize("name", NETWORKS)
def test_the_solution_and_the_course_network_pass(name):
    for student in (reference(name), COURSE[name]):
        result = checks.run(name, student)
        assert result.passed, result.message


@pytest.mark.parametrize("name", NETWORKS)
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
    ("ConvBlock", BackwardsConvBlock),
    ("UnconditionalUNet", Net),
    ("TimeConditionalUNet", Time),
    ("ClassConditionalUNet", Class),
])
def test_a_right_student_written_otherwise_passes(name, student):
    result = checks.run(name, student)
    assert result.passed, result.message


def test_the_hint_follows_the_forward_pass_not_the_registration_order():
    result = checks.run("ConvBlock", BackwardsReLUConvBlock)
    assert not result.passed
    assert "layer 3 of ConvBlock(3, 5) is ReLU; the handout's has GELU" in result.message, result.message


def test_the_hint_names_the_students_own_block():
    result = checks.run("UnconditionalUNet", SkipSwapped)
    assert "self.dec.0 (the handout's up1) receives cat([unflatten, down2])" in result.message, result.message


def test_weights_follow_the_calls_whatever_the_fcblocks_order():
    """fc1_t and fc1_c end with Linear layers of one shape: each is paired by the chain it ends."""
    torch.manual_seed(0)
    ours = spice(unet.ClassConditionalUNet(1, 10, 4)).eval()
    theirs = Class(1, 10, 4).eval()
    x, t = torch.rand(2, 1, 28, 28), torch.tensor([0.2, 0.7])
    c = torch.eye(10)[[3, 5]]
    copy_weights(ours, theirs, "", "", (x, t, c))
    with torch.no_grad():
        torch.testing.assert_close(theirs(x, t, c), ours(x, t, c))


@pytest.mark.parametrize("name", NETWORKS)
def test_use_returns_the_student_only_when_it_passed(name, capsys):
    wrong = next(student for n, student, _ in WRONG if n == name)
    assert checks.use(name, wrong) is reference(name)
    assert "the cells below use the course's" in capsys.readouterr().out
    assert checks.use(name, reference(name)) is reference(name)
    own = {"ConvBlock": NamedConvBlock, "UnconditionalUNet": Net}.get(name)
    if own is not None:
        assert checks.use(name, own) is own


def test_the_checks_leave_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    checks.run("ClassConditionalUNet", reference("ClassConditionalUNet"))
    checks.run("ConvBlock", BackwardsReLUConvBlock)
    assert torch.equal(torch.rand(3), expected)
