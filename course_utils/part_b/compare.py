"""Notebook 19's measurements: DDPM against flow matching on the same UNet and the same digits,
and Part A's strided sampler run on both.

Cost is counted, not assumed: ``count_network_evaluations`` adds up the images every forward pass
of a network is fed, so a CFG step, one batched pass on 2B images, counts 2 evaluations per image
for either method. Quality is ``common.metrics``' (class accuracy, FD next to its real-vs-real
floor, KID next to its real-vs-real value).

- ``Sampler``: flow matching's Euler steps (B.4), DDPM's ancestral steps on all T = 300 or on a
  strided subset of timesteps, or DDIM's deterministic steps; ``measure`` judges one on the same
  noise as every other.
- ``training_seconds_per_epoch``: both objectives timed on one fresh UNet, interleaved.
- ``DDPMNoiseModel``: the DDPM as a Part A ``NoiseModel`` (ε̂ at an integer timestep t, the UNet
  fed t / 300), beside ``part_a.noise_models.FlowNoiseModel``, which turns the flow's velocity
  into ε̂ on the same 300-step schedule; ``measure_part_a`` samples either with Part A's loop.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from diffusers import DDPMScheduler

from ..common.batching import chunked_forward
from ..common.metrics import Judge, Quality, balanced_labels
from ..part_a.diffusion import sample as part_a_sample
from ..part_a.noise_models import NoiseModel, check_digit_condition
from ..part_a.schedule import check_timestep
from .ddpm import NUM_TIMESTEPS, sample_class_ddpm, strided_timesteps, to_pixels
from .sampling import sample_class_conditioned
from .unet import NUM_CLASSES, one_hot

FLOW, ANCESTRAL, DDIM = "flow matching, Euler", "DDPM, ancestral", "DDPM, DDIM"
METHODS = (FLOW, ANCESTRAL, DDIM)


# ---- counting the cost ----------------------------------------------------------------------

@dataclass
class NetworkEvaluations:
    """The images a network has been evaluated on since counting began."""
    images: int = 0


@contextmanager
def count_network_evaluations(network: torch.nn.Module):
    """Count the rows of every batch ``network`` is called on, inside the ``with`` block:
    ``with count_network_evaluations(model) as count: ...``, then ``count.images``."""
    count = NetworkEvaluations()

    def hook(module, args):
        count.images += args[0].shape[0]

    handle = network.register_forward_pre_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


def cfg_evaluations_per_image(steps: int) -> int:
    """NFE per image of ``steps`` CFG steps: each evaluates the network on x twice (with the class
    and without), whether as one batched pass on 2B images or as two passes."""
    return 2 * steps


# ---- samplers and their quality ---------------------------------------------------------------

@dataclass(frozen=True)
class Sampler:
    """One way to draw class-conditioned digits with CFG: ``method`` (one of ``METHODS``) and its
    number of steps. DDPM's steps walk ``ddpm.strided_timesteps(steps)`` (all T = 300 when
    ``steps`` is 300), ancestrally or, for DDIM, deterministically."""
    method: str
    steps: int

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")

    def __str__(self) -> str:
        return f"{self.method}, {self.steps} steps"

    @property
    def nfe(self) -> int:
        """Network evaluations per image (with CFG)."""
        return cfg_evaluations_per_image(self.steps)

    def draw(self, model, labels: torch.Tensor, guidance: float, generator: torch.Generator) -> torch.Tensor:
        """One digit in [0, 1] per label; noise from ``generator`` (x first, then any z)."""
        if self.method == FLOW:
            return sample_class_conditioned(model, labels, self.steps, guidance, generator)
        return sample_class_ddpm(model, labels, guidance, timesteps=strided_timesteps(self.steps),
                                 deterministic=self.method == DDIM, generator=generator)


def samplers(flow_steps=(), ancestral_steps=(), ddim_steps=()) -> list[Sampler]:
    """The settings to compare: Euler at each of ``flow_steps``, DDPM at ``ancestral_steps``,
    DDIM at ``ddim_steps``."""
    return ([Sampler(FLOW, k) for k in flow_steps] + [Sampler(ANCESTRAL, k) for k in ancestral_steps]
            + [Sampler(DDIM, k) for k in ddim_steps])


@dataclass
class Point:
    """One measured setting: what was sampled, its counted cost and its quality."""
    method: str
    steps: int
    nfe: float            # network evaluations per image, counted
    quality: Quality
    seconds: float        # wall time of the sampling (not of the judging)
    epoch: int | None = None


def measure(model, sampler: Sampler, judge: Judge, guidance: float, seed: int = 0,
            batch_size: int = 250, epoch: int | None = None) -> Point:
    """``judge.n`` samples of ``sampler`` (every digit equally often, the noise of ``seed``),
    judged, with the network evaluations counted."""
    labels = balanced_labels(judge.n)
    g = torch.Generator().manual_seed(seed)
    with count_network_evaluations(model) as count:
        start = time.perf_counter()
        samples = torch.cat([sampler.draw(model, part, guidance, g).cpu() for part in labels.split(batch_size)])
        seconds = time.perf_counter() - start
    return Point(sampler.method, sampler.steps, count.images / len(labels), judge(samples, labels), seconds, epoch)


def sweep(flow_model, ddpm_model, settings: list[Sampler], judge: Judge, guidance: float,
          seed: int = 0) -> list[Point]:
    """Every setting measured on its model (flow matching's or the DDPM's), on the same noise."""
    return [measure(flow_model if s.method == FLOW else ddpm_model, s, judge, guidance, seed) for s in settings]


def at_epoch(model, history, epoch: int):
    """``model`` after ``epoch``: its kept snapshot, or ``model`` itself after the last epoch."""
    from .recipes import after_epoch

    return model if epoch == history.epochs else after_epoch(model, history, epoch)


def epochs_in_common(*histories, keep_epochs=()) -> list[int]:
    """The epochs whose weights every run has: its ``keep_epochs`` up to its last epoch, and its last."""
    have = [{e for e in keep_epochs if e <= h.epochs} | {h.epochs} for h in histories]
    return sorted(set.intersection(*have))


def by_epoch(model, history, sampler: Sampler, epochs, judge: Judge, guidance: float, seed: int = 0,
             measured: list[Point] = ()) -> list[Point]:
    """``sampler`` on ``model`` after each of ``epochs``; a point already in ``measured`` (the
    same setting on the finished model) is reused."""
    done = {(p.method, p.steps): p for p in measured}
    points = []
    for e in epochs:
        if e == history.epochs and (sampler.method, sampler.steps) in done:
            p = done[(sampler.method, sampler.steps)]
            points.append(Point(p.method, p.steps, p.nfe, p.quality, p.seconds, e))
        else:
            points.append(measure(at_epoch(model, history, e), sampler, judge, guidance, seed, epoch=e))
    return points


# ---- training cost ----------------------------------------------------------------------------

def training_seconds_per_epoch(objectives: dict, make_model, images: torch.Tensor, labels: torch.Tensor,
                               device, batches: int = 8, repeats: int = 4, images_per_epoch: int | None = None,
                               precision: str = "auto") -> dict[str, float]:
    """Seconds one epoch of each objective takes: ``batches`` Adam steps of a fresh
    ``make_model()``, timed ``repeats`` times with the objectives interleaved, the fastest repeat
    kept (the least disturbed by other work on the machine), times the epoch's batches.

    ``objectives``: {name: (objective, batch_size)}, ``objective(model, x, y, generator)`` as
    ``train.fit`` takes it, under the same autocast. The loop is ``fit``'s without its checkpoints
    and progress bar, which cost the same for both.
    """
    from .train import autocast, resolve_precision

    device = torch.device(device)
    precision = resolve_precision(precision, device)
    images, labels = images.to(device), labels.to(device)
    n = min(len(images), images_per_epoch or len(images))
    best = {name: math.inf for name in objectives}
    for _ in range(repeats):
        for name, (objective, batch_size) in objectives.items():
            torch.manual_seed(0)
            model = make_model().to(device).train()
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
            g = torch.Generator(device=device).manual_seed(1)
            order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0)).to(device)

            def step(k):
                idx = order[(k * batch_size) % len(images):][:batch_size]
                with autocast(precision, device):
                    loss = objective(model, images[idx], labels[idx], g)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            step(0)   # warm-up: first-call allocations are not training
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            for k in range(1, batches + 1):
                step(k)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            per_batch = (time.perf_counter() - start) / batches
            best[name] = min(best[name], per_batch * math.ceil(n / batch_size))
    return best


def class_training_seconds_per_epoch(profile, images: torch.Tensor, labels: torch.Tensor, device,
                                     batches: int = 8, repeats: int = 4) -> dict[str, float]:
    """``training_seconds_per_epoch`` of the class-conditioned trainings of notebooks 17 and 19 on
    ``profile``'s sizes: the same UNet (width ``flow_D``), each objective at its own batch size."""
    from .recipes import ddpm_objective
    from .train import class_flow_objective
    from .unet import ClassConditionalUNet

    objectives = {"flow matching": (class_flow_objective(0.1), profile.flow_batch),
                  "DDPM": (ddpm_objective(True, device), profile.ddpm_batch)}
    return training_seconds_per_epoch(objectives, lambda: ClassConditionalUNet(num_hiddens=profile.flow_D),
                                      images, labels, device, batches, repeats, profile.images_per_epoch,
                                      profile.precision)


