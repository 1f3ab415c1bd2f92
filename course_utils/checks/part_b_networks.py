"""Checks of the Part B networks: the blocks of Figure 2 (notebook 12), FCBlock (16) and the three UNets.

A student's class is a drop-in for the course's, so it is built and called exactly as the course's
is: the blocks with their sizes, the UNets as ``Net(in_channels=, num_hiddens=[, num_classes=])``
and called as ``net(x)``, ``net(x, t)`` or ``net(x, t, c)`` with t of shape (B,) and c one-hot rows.
Each is checked for its output shapes at a few sizes, its parameter count, and the function it
computes: the course's weights, with BatchNorm statistics as after training, are copied into the
student's module layer by layer, in the order a forward pass calls the layers (so attribute names,
registration order, nn.Module or nn.Sequential do not matter), and the two are compared in eval and
in train mode. When they differ, the hint compares the layers (for the UNets: what each block
receives and returns, the student's blocks found by the layers they hold) with the handout's and
names the first that differs; for the conditioned UNets the output is also compared with what the
typical wrong modulations would give.
"""
from __future__ import annotations

import functools
from collections import Counter, defaultdict, deque
from contextlib import contextmanager

import torch
from torch import nn

from ..part_b import blocks, unet
from ._core import Mismatch, call, describe, exercise, expect_close, expect_equal

# ---- helpers shared with part_b_flow -------------------------------------------------------


def own_rng(cases):
    """Run the cases from a fixed global seed and leave the notebook's global RNG as it was
    (building modules draws from it)."""
    @functools.wraps(cases)
    def wrapped(student):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return cases(student)
    return wrapped


@contextmanager
def hint_if_none(make_hint):
    """A Mismatch raised inside that has no hint yet gets ``make_hint()``'s (best effort: a hint
    that itself fails is left out, the Mismatch still stands)."""
    try:
        yield
    except Mismatch as m:
        if not m.hint:
            try:
                m.hint = make_hint() or ""
            except Exception:
                pass
        raise


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def spice(model: nn.Module, seed: int = 0) -> nn.Module:
    """BatchNorm affine parameters and running statistics as after training: at PyTorch's initial
    ones the conditioning changes a UNet's output by ~1e-6, too little to tell a right formula
    from a wrong one (the unit tests use it too)."""
    g = gen(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.5)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.2 + 0.05)
    return model


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(cls, what: str, *args, **kwargs) -> nn.Module:
    model = call(cls, *args, inputs=what, **kwargs)
    if not isinstance(model, nn.Module):
        raise Mismatch(f"{what} should be an nn.Module, got {type(model).__name__}", what,
                       "subclass nn.Module (or nn.Sequential) and call super().__init__(…)")
    return model


# ---- following a forward pass: which layer is called when -----------------------------------

