"""Figures for the notebooks: image rows and grids, loss curves, sampling GIFs.

Every figure helper takes ``name``; when given, the figure is also saved as ``<name>.png`` in
``figure_dir()`` so the course's deliverables exist as files, not only inside notebooks.
"""
from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

from .env import figure_dir

DPI = 90
# Inline figures at a modest resolution keep the committed notebooks small.
plt.rcParams["figure.dpi"] = 72
MIN_WIDTH, MIN_GRID_WIDTH = 4.4, 8.4   # inches at 72 dpi: 317 and 605 px


def save_figure(fig, name: str | None) -> Path | None:
    if not name:
        return None
    path = figure_dir() / f"{name}.png"
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def to_numpy_image(img: torch.Tensor, value_range=(0.0, 1.0)):
    """(C, H, W) or (H, W) tensor in ``value_range`` to an HxW or HxWxC array in [0, 1]."""
    lo, hi = value_range
    img = ((img.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)
    return img.numpy()


def show_images(images: Sequence[torch.Tensor] | torch.Tensor, titles: Sequence[str] | None = None,
                ncols: int | None = None, suptitle: str | None = None, name: str | None = None,
                value_range=(0.0, 1.0), size: float = 1.6, row_labels: Sequence[str] | None = None):
    """Images side by side (wrapping after ``ncols``), each with an optional title."""
    images = list(images)
    ncols = ncols or len(images)
    nrows = math.ceil(len(images) / ncols)
    # readable at GitHub's width: rows of several images at least ~600 px wide, any figure ≥ 300 px
    size = max(size, (MIN_GRID_WIDTH if ncols >= 4 else MIN_WIDTH) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3 * bool(suptitle)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if i < len(images):
            ax.imshow(to_numpy_image(images[i], value_range), cmap="gray", vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if row_labels is not None:
        # horizontal and right-aligned beside the row (wrapped to at most ~14 characters a line):
        # a rotated label of a short row runs into the next row's label
        for r, label in enumerate(row_labels):
            label = "\n".join(textwrap.fill(part, 14) for part in str(label).split("\n"))
            axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center", labelpad=4)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    save_figure(fig, name)
    return fig


def show_grid(images: torch.Tensor, nrow: int, title: str | None = None, name: str | None = None,
              value_range=(0.0, 1.0), size: float = 0.6):
    """Many small images as one tiled grid (torchvision's make_grid)."""
    lo, hi = value_range
    grid = make_grid(((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1),
                     nrow=nrow, padding=2, pad_value=1.0)
    ncol = math.ceil(len(images) / nrow)
    fig, ax = plt.subplots(figsize=(size * nrow + 0.4, size * ncol + 0.4))
    ax.imshow(grid.permute(1, 2, 0).numpy())
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, name)
    return fig


def plot_losses(losses, title: str = "training loss", name: str | None = None,
                iters_per_epoch: int | None = None, log: bool = True):
    """Per-iteration loss (faint) with a running mean, log scale, epoch boundaries marked.

    ``losses`` is one sequence, or a dict {label: sequence} to compare several runs.
    """
    runs = losses if isinstance(losses, dict) else {None: losses}
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for i, (label, run) in enumerate(runs.items()):
        run = torch.as_tensor(list(run), dtype=torch.float64)
        color = f"C{i}"
        ax.plot(run.numpy(), lw=0.5, alpha=0.3, color=color)
        window = max(1, len(run) // 50)
        if window > 1:
            smooth = run.unfold(0, window, 1).mean(1)
            # one line style per run: where two runs' means coincide, the dashed one shows the solid one under it
            ax.plot(range(window - 1, len(run)), smooth.numpy(), lw=1.5, color=color, ls=("-", "--", ":")[i % 3],
                    label=f"{label + ': ' if label else ''}mean of {window} iterations")
    if iters_per_epoch:
        longest = max(len(r) for r in runs.values())
        for e in range(iters_per_epoch, longest, iters_per_epoch):
            ax.axvline(e, color="gray", lw=0.5, ls=":")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("iteration" + (" (dotted lines: epochs)" if iters_per_epoch else ""))
    ax.set_ylabel("loss"), ax.set_title(title, fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, name)
    return fig


def save_gif(frames: Sequence[torch.Tensor], name: str, nrow: int = 10, duration_ms: int = 100,
             value_range=(0.0, 1.0), scale: int = 2, hold_last: int = 10, max_frames: int = 17) -> Path:
    """A GIF of a batch over time (e.g. a sampling trajectory); returns its path.

    Long trajectories are thinned to ``max_frames`` (first and last kept) to keep the file small.
    """
    from PIL import Image

    lo, hi = value_range
    frames = list(frames)
    if len(frames) > max_frames:
        keep = torch.linspace(0, len(frames) - 1, max_frames).round().long().unique().tolist()
        frames = [frames[i] for i in keep]
    pictures = []
    for frame in frames:
        grid = make_grid(((frame.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1),
                         nrow=nrow, padding=2, pad_value=1.0)
        array = (grid.permute(1, 2, 0) * 255).round().byte().numpy()
        img = Image.fromarray(array)
        pictures.append(img.resize((img.width * scale, img.height * scale), Image.NEAREST))
    pictures += [pictures[-1]] * hold_last
    path = figure_dir() / f"{name}.gif"
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=duration_ms, loop=0)
    return path


def image_slider(images: Sequence[torch.Tensor], labels: Sequence[str], value_range=(0.0, 1.0),
                 description: str = "step", scale: int = 4):
    """An ipywidgets slider that flips through precomputed images (nothing runs on a move).

    Returns the widget; in a headless run it is inert, and the figures beside it carry the
    deliverables.
    """
    import io

    import ipywidgets as widgets
    from PIL import Image

    def png(img):
        array = (to_numpy_image(img, value_range) * 255).round().astype("uint8")
        picture = Image.fromarray(array)
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return buffer.getvalue()

    frames = [png(img) for img in images]
    view = widgets.Image(value=frames[0], format="png")
    caption = widgets.Label(labels[0])
    slider = widgets.IntSlider(0, 0, len(frames) - 1, description=description)

    def on_change(change):
        view.value, caption.value = frames[change["new"]], labels[change["new"]]

    slider.observe(on_change, names="value")

    class Slider(widgets.VBox):
        # where widgets do not render (a stored notebook on GitHub) this text stands in, not "VBox(children=…"
        def __repr__(self):
            return f"[an interactive slider over {len(frames)} images ({description}): it moves in a live notebook]"

    return Slider([slider, caption, view])


def plot_quality(xs, qualities, xlabel: str, title: str | None = None, name: str | None = None,
                 log_x: bool = False):
    """Sample quality against a setting: FD as a multiple of the real-vs-real floor (1 = as
    good as real digits) and, when measured, the share read as the intended digit."""
    with_acc = qualities[0].accuracy is not None
    fig, axes = plt.subplots(1, 1 + with_acc, figsize=(4.2 * (1 + with_acc), 3), squeeze=False)
    ax = axes[0, 0]
    ax.plot(xs, [q.ratio for q in qualities], "o-")
    ax.axhline(1, color="gray", ls="--", lw=1, label="real vs real")
    ax.set(xlabel=xlabel, ylabel="FD / real-vs-real floor", yscale="log")
    ax.legend(fontsize=8)
    if with_acc:
        ax = axes[0, 1]
        ax.plot(xs, [100 * q.accuracy for q in qualities], "o-")
        ax.set(xlabel=xlabel, ylabel="read as intended digit (%)", ylim=(0, 101))
    for ax in axes.flat:
        if log_x:
            ax.set_xscale("log", base=2)
        ax.grid(alpha=0.3)
    fig.suptitle(title or f"sample quality (n = {qualities[0].n})", fontsize=10)
    fig.tight_layout()
    save_figure(fig, name)
    return fig


def plot_schedule(alphas_cumprod: torch.Tensor, marks=(), name: str | None = None):
    """ᾱ_t and the signal and noise scales √ᾱ_t, √(1 − ᾱ_t) against t, with ``marks`` dotted."""
    a = alphas_cumprod.detach().double().cpu()
    t = torch.arange(len(a))
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    ax.plot(t, a, label=r"$\bar\alpha_t$")
    ax.plot(t, a.sqrt(), label=r"signal scale $\sqrt{\bar\alpha_t}$")
    ax.plot(t, (1 - a).sqrt(), label=r"noise scale $\sqrt{1-\bar\alpha_t}$")
    for m in marks:
        ax.axvline(m, color="gray", ls=":", lw=1)
    ax.set(xlabel="timestep t", ylim=(0, 1.02), title="the noise schedule")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, name)
    return fig


def show_near_far(images: Sequence[torch.Tensor], far_images: Sequence[torch.Tensor], near_titles, far_titles,
                  value_range=(-1.0, 1.0), size: float = 2.6, name: str | None = None, suptitle: str | None = None):
    """Each image at full size beside a copy drawn as small as its pixels (``far_images`` are the
    shrunk copies, e.g. ``illusions.far_view``), smoothly interpolated: what the eye gets from
    across the room, where only low frequencies survive."""
    n = len(images)
    ratio = far_images[0].shape[-1] / images[0].shape[-1]
    fig, axes = plt.subplots(n, 2, figsize=(max(size * (1 + ratio), MIN_WIDTH), size * n + 0.3 * bool(suptitle)),
                             gridspec_kw={"width_ratios": [1, ratio]}, squeeze=False)
    for row, (near, far, t1, t2) in enumerate(zip(images, far_images, near_titles, far_titles)):
        for ax, img, title in ((axes[row, 0], near, t1), (axes[row, 1], far, t2)):
            # the far copy is drawn smoothly (no pixel blocks): what an eye sees of a small image
            ax.imshow(to_numpy_image(img, value_range), cmap="gray", vmin=0, vmax=1,
                      interpolation="bilinear" if ax is axes[row, 1] else None)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
        axes[row, 1].set_anchor("W")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    save_figure(fig, name)
    return fig