# ---- Part A's sampler on both models ----------------------------------------------------------

def ddpm_scheduler(T: int = NUM_TIMESTEPS) -> DDPMScheduler:
    """diffusers' scheduler for the DDPM of notebook 19: linear β from 1e-4 to 0.02 over T steps,
    no learned variance (Part A's loop then adds the posterior variance β̃)."""
    return DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                         variance_type="fixed_small")


class DDPMNoiseModel(NoiseModel):
    """A DDPM UNet as Part A's ``NoiseModel``: ``model(x_t, t, cond) -> (ε̂, None)``.

    x_t: (B, 1, 28, 28) in [-1, 1] (the DDPM's own scale), t: an integer timestep 0 … T − 1,
    cond: one-hot digits (1 or B, 10), all zeros (or None) for no digit. The UNet is called with
    t / T, as it was trained; a time-conditioned UNet (``class_conditioned=False``) ignores cond.
    """

    image_shape = (1, 28, 28)

    def __init__(self, unet: torch.nn.Module, scheduler: DDPMScheduler | None = None,
                 class_conditioned: bool = True):
        self.unet = unet.eval()
        self.scheduler = scheduler or ddpm_scheduler()
        self.class_conditioned = class_conditioned
        self.device = next(unet.parameters()).device

    @torch.inference_mode()
    def __call__(self, x_t: torch.Tensor, t: int, cond: torch.Tensor | None):
        num_classes = getattr(self.unet, "num_classes", NUM_CLASSES)
        if self.class_conditioned:
            check_digit_condition(cond, x_t, num_classes)
        if x_t.ndim != 4 or tuple(x_t.shape[1:]) != self.image_shape:
            raise ValueError(f"x_t must be (B, 1, 28, 28) in [-1, 1] for the MNIST DDPM, got {tuple(x_t.shape)}")
        T = len(self.alphas_cumprod)
        t = check_timestep(t, T)
        x = x_t.to(self.device)
        s = torch.full((x.shape[0],), t / T, device=self.device, dtype=x.dtype)
        if not self.class_conditioned:
            return chunked_forward(self.unet, x, s).to(x_t.device), None
        c = (torch.zeros(x.shape[0], num_classes) if cond is None else cond).to(self.device, x.dtype)
        eps = chunked_forward(self.unet, x, s, c.expand(x.shape[0], -1))
        return eps.to(x_t.device), None


