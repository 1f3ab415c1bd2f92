"""The UNet drawn from the model itself: every block's name, type and output shape, in a U.

The shapes are not typed in: ``trace_blocks`` runs one forward pass with a hook on every block
(every direct child module of the UNet) and records what goes in and what comes out, so the
figure is right for any width D and for the conditioned variants too.

    fig = draw_unet(UnconditionalUNet(num_hiddens=128))
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import nn

from ..common.plotting import save_figure

# Where each trunk block sits in the U: (column, row); column 0 is the encoder, 1 the decoder,
# row 0 the top (full resolution). The skip connections join a row's two blocks.
_TRUNK = {"conv_in": (0, 1), "down1": (0, 2), "down2": (0, 3), "flatten": (0, 4),
          "unflatten": (1, 4), "up1": (1, 3), "up2": (1, 2), "conv_out": (1, 1), "head": (1, 0)}
# skip connection: encoder block -> the decoder block whose input it is concatenated into
SKIPS = {"down2": "up1", "down1": "up2", "conv_in": "conv_out"}
# conditioning: FCBlock -> the feature map it modulates (handout: c1 * unflatten + t1, c2 * up1 + t2)
_CONDITIONS = {"fc1_t": "unflatten", "fc1_c": "unflatten", "fc2_t": "up1", "fc2_c": "up1"}
MIN_WIDTH_PX = 600


@dataclass(frozen=True)
class Block:
    name: str          # attribute name in the model (conv_in, down1, ...)
    kind: str          # class name (ConvBlock, DownBlock, ...)
    input: tuple       # shape of its (first) input, batch dimension dropped
    output: tuple      # shape of its output, batch dimension dropped

    @property
    def label(self) -> str:
        return f"{self.name}\n{self.kind}\n{shape_text(self.output)}"


def shape_text(shape: tuple) -> str:
    return "×".join(str(s) for s in shape)


def example_inputs(model: nn.Module, batch: int = 1) -> tuple:
    """A zero image, plus t (and a class) when the model is conditioned on them.

    The class is an all-zero one-hot row ("no class"): every class-conditioned UNet of the course,
    the student's included, takes one-hot rows, not integer labels.
    """
    x = torch.zeros(batch, getattr(model, "in_channels", 1), 28, 28)
    args = (x,)
    if hasattr(model, "fc1_t"):
        args += (torch.zeros(batch),)
    if hasattr(model, "fc1_c"):
        args += (torch.zeros(batch, getattr(model, "num_classes", 10)),)
    return args


@torch.no_grad()
def trace_blocks(model: nn.Module, *inputs) -> list[Block]:
    """Every direct child of ``model`` in the order the forward pass runs it, with its shapes."""
    inputs = inputs or example_inputs(model)
    seen: list[Block] = []
    hooks = [module.register_forward_hook(
                 lambda m, i, o, name=name: seen.append(
                     Block(name, type(m).__name__, tuple(i[0].shape[1:]), tuple(o.shape[1:]))))
             for name, module in model.named_children()]
    was_training = model.training
    try:
        model.eval()
        model(*inputs)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return seen


def _box(ax, xy, text, color, width=2.3, height=0.62):
    x, y = xy
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.02,rounding_size=0.08", fc=color, ec="0.3", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=9, linespacing=1.25)


def _arrow(ax, start, end, color="0.25", style="-|>", ls="-", text=None, text_xy=None, rad=0.0):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=12, color=color, lw=1.3,
                                 linestyle=ls, connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2))
    if text:
        ax.text(*(text_xy or ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12)), text,
                ha="center", va="bottom", fontsize=8, color=color)


def draw_unet(model: nn.Module, *inputs, title: str | None = None, name: str | None = None):
    """A U-shaped block diagram of a course UNet, shapes from one traced forward pass.

    Encoder down the left, bottleneck along the bottom, decoder up the right; dashed arrows are
    the skip connections (concatenated to the decoder block's input, whose shape they label);
    FCBlocks of a conditioned UNet appear on the right, pointing at the map they modulate.
    """
    blocks = {b.name: b for b in trace_blocks(model, *inputs)}
    missing = [n for n in _TRUNK if n not in blocks]
    if missing:
        raise ValueError(f"not a course UNet: no block(s) {missing} among {list(blocks)}")
    conditions = [n for n in _CONDITIONS if n in blocks]
    col_x = {0: 0.0, 1: 6.2}
    pos = {n: (col_x[c], -1.15 * r) for n, (c, r) in _TRUNK.items()}
    fig, ax = plt.subplots(figsize=(11.0 if conditions else 9.0, 6.6))
    colors = {"ConvBlock": "#dbe9f6", "DownBlock": "#fde0c5", "UpBlock": "#d5efd5",
              "Flatten": "#eadcf2", "Unflatten": "#eadcf2", "Conv2d": "#f2f2f2", "FCBlock": "#fff3b0"}
    for n, b in blocks.items():
        if n in pos:
            _box(ax, pos[n], b.label, colors.get(b.kind, "#eeeeee"))
    x_in = blocks["conv_in"].input
    top = 1.15
    ax.text(pos["conv_in"][0], top, f"input x\n{shape_text(x_in)}", ha="center", va="center", fontsize=9,
            bbox=dict(boxstyle="round", fc="white", ec="0.5"))
    ax.text(pos["head"][0] + 3.0, 0, f"output\n{shape_text(blocks['head'].output)}", ha="center",
            va="center", fontsize=9, bbox=dict(boxstyle="round", fc="white", ec="0.5"))
    half_h = 0.31
    # the main path: down the encoder, across the bottleneck, up the decoder
    _arrow(ax, (0, top - 0.3), (0, pos["conv_in"][1] + half_h))
    for a, b in [("conv_in", "down1"), ("down1", "down2"), ("down2", "flatten")]:
        _arrow(ax, (pos[a][0], pos[a][1] - half_h), (pos[b][0], pos[b][1] + half_h))
    _arrow(ax, (pos["flatten"][0] + 1.15, pos["flatten"][1]), (pos["unflatten"][0] - 1.15, pos["unflatten"][1]),
           text="1×1 bottleneck")
    for a, b in [("unflatten", "up1"), ("up1", "up2"), ("up2", "conv_out"), ("conv_out", "head")]:
        _arrow(ax, (pos[a][0], pos[a][1] + half_h), (pos[b][0], pos[b][1] - half_h))
    _arrow(ax, (pos["head"][0] + 1.15, 0), (pos["head"][0] + 2.45, 0))
    # skip connections, labelled with the concatenated input of the decoder block
    for enc, dec in SKIPS.items():
        y = pos[enc][1]
        _arrow(ax, (pos[enc][0] + 1.15, y), (pos[dec][0] - 1.15, y), color="#1f5fa8", ls="--",
               text=f"skip: concat → {shape_text(blocks[dec].input)}")
    # conditioning FCBlocks, right of the decoder
    for k, n in enumerate(conditions):
        target = _CONDITIONS[n]
        tx, ty = pos[target]
        offset = 0.27 if n.endswith("_t") else -0.27
        xy = (tx + 3.4, ty + offset)
        b = blocks[n]
        _box(ax, xy, f"{n}: {b.kind} {shape_text(b.input)} → {shape_text(b.output)}",
             colors["FCBlock"], width=2.6, height=0.4)
        _arrow(ax, (xy[0] - 1.3, xy[1]), (tx + 1.15, ty + offset / 3), color="#9a7b00")
    if conditions:
        op = "c·h + t" if "fc1_c" in blocks else "h·t"
        ax.text(col_x[1] + 3.4, -1.15 * 2, f"conditioning: {op}\non unflatten and up1",
                ha="center", va="center", fontsize=8.5, color="#9a7b00")
    right = col_x[1] + (4.8 if conditions else 3.8)
    ax.set_xlim(-1.4, right)
    ax.set_ylim(-1.15 * 4 - 0.55, top + 0.45)
    ax.set_aspect("auto")
    ax.axis("off")
    params = sum(p.numel() for p in model.parameters())
    ax.set_title(title or f"{type(model).__name__}: block, type, output shape (channels×H×W); "
                          f"{params:,} parameters", fontsize=10)
    fig.tight_layout()
    save_figure(fig, name)
    return fig


def figure_text(fig) -> str:
    """All the text drawn in a figure (for tests: which blocks and shapes it shows)."""
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts + [ax.title])
