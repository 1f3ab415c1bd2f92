"""DownBlock (notebook 12): DownConv(in, out) (Conv2d(3, 2, 1) + BN + GELU), then ConvBlock(out, out)."""
import torch.nn.functional as F
from torch import nn

EXERCISE = "DownBlock"


class DownBlockModule(nn.Module):
    """An nn.Module with its own names and forward."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.down = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1)
        self.bn0 = nn.BatchNorm2d(out_channels)
        self.conv1 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = F.gelu(self.bn0(self.down(x)))
        x = F.gelu(self.bn1(self.conv1(x)))
        return F.gelu(self.bn2(self.conv2(x)))


class DownBlockFlat(nn.Sequential):
    """The nine layers in one flat Sequential, built by a loop."""

    def __init__(self, in_channels, out_channels):
        layers = []
        for i, stride in enumerate([2, 1, 1]):
            layers += [nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, stride, 1),
                       nn.BatchNorm2d(out_channels), nn.GELU()]
        super().__init__(*layers)


class DownBlockBackwards(nn.Module):
    """The ConvBlock registered before the DownConv."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, 1, 1), nn.BatchNorm2d(out_channels), nn.GELU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1), nn.BatchNorm2d(out_channels), nn.GELU())
        self.downconv = nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, 2, 1),
                                      nn.BatchNorm2d(out_channels), nn.GELU())

    def forward(self, x):
        return self.block(self.downconv(x))


CORRECT = [DownBlockModule, DownBlockFlat, DownBlockBackwards]


def conv(i, o, stride=1):
    return [nn.Conv2d(i, o, 3, stride, 1), nn.BatchNorm2d(o), nn.GELU()]


class DownBlockDownLast(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(*conv(i, o), *conv(o, o), *conv(o, o, 2))


class DownBlockOnlyDownConv(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(*conv(i, o, 2))


class DownBlockMaxPool(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(nn.MaxPool2d(2), *conv(i, o), *conv(o, o), *conv(o, o))


class DownBlockStride1(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(*conv(i, o, 1), *conv(o, o), *conv(o, o))


WRONG = [
    (DownBlockDownLast, "the handout's has Conv2d(3→5, kernel 3, stride 2, padding 1)"),
    (DownBlockOnlyDownConv, "continues with Conv2d(5→5"),
    (DownBlockMaxPool, "is MaxPool2d(2); the handout's has Conv2d(3→5, kernel 3, stride 2, padding 1)"),
    (DownBlockStride1, "is Conv2d(3→5, kernel 3, stride 1, padding 1); the handout's has Conv2d(3→5, kernel 3, stride 2"),
]