def part_a_timesteps(steps: int, T: int = NUM_TIMESTEPS) -> list[int]:
    """``steps`` + 1 timesteps from T − 1 down to 0, evenly spaced: Part A's loop takes ``steps``
    steps on them, from the noisiest timestep to t = 0, where it must end for a clean image
    (``list(range(299, -1, -30))`` would stop at t = 29, still noisy)."""
    return strided_timesteps(steps + 1, T)


def part_a_digits(noise_model, labels: torch.Tensor, guidance: float, timesteps: list[int],
                  generator: torch.Generator) -> torch.Tensor:
    """One digit in [0, 1] per label from Part A's ``sample`` (§1.6: the strided loop with CFG,
    "" = all-zero class) on ``noise_model``, any Part A ``NoiseModel`` on MNIST's [-1, 1]."""
    device = noise_model.device
    uncond = torch.zeros(1, getattr(noise_model.unet, "num_classes", NUM_CLASSES), device=device)
    x = part_a_sample(noise_model, one_hot(labels).to(device), len(labels), uncond, guidance, list(timesteps),
                      generator, device, progress=False)
    return to_pixels(x).cpu()


def measure_part_a(noise_model, judge: Judge, guidance: float, timesteps: list[int], seed: int = 0,
                   batch_size: int = 250, label: str = "Part A's loop") -> Point:
    """``part_a_digits`` for ``judge.n`` labels (every digit equally often), judged, with the
    evaluations of its ``unet`` counted. Part A's loop evaluates the network at every timestep
    but the last (t = 0): NFE per image = 2 (len(timesteps) − 1)."""
    labels = balanced_labels(judge.n)
    g = torch.Generator().manual_seed(seed)
    with count_network_evaluations(noise_model.unet) as count:
        start = time.perf_counter()
        samples = torch.cat([part_a_digits(noise_model, part, guidance, timesteps, g)
                             for part in labels.split(batch_size)])
        seconds = time.perf_counter() - start
    return Point(label, len(timesteps) - 1, count.images / len(labels), judge(samples, labels), seconds)


