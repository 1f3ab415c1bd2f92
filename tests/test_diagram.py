"""12's UNet figure is drawn from the model: every block appears with the shape it really outputs."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from course_utils.part_b.diagram import (MIN_WIDTH_PX, SKIPS, draw_unet, figure_text, shape_text,  # noqa: E402
                                         trace_blocks)
from course_utils.part_b.unet import ClassConditionalUNet, TimeConditionalUNet, UnconditionalUNet  # noqa: E402

D = 8
TRUNK = {"conv_in": (D, 28, 28), "down1": (D, 14, 14), "down2": (2 * D, 7, 7), "flatten": (2 * D, 1, 1),
         "unflatten": (2 * D, 7, 7), "up1": (D, 14, 14), "up2": (D, 28, 28), "conv_out": (D, 28, 28),
         "head": (1, 28, 28)}
FC = {"fc1_t": (2 * D,), "fc2_t": (D,), "fc1_c": (2 * D,), "fc2_c": (D,)}


@pytest.mark.parametrize("net, fcs", [(UnconditionalUNet, []), (TimeConditionalUNet, ["fc1_t", "fc2_t"]),
                                      (ClassConditionalUNet, list(FC))])
def test_trace_lists_every_block_with_its_output_shape(net, fcs):
    model = net(num_hiddens=D)
    blocks = {b.name: b for b in trace_blocks(model)}
    assert set(blocks) == {name for name, _ in model.named_children()}
    assert {n: b.output for n, b in blocks.items() if n in TRUNK} == TRUNK
    assert {n: blocks[n].output for n in fcs} == {n: FC[n] for n in fcs}
    # the skip connections double the decoder's input channels
    assert blocks["up1"].input == (4 * D, 7, 7) and blocks["up2"].input == (2 * D, 14, 14)
    assert blocks["conv_out"].input == (2 * D, 28, 28)
    assert model.training   # tracing leaves the mode as it was


@pytest.mark.parametrize("net", [UnconditionalUNet, ClassConditionalUNet])
def test_diagram_shows_every_block_shape_and_skip(net):
    model = net(num_hiddens=D)
    fig = draw_unet(model)
    text = figure_text(fig)
    for block in trace_blocks(model):
        assert block.name in text and block.kind in text
        assert shape_text(block.output) in text, f"{block.name}: {shape_text(block.output)} not drawn"
    blocks = {b.name: b for b in trace_blocks(model)}
    for dec in SKIPS.values():
        assert f"concat → {shape_text(blocks[dec].input)}" in text
    assert fig.get_size_inches()[0] * 72 >= MIN_WIDTH_PX   # readable at the notebooks' 72 dpi
    plt.close(fig)


def test_diagram_refuses_a_model_that_is_not_a_course_unet():
    import torch.nn as nn
    with pytest.raises(ValueError, match="not a course UNet"):
        draw_unet(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1)))
