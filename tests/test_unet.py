"""Part B §1.1, §2.1, §2.4: the blocks and the three UNets, checked against the handout.

Expected shapes, layer hyperparameters and parameter counts are derived by hand from the
handout's Figure 2 / Figure 9 and the COURSE_SPEC architecture line, not read off the code.
"""
import pytest
import torch
from torch import nn

from course_utils.checks.part_b_networks import spice  # BN statistics as after training
from course_utils.part_b.blocks import (Conv, ConvBlock, DownBlock, DownConv, FCBlock, Flatten,
                                        Unflatten, UpBlock, UpConv)
from course_utils.part_b.unet import (ClassConditionalUNet, TimeConditionalUNet, UnconditionalUNet,
                                      count_parameters, one_hot)

DS = [1, 4, 16]


def leaves(module):
    """The leaf layers of a block, in forward order, as comparable tuples."""
    out = []
    for m in module.modules():
        if list(m.children()):
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            out.append((type(m).__name__, m.in_channels, m.out_channels, m.kernel_size,
                        m.stride, m.padding))
        elif isinstance(m, nn.BatchNorm2d):
            out.append(("BatchNorm2d", m.num_features))
        elif isinstance(m, nn.AvgPool2d):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            out.append(("AvgPool2d", k))
        elif isinstance(m, nn.Linear):
            out.append(("Linear", m.in_features, m.out_features))
        else:
            out.append((type(m).__name__,))
    return out


def conv(i, o):       # Conv2d(3, 1, 1) + BN + GELU
    return [("Conv2d", i, o, (3, 3), (1, 1), (1, 1)), ("BatchNorm2d", o), ("GELU",)]


def downconv(i, o):   # Conv2d(3, 2, 1) + BN + GELU
    return [("Conv2d", i, o, (3, 3), (2, 2), (1, 1)), ("BatchNorm2d", o), ("GELU",)]


def upconv(i, o):     # ConvTranspose2d(4, 2, 1) + BN + GELU
    return [("ConvTranspose2d", i, o, (4, 4), (2, 2), (1, 1)), ("BatchNorm2d", o), ("GELU",)]


def convblock(i, o):
    return conv(i, o) + conv(o, o)


def fcblock(i, o):    # Linear(F_in, F_out), GELU, Linear(F_out, F_out)
    return [("Linear", i, o), ("GELU",), ("Linear", o, o)]


# ---- blocks: layer types and hyperparameters -------------------------------------------

@pytest.mark.parametrize("block, expected", [
    (Conv(3, 5), conv(3, 5)),
    (DownConv(3, 5), downconv(3, 5)),
    (UpConv(3, 5), upconv(3, 5)),
    (Flatten(), [("AvgPool2d", 7), ("GELU",)]),
    (Unflatten(6), [("ConvTranspose2d", 6, 6, (7, 7), (7, 7), (0, 0)), ("BatchNorm2d", 6),
                    ("GELU",)]),
    (ConvBlock(3, 5), convblock(3, 5)),
    (DownBlock(3, 5), downconv(3, 5) + convblock(5, 5)),
    (UpBlock(3, 5), upconv(3, 5) + convblock(5, 5)),
    (FCBlock(1, 8), fcblock(1, 8)),
    (FCBlock(10, 8), fcblock(10, 8)),
], ids=["Conv", "DownConv", "UpConv", "Flatten", "Unflatten", "ConvBlock", "DownBlock",
        "UpBlock", "FCBlock_t", "FCBlock_c"])
def test_block_layers_match_handout(block, expected):
    assert leaves(block) == expected


# ---- blocks: shapes ------------------------------------------------------------------------