_KINDS = (nn.ConvTranspose2d, nn.Conv2d, nn.BatchNorm2d, nn.Linear)
_POOLS = (nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _own(m: nn.Module) -> dict:
    """A module's own weights and buffers (not its children's)."""
    return dict(m.named_parameters(recurse=False)) | dict(m.named_buffers(recurse=False))


def _unit(m: nn.Module) -> bool:
    """A layer: a module without children, or one that holds weights of its own."""
    return not list(m.children()) or bool(_own(m))


def _first_tensor(v):
    if isinstance(v, torch.Tensor):
        return v.detach().clone()
    if isinstance(v, (tuple, list)) and v:
        return _first_tensor(v[0])
    return v


class _Pass:
    """The layers of ``model`` in the order one forward pass on ``args`` first calls them, then
    those it never calls, in registration order; each called one's first input and output."""

    def __init__(self, model: nn.Module, args: tuple | None):
        units = [m for m in model.modules() if _unit(m)]
        called, self.io, hooks = [], {}, []
        self.completed = False
        if args is not None:
            def pre(m, inputs):
                if id(m) not in self.io:
                    called.append(m)
                    self.io[id(m)] = [_first_tensor(inputs), None]

            def post(m, inputs, output):
                if self.io[id(m)][1] is None:
                    self.io[id(m)][1] = _first_tensor(output)

            for m in units:
                hooks += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
            training = model.training
            model.eval()
            try:
                with torch.no_grad():
                    model(*args)
                self.completed = True
            except Exception:
                pass
            finally:
                for h in hooks:
                    h.remove()
                model.train(training)
        seen = {id(m) for m in called}
        self.order = called + [m for m in units if id(m) not in seen]

    def holders(self) -> list:
        return [m for m in self.order if _own(m)]

    def roots(self) -> dict:
        """id(Linear) -> the first Linear of its chain (an FCBlock's first layer), found by what
        each Linear receives: GELU of (or exactly) an earlier Linear's output continues its chain."""
        root, done = {}, []
        for m in self.order:
            if not isinstance(m, nn.Linear):
                continue
            inp = self.io.get(id(m), [None])[0]
            root[id(m)] = m
            for q in reversed(done):
                out = self.io.get(id(q), [None, None])[1]
                if (isinstance(inp, torch.Tensor) and isinstance(out, torch.Tensor) and inp.shape == out.shape
                        and any(torch.allclose(inp, f(out), atol=1e-6) for f in (nn.functional.gelu, lambda v: v))):
                    root[id(m)] = root[id(q)]
                    break
            done.append(m)
        return root


def _kind(m: nn.Module) -> str:
    return next((k.__name__ for k in _KINDS if isinstance(m, k)), type(m).__name__)


def _key(m: nn.Module) -> tuple:
    return (_kind(m),) + tuple((k, tuple(v.shape)) for k, v in _own(m).items())


def _pairs(reference: nn.Module, student: nn.Module, args: tuple) -> list | None:
    """(course's layer, student's layer) pairs: the k-th layer of each kind and shape that the
    course's forward pass calls goes with the k-th the student's calls. A Linear's kind includes the
    first Linear of its chain, so that FCBlocks of equal sizes (fc1_t and fc1_c end alike) pair up
    whatever order they are called in. None if the layers cannot be paired."""
    ours, theirs = _Pass(reference, args), _Pass(student, args)
    if sum(v.numel() for m in theirs.holders() for v in _own(m).values()) != sum(
            v.numel() for v in student.state_dict().values()):
        return None   # weights outside any layer (an nn.Parameter used by hand)
    for with_roots in (True, False):
        keys = []
        for p in (ours, theirs):
            roots = p.roots() if with_roots else {}
            keys.append({id(m): _key(m) + ((_key(roots[id(m)]),) if id(m) in roots and roots[id(m)] is not m
                                         else ()) for m in p.holders()})
        if Counter(keys[0].values()) != Counter(keys[1].values()):
            continue
        queue = defaultdict(deque)
        for m in theirs.holders():
            queue[keys[1][id(m)]].append(m)
        return [(m, queue[keys[0][id(m)]].popleft()) for m in ours.holders()]
    return None


def copy_weights(reference: nn.Module, student: nn.Module, what: str, inputs: str,
                 args: tuple | None = None) -> list | None:
    """Load the reference's weights and BatchNorm statistics into the student's module: layer by
    layer in the order a forward pass on ``args`` calls them (see ``_pairs``), else by name when the
    names agree, else by shape in registration order. Returns the pairs of layers, when found."""
    pairs = _pairs(reference, student, args) if args is not None else None
    if pairs is not None:
        with torch.no_grad():
            for ours, theirs in pairs:
                dst = _own(theirs)
                for k, v in _own(ours).items():
                    dst[k].copy_(v)
        return pairs
    src, dst = reference.state_dict(), student.state_dict()
    if src.keys() == dst.keys() and all(src[k].shape == dst[k].shape for k in src):
        student.load_state_dict(src)
        return None
    ours: dict[tuple, list] = {}
    for v in src.values():
        ours.setdefault(tuple(v.shape), []).append(v)
    theirs = Counter(tuple(v.shape) for v in dst.values())
    if theirs != Counter({s: len(vs) for s, vs in ours.items()}):
        s = next(s for s in [*ours, *theirs] if theirs[s] != len(ours.get(s, ())))
        raise Mismatch(f"the weights of {what} cannot be matched to the handout's, so the function it "
                       "computes cannot be compared", inputs,
                       detail=f"the handout's has {len(ours.get(s, ()))} tensors (weights, biases or "
                              f"BatchNorm statistics) of shape {s}, yours {theirs[s]}")
    take = {s: iter(vs) for s, vs in ours.items()}
    student.load_state_dict({k: next(take[tuple(v.shape)]) for k, v in dst.items()})
    return None


def same_function(student: nn.Module, reference: nn.Module, args: tuple, what: str, inputs: str,
                  wrong=()) -> None:
    """Equal outputs in eval mode (running statistics) and in train mode (batch statistics)."""
    for training in (False, True):
        student.train(training)
        reference.train(training)
        mode = "train" if training else "eval"
        with torch.no_grad():
            expected = reference(*args)
            got = call(student, *args, inputs=inputs)
            try:
                expect_close(got, expected, f"the output of {what} in {mode} mode", inputs,
                             wrong=() if training else wrong)
            except Mismatch as m:
                if training and not m.hint:
                    m.hint = ("it agrees in eval mode but not in train mode, where BatchNorm uses the "
                              "batch's statistics: is each BatchNorm a plain nn.BatchNorm2d, used once?")
                raise
    student.eval()
    reference.eval()


# ---- layer lists --------------------------------------------------------------------------

def _one(v):
    return v[0] if isinstance(v, tuple) and len(set(v)) == 1 else v


def _layer(m: nn.Module) -> str:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        return (f"{type(m).__name__}({m.in_channels}→{m.out_channels}, kernel {_one(m.kernel_size)}, "
                f"stride {_one(m.stride)}, padding {_one(m.padding)})")
    if isinstance(m, nn.BatchNorm2d):
        return f"BatchNorm2d({m.num_features})"
    if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
        return f"{type(m).__name__}({_one(m.kernel_size)})"
    if isinstance(m, nn.Linear):
        return f"Linear({m.in_features}→{m.out_features})"
    return type(m).__name__


def _layers(module: nn.Module, args: tuple | None = None) -> list[str]:
    """The leaf layers in the order a forward pass on ``args`` calls them (then the uncalled ones
    in registration order); without ``args``, in registration order."""
    return [_layer(m) for m in _Pass(module, args).order if not list(m.children())]


def _diff(g: list[str], e: list[str], what: str) -> str:
    """Where the layer list ``g`` first differs from the handout's ``e``; '' if they don't."""
    if g == e:
        return ""
    i = next((k for k, (a, b) in enumerate(zip(g, e)) if a != b), min(len(g), len(e)))
    after = f" after {e[i - 1]}" if i else " as its first layer"
    if g[i:] == e[i + 1:]:
        return f"{what} lacks the handout's {e[i]}{after}"
    if g[i + 1:] == e[i:]:
        return f"{what} has an extra {g[i]}{after}, which the handout's has not"
    if i == len(g):
        return (f"{what} ends after {g[-1]}; the handout's continues with {e[i]}" if g else
                f"{what} has no layers of its own; the handout's starts with {e[0]}")
    if i == len(e):
        return f"{what} continues with {g[i]} after the handout's last layer, {e[-1]}"
    return f"layer {i + 1} of {what} is {g[i]}; the handout's has {e[i]} there"


def layer_hint(got: nn.Module, expected: nn.Module, what: str, args: tuple | None = None) -> str:
    """Where the student's layers (in the order ``got(*args)`` calls them) first differ from the
    handout's; '' if they don't."""
    return _diff(_layers(got, args), _layers(expected, args), what)


# ---- the blocks ---------------------------------------------------------------------------

def _check_block(student, reference, name: str, sizes, wrong=lambda x: ()) -> None:
    """``sizes``: (constructor args, input shape) pairs; ``wrong(x)``: (value, hint) pairs."""
    for k, (args, shape) in enumerate(sizes):
        what = f"{name}({', '.join(map(str, args))})"
        x = torch.randn(shape, generator=gen(10 + k))
        inputs = f"{what} applied to a {describe(x)}"
        ref = spice(reference(*args), k).eval()
        stu = build(student, what, *args).eval()
        with hint_if_none(lambda: layer_hint(stu, ref, what, (x,))):
            with torch.no_grad():
                expected = ref(x)
                got = call(stu, x, inputs=inputs)
            if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
                expect_close(got, expected, f"the output of {what}", inputs, wrong(x))
            expect_equal(count(stu), count(ref), f"the number of parameters of {what}", inputs)
            copy_weights(ref, stu, what, inputs, (x,))
            same_function(stu, ref, (x,), what, inputs, wrong(x))


@exercise("Flatten", "solutions.part_b_networks:Flatten", "12", methods=("__init__",))
@own_rng
def _flatten(student):
    F = nn.functional

    def wrong(x):
        return [(lambda: F.gelu(F.max_pool2d(x, 7)),
                 "the handout's Flatten averages each 7×7 map (AvgPool2d(7)); it does not take its maximum"),
                (lambda: F.avg_pool2d(x, 7), "the GELU after the pooling is missing"),
                (lambda: F.avg_pool2d(F.gelu(x), 7), "the GELU comes after the pooling, not before"),
                (lambda: x.flatten(1), "the handout's Flatten pools each 7×7 map down to 1×1 (output "
                                       "(B, C, 1, 1)); nn.Flatten only reshapes")]

    _check_block(student, blocks.Flatten, "Flatten", [((), (2, 6, 7, 7)), ((), (3, 2, 7, 7))], wrong)


@exercise("Unflatten", "solutions.part_b_networks:Unflatten", "12", methods=("__init__",))
@own_rng
def _unflatten(student):
    _check_block(student, blocks.Unflatten, "Unflatten", [((6,), (2, 6, 1, 1)), ((3,), (3, 3, 1, 1))])


@exercise("ConvBlock", "solutions.part_b_networks:ConvBlock", "12", methods=("__init__",))
@own_rng
def _conv_block(student):
    _check_block(student, blocks.ConvBlock, "ConvBlock", [((3, 5), (2, 3, 28, 28)), ((2, 2), (3, 2, 7, 7))])


@exercise("DownBlock", "solutions.part_b_networks:DownBlock", "12", methods=("__init__",))
@own_rng
def _down_block(student):
    _check_block(student, blocks.DownBlock, "DownBlock",
                 [((3, 5), (2, 3, 28, 28)), ((4, 2), (3, 4, 14, 14))])


@exercise("UpBlock", "solutions.part_b_networks:UpBlock", "12", methods=("__init__",))
@own_rng
def _up_block(student):
    _check_block(student, blocks.UpBlock, "UpBlock", [((3, 5), (2, 3, 7, 7)), ((4, 2), (3, 4, 14, 14))])


@exercise("FCBlock", "solutions.part_b_networks:FCBlock", "16", methods=("__init__",))
@own_rng
def _fc_block(student):
    _check_block(student, blocks.FCBlock, "FCBlock", [((1, 8), (3, 1)), ((10, 6), (3, 10))])



# ---- the UNets ----------------------------------------------------------------------------

_REF = {"uncond": unet.UnconditionalUNet, "time": unet.TimeConditionalUNet,
        "class": unet.ClassConditionalUNet}
_SIZES = ((1, 4, 10), (2, 3, 3))   # (in_channels, D, num_classes); the first also for the function
_CAT = {"up1": ("down2", "unflatten"), "up2": ("down1", "up1"), "conv_out": ("conv_in", "up2")}
_ROLE = {
    "conv_in": "a ConvBlock from in_channels to D channels",
    "down1": "a DownBlock from D to D channels",
    "down2": "a DownBlock from D to 2D channels",
    "flatten": "a Flatten",
    "unflatten": "an Unflatten of 2D channels",
    "up1": "an UpBlock from 4D to D channels, on cat([down2, unflatten])",
    "up2": "an UpBlock from 2D to D channels, on cat([down1, up1])",
    "conv_out": "a ConvBlock from 2D to D channels, on cat([conv_in, up2])",
    "head": "a Conv2d from D to in_channels channels, kernel 3, stride 1, padding 1",
    "fc1_t": "an FCBlock from 1 to 2D features", "fc2_t": "an FCBlock from 1 to D features",
    "fc1_c": "an FCBlock from num_classes to 2D features", "fc2_c": "an FCBlock from num_classes to D features",
}
_MODULATION = {"time": "unflatten = t1 · unflatten and up1 = t2 · up1",
               "class": "unflatten = c1 · unflatten + t1 and up1 = c2 · up1 + t2"}


def _setup(student, kind: str, size: tuple, seed: int):
    """The course's and the student's network of one size, and inputs as training feeds them."""
    cin, D, classes = size
    kw = {"in_channels": cin} | ({"num_classes": classes} if kind == "class" else {}) | {"num_hiddens": D}
    what = f"{_REF[kind].__name__}({', '.join(f'{k}={v}' for k, v in kw.items())})"
    ref = spice(_REF[kind](**kw), seed).eval()
    stu = build(student, what, **kw).eval()
    x = torch.rand(3, cin, 28, 28, generator=gen(seed))
    args, desc = (x,), [f"x {describe(x)}"]
    if kind != "uncond":
        t = torch.tensor([0.1, 0.5, 0.9])
        args, desc = args + (t,), desc + [f"t = {[round(v, 4) for v in t.tolist()]}, shape (3,)"]
    if kind == "class":
        c = unet.one_hot(torch.tensor([1, 2, 0]), classes)
        c[2] = 0   # the third image without its class, as after class dropout
        args, desc = args + (c,), desc + ["c = one-hot rows of classes 1 and 2, then a zero row (no class)"]
    return kw, what, ref, stu, args, f"{what} on " + ", ".join(desc)


def _unet_cases(student, kind: str) -> None:
    for k, size in enumerate(_SIZES):
        kw, what, ref, stu, args, inputs = _setup(student, kind, size, k)
        with hint_if_none(lambda: _unet_hint(stu, ref, args, kind)):
            with torch.no_grad():
                got = call(stu, *args, inputs=inputs)
            if not isinstance(got, torch.Tensor) or got.shape != args[0].shape:
                expect_close(got, args[0], f"the output of {what}", inputs)
        if count(stu) != count(ref):
            raise Mismatch(f"{what} has {count(stu):,} parameters, expected {count(ref):,}", inputs,
                           _count_hint(stu, ref, kind, kw, args))

    kw, what, ref, stu, args, inputs = _setup(student, kind, _SIZES[0], 0)
    with hint_if_none(lambda: "the course's weights are copied into yours layer by layer, in the order your "
                              "forward pass calls the layers: build it from the handout's layers (nn.Conv2d, "
                              "nn.ConvTranspose2d, plain nn.BatchNorm2d, nn.Linear), with no weights of your own"):
        copy_weights(ref, stu, what, inputs, args)
    with hint_if_none(lambda: _unet_hint(stu, ref, args, kind)):
        same_function(stu, ref, args, what, inputs, _modulation_variants(ref, kind, args))


def _modulation_variants(ref, kind: str, args: tuple) -> list:
    """The outputs the typical wrong modulations give, with the course's weights."""
    if kind == "uncond":
        return []
    x, t = args[:2]
    with torch.no_grad():
        col = t.reshape(-1, 1)
        t1, t2 = (fc(col)[:, :, None, None] for fc in (ref.fc1_t, ref.fc2_t))
        if kind == "class":
            c1, c2 = (fc(args[2])[:, :, None, None] for fc in (ref.fc1_c, ref.fc2_c))

    def out(f1, f2):
        return lambda: ref.trunk(x, f1, f2)

    if kind == "time":
        rule = _MODULATION["time"]
        return [(out(None, None), f"t is ignored: the output is the unconditional UNet's; {rule}"),
                (out(lambda h: h + t1, lambda h: h + t2),
                 f"t1 and t2 are added; in the time-conditioned UNet they scale the feature maps: {rule}"),
                (out(lambda h: h * t1, None), "up1 is not modulated: up1 = t2 · up1 is missing"),
                (out(None, lambda h: h * t2), "unflatten is not modulated: unflatten = t1 · unflatten is missing")]
    rule = _MODULATION["class"]
    return [(out(None, None), f"neither t nor c enters: the output is the unconditional UNet's; {rule}"),
            (out(lambda h: c1 + t1 * h, lambda h: c2 + t2 * h),
             f"c and t swap roles (yours: c1 + t1 · unflatten): c1 scales and t1 shifts, {rule}"),
            (out(lambda h: c1 * t1 * h, lambda h: c2 * t2 * h),
             f"t1 and t2 multiply; they should shift (be added): {rule}"),
            (out(lambda h: c1 * (h + t1), lambda h: c2 * (h + t2)),
             "c1 multiplies unflatten alone: c1 · unflatten + t1, not c1 · (unflatten + t1)"),
            (out(lambda h: h * t1, lambda h: h * t2),
             f"c is ignored (that is the time-conditioned UNet's modulation); the class-conditioned one is {rule}"),
            (out(lambda h: c1 * h, lambda h: c2 * h), f"t is ignored (+ t1 and + t2 are missing): {rule}"),
            (out(lambda h: h + t1, lambda h: h + t2), f"c is ignored (c1 · and c2 · are missing): {rule}"),
            (out(lambda h: c1 * h + t1, None), "up1 is not modulated: up1 = c2 · up1 + t2 is missing"),
            (out(None, lambda h: c2 * h + t2), "unflatten is not modulated: unflatten = c1 · unflatten + t1 is missing")]


def _split(layers: list[str]) -> tuple[list[str], list[str]]:
    """A network's layer list: (its convolutional path, the Linear layers of its FCBlocks). A GELU
    right after a Linear is the FCBlock's."""
    path, fc, after_linear = [], [], False
    for layer in layers:
        if layer.startswith("Linear"):
            fc.append(layer)
        elif not (after_linear and layer == "GELU"):
            path.append(layer)
        after_linear = layer.startswith("Linear")
    return path, fc


def _network_hint(stu, ref, args) -> str:
    """Where the student's layers, in the order its forward pass calls them, first differ from the
    handout's (the convolutional path in order; the FCBlocks' Linear layers as a set)."""
    got, expected = _split(_layers(stu, args)), _split(_layers(ref, args))
    hint = _diff(got[0], expected[0], "your network (its layers in the order your forward pass calls them)")
    if hint:
        return hint
    missing, extra = Counter(expected[1]) - Counter(got[1]), Counter(got[1]) - Counter(expected[1])
    if missing or extra:
        return ("the Linear layers of your FCBlocks differ from the handout's"
                + (f": the handout's has {', '.join(missing.elements())}" if missing else "")
                + (f"{'; yours' if missing else ': yours has'} {', '.join(extra.elements())} instead"
                   if extra else ""))
    return ""


def _count_hint(stu, ref, kind: str, kw: dict, args: tuple) -> str:
    D = kw["num_hiddens"]
    names = [n for n, _ in ref.named_children()]
    children = dict(stu.named_children())
    if all(n in children for n in names):
        for n in names:
            s, r = count(children[n]), count(getattr(ref, n))
            if s != r:
                layers = layer_hint(children[n], getattr(ref, n), f"self.{n}")
                return (f"self.{n} has {s:,} parameters; the handout's {n} ({_ROLE[n]}; here D = {D}) has {r:,}"
                        + (f": {layers}" if layers else ""))
        extra = [n for n, m in children.items() if n not in names and count(m)]
        if extra:
            return f"self.{extra[0]} is not part of the handout's network"
        return "the extra parameters sit on the network itself (nn.Parameter attributes), not in its blocks"
    formula = {"uncond": "481 D² + 81 D + 1", "time": "486 D² + 90 D + 1",
               "class": f"491 D² + {96 + 3 * kw.get('num_classes', 10)} D + 1"}[kind]
    layers = _network_hint(stu, ref, args)
    return f"the handout's has {formula} parameters for D hidden channels" + (f"; {layers}" if layers else "")


# ---- what each block of a UNet receives and returns ---------------------------------------

def _same(a, b, values: bool = True) -> bool:
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
        return False
    return not values or torch.allclose(a.double(), b.double(), atol=1e-5, rtol=1e-4)


def _loose_pairs(ref, stu, args) -> list:
    """For the hints, when the weights cannot be copied: the k-th layer of each kind that each
    forward pass calls (a Linear's kind: the sizes of its chain's first Linear), paired."""
    keys, lists = [], []
    for p in (_Pass(ref, args), _Pass(stu, args)):
        roots = p.roots()
        keys.append({id(m): (_kind(m),) + ((roots[id(m)].in_features, roots[id(m)].out_features)
                                           if id(m) in roots else ()) for m in p.holders()})
        lists.append(p.holders())
    queue = defaultdict(deque)
    for m in lists[1]:
        queue[keys[1][id(m)]].append(m)
    return [(m, queue[keys[0][id(m)]].popleft()) for m in lists[0] if queue[keys[0][id(m)]]]


def _blocks(ref, stu, pairs) -> dict:
    """{the handout's block name: (path, the student's module that plays its part)}: the student's
    innermost module holding exactly the layers paired with the block's, else one of the handout's
    name, else (for flatten, which holds no weights) a weightless module around a pooling layer."""
    found, mods = {}, [(p, m) for p, m in stu.named_modules() if p]
    to_stu = {id(r): s for r, s in pairs or ()}
    held = {id(m): {id(x) for x in m.modules() if _own(x)} for _, m in mods}
    for n, block in ref.named_children():
        ours = [x for x in block.modules() if _own(x)]
        hit = None
        if ours and all(id(x) in to_stu for x in ours):
            want = {id(to_stu[id(x)]) for x in ours}
            hit = next(((p, m) for p, m in reversed(mods) if held[id(m)] == want), None)   # the innermost
        if hit is None and isinstance(getattr(stu, n, None), nn.Module):
            hit = (n, getattr(stu, n))
        if hit is None and not ours:
            hit = next(((p, m) for p, m in mods if list(m.children()) and not held[id(m)]
                        and any(isinstance(x, _POOLS) for x in m.modules())), None)
        if hit is not None:
            found[n] = hit
    return found


def _trace(model, modules: dict, args) -> tuple[dict, bool]:
    """({block name: [its first input, its first output or None]} in call order, whether the
    forward pass completed); never raises."""
    seen: dict = {}
    hooks = []
    for n, m in modules.items():
        hooks.append(m.register_forward_pre_hook(
            lambda mod, i, n=n: seen.setdefault(n, [i[0] if i else None, None]) and None))
        hooks.append(m.register_forward_hook(
            lambda mod, i, o, n=n: seen[n].__setitem__(1, o) if seen[n][1] is None else None))
    completed = False
    try:
        with torch.no_grad():
            model(*args)
        completed = True
    except Exception:
        pass
    finally:
        for h in hooks:
            h.remove()
    return seen, completed


def _unet_hint(stu, ref, args, kind: str) -> str:
    """Follow the student's forward pass block by block and name the first block whose input or
    output differs from the course's (values only when the weights could be copied). The
    student's blocks are found by the layers they hold, whatever their names."""
    stu.eval()
    ref.eval()
    if kind == "class" and (labels := _labels_hint(stu, args)):
        return labels
    try:
        pairs, values = copy_weights(ref, stu, "", "", args), True
    except Mismatch:
        pairs, values = None, False
    found = _blocks(ref, stu, pairs if pairs is not None else _loose_pairs(ref, stu, args))
    if not found:
        return _network_hint(stu, ref, args)

    def label(n):
        path = found[n][0]
        return f"self.{path}" if path == n else f"self.{path} (the handout's {n})"

    ref_seen, _ = _trace(ref, dict(ref.named_children()), args)
    stu_seen, completed = _trace(stu, {n: m for n, (_, m) in found.items()}, args)
    for n, (sin, sout) in stu_seen.items():      # in the order the student's forward pass enters them
        rin, rout = ref_seen[n]
        if not _same(sin, rin, values):
            return _input_hint(n, label(n), sin, rin, kind, values)
        if sout is None or not _same(sout, rout, values):
            layers = layer_hint(found[n][1], getattr(ref, n), label(n), (sin,))
            return (f"{layers} (the handout's {n} is {_ROLE[n]})" if layers else
                    f"{label(n)} {'fails on' if sout is None else 'returns something else from'} the "
                    f"same input as the handout's {n} ({_ROLE[n]})")
    missing = [n for n in ref_seen if n in found and n not in stu_seen]
    if missing:
        n = next((m for m in missing if not m.startswith("fc")), missing[0])
        if completed:
            return f"{label(n)} is never called; the handout's forward uses it ({_ROLE[n]})"
        last = list(stu_seen)[-1] if stu_seen else None
        where = f", after {label(last)}" if last else ""
        mod = (f": check the modulation ({'t1' if kind == 'time' else 'c1 and t1'} viewed as (B, 2D, 1, 1), "
               f"one value per channel): {_MODULATION[kind]}"
               if kind != "uncond" and last is not None and (last in ("unflatten", "up1") or last.startswith("fc"))
               else "")
        return f"the forward pass fails before it reaches {label(n)}{where}{mod}"
    if not completed:
        last = list(stu_seen)[-1] if stu_seen else None
        return _network_hint(stu, ref, args) or (f"the forward pass fails after {label(last)}" if last else "")
    if kind != "uncond" and values:
        return f"every block receives the handout's input and returns its output; check the modulation: {_MODULATION[kind]}"
    return ("every block receives and returns the handout's values, but the output differs: "
            "forward should return head's output")


def _input_hint(n: str, lab: str, sin, rin, kind: str, values: bool) -> str:
    if n in ("fc1_t", "fc2_t"):
        return _t_hint(lab, sin, rin)
    if n in ("fc1_c", "fc2_c"):
        return (f"{lab} should receive c as it is given, one-hot rows of shape (B, num_classes) (a zero "
                f"row: no class); it receives {describe(sin)}")
    if not isinstance(sin, torch.Tensor):
        return f"{lab} receives a {type(sin).__name__}, not a tensor"
    if sin.shape != rin.shape:
        if n in _CAT and sin.ndim == rin.ndim == 4 and 2 * sin.shape[1] == rin.shape[1]:
            a, b = _CAT[n]
            doubled = [d for d in (0, 2, 3) if sin.shape[d] == 2 * rin.shape[d]]
            if doubled:
                d = doubled[0]
                return (f"{lab} receives shape {tuple(sin.shape)} instead of {tuple(rin.shape)}: the skip "
                        f"connection cat([{a}, {b}]) is concatenated on the wrong dimension (dim {d}, "
                        f"{'the batch' if d == 0 else 'a spatial one'}); stack the feature maps along the "
                        "channels, dim 1")
            return (f"{lab} receives half the channels it should: it takes the skip connection "
                    f"cat([{a}, {b}]) along the channels")
        return (f"{lab} receives a tensor of shape {tuple(sin.shape)}; the handout's {n} ({_ROLE[n]}) "
                f"receives {tuple(rin.shape)}")
    if n in _CAT and values:
        a, b = _CAT[n]
        half = rin.shape[1] // 2
        if _same(sin, torch.cat([rin[:, half:], rin[:, :half]], dim=1)):
            return (f"{lab} receives cat([{b}, {a}]); the course's order is cat([{a}, {b}]), the encoder's map "
                    "first: both orders would train alike, but the course's weights (which this check copies "
                    "into yours, and the later notebooks load) expect that order")
        if kind != "uncond" and n in ("up1", "up2") and _same(sin[:, :half], rin[:, :half]):
            return f"the modulated {b} that enters {lab} differs from the handout's: {_MODULATION[kind]}"
        return f"{lab} does not receive cat([{a}, {b}]) (along the channels)"
    return f"{lab} receives other values than the handout's {n} ({_ROLE[n]})"


def _t_hint(lab: str, sin, rin) -> str:
    if not isinstance(sin, torch.Tensor):
        return f"t reaches {lab} as a {type(sin).__name__}: it should be a tensor, a (B, 1) column"
    if sin.shape != rin.shape:
        return (f"t reaches {lab} with shape {tuple(sin.shape)}: reshape it to a (B, 1) column, one row "
                "per image (t arrives with shape (B,))")
    k = float((sin * rin).sum() / (rin * rin).sum())
    if abs(k - 1) > 1e-4 and _same(sin, k * rin):
        return (f"t reaches {lab} multiplied by {k:.4g}: t is already in [0, 1] (normalised once, by the "
                "loss and the sampler), so it enters the embedding as it is")
    return f"{lab} should receive t itself, as a (B, 1) column; it receives {describe(sin)}"


def _labels_hint(stu, args) -> str:
    """'' unless the student's network fails on one-hot rows but runs on integer labels."""
    x, t, c = args
    try:
        with torch.no_grad():
            stu(x, t, c)
        return ""
    except Exception:
        pass
    try:
        with torch.no_grad():
            stu(x, t, c.argmax(dim=1))
    except Exception:
        return ""
    return ("c arrives as one-hot rows of shape (B, num_classes) (the training loss and the sampler one-hot "
            "the labels, and a dropped class is a zero row): feed it to fc1_c and fc2_c as it is")


@exercise("UnconditionalUNet", "solutions.part_b_networks:UnconditionalUNet", "12", methods=("__init__", "forward"))
@own_rng
def _unconditional_unet(student):
    _unet_cases(student, "uncond")


@exercise("TimeConditionalUNet", "solutions.part_b_networks:TimeConditionalUNet", "16",
          methods=("__init__", "forward"))
@own_rng
def _time_conditional_unet(student):
    _unet_cases(student, "time")


@exercise("ClassConditionalUNet", "solutions.part_b_networks:ClassConditionalUNet", "17",
          methods=("__init__", "forward"))
@own_rng
def _class_conditional_unet(student):
    _unet_cases(student, "class")
