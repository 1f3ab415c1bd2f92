"""Flatten (notebook 12): AvgPool2d(7) then GELU, a (B, C, 7, 7) map to (B, C, 1, 1)."""
import torch.nn.functional as F
from torch import nn

EXERCISE = "Flatten"


class FlattenModule(nn.Module):
    """An nn.Module with its own names and forward."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AvgPool2d(kernel_size=7)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.pool(x))


class FlattenMean(nn.Module):
    """The average written as a mean over the two spatial dims, GELU as a function."""

    def forward(self, x):
        return F.gelu(x.mean(dim=(2, 3), keepdim=True))


class FlattenAdaptive(nn.Sequential):
    """AdaptiveAvgPool2d(1): the same average on a 7×7 map."""

    def __init__(self):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.GELU())


CORRECT = [FlattenModule, FlattenMean, FlattenAdaptive]


class FlattenMax(nn.Sequential):
    def __init__(self):
        super().__init__(nn.MaxPool2d(7), nn.GELU())


class FlattenNoGELU(nn.Sequential):
    def __init__(self):
        super().__init__(nn.AvgPool2d(7))


class FlattenGELUFirst(nn.Sequential):
    def __init__(self):
        super().__init__(nn.GELU(), nn.AvgPool2d(7))


class FlattenReshape(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Flatten())


WRONG = [
    (FlattenMax, "it does not take its maximum"),
    (FlattenNoGELU, "the GELU after the pooling is missing"),
    (FlattenGELUFirst, "the GELU comes after the pooling, not before"),
    (FlattenReshape, "nn.Flatten only reshapes"),
]