def link_findings(flow_point: Point, ddpm_point: Point, sweep_points: list[Point] = ()) -> str:
    """Part A's loop on both models, side by side, and each model's own sampler at the nearest
    measured cost for reference."""
    lines = []
    for p in (flow_point, ddpm_point):
        q = p.quality
        lines.append(f"  {p.method}: accuracy {100 * q.accuracy:.1f}%, FD/floor {q.ratio:.2f}×, "
                     f"KID {1e3 * q.kid:.2f}×1e-3 (real vs real {1e3 * q.kid_floor:.2f}×1e-3)")
    f, d = flow_point.quality, ddpm_point.quality
    closer = flow_point if f.ratio < d.ratio else ddpm_point
    lines.append(f"closer to real digits by FD with the same loop, timesteps and noise: {closer.method} "
                 f"(FD {max(f.ratio, d.ratio) / min(f.ratio, d.ratio):.2f}× lower; KID DDPM − flow "
                 f"{1e3 * (d.kid - f.kid):+.2f}×1e-3)")
    for m, p in ((FLOW, flow_point), (ANCESTRAL, ddpm_point)):
        own = [s for s in sweep_points if s.method == m]
        if own:
            near = min(own, key=lambda s: abs(s.nfe - p.nfe))
            lines.append(f"  for reference, {m} at {near.nfe:.0f} NFE/image: accuracy "
                         f"{100 * near.quality.accuracy:.1f}%, FD/floor {near.quality.ratio:.2f}×")
    return "\n".join(lines)


# ---- printouts ------------------------------------------------------------------------------

def _kid(q: Quality) -> str:
    return f"{1e3 * q.kid:8.2f}" if q.kid is not None else "       –"


