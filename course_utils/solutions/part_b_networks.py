"""Reference solutions of the Part B network exercises (notebooks 12, 16 and 17), written as a
student writes them from each docstring alone. tools/exercises.py copies each class into its
notebook; the course's own networks (course_utils.part_b.blocks and .unet) stay the engine of the
notebooks and are what the checks compare a student's network with.

The blocks of notebook 12 are also imported from the course below: this module's own classes
replace them here (and in notebook 12 the student's do), but notebooks 16 and 17, which do not
define them, import them from there (tools/exercises.py follows this module's imports).
"""
import torch
from torch import nn

from ..part_b.blocks import Conv, DownConv, UpConv
from ..part_b.blocks import ConvBlock, DownBlock, FCBlock, Flatten, Unflatten, UpBlock  # noqa: F401, F811


class Flatten(nn.Sequential):
    """The handout's Flatten (Figure 2): nn.AvgPool2d(7), then nn.GELU().

    A (B, C, 7, 7) map in, a (B, C, 1, 1) map out: each 7×7 map is averaged down to one value and
    the 1×1 dims are kept (this is not nn.Flatten, which only reshapes). It has no parameters.
    """

    def __init__(self):
        super().__init__(nn.AvgPool2d(7), nn.GELU())


class Unflatten(nn.Sequential):
    """The handout's Unflatten (Figure 2): nn.ConvTranspose2d(in_channels, in_channels,
    kernel_size=7, stride=7, padding=0), then nn.BatchNorm2d(in_channels), then nn.GELU().

    A (B, C, 1, 1) map in, a (B, C, 7, 7) map out (C = in_channels).
    """

    def __init__(self, in_channels: int):
        super().__init__(nn.ConvTranspose2d(in_channels, in_channels, 7, 7, 0),
                         nn.BatchNorm2d(in_channels), nn.GELU())


class ConvBlock(nn.Sequential):
    """The handout's ConvBlock (Figure 2): Conv(in_channels, out_channels), then
    Conv(out_channels, out_channels).

    ``Conv`` (given, from course_utils.part_b.blocks) is nn.Conv2d(kernel_size=3, stride=1,
    padding=1) + nn.BatchNorm2d + nn.GELU. A (B, in_channels, H, W) map in, (B, out_channels, H, W)
    out: the same shapes as one Conv, with more parameters.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(Conv(in_channels, out_channels), Conv(out_channels, out_channels))


class DownBlock(nn.Sequential):
    """The handout's DownBlock (Figure 2): DownConv(in_channels, out_channels), then
    ConvBlock(out_channels, out_channels).

    ``DownConv`` (given) is nn.Conv2d(kernel_size=3, stride=2, padding=1) + nn.BatchNorm2d +
    nn.GELU; ConvBlock is yours, above. A (B, in_channels, H, W) map in, (B, out_channels, H/2, W/2)
    out.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(DownConv(in_channels, out_channels), ConvBlock(out_channels, out_channels))


class UpBlock(nn.Sequential):
    """The handout's UpBlock (Figure 2): UpConv(in_channels, out_channels), then
    ConvBlock(out_channels, out_channels).

    ``UpConv`` (given) is nn.ConvTranspose2d(kernel_size=4, stride=2, padding=1) + nn.BatchNorm2d
    + nn.GELU; ConvBlock is yours, above. A (B, in_channels, H, W) map in, (B, out_channels, 2H, 2W)
    out.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(UpConv(in_channels, out_channels), ConvBlock(out_channels, out_channels))


class FCBlock(nn.Sequential):
    """The handout's FCBlock (§2.1, Figure 9): nn.Linear(in_features, out_features), then
    nn.GELU(), then nn.Linear(out_features, out_features).

    It embeds a conditioning vector: a (B, in_features) tensor in (a time t as a (B, 1) column, or
    one-hot class rows of shape (B, 10)), a (B, out_features) tensor out, which the conditioned
    UNets view as (B, out_features, 1, 1) to scale or shift a feature map channel by channel.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__(nn.Linear(in_features, out_features), nn.GELU(),
                         nn.Linear(out_features, out_features))


