"""The handout's building blocks (Part B §1.1, Figure 2; FCBlock from §2.1, Figure 9).

Each block is an ``nn.Sequential`` so that printing a model shows the handout's diagram.
"""
from torch import nn


class Conv(nn.Sequential):
    """Conv2d(3, 1, 1) + BN + GELU: changes channels, keeps the resolution."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, 1, 1),
                         nn.BatchNorm2d(out_channels), nn.GELU())


class DownConv(nn.Sequential):
    """Conv2d(3, 2, 1) + BN + GELU: halves the resolution."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, 2, 1),
                         nn.BatchNorm2d(out_channels), nn.GELU())


class UpConv(nn.Sequential):
    """ConvTranspose2d(4, 2, 1) + BN + GELU: doubles the resolution."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1),
                         nn.BatchNorm2d(out_channels), nn.GELU())


class Flatten(nn.Sequential):
    """AvgPool2d(7) + GELU: a 7x7 map to 1x1."""

    def __init__(self):
        super().__init__(nn.AvgPool2d(7), nn.GELU())


class Unflatten(nn.Sequential):
    """ConvTranspose2d(7, 7, 0) + BN + GELU: a 1x1 map back to 7x7."""

    def __init__(self, in_channels: int):
        super().__init__(nn.ConvTranspose2d(in_channels, in_channels, 7, 7, 0),
                         nn.BatchNorm2d(in_channels), nn.GELU())


class ConvBlock(nn.Sequential):
    """Conv, Conv: same shape as Conv, more parameters."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(Conv(in_channels, out_channels), Conv(out_channels, out_channels))


class DownBlock(nn.Sequential):
    """DownConv, ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(DownConv(in_channels, out_channels), ConvBlock(out_channels, out_channels))


class UpBlock(nn.Sequential):
    """UpConv, ConvBlock."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(UpConv(in_channels, out_channels), ConvBlock(out_channels, out_channels))


class FCBlock(nn.Sequential):
    """Linear, GELU, Linear: embeds a conditioning vector (t or one-hot c)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(nn.Linear(in_features, out_features), nn.GELU(),
                         nn.Linear(out_features, out_features))