def table(points: list[Point], first: str = "method") -> str:
    """One line per point: method (and epoch, if any), steps, NFE per image, accuracy, FD/floor,
    KID (×10³) and the seconds the sampling took; then the real-vs-real values."""
    names = [p.method if p.epoch is None else f"{p.method} (epoch {p.epoch})" for p in points]
    w = max(len(first), *map(len, names))
    head = f"{first:<{w}} {'steps':>5} {'NFE/img':>7} {'accuracy':>8} {'FD/floor':>8} {'KID×1e3':>8} {'sample s':>8}"
    lines = [head, "-" * len(head)]
    for name, p in zip(names, points):
        q = p.quality
        acc = f"{100 * q.accuracy:7.1f}%" if q.accuracy is not None else "       –"
        lines.append(f"{name:<{w}} {p.steps:5d} {p.nfe:7.0f} {acc} {q.ratio:7.2f}× {_kid(q)} {p.seconds:8.1f}")
    q = points[0].quality
    lines.append(f"real vs real (n = {q.n}): FD floor {q.floor:.2f}"
                 + (f", KID {1e3 * q.kid_floor:.2f}×1e-3" if q.kid_floor is not None else ""))
    return "\n".join(lines)


def best(points: list[Point]) -> Point:
    """The point with the lowest FD/floor."""
    return min(points, key=lambda p: p.quality.ratio)


def cheapest_within(points: list[Point], target: float) -> Point | None:
    """The point with the fewest NFE per image whose FD/floor is at most ``target``."""
    ok = [p for p in points if p.quality.ratio <= target]
    return min(ok, key=lambda p: (p.nfe, p.quality.ratio)) if ok else None


def nfe_findings(points: list[Point], slack: float = 1.25) -> str:
    """What the sweep shows, in sentences made from its numbers: each method's best FD/floor and
    accuracy, and the fewest NFE per image at which each gets within ``slack`` × the best FD/floor
    measured by any; then the settings measured at equal NFE by both models."""
    overall = best(points)
    target = slack * overall.quality.ratio
    lines = [f"lowest FD/floor measured: {overall.quality.ratio:.2f}× ({overall.method}, {overall.steps} steps, "
             f"{overall.nfe:.0f} NFE/image); 'good' below means within {slack:g}× of it (≤ {target:.2f}×):"]
    for m in METHODS:
        mine = [p for p in points if p.method == m]
        if not mine:
            continue
        b = best(mine)
        top = max(mine, key=lambda p: p.quality.accuracy or 0)
        c = cheapest_within(mine, target)
        lines.append(f"  {m}: best FD/floor {b.quality.ratio:.2f}× at {b.nfe:.0f} NFE/image; best accuracy "
                     f"{100 * top.quality.accuracy:.1f}% at {top.nfe:.0f}; good from "
                     + (f"{c.nfe:.0f} NFE/image ({c.steps} steps)" if c else "none of the measured settings"))
    flow = {p.steps: p for p in points if p.method == FLOW}
    ddpm_points = [p for p in points if p.method != FLOW]
    if flow and ddpm_points:
        d = best(ddpm_points)
        f = cheapest_within(list(flow.values()), d.quality.ratio)
        lines.append(f"  the DDPM's best ({d.method}, {d.steps} steps: FD/floor {d.quality.ratio:.2f}×, {d.nfe:.0f} "
                     "NFE/image) is matched by flow matching "
                     + (f"from {f.steps} Euler steps ({f.nfe:.0f} NFE/image: {d.nfe / f.nfe:.0f}× fewer)" if f else
                        "at none of the measured step counts"))
    pairs = [(flow[p.steps], p) for p in ddpm_points if p.steps in flow]
    for f, d in pairs:
        lines.append(f"  equal cost, {f.steps} steps ({f.nfe:.0f} NFE/image): flow FD/floor {f.quality.ratio:.2f}×, "
                     f"accuracy {100 * f.quality.accuracy:.1f}%; {d.method} {d.quality.ratio:.2f}×, "
                     f"{100 * d.quality.accuracy:.1f}%")
    return "\n".join(lines)


