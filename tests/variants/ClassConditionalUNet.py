"""ClassConditionalUNet (notebook 17): unflatten = c1 · unflatten + t1, up1 = c2 · up1 + t2."""
import torch
from torch import nn

from course_utils.part_b.blocks import ConvBlock, DownBlock, FCBlock, Flatten, Unflatten, UpBlock

EXERCISE = "ClassConditionalUNet"


class ClassUNetOwnNames(nn.Module):
    """Its own names; c's FCBlocks registered and called before t's; t reshaped with view."""

    def __init__(self, in_channels=1, num_classes=10, num_hiddens=64):
        super().__init__()
        D = num_hiddens
        self.c_embed = nn.ModuleList([FCBlock(num_classes, 2 * D), FCBlock(num_classes, D)])
        self.t_embed = nn.ModuleList([FCBlock(1, 2 * D), FCBlock(1, D)])
        self.enc = nn.ModuleList([ConvBlock(in_channels, D), DownBlock(D, D), DownBlock(D, 2 * D)])
        self.mid = nn.Sequential(Flatten(), Unflatten(2 * D))
        self.dec = nn.ModuleList([UpBlock(4 * D, D), UpBlock(2 * D, D), ConvBlock(2 * D, D)])
        self.out = nn.Conv2d(D, in_channels, 3, 1, 1)

    def forward(self, x, t, c):
        t = t.view(-1, 1)
        c1, c2 = (fc(c).view(len(x), -1, 1, 1) for fc in self.c_embed)
        t1, t2 = (fc(t).view(len(x), -1, 1, 1) for fc in self.t_embed)
        a = self.enc[0](x)
        b = self.enc[1](a)
        h = self.enc[2](b)
        u = c1 * self.mid(h) + t1
        u = c2 * self.dec[0](torch.cat([h, u], 1)) + t2
        u = self.dec[1](torch.cat([b, u], 1))
        return self.out(self.dec[2](torch.cat([a, u], 1)))


class ClassUNetInlineFC(nn.Module):
    """FCBlocks written inline; each embedding computed right where it modulates; t[:, None]."""

    def __init__(self, in_channels=1, num_classes=10, num_hiddens=64):
        super().__init__()
        D = num_hiddens

        def fc(i, o):
            return nn.Sequential(nn.Linear(i, o), nn.GELU(), nn.Linear(o, o))

        self.conv_in = ConvBlock(in_channels, D)
        self.down1 = DownBlock(D, D)
        self.down2 = DownBlock(D, 2 * D)
        self.flatten = Flatten()
        self.unflatten = Unflatten(2 * D)
        self.up1 = UpBlock(4 * D, D)
        self.up2 = UpBlock(2 * D, D)
        self.conv_out = ConvBlock(2 * D, D)
        self.head = nn.Conv2d(D, in_channels, 3, 1, 1)
        self.emb = nn.ModuleDict({"t1": fc(1, 2 * D), "c1": fc(num_classes, 2 * D),
                                  "t2": fc(1, D), "c2": fc(num_classes, D)})

    def film(self, h, k, t, c):
        return self.emb[f"c{k}"](c)[:, :, None, None] * h + self.emb[f"t{k}"](t)[:, :, None, None]

    def forward(self, x, t, c):
        t = t[:, None]
        x0 = self.conv_in(x)
        x1 = self.down1(x0)
        x2 = self.down2(x1)
        h = self.film(self.unflatten(self.flatten(x2)), 1, t, c)
        h = self.film(self.up1(torch.cat([x2, h], dim=1)), 2, t, c)
        h = self.up2(torch.cat([x1, h], dim=1))
        return self.head(self.conv_out(torch.cat([x0, h], dim=1)))


class ClassUNetTimeUNetStyle(nn.Module):
    """The handout's names, FCBlocks interleaved at registration, t.reshape(B, 1), c cast to x's dtype."""

    def __init__(self, in_channels=1, num_classes=10, num_hiddens=64):
        super().__init__()
        D = num_hiddens
        self.fc2_c = FCBlock(num_classes, D)
        self.conv_in = ConvBlock(in_channels, D)
        self.fc1_t = FCBlock(1, 2 * D)
        self.down1 = DownBlock(D, D)
        self.down2 = DownBlock(D, 2 * D)
        self.fc1_c = FCBlock(num_classes, 2 * D)
        self.flatten = Flatten()
        self.unflatten = Unflatten(2 * D)
        self.up1 = UpBlock(4 * D, D)
        self.fc2_t = FCBlock(1, D)
        self.up2 = UpBlock(2 * D, D)
        self.conv_out = ConvBlock(2 * D, D)
        self.head = nn.Conv2d(D, in_channels, 3, 1, 1)

    def forward(self, x, t, c):
        B = x.shape[0]
        t, c = t.reshape(B, 1), c.to(x.dtype)
        e0 = self.conv_in(x)
        e1 = self.down1(e0)
        e2 = self.down2(e1)
        h = self.unflatten(self.flatten(e2))
        h = self.fc1_c(c).reshape(B, -1, 1, 1) * h + self.fc1_t(t).reshape(B, -1, 1, 1)
        h = self.up1(torch.cat([e2, h], dim=1))
        h = self.fc2_c(c).reshape(B, -1, 1, 1) * h + self.fc2_t(t).reshape(B, -1, 1, 1)
        h = self.up2(torch.cat([e1, h], dim=1))
        return self.head(self.conv_out(torch.cat([e0, h], dim=1)))


CORRECT = [ClassUNetTimeUNetStyle, ClassUNetOwnNames, ClassUNetInlineFC]


class RolesSwapped(ClassUNetInlineFC):
    def film(self, h, k, t, c):
        return self.emb[f"t{k}"](t)[:, :, None, None] * h + self.emb[f"c{k}"](c)[:, :, None, None]


class ClassIgnored(ClassUNetInlineFC):
    def film(self, h, k, t, c):
        return self.emb[f"t{k}"](t)[:, :, None, None] * h


class TimeMultiplies(ClassUNetInlineFC):
    def film(self, h, k, t, c):
        return self.emb[f"c{k}"](c)[:, :, None, None] * self.emb[f"t{k}"](t)[:, :, None, None] * h


class ShiftInsideScale(ClassUNetInlineFC):
    def film(self, h, k, t, c):
        return self.emb[f"c{k}"](c)[:, :, None, None] * (h + self.emb[f"t{k}"](t)[:, :, None, None])


class OneHotAgain(ClassUNetOwnNames):
    def forward(self, x, t, c):
        return super().forward(x, t, nn.functional.one_hot(c, 10).float())


WRONG = [
    (RolesSwapped, "c and t swap roles (yours: c1 + t1 · unflatten)"),
    (ClassIgnored, "c is ignored (that is the time-conditioned UNet's modulation)"),
    (TimeMultiplies, "t1 and t2 multiply; they should shift (be added)"),
    (ShiftInsideScale, "c1 · unflatten + t1, not c1 · (unflatten + t1)"),
    (OneHotAgain, "c arrives as one-hot rows of shape (B, num_classes)"),
]
