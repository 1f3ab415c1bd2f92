"""UnconditionalUNet (notebook 12): the handout's Figure 1, forward written whole."""
import torch
from torch import nn

from course_utils.part_b.blocks import ConvBlock, DownBlock, Flatten, Unflatten, UpBlock

EXERCISE = "UnconditionalUNet"


class UNetOwnNames(nn.Module):
    """Its own names, the encoder and decoder in ModuleLists, torch.concat."""

    def __init__(self, in_channels=1, num_hiddens=128):
        super().__init__()
        D = num_hiddens
        self.encoder = nn.ModuleList([ConvBlock(in_channels, D), DownBlock(D, D), DownBlock(D, 2 * D)])
        self.bottleneck = nn.Sequential(Flatten(), Unflatten(2 * D))
        self.decoder = nn.ModuleList([UpBlock(4 * D, D), UpBlock(2 * D, D), ConvBlock(2 * D, D)])
        self.to_image = nn.Conv2d(D, in_channels, kernel_size=3, padding=1)

    def forward(self, x):
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = self.bottleneck(x)
        for block in self.decoder:
            x = block(torch.concat([skips.pop(), x], dim=1))
        return self.to_image(x)


class UNetBackwards(nn.Module):
    """The blocks registered from the output back to the input."""

    def __init__(self, in_channels=1, num_hiddens=128):
        super().__init__()
        D = num_hiddens
        self.head = nn.Conv2d(D, in_channels, 3, 1, 1)
        self.conv_out = ConvBlock(2 * D, D)
        self.up2 = UpBlock(2 * D, D)
        self.up1 = UpBlock(4 * D, D)
        self.unflatten = Unflatten(2 * D)
        self.flatten = Flatten()
        self.down2 = DownBlock(D, 2 * D)
        self.down1 = DownBlock(D, D)
        self.conv_in = ConvBlock(in_channels, D)

    def forward(self, x):
        e0 = self.conv_in(x)
        e1 = self.down1(e0)
        e2 = self.down2(e1)
        d = self.unflatten(self.flatten(e2))
        d = self.up2(torch.cat((e1, self.up1(torch.cat((e2, d), 1))), 1))
        return self.head(self.conv_out(torch.cat((e0, d), 1)))


class UNetFromLayers(nn.Module):
    """No block classes at all: every block a Sequential of plain layers, built by a helper."""

    @staticmethod
    def conv(i, o, kind="same"):
        layer = {"same": nn.Conv2d(i, o, 3, 1, 1), "down": nn.Conv2d(i, o, 3, 2, 1),
                 "up": nn.ConvTranspose2d(i, o, 4, 2, 1), "unflatten": nn.ConvTranspose2d(i, o, 7, 7, 0)}[kind]
        return [layer, nn.BatchNorm2d(o), nn.GELU()]

    def __init__(self, in_channels=1, num_hiddens=128):
        super().__init__()
        D, c = num_hiddens, self.conv
        self.a = nn.Sequential(*c(in_channels, D), *c(D, D))
        self.b = nn.Sequential(*c(D, D, "down"), *c(D, D), *c(D, D))
        self.c = nn.Sequential(*c(D, 2 * D, "down"), *c(2 * D, 2 * D), *c(2 * D, 2 * D))
        self.mid = nn.Sequential(nn.AvgPool2d(7), nn.GELU(), *c(2 * D, 2 * D, "unflatten"))
        self.d = nn.Sequential(*c(4 * D, D, "up"), *c(D, D), *c(D, D))
        self.e = nn.Sequential(*c(2 * D, D, "up"), *c(D, D), *c(D, D))
        self.f = nn.Sequential(*c(2 * D, D), *c(D, D), nn.Conv2d(D, in_channels, 3, 1, 1))

    def forward(self, x):
        a = self.a(x)
        b = self.b(a)
        c = self.c(b)
        h = self.d(torch.cat([c, self.mid(c)], dim=1))
        h = self.e(torch.cat([b, h], dim=1))
        return self.f(torch.cat([a, h], dim=1))


CORRECT = [UNetBackwards, UNetOwnNames, UNetFromLayers]


class SkipOnBatch(UNetBackwards):
    def forward(self, x):
        e0 = self.conv_in(x)
        e1 = self.down1(e0)
        e2 = self.down2(e1)
        d = self.up1(torch.cat([e2, self.unflatten(self.flatten(e2))], dim=0))
        d = self.up2(torch.cat([e1, d], dim=0))
        return self.head(self.conv_out(torch.cat([e0, d], dim=0)))


class SkipSwapped(UNetOwnNames):
    def forward(self, x):
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        x = self.bottleneck(x)
        for block in self.decoder:
            x = block(torch.cat([x, skips.pop()], dim=1))
        return self.to_image(x)


class NoFlatten(UNetBackwards):
    def forward(self, x):
        e0 = self.conv_in(x)
        e1 = self.down1(e0)
        e2 = self.down2(e1)
        d = self.up1(torch.cat([e2, self.unflatten(e2)], dim=1))
        d = self.up2(torch.cat([e1, d], dim=1))
        return self.head(self.conv_out(torch.cat([e0, d], dim=1)))


class NoLastSkip(nn.Module):
    """conv_out on up2's output alone, a ConvBlock(D, D)."""

    def __init__(self, in_channels=1, num_hiddens=128):
        super().__init__()
        D = num_hiddens
        self.encoder = nn.ModuleList([ConvBlock(in_channels, D), DownBlock(D, D), DownBlock(D, 2 * D)])
        self.middle = nn.Sequential(Flatten(), Unflatten(2 * D))
        self.decoder = nn.ModuleList([UpBlock(4 * D, D), UpBlock(2 * D, D), ConvBlock(D, D)])
        self.last = nn.Conv2d(D, in_channels, 3, 1, 1)

    def forward(self, x):
        a = self.encoder[0](x)
        b = self.encoder[1](a)
        c = self.encoder[2](b)
        h = self.decoder[0](torch.cat([c, self.middle(c)], 1))
        h = self.decoder[1](torch.cat([b, h], 1))
        return self.last(self.decoder[2](h))


WRONG = [
    (SkipOnBatch, "concatenated on the wrong dimension (dim 0, the batch)"),
    (SkipSwapped, "receives cat([unflatten, down2]); the course's order is cat([down2, unflatten])"),
    (NoFlatten, "self.unflatten receives a tensor of shape (3, 8, 7, 7); the handout's unflatten"),
    (NoLastSkip, "is Conv2d(4→4, kernel 3, stride 1, padding 1); the handout's has Conv2d(8→4"),
]