def epoch_findings(flow_points: list[Point], ddpm_points: list[Point], seconds: dict[str, float]) -> str:
    """Epoch by epoch, which model is closer to real digits, and the measured cost of an epoch."""
    lines = []
    for f, d in zip(flow_points, ddpm_points):
        closer = "flow matching" if f.quality.ratio < d.quality.ratio else "DDPM"
        lines.append(f"  epoch {f.epoch:2d}: flow FD/floor {f.quality.ratio:.2f}×, accuracy "
                     f"{100 * f.quality.accuracy:.1f}%; DDPM {d.quality.ratio:.2f}×, {100 * d.quality.accuracy:.1f}% "
                     f"→ closer to real digits: {closer}")
    wins = sum(f.quality.ratio < d.quality.ratio for f, d in zip(flow_points, ddpm_points))
    names = list(seconds)
    a, b = seconds[names[0]], seconds[names[1]]
    lines.append(f"flow matching closer in {wins} of {len(flow_points)} epochs; one training epoch takes "
                 f"{a:.1f} s ({names[0]}) and {b:.1f} s ({names[1]}): ratio {b / a:.2f}")
    return "\n".join(lines)


# ---- figures --------------------------------------------------------------------------------

def plot_quality_vs_nfe(points: list[Point], title: str | None = None, name: str | None = None):
    """Accuracy, FD/floor and KID against NFE per image, one line per method, the real-vs-real
    values dashed."""
    import matplotlib.pyplot as plt

    from ..common.plotting import save_figure

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = [(lambda q: 100 * q.accuracy, "read as intended digit (%)", None),
              (lambda q: q.ratio, "FD / real-vs-real floor", 1.0),
              (lambda q: 1e3 * q.kid, "KID (×10⁻³)", 1e3 * points[0].quality.kid_floor)]
    for ax, (value, ylabel, real) in zip(axes, panels):
        for i, m in enumerate(METHODS):
            mine = sorted((p for p in points if p.method == m), key=lambda p: p.nfe)
            if mine:
                ax.plot([p.nfe for p in mine], [value(p.quality) for p in mine], "o-", color=f"C{i}", label=m)
        if real is not None:
            ax.axhline(real, color="gray", ls="--", lw=1, label="real vs real")
        ax.set(xlabel="network evaluations per image (2 × steps with CFG)", ylabel=ylabel, xscale="log")
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    axes[0].set_ylim(0, 101)
    axes[1].legend(fontsize=8)
    fig.suptitle(title or f"quality against sampling cost (n = {points[0].quality.n} per point)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, name)
    return fig


def plot_quality_vs_epoch(runs: dict[str, list[Point]], title: str | None = None, name: str | None = None):
    """Accuracy and FD/floor against the training epoch, one line per run."""
    import matplotlib.pyplot as plt

    from ..common.plotting import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for i, (label, pts) in enumerate(runs.items()):
        axes[0].plot([p.epoch for p in pts], [p.quality.ratio for p in pts], "o-", color=f"C{i}", label=label)
        axes[1].plot([p.epoch for p in pts], [100 * p.quality.accuracy for p in pts], "o-", color=f"C{i}", label=label)
    axes[0].axhline(1, color="gray", ls="--", lw=1, label="real vs real")
    axes[0].set(xlabel="epoch", ylabel="FD / real-vs-real floor", yscale="log")
    axes[1].set(xlabel="epoch", ylabel="read as intended digit (%)", ylim=(0, 101))
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title or "quality against training epoch", fontsize=10)
    fig.tight_layout()
    save_figure(fig, name)
    return fig


def plot_ddpm_schedule(betas: torch.Tensor, alphas_cumprod: torch.Tensor, name: str | None = None):
    """β_t and ᾱ_t against t, side by side (the handout's schedule figure)."""
    import matplotlib.pyplot as plt

    from ..common.plotting import save_figure

    t = torch.arange(len(betas))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].plot(t, betas.detach().double().cpu())
    axes[0].set(xlabel="timestep t", ylabel=r"$\beta_t$", title=r"noise added at step t: $\beta_t$")
    axes[1].plot(t, alphas_cumprod.detach().double().cpu(), label=r"$\bar\alpha_t$")
    axes[1].plot(t, alphas_cumprod.detach().double().cpu().sqrt(), ls="--", label=r"signal scale $\sqrt{\bar\alpha_t}$")
    axes[1].set(xlabel="timestep t", ylim=(0, 1.02), title=r"signal left at step t: $\bar\alpha_t$")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, name)
    return fig