@pytest.mark.parametrize("block, in_shape, out_shape", [
    (Conv(3, 5), (2, 3, 28, 28), (2, 5, 28, 28)),
    (Conv(3, 5), (2, 3, 7, 7), (2, 5, 7, 7)),
    (DownConv(3, 5), (2, 3, 28, 28), (2, 5, 14, 14)),
    (DownConv(3, 5), (2, 3, 14, 14), (2, 5, 7, 7)),
    (UpConv(3, 5), (2, 3, 7, 7), (2, 5, 14, 14)),
    (UpConv(3, 5), (2, 3, 14, 14), (2, 5, 28, 28)),
    (Flatten(), (2, 6, 7, 7), (2, 6, 1, 1)),
    (Unflatten(6), (2, 6, 1, 1), (2, 6, 7, 7)),
    (ConvBlock(3, 5), (2, 3, 28, 28), (2, 5, 28, 28)),
    (DownBlock(3, 5), (2, 3, 28, 28), (2, 5, 14, 14)),
    (DownBlock(3, 5), (2, 3, 14, 14), (2, 5, 7, 7)),
    (UpBlock(3, 5), (2, 3, 7, 7), (2, 5, 14, 14)),
    (UpBlock(3, 5), (2, 3, 14, 14), (2, 5, 28, 28)),
    (FCBlock(1, 8), (2, 1), (2, 8)),
    (FCBlock(10, 8), (2, 10), (2, 8)),
])
def test_block_output_shape(block, in_shape, out_shape):
    block.eval()
    with torch.no_grad():
        assert tuple(block(torch.randn(in_shape)).shape) == out_shape


def test_flatten_is_average_pool_then_gelu():
    x = torch.randn(2, 3, 7, 7)
    expected = nn.functional.gelu(x.mean(dim=(2, 3), keepdim=True))
    torch.testing.assert_close(Flatten()(x), expected)


# ---- networks: shapes and parameter counts -------------------------------------------------

def n_conv(i, o):         # Conv2d 3x3 (9io + o) + BN (2o)
    return 9 * i * o + 3 * o


def n_convblock(i, o):
    return n_conv(i, o) + n_conv(o, o)


def n_downblock(i, o):
    return n_conv(i, o) + n_convblock(o, o)


def n_upblock(i, o):      # ConvTranspose2d 4x4 (16io + o) + BN (2o), then ConvBlock
    return 16 * i * o + 3 * o + n_convblock(o, o)


def n_fc(i, o):
    return i * o + o + o * o + o


def n_unconditional(D):
    return (n_convblock(1, D) + n_downblock(D, D) + n_downblock(D, 2 * D)
            + 49 * (2 * D) ** 2 + 2 * D + 2 * (2 * D)      # Unflatten: ConvT 7x7 2D->2D + BN
            + n_upblock(4 * D, D) + n_upblock(2 * D, D) + n_convblock(2 * D, D)
            + 9 * D + 1)                                     # final Conv2d(D -> 1, 3x3)


@pytest.mark.parametrize("D", DS + [64, 128])
def test_parameter_counts_match_hand_formula(D):
    # Expanded by hand: 481 D^2 + 81 D + 1; the two FCBlocks for t add 5 D^2 + 9 D and the
    # two for the one-hot class add another 5 D^2 + 36 D.
    assert n_unconditional(D) == 481 * D * D + 81 * D + 1
    assert count_parameters(UnconditionalUNet(1, D)) == 481 * D * D + 81 * D + 1
    t_extra = n_fc(1, 2 * D) + n_fc(1, D)
    c_extra = n_fc(10, 2 * D) + n_fc(10, D)
    assert t_extra == 5 * D * D + 9 * D and c_extra == 5 * D * D + 36 * D
    assert count_parameters(TimeConditionalUNet(1, D)) == 486 * D * D + 90 * D + 1
    assert count_parameters(ClassConditionalUNet(1, 10, D)) == 491 * D * D + 126 * D + 1


def test_handout_default_sizes():
    assert count_parameters(UnconditionalUNet()) == 481 * 128 ** 2 + 81 * 128 + 1   # D = 128
    assert count_parameters(TimeConditionalUNet()) == 486 * 64 ** 2 + 90 * 64 + 1    # D = 64
    assert count_parameters(ClassConditionalUNet()) == 491 * 64 ** 2 + 126 * 64 + 1


def make(kind, D, seed=0):
    torch.manual_seed(seed)
    model = {"uncond": lambda: UnconditionalUNet(1, D), "time": lambda: TimeConditionalUNet(1, D),
             "class": lambda: ClassConditionalUNet(1, 10, D)}[kind]()
    return spice(model, seed).eval()


def call(model, x, t=None, c=None):
    if isinstance(model, ClassConditionalUNet):
        return model(x, t, c)
    if isinstance(model, TimeConditionalUNet):
        return model(x, t)
    return model(x)


