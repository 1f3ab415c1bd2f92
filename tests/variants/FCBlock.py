"""FCBlock (notebook 16): Linear(in, out), GELU, Linear(out, out)."""
from collections import OrderedDict

import torch.nn.functional as F
from torch import nn

EXERCISE = "FCBlock"


class FCBlockModule(nn.Module):
    """An nn.Module with its own names and forward, GELU as a function."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, out_features)
        self.fc2 = nn.Linear(out_features, out_features)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class FCBlockNamed(nn.Sequential):
    """A Sequential with named layers."""

    def __init__(self, in_features, out_features):
        super().__init__(OrderedDict(embed=nn.Linear(in_features, out_features), act=nn.GELU(),
                                     proj=nn.Linear(out_features, out_features)))


class FCBlockBackwards(nn.Module):
    """The second Linear registered before the first."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.out = nn.Linear(out_features, out_features)
        self.act = nn.GELU()
        self.inp = nn.Linear(in_features, out_features)

    def forward(self, x):
        return self.out(self.act(self.inp(x)))


CORRECT = [FCBlockModule, FCBlockNamed, FCBlockBackwards]


class FCBlockNoGELU(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(nn.Linear(i, o), nn.Linear(o, o))


class FCBlockReLU(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(nn.Linear(i, o), nn.ReLU(), nn.Linear(o, o))


class FCBlockSecondFromIn(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(nn.Linear(i, o), nn.GELU(), nn.Linear(i, o))


class FCBlockGELUAtEnd(nn.Sequential):
    def __init__(self, i, o):
        super().__init__(nn.Linear(i, o), nn.GELU(), nn.Linear(o, o), nn.GELU())


WRONG = [
    (FCBlockNoGELU, "lacks the handout's GELU"),
    (FCBlockReLU, "is ReLU; the handout's has GELU"),
    (FCBlockSecondFromIn, "Linear(8→8)"),
    (FCBlockGELUAtEnd, "has an extra GELU after Linear(8→8)"),
]
