"""TimeConditionalUNet (notebook 16): the UNet with unflatten = t1 · unflatten, up1 = t2 · up1."""
import torch
from torch import nn

from course_utils.part_b.blocks import ConvBlock, DownBlock, FCBlock, Flatten, Unflatten, UpBlock

EXERCISE = "TimeConditionalUNet"


class TimeUNetOwnNames(nn.Module):
    """Its own names, the FCBlocks registered first, t reshaped with view, embeddings applied late."""

    def __init__(self, in_channels=1, num_hiddens=64):
        super().__init__()
        D = num_hiddens
        self.embed = nn.ModuleList([FCBlock(1, 2 * D), FCBlock(1, D)])
        self.enc = nn.ModuleList([ConvBlock(in_channels, D), DownBlock(D, D), DownBlock(D, 2 * D)])
        self.pool, self.unpool = Flatten(), Unflatten(2 * D)
        self.dec = nn.ModuleList([UpBlock(4 * D, D), UpBlock(2 * D, D), ConvBlock(2 * D, D)])
        self.out = nn.Conv2d(D, in_channels, 3, 1, 1)

    def forward(self, x, t):
        t = t.view(-1, 1)
        a = self.enc[0](x)
        b = self.enc[1](a)
        c = self.enc[2](b)
        h = self.unpool(self.pool(c)) * self.embed[0](t).view(len(x), -1, 1, 1)
        h = self.dec[0](torch.cat([c, h], 1)) * self.embed[1](t).view(len(x), -1, 1, 1)
        h = self.dec[1](torch.cat([b, h], 1))
        return self.out(self.dec[2](torch.cat([a, h], 1)))


class TimeUNetInlineFC(nn.Module):
    """The handout's names, its FCBlocks written inline as Sequentials, t[:, None], unsqueeze for the
    channel view."""

    def __init__(self, in_channels=1, num_hiddens=64):
        super().__init__()
        D = num_hiddens
        self.conv_in = ConvBlock(in_channels, D)
        self.down1 = DownBlock(D, D)
        self.down2 = DownBlock(D, 2 * D)
        self.flatten = Flatten()
        self.unflatten = Unflatten(2 * D)
        self.up1 = UpBlock(4 * D, D)
        self.up2 = UpBlock(2 * D, D)
        self.conv_out = ConvBlock(2 * D, D)
        self.head = nn.Conv2d(D, in_channels, 3, 1, 1)
        self.fc1_t = nn.Sequential(nn.Linear(1, 2 * D), nn.GELU(), nn.Linear(2 * D, 2 * D))
        self.fc2_t = nn.Sequential(nn.Linear(1, D), nn.GELU(), nn.Linear(D, D))

    def forward(self, x, t):
        t = t[:, None]
        t1 = self.fc1_t(t).unsqueeze(-1).unsqueeze(-1)
        t2 = self.fc2_t(t).unsqueeze(-1).unsqueeze(-1)
        s0 = self.conv_in(x)
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        u = t1 * self.unflatten(self.flatten(s2))
        u = t2 * self.up1(torch.cat((s2, u), dim=1))
        u = self.up2(torch.cat((s1, u), dim=1))
        return self.head(self.conv_out(torch.cat((s0, u), dim=1)))


class TimeUNetHelpers(nn.Module):
    """Separate encode / bottleneck / decode methods; t reshaped with reshape(B, 1)."""

    def __init__(self, in_channels=1, num_hiddens=64):
        super().__init__()
        D = num_hiddens
        self.head = nn.Conv2d(D, in_channels, 3, 1, 1)
        self.fc2_t = FCBlock(1, D)
        self.fc1_t = FCBlock(1, 2 * D)
        self.blocks = nn.ModuleDict({
            "conv_in": ConvBlock(in_channels, D), "down1": DownBlock(D, D), "down2": DownBlock(D, 2 * D),
            "flatten": Flatten(), "unflatten": Unflatten(2 * D), "up1": UpBlock(4 * D, D),
            "up2": UpBlock(2 * D, D), "conv_out": ConvBlock(2 * D, D)})

    def encode(self, x):
        s0 = self.blocks["conv_in"](x)
        s1 = self.blocks["down1"](s0)
        return s0, s1, self.blocks["down2"](s1)

    def decode(self, skips, h, t2):
        s0, s1, s2 = skips
        h = self.blocks["up1"](torch.cat([s2, h], dim=1)) * t2
        h = self.blocks["up2"](torch.cat([s1, h], dim=1))
        return self.head(self.blocks["conv_out"](torch.cat([s0, h], dim=1)))

    def forward(self, x, t):
        t = t.reshape(x.shape[0], 1)
        skips = self.encode(x)
        h = self.blocks["unflatten"](self.blocks["flatten"](skips[2])) * self.fc1_t(t)[..., None, None]
        return self.decode(skips, h, self.fc2_t(t)[..., None, None])


CORRECT = [TimeUNetInlineFC, TimeUNetOwnNames, TimeUNetHelpers]


class TimeAdded(TimeUNetInlineFC):
    def forward(self, x, t):
        t = t[:, None]
        t1 = self.fc1_t(t)[:, :, None, None]
        t2 = self.fc2_t(t)[:, :, None, None]
        s0 = self.conv_in(x)
        s1 = self.down1(s0)
        s2 = self.down2(s1)
        u = t1 + self.unflatten(self.flatten(s2))
        u = t2 + self.up1(torch.cat((s2, u), dim=1))
        u = self.up2(torch.cat((s1, u), dim=1))
        return self.head(self.conv_out(torch.cat((s0, u), dim=1)))


class TimeNotReshaped(TimeUNetHelpers):
    def forward(self, x, t):
        skips = self.encode(x)
        h = self.blocks["unflatten"](self.blocks["flatten"](skips[2])) * self.fc1_t(t)[..., None, None]
        return self.decode(skips, h, self.fc2_t(t)[..., None, None])


class TimeUp1NotModulated(TimeUNetHelpers):
    def forward(self, x, t):
        t = t.reshape(x.shape[0], 1)
        skips = self.encode(x)
        h = self.blocks["unflatten"](self.blocks["flatten"](skips[2])) * self.fc1_t(t)[..., None, None]
        return self.decode(skips, h, 1.0)


class TimeIgnored(TimeUNetHelpers):
    def forward(self, x, t):
        skips = self.encode(x)
        return self.decode(skips, self.blocks["unflatten"](self.blocks["flatten"](skips[2])), 1.0)


class TimeScaled(TimeUNetOwnNames):
    def forward(self, x, t):
        return super().forward(x, t * 1000)


class TimeNotViewed(TimeUNetOwnNames):
    def forward(self, x, t):
        t = t.view(-1, 1)
        a = self.enc[0](x)
        b = self.enc[1](a)
        c = self.enc[2](b)
        h = self.unpool(self.pool(c)) * self.embed[0](t)
        h = self.dec[0](torch.cat([c, h], 1)) * self.embed[1](t)
        h = self.dec[1](torch.cat([b, h], 1))
        return self.out(self.dec[2](torch.cat([a, h], 1)))


WRONG = [
    (TimeAdded, "t1 and t2 are added; in the time-conditioned UNet they scale the feature maps"),
    (TimeNotReshaped, "with shape (3,): reshape it to a (B, 1) column"),
    (TimeUp1NotModulated, "up1 is not modulated: up1 = t2 · up1 is missing"),
    (TimeIgnored, "t is ignored: the output is the unconditional UNet's"),
    (TimeScaled, "multiplied by 1000: t is already in [0, 1]"),
    (TimeNotViewed, "viewed as (B, 2D, 1, 1), one value per channel"),
]