@pytest.mark.parametrize("D", DS)
@pytest.mark.parametrize("kind", ["uncond", "time", "class"])
def test_network_output_shape(kind, D):
    model = make(kind, D)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        out = call(model, x, torch.rand(3), torch.tensor([0, 5, 9]))
    assert out.shape == (3, 1, 28, 28)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("kind", ["uncond", "time", "class"])
def test_network_layers_follow_the_diagram(kind):
    """The trunk's layers, in forward order, are the diagram's (COURSE_SPEC architecture line)."""
    D = 4
    model = make(kind, D)
    trunk = (convblock(1, D) + downconv(D, D) + convblock(D, D) + downconv(D, 2 * D)
             + convblock(2 * D, 2 * D) + [("AvgPool2d", 7), ("GELU",)]
             + [("ConvTranspose2d", 2 * D, 2 * D, (7, 7), (7, 7), (0, 0)),
                ("BatchNorm2d", 2 * D), ("GELU",)]
             + upconv(4 * D, D) + convblock(D, D) + upconv(2 * D, D) + convblock(D, D)
             + convblock(2 * D, D) + [("Conv2d", D, 1, (3, 3), (1, 1), (1, 1))])
    names = ["conv_in", "down1", "down2", "flatten", "unflatten", "up1", "up2", "conv_out", "head"]
    got = [layer for name in names for layer in leaves(getattr(model, name))]
    assert got == trunk
    if kind != "uncond":
        assert leaves(model.fc1_t) == fcblock(1, 2 * D)
        assert leaves(model.fc2_t) == fcblock(1, D)
    if kind == "class":
        assert leaves(model.fc1_c) == fcblock(10, 2 * D)
        assert leaves(model.fc2_c) == fcblock(10, D)


def test_intermediate_shapes_follow_the_diagram():
    D = 4
    model = make("uncond", D)
    shapes = {}
    for name in ["conv_in", "down1", "down2", "flatten", "unflatten", "up1", "up2", "conv_out"]:
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, (tuple(i[0].shape), tuple(o.shape))))
    with torch.no_grad():
        model(torch.rand(2, 1, 28, 28))
    assert shapes == {
        "conv_in": ((2, 1, 28, 28), (2, D, 28, 28)),
        "down1": ((2, D, 28, 28), (2, D, 14, 14)),
        "down2": ((2, D, 14, 14), (2, 2 * D, 7, 7)),
        "flatten": ((2, 2 * D, 7, 7), (2, 2 * D, 1, 1)),
        "unflatten": ((2, 2 * D, 1, 1), (2, 2 * D, 7, 7)),
        "up1": ((2, 4 * D, 7, 7), (2, D, 14, 14)),       # cat(down2, unflatten)
        "up2": ((2, 2 * D, 14, 14), (2, D, 28, 28)),     # cat(down1, up1)
        "conv_out": ((2, 2 * D, 28, 28), (2, D, 28, 28)),  # cat(conv_in, up2)
    }


def test_skip_connections_carry_the_encoder_features():
    """up1 sees cat([down2, unflatten]), up2 sees cat([down1, up1]), conv_out cat([conv_in, up2])."""
    model = make("uncond", 4)
    outs, ins = {}, {}
    for name in ["conv_in", "down1", "down2", "unflatten", "up1", "up2", "conv_out"]:
        def hook(m, i, o, name=name):
            ins[name], outs[name] = i[0], o
        getattr(model, name).register_forward_hook(hook)
    with torch.no_grad():
        model(torch.rand(2, 1, 28, 28))
    for consumer, (a, b) in {"up1": ("down2", "unflatten"), "up2": ("down1", "up1"),
                             "conv_out": ("conv_in", "up2")}.items():
        got = ins[consumer]
        ca, cb = outs[a].shape[1], outs[b].shape[1]
        # concatenation on channels; either order of the two halves is accepted
        ok = ((torch.equal(got[:, :ca], outs[a]) and torch.equal(got[:, ca:], outs[b]))
              or (torch.equal(got[:, :cb], outs[b]) and torch.equal(got[:, cb:], outs[a])))
        assert ok, f"{consumer} does not receive cat({a}, {b})"


# ---- conditioning ------------------------------------------------------------------------

class Const(nn.Module):
    """Stands in for an FCBlock: returns a fixed row for every sample."""

    def __init__(self, value):
        super().__init__()
        self.register_buffer("value", torch.as_tensor(value, dtype=torch.float32))

    def forward(self, x):
        return self.value.expand(x.shape[0], -1).clone()


