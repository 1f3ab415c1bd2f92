"""UpBlock (notebook 12): UpConv(in, out) (ConvTranspose2d(4, 2, 1) + BN + GELU), then ConvBlock(out, out)."""
import torch.nn.functional as F
from torch import nn

EXERCISE = "UpBlock"


class UpBlockModule(nn.Module):
    """An nn.Module with its own names and forward."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)
        self.convs = nn.ModuleList([nn.Conv2d(out_channels, out_channels, 3, 1, 1) for _ in range(2)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(out_channels) for _ in range(2)])

    def forward(self, x):
        x = F.gelu(self.norm(self.up(x)))
        for conv, norm in zip(self.convs, self.norms):
            x = F.gelu(norm(conv(x)))
        return x


class UpBlockFlat(nn.Sequential):
    """The nine layers in one flat Sequential."""

    def __init__(self, in_channels, out_channels):
        o = out_channels
        super().__init__(nn.ConvTranspose2d(in_channels, o, 4, 2, 1), nn.BatchNorm2d(o), nn.GELU(),
                         nn.Conv2d(o, o, 3, 1, 1), nn.BatchNorm2d(o), nn.GELU(),
                         nn.Conv2d(o, o, 3, 1, 1), nn.BatchNorm2d(o), nn.GELU())


class UpBlockBackwards(nn.Module):
    """The refining convolutions registered before the upsampling one."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        o = out_channels
        self.refine = nn.Sequential(nn.Conv2d(o, o, 3, 1, 1), nn.BatchNorm2d(o), nn.GELU(),
                                    nn.Conv2d(o, o, 3, 1, 1), nn.BatchNorm2d(o), nn.GELU())
        self.upconv = nn.Sequential(nn.ConvTranspose2d(in_channels, o, 4, 2, 1), nn.BatchNorm2d(o), nn.GELU())

    def forward(self, x):
        return self.refine(self.upconv(x))


CORRECT = [UpBlockModule, UpBlockFlat, UpBlockBackwards]


def conv(i, o):
    return [nn.Conv2d(i, o, 3, 1, 1), nn.BatchNorm2d(o), nn.GELU()]


class UpBlockKernel3(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(nn.ConvTranspose2d(i, o, 3, 2, 1), nn.BatchNorm2d(o), nn.GELU(), *conv(o, o), *conv(o, o))


class UpBlockUpsample(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(nn.Upsample(scale_factor=2), *conv(i, o), *conv(o, o), *conv(o, o))


class UpBlockOnlyUpConv(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(nn.ConvTranspose2d(i, o, 4, 2, 1), nn.BatchNorm2d(o), nn.GELU())


WRONG = [
    (UpBlockKernel3, "kernel 4, stride 2, padding 1"),
    (UpBlockUpsample, "is Upsample; the handout's has ConvTranspose2d(3→5, kernel 4"),
    (UpBlockOnlyUpConv, "continues with Conv2d(5→5"),
]
