"""Unflatten (notebook 12): ConvTranspose2d(C, C, 7, 7, 0) + BatchNorm2d + GELU, 1×1 to 7×7."""
from collections import OrderedDict

import torch.nn.functional as F
from torch import nn

EXERCISE = "Unflatten"


class UnflattenModule(nn.Module):
    """An nn.Module with its own names and forward."""

    def __init__(self, in_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels, kernel_size=7, stride=7, padding=0)
        self.norm = nn.BatchNorm2d(in_channels)

    def forward(self, x):
        return F.gelu(self.norm(self.up(x)))


class UnflattenNamed(nn.Sequential):
    """A Sequential with named layers and keyword arguments (padding left at its default 0)."""

    def __init__(self, in_channels):
        super().__init__(OrderedDict(
            deconv=nn.ConvTranspose2d(in_channels, in_channels, kernel_size=7, stride=7),
            bn=nn.BatchNorm2d(in_channels),
            gelu=nn.GELU()))


class UnflattenBackwards(nn.Module):
    """The BatchNorm registered before the convolution: the forward pass decides the order."""

    def __init__(self, in_channels):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.act = nn.GELU()
        self.conv = nn.ConvTranspose2d(in_channels, in_channels, 7, 7, 0)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


CORRECT = [UnflattenModule, UnflattenNamed, UnflattenBackwards]


class UnflattenConv(nn.Sequential):
    def __init__(self, c):
        super().__init__(nn.Conv2d(c, c, 7, 7, 0), nn.BatchNorm2d(c), nn.GELU())


class UnflattenNoBN(nn.Sequential):
    def __init__(self, c):
        super().__init__(nn.ConvTranspose2d(c, c, 7, 7, 0), nn.GELU())


class UnflattenKernel4(nn.Sequential):
    def __init__(self, c):
        super().__init__(nn.ConvTranspose2d(c, c, 4, 2, 1), nn.BatchNorm2d(c), nn.GELU())


class UnflattenReLU(nn.Sequential):
    def __init__(self, c):
        super().__init__(nn.ConvTranspose2d(c, c, 7, 7, 0), nn.BatchNorm2d(c), nn.ReLU())


WRONG = [
    (UnflattenConv, "the handout's has ConvTranspose2d(6→6, kernel 7, stride 7, padding 0)"),
    (UnflattenNoBN, "lacks the handout's BatchNorm2d(6)"),
    (UnflattenKernel4, "kernel 7, stride 7"),
    (UnflattenReLU, "is ReLU; the handout's has GELU"),
]