def trunk_copy(model):
    """An UnconditionalUNet with the conditioned model's trunk weights."""
    base = UnconditionalUNet(1, model.config["num_hiddens"]).eval()
    missing, unexpected = base.load_state_dict(model.state_dict(), strict=False)
    assert not missing
    assert all(k.startswith("fc") for k in unexpected)
    return base


def test_time_model_with_t_embedding_one_is_the_unconditional_trunk():
    """unflatten * t1, up1 * t2: t1 = t2 = 1 leaves the trunk untouched."""
    D = 4
    model = make("time", D)
    base = trunk_copy(model)
    model.fc1_t, model.fc2_t = Const(torch.ones(2 * D)), Const(torch.ones(D))
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x, torch.rand(3)), base(x), rtol=0, atol=0)


def test_time_model_modulation_is_multiplicative_at_unflatten_and_up1():
    D = 4
    model = make("time", D)
    base = trunk_copy(model)
    a, b = torch.linspace(-2, 3, 2 * D), torch.linspace(0.5, -1.5, D)
    model.fc1_t, model.fc2_t = Const(a), Const(b)
    base.unflatten.register_forward_hook(lambda m, i, o: o * a[None, :, None, None])
    base.up1.register_forward_hook(lambda m, i, o: o * b[None, :, None, None])
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x, 0.3), base(x))
        # and it is not just the unconditional trunk
        assert (model(x, 0.3) - trunk_copy(model)(x)).abs().max() > 1e-3


def test_class_model_modulation_is_c1_times_unflatten_plus_t1():
    D = 4
    model = make("class", D)
    base = trunk_copy(model)
    c1, t1 = torch.linspace(-2, 3, 2 * D), torch.linspace(-0.7, 0.9, 2 * D)
    c2, t2 = torch.linspace(0.5, -1.5, D), torch.linspace(1.0, 2.0, D)
    model.fc1_c, model.fc1_t = Const(c1), Const(t1)
    model.fc2_c, model.fc2_t = Const(c2), Const(t2)
    base.unflatten.register_forward_hook(lambda m, i, o: c1[None, :, None, None] * o + t1[None, :, None, None])
    base.up1.register_forward_hook(lambda m, i, o: c2[None, :, None, None] * o + t2[None, :, None, None])
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x, 0.3, torch.tensor([1, 2, 3])), base(x))


def test_class_model_with_c_one_and_t_zero_is_the_unconditional_trunk():
    D = 4
    model = make("class", D)
    base = trunk_copy(model)
    model.fc1_c, model.fc2_c = Const(torch.ones(2 * D)), Const(torch.ones(D))
    model.fc1_t, model.fc2_t = Const(torch.zeros(2 * D)), Const(torch.zeros(D))
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model(x, 0.5, None), base(x), rtol=0, atol=0)


def test_t_reaches_the_embedding_as_given():
    """t is already in [0, 1]: fc1_t and fc2_t must see exactly those values, shape (B, 1)."""
    for kind in ["time", "class"]:
        model = make(kind, 4)
        seen = {}
        model.fc1_t.register_forward_hook(lambda m, i, o: seen.__setitem__("fc1", i[0].clone()))
        model.fc2_t.register_forward_hook(lambda m, i, o: seen.__setitem__("fc2", i[0].clone()))
        t = torch.tensor([0.0, 0.25, 1.0])
        with torch.no_grad():
            call(model, torch.rand(3, 1, 28, 28), t, torch.tensor([0, 1, 2]))
        expected = torch.tensor([[0.0], [0.25], [1.0]])
        assert torch.equal(seen["fc1"], expected) and torch.equal(seen["fc2"], expected)


def test_class_reaches_the_embedding_as_one_hot():
    model = make("class", 4)
    seen = []
    model.fc1_c.register_forward_hook(lambda m, i, o: seen.append(i[0].clone()))
    model.fc2_c.register_forward_hook(lambda m, i, o: seen.append(i[0].clone()))
    with torch.no_grad():
        model(torch.rand(3, 1, 28, 28), 0.5, torch.tensor([0, 7, 9]))
    expected = torch.zeros(3, 10)
    expected[0, 0] = expected[1, 7] = expected[2, 9] = 1.0
    assert len(seen) == 2 and all(torch.equal(s, expected) for s in seen)


