"""ConvBlock (notebook 12): Conv(in, out), Conv(out, out), each Conv2d(3, 1, 1) + BatchNorm2d + GELU."""
import torch.nn.functional as F
from torch import nn

EXERCISE = "ConvBlock"


class ConvBlockModule(nn.Module):
    """An nn.Module with its own names and forward, GELU as a function."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.gelu(self.bn2(self.conv2(F.gelu(self.bn1(self.conv1(x))))))


class ConvBlockFlat(nn.Sequential):
    """The six layers in one flat Sequential, padding="same"."""

    def __init__(self, in_channels, out_channels):
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding="same"), nn.BatchNorm2d(out_channels),
                         nn.GELU(), nn.Conv2d(out_channels, out_channels, 3, padding="same"),
                         nn.BatchNorm2d(out_channels), nn.GELU())


class ConvBlockBackwards(nn.Module):
    """The second Conv registered before the first."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.second = nn.Sequential(nn.Conv2d(out_channels, out_channels, 3, 1, 1),
                                    nn.BatchNorm2d(out_channels), nn.GELU())
        self.first = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, 1, 1),
                                   nn.BatchNorm2d(out_channels), nn.GELU())

    def forward(self, x):
        return self.second(self.first(x))


CORRECT = [ConvBlockModule, ConvBlockFlat, ConvBlockBackwards]


def conv(i, o, act=nn.GELU, norm=True):
    return [nn.Conv2d(i, o, 3, 1, 1), *([nn.BatchNorm2d(o)] if norm else []), act()]


class ConvBlockInTwice(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(*conv(i, o), *conv(i, o))


class ConvBlockOneConv(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(*conv(i, o))


class ConvBlockReLU(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(*conv(i, o, nn.ReLU), *conv(o, o, nn.ReLU))


class ConvBlockNoBN(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(*conv(i, o), *conv(o, o, norm=False))


WRONG = [
    (ConvBlockInTwice, "the handout's has Conv2d(5→5"),
    (ConvBlockOneConv, "the handout's continues with Conv2d(5→5"),
    (ConvBlockReLU, "is ReLU; the handout's has GELU"),
    (ConvBlockNoBN, "lacks the handout's BatchNorm2d(5)"),
]
