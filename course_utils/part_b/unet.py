"""The three UNets of Part B: unconditional (§1.1), time-conditioned (§2.1), class-conditioned (§2.4).

All three share one trunk; the conditioned ones only modulate two feature maps, following the
handout's pseudocode: ``unflatten = c1 * unflatten + t1`` and ``up1 = c2 * up1 + t2``.
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import ConvBlock, DownBlock, FCBlock, Flatten, Unflatten, UpBlock

NUM_CLASSES = 10
IMAGE_SIZE = 28


def check_images(x: torch.Tensor, channels: int = 1) -> None:
    expected = (channels, IMAGE_SIZE, IMAGE_SIZE)
    if x.ndim != 4 or tuple(x.shape[1:]) != expected:
        hint = " (add the batch and channel dims with x[None, None])" if x.ndim == 2 else ""
        raise ValueError(f"expected a batch of images of shape (B, {channels}, {IMAGE_SIZE}, "
                         f"{IMAGE_SIZE}), got {tuple(x.shape)}{hint}")


def one_hot(labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Labels 0..num_classes-1 to float one-hot vectors, with a clear error for bad labels."""
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"class labels must be integers, got dtype {labels.dtype}; convert them "
                         "with labels.long()")
    if labels.ndim != 1:
        raise ValueError(f"class labels must be a 1-D tensor (one label per image), got shape "
                         f"{tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)].unique().tolist()
        raise ValueError(f"class labels must lie in 0..{num_classes - 1}, got {bad}")
    return nn.functional.one_hot(labels.long(), num_classes).float()


def _as_column(t: torch.Tensor | float, batch: int, like: torch.Tensor) -> torch.Tensor:
    """t as a (B, 1) float tensor; a scalar is broadcast to the batch."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim == 0:
        t = t.expand(batch)
    if t.numel() != batch:
        raise ValueError(f"t must be one number or one per image ({batch}, or shape ({batch}, 1)), "
                         f"got shape {tuple(t.shape)}")
    return t.reshape(batch, 1)


class TimesPerImage:
    """A conditioned UNet whose t arrives as any shape holding one time per image (a float,
    (B,), (B, 1) or (B, 1, 1, 1)) and is handed on as the (B,) tensor every UNet of the course
    takes. The samplers and trainers put it between a student's sampler or loss and a student's
    UNet: each passes its check with any of those shapes, so the two must fit together whatever
    each chose. Attributes (``num_classes``, ``parameters()``, ...) are the network's own.
    """

    def __init__(self, net):
        self.net = net

    def __call__(self, x, t, *rest):
        B = x.shape[0]
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        t = t.reshape(-1).expand(B) if t.numel() == 1 else t.reshape(-1)
        if t.numel() != B:
            raise ValueError(f"t must hold one time per image ({B}), got {t.numel()} values")
        return self.net(x, t, *rest)

    def __getattr__(self, name):
        return getattr(self.net, name)


class UnconditionalUNet(nn.Module):
    """Figure 1 of the handout: 1x28x28 in, 1x28x28 out, D hidden channels."""

    def __init__(self, in_channels: int = 1, num_hiddens: int = 128):
        super().__init__()
        D = num_hiddens
        self.config = {"in_channels": in_channels, "num_hiddens": num_hiddens}
        self.in_channels = in_channels
        self.conv_in = ConvBlock(in_channels, D)
        self.down1 = DownBlock(D, D)
        self.down2 = DownBlock(D, 2 * D)
        self.flatten = Flatten()
        self.unflatten = Unflatten(2 * D)
        self.up1 = UpBlock(4 * D, D)
        self.up2 = UpBlock(2 * D, D)
        self.conv_out = ConvBlock(2 * D, D)
        self.head = nn.Conv2d(D, in_channels, 3, 1, 1)

    def trunk(self, x, modulate_unflatten=None, modulate_up1=None):
        check_images(x, self.in_channels)
        x0 = self.conv_in(x)                      # D x 28 x 28
        x1 = self.down1(x0)                       # D x 14 x 14
        x2 = self.down2(x1)                       # 2D x 7 x 7
        h = self.unflatten(self.flatten(x2))      # 2D x 7 x 7, through a 1 x 1 bottleneck
        if modulate_unflatten is not None:
            h = modulate_unflatten(h)
        h = self.up1(torch.cat([x2, h], dim=1))   # D x 14 x 14
        if modulate_up1 is not None:
            h = modulate_up1(h)
        h = self.up2(torch.cat([x1, h], dim=1))   # D x 28 x 28
        h = self.conv_out(torch.cat([x0, h], dim=1))
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.trunk(x)


class TimeConditionalUNet(UnconditionalUNet):
    """§2.1: t in [0, 1] scales the unflatten and up1 feature maps."""

    def __init__(self, in_channels: int = 1, num_hiddens: int = 64):
        super().__init__(in_channels, num_hiddens)
        D = num_hiddens
        self.fc1_t = FCBlock(1, 2 * D)
        self.fc2_t = FCBlock(1, D)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        check_images(x, self.in_channels)
        t = _as_column(t, x.shape[0], x)
        t1 = self.fc1_t(t)[:, :, None, None]
        t2 = self.fc2_t(t)[:, :, None, None]
        return self.trunk(x, lambda h: h * t1, lambda h: h * t2)


class ClassConditionalUNet(UnconditionalUNet):
    """§2.4: a one-hot class c scales, and t shifts, the unflatten and up1 feature maps.

    ``c`` may be one-hot rows, integer labels, or None for the unconditional path (c = 0,
    which is what training sees when the class is dropped).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = NUM_CLASSES,
                 num_hiddens: int = 64):
        super().__init__(in_channels, num_hiddens)
        D = num_hiddens
        self.config = {**self.config, "num_classes": num_classes}
        self.num_classes = num_classes
        self.fc1_t = FCBlock(1, 2 * D)
        self.fc2_t = FCBlock(1, D)
        self.fc1_c = FCBlock(num_classes, 2 * D)
        self.fc2_c = FCBlock(num_classes, D)

    def _as_condition(self, c, x):
        if c is None:
            return x.new_zeros(x.shape[0], self.num_classes)
        c = torch.as_tensor(c, device=x.device)
        if not c.is_floating_point():
            c = one_hot(c, self.num_classes)
        elif c.ndim == 1:
            raise ValueError(f"c looks like class labels but has dtype {c.dtype}: labels must be "
                             f"integers (c.long()); one-hot rows have shape ({x.shape[0]}, {self.num_classes})")
        if tuple(c.shape) != (x.shape[0], self.num_classes):
            raise ValueError(f"c must be one-hot rows of shape ({x.shape[0]}, {self.num_classes}) "
                             f"or {x.shape[0]} integer labels, got shape {tuple(c.shape)}")
        return c.to(x.dtype)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float,
                c: torch.Tensor | None = None) -> torch.Tensor:
        check_images(x, self.in_channels)
        t = _as_column(t, x.shape[0], x)
        c = self._as_condition(c, x)
        t1, t2 = self.fc1_t(t)[:, :, None, None], self.fc2_t(t)[:, :, None, None]
        c1, c2 = self.fc1_c(c)[:, :, None, None], self.fc2_c(c)[:, :, None, None]
        return self.trunk(x, lambda h: c1 * h + t1, lambda h: c2 * h + t2)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