@pytest.mark.parametrize("kind", ["time", "class"])
def test_scalar_t_equals_per_sample_t(kind):
    model = make(kind, 4)
    x = torch.rand(3, 1, 28, 28)
    c = torch.tensor([1, 4, 8])
    with torch.no_grad():
        ref = call(model, x, torch.full((3,), 0.7), c)
        for t in [0.7, torch.tensor(0.7), torch.full((3, 1), 0.7)]:
            torch.testing.assert_close(call(model, x, t, c), ref, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["time", "class"])
def test_different_t_gives_different_output(kind):
    model = make(kind, 4)
    x = torch.rand(2, 1, 28, 28)
    c = torch.tensor([3, 3])
    with torch.no_grad():
        a, b = call(model, x, 0.1, c), call(model, x, 0.9, c)
    assert (a - b).abs().max() > 1e-3
    # and per sample: the same image at two times in one batch gives two outputs
    with torch.no_grad():
        out = call(model, torch.cat([x[:1], x[:1]]), torch.tensor([0.1, 0.9]), torch.tensor([3, 3]))
    assert (out[0] - out[1]).abs().max() > 1e-3


def test_different_class_gives_different_output():
    model = make("class", 4)
    x = torch.rand(1, 1, 28, 28).expand(10, -1, -1, -1)
    with torch.no_grad():
        out = model(x, 0.5, torch.arange(10))
    flat = out.flatten(1)
    dists = torch.cdist(flat, flat) + torch.eye(10) * 1e9
    assert dists.min() > 1e-3   # all ten classes give ten different outputs


def test_class_none_equals_zero_vector_and_differs_from_a_class():
    model = make("class", 4)
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        none = model(x, 0.4, None)
        zeros = model(x, 0.4, torch.zeros(3, 10))
        default = model(x, 0.4)
        cls = model(x, 0.4, torch.tensor([2, 2, 2]))
    torch.testing.assert_close(none, zeros, rtol=0, atol=0)
    torch.testing.assert_close(default, zeros, rtol=0, atol=0)
    assert (none - cls).abs().max() > 1e-3


def test_integer_labels_equal_their_one_hot():
    model = make("class", 4)
    x = torch.rand(4, 1, 28, 28)
    labels = torch.tensor([0, 3, 9, 3])
    oh = torch.tensor([[1.0 if j == k else 0.0 for j in range(10)] for k in [0, 3, 9, 3]])
    with torch.no_grad():
        torch.testing.assert_close(model(x, 0.5, labels), model(x, 0.5, oh), rtol=0, atol=0)
    assert torch.equal(one_hot(labels), oh)


def test_conditioned_outputs_are_per_sample():
    """Sample i's output depends only on (x_i, t_i, c_i): batching does not mix conditions."""
    model = make("class", 4)
    x = torch.rand(3, 1, 28, 28)
    t = torch.tensor([0.1, 0.5, 0.9])
    c = torch.tensor([1, 5, 7])
    with torch.no_grad():
        batched = model(x, t, c)
        for i in range(3):
            single = model(x[i:i + 1], t[i:i + 1], c[i:i + 1])
            torch.testing.assert_close(batched[i:i + 1], single, atol=1e-5, rtol=1e-5)


# ---- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 3, 28, 28), (1, 28, 28), (28, 28),
                                   (2, 1, 28, 27)])
@pytest.mark.parametrize("kind", ["uncond", "time", "class"])
def test_wrong_image_shape_raises_with_expected_shape(kind, shape):
    model = make(kind, 1)
    with pytest.raises(ValueError, match=r"1, 28, 28"):
        call(model, torch.rand(shape), 0.5, None)


@pytest.mark.parametrize("labels", [[10], [-1], [0, 12]])
def test_label_outside_0_9_raises(labels):
    model = make("class", 1)
    x = torch.rand(len(labels), 1, 28, 28)
    with pytest.raises(ValueError, match="0..9|0-9|0 and 9|range"):
        model(x, 0.5, torch.tensor(labels))
    with pytest.raises(ValueError):
        one_hot(torch.tensor(labels))


def test_condition_of_wrong_batch_size_raises():
    model = make("class", 1)
    with pytest.raises(ValueError):
        model(torch.rand(3, 1, 28, 28), 0.5, torch.tensor([1, 2]))