class UnconditionalUNet(nn.Module):
    """The handout's unconditional UNet (Figure 1), with D = num_hiddens hidden channels.

    Its blocks, in the order the forward pass uses them, with each output's shape. Keep these
    attribute names: the check follows your forward pass whatever the names, but the cells below
    print and draw your UNet by them.

        conv_in   = ConvBlock(in_channels, D)                      (B, D, 28, 28)
        down1     = DownBlock(D, D)                                (B, D, 14, 14)
        down2     = DownBlock(D, 2D)                               (B, 2D, 7, 7)
        flatten   = Flatten()                                      (B, 2D, 1, 1)
        unflatten = Unflatten(2D)                                  (B, 2D, 7, 7)
        up1       = UpBlock(4D, D),  applied to cat([down2, unflatten])    (B, D, 14, 14)
        up2       = UpBlock(2D, D),  applied to cat([down1, up1])          (B, D, 28, 28)
        conv_out  = ConvBlock(2D, D), applied to cat([conv_in, up2])       (B, D, 28, 28)
        head      = nn.Conv2d(D, in_channels, kernel_size=3, stride=1, padding=1)   (B, in_channels, 28, 28)

    Each cat is a skip connection: torch.cat along the channels (dim=1), the encoder's map first,
    then the decoder's. The handout leaves that order open; the course fixes it, because the
    check (and the course's trained weights) feed the course's weights to your layers, and a
    swapped order would hand each half of them the other half's channels.

    forward(x): x a batch of images of shape (B, in_channels, 28, 28); returns a tensor of the same
    shape (head's output).
    """

    def __init__(self, in_channels: int = 1, num_hiddens: int = 128):
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, 28, 28) -> (B, in_channels, 28, 28), following Figure 1."""
        x0 = self.conv_in(x)
        x1 = self.down1(x0)
        x2 = self.down2(x1)
        h = self.unflatten(self.flatten(x2))
        h = self.up1(torch.cat([x2, h], dim=1))
        h = self.up2(torch.cat([x1, h], dim=1))
        h = self.conv_out(torch.cat([x0, h], dim=1))
        return self.head(h)


class TimeConditionalUNet(nn.Module):
    """§2.1 (Figure 8): the UNet of notebook 12, conditioned on a time t in [0, 1].

    The same nine blocks as UnconditionalUNet, with D = num_hiddens (keep these attribute names:
    the check does not need them, but the cells below and the course's stored weights use them):
    conv_in = ConvBlock(in_channels, D), down1 = DownBlock(D, D), down2 = DownBlock(D, 2D),
    flatten = Flatten(), unflatten = Unflatten(2D), up1 = UpBlock(4D, D), up2 = UpBlock(2D, D),
    conv_out = ConvBlock(2D, D), head = nn.Conv2d(D, in_channels, 3, 1, 1); and the same skip
    connections, cat([down2, unflatten]), cat([down1, up1]), cat([conv_in, up2]) along dim 1, the
    encoder's map first. Plus two FCBlocks (notebook 16's FCBlock) that embed t:

        fc1_t = FCBlock(1, 2D)      t1 = fc1_t(t), shape (B, 2D)
        fc2_t = FCBlock(1, D)       t2 = fc2_t(t), shape (B, D)

    which scale two feature maps, each per channel (viewed as (B, 2D, 1, 1) and (B, D, 1, 1)) and
    before it enters its concatenation:

        unflatten = t1 · unflatten      (unflatten's output, before cat([down2, unflatten]))
        up1       = t2 · up1            (up1's output, before cat([down1, up1]))

    forward(x, t): x of shape (B, in_channels, 28, 28); t a tensor of shape (B,), one time per
    image, already in [0, 1] (the loss and the sampler normalise it: embed it as it is, as a
    (B, 1) column for the Linear layers). Returns the velocity u(x, t), shape (B, in_channels, 28, 28).
    """

    def __init__(self, in_channels: int = 1, num_hiddens: int = 64):
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
        self.fc1_t = FCBlock(1, 2 * D)
        self.fc2_t = FCBlock(1, D)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, 28, 28), t: (B,) in [0, 1] -> u: (B, in_channels, 28, 28)."""
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1, 1).expand(len(x), 1)
        t1 = self.fc1_t(t)[:, :, None, None]
        t2 = self.fc2_t(t)[:, :, None, None]
        x0 = self.conv_in(x)
        x1 = self.down1(x0)
        x2 = self.down2(x1)
        h = t1 * self.unflatten(self.flatten(x2))
        h = t2 * self.up1(torch.cat([x2, h], dim=1))
        h = self.up2(torch.cat([x1, h], dim=1))
        h = self.conv_out(torch.cat([x0, h], dim=1))
        return self.head(h)


class ClassConditionalUNet(nn.Module):
    """§2.4: the UNet conditioned on a time t in [0, 1] and a class c (a one-hot row).

    The same nine blocks and skip connections as TimeConditionalUNet (D = num_hiddens; keep these
    attribute names, which the cells below and the course's stored weights use): conv_in = ConvBlock(in_channels, D), down1 = DownBlock(D, D), down2 = DownBlock(D, 2D),
    flatten = Flatten(), unflatten = Unflatten(2D), up1 = UpBlock(4D, D), up2 = UpBlock(2D, D),
    conv_out = ConvBlock(2D, D), head = nn.Conv2d(D, in_channels, 3, 1, 1); the concatenations
    cat([down2, unflatten]), cat([down1, up1]), cat([conv_in, up2]) along dim 1, the encoder's map
    first. Plus four FCBlocks:

        fc1_t = FCBlock(1, 2D)              t1 = fc1_t(t), shape (B, 2D)
        fc2_t = FCBlock(1, D)               t2 = fc2_t(t), shape (B, D)
        fc1_c = FCBlock(num_classes, 2D)    c1 = fc1_c(c), shape (B, 2D)
        fc2_c = FCBlock(num_classes, D)     c2 = fc2_c(c), shape (B, D)

    and the class scales while the time shifts the same two feature maps, per channel (viewed as
    (B, ·, 1, 1)), each before it enters its concatenation:

        unflatten = c1 · unflatten + t1
        up1       = c2 · up1 + t2

    forward(x, t, c): x of shape (B, in_channels, 28, 28); t a tensor of shape (B,) of times in
    [0, 1] (embed them as they are, as a (B, 1) column); c float one-hot rows of shape
    (B, num_classes), fed to fc1_c and fc2_c as they are (an all-zero row means "no class": that
    is how training drops the class and how guidance asks for the unconditional velocity).
    Returns the velocity u(x, t, c), shape (B, in_channels, 28, 28).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, num_hiddens: int = 64):
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
        self.fc1_t = FCBlock(1, 2 * D)
        self.fc2_t = FCBlock(1, D)
        self.fc1_c = FCBlock(num_classes, 2 * D)
        self.fc2_c = FCBlock(num_classes, D)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, in_channels, 28, 28), t: (B,) in [0, 1], c: (B, num_classes) one-hot rows
        (all zero: no class) -> u: (B, in_channels, 28, 28)."""
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1, 1).expand(len(x), 1)
        t1, t2 = self.fc1_t(t)[:, :, None, None], self.fc2_t(t)[:, :, None, None]
        c1, c2 = self.fc1_c(c)[:, :, None, None], self.fc2_c(c)[:, :, None, None]
        x0 = self.conv_in(x)
        x1 = self.down1(x0)
        x2 = self.down2(x1)
        h = c1 * self.unflatten(self.flatten(x2)) + t1
        h = c2 * self.up1(torch.cat([x2, h], dim=1)) + t2
        h = self.up2(torch.cat([x1, h], dim=1))
        h = self.conv_out(torch.cat([x0, h], dim=1))
        return self.head(h)
