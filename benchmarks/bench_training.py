"""Training and sampling throughput of the course's trainer against a plain eager loop.

    python benchmarks/bench_training.py [--data-root ../shared/data] [--steps 20] [--device cpu]

Measures in one run, on one machine: images/s of `course_utils.part_b.train.fit` (dataset held as one
tensor, batches by index, optional mixed precision) versus a plain `DataLoader` + `ToTensor` +
float32 loop of the same model and loss, for each of the three Part B trainings; sampling
images/s (Euler, CFG as one batched pass); and the FLOP/s achieved against the machine's measured
matmul and convolution ceilings. Prints ratios, never asserts anything.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode
from torchvision import datasets, transforms

os.environ.setdefault("TQDM_DISABLE", "1")   # a benchmark prints tables, not progress bars

from course_utils.common.data import load_mnist, make_fake_mnist
from course_utils.part_b.sampling import sample_class_conditioned
from course_utils.part_b.train import (class_flow_objective, denoiser_objective, fit,
                                       resolve_precision, time_flow_objective)
from course_utils.part_b.unet import ClassConditionalUNet, TimeConditionalUNet, UnconditionalUNet

TRAININGS = {  # name: (model factory, objective, batch size) at the handout's sizes
    "denoiser D=128": (lambda: UnconditionalUNet(num_hiddens=128), denoiser_objective(0.5), 256),
    "time-cond D=64": (lambda: TimeConditionalUNet(num_hiddens=64), time_flow_objective(), 64),
    "class-cond D=64": (lambda: ClassConditionalUNet(num_hiddens=64), class_flow_objective(), 64),
}
# Variants measured against the plain loop of the handout's class-conditioned D=64 model:
# channels_last memory format (same model), and the cpu profile's narrower D=16 (less work per
# image, which notebook 17 and benchmarks/quality.py show still gives 99.6-100% legible digits).
VARIANTS = {
    "class-cond D=64, channels_last": lambda: ClassConditionalUNet(num_hiddens=64).to(memory_format=torch.channels_last),
    "class-cond D=16 (cpu profile)": lambda: ClassConditionalUNet(num_hiddens=16),
}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def ceiling(device, kind: str, seconds: float = 2.0) -> float:
    """Best FLOP/s of a large float32 matmul or a UNet-like 3x3 convolution."""
    if kind == "matmul":
        a, b = torch.randn(2048, 2048, device=device), torch.randn(2048, 2048, device=device)
        op, flops = (lambda: a @ b), 2 * 2048 ** 3
    else:
        conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(device)
        x = torch.randn(64, 128, 28, 28, device=device)
        op, flops = (lambda: conv(x)), 2 * 64 * 128 * 128 * 9 * 28 * 28
    with torch.inference_mode():
        op(), sync(device)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            op(), sync(device)
            n += 1
    return n * flops / (time.perf_counter() - start)


def step_flops(make_model, objective, batch, device) -> int:
    model = make_model().to(device)
    x, y = torch.rand(batch, 1, 28, 28, device=device), torch.randint(0, 10, (batch,), device=device)
    with FlopCounterMode(display=False) as counter:
        objective(model, x, y, torch.Generator(device=device).manual_seed(0)).backward()
    return counter.get_total_flops()


def plain_loop(make_model, objective, batch, root, steps, device) -> float:
    """The student's loop: a DataLoader decoding PIL images, float32, eager."""
    torch.manual_seed(0)
    model = make_model().to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loader = DataLoader(datasets.MNIST(root, train=True, download=False, transform=transforms.ToTensor()),
                        batch_size=batch, shuffle=True, drop_last=True)
    g = torch.Generator(device=device).manual_seed(0)
    start, n = None, 0
    for i, (x, y) in enumerate(loader):
        if i == 2:
            sync(device)
            start, n = time.perf_counter(), 0
        loss = objective(model, x.to(device), y.to(device), g)
        opt.zero_grad(), loss.backward(), opt.step()
        n += len(x)
        if i == steps + 1:
            break
    sync(device)
    return n / (time.perf_counter() - start)


def course_loop(make_model, objective, batch, images, labels, steps, device, precision) -> float:
    torch.manual_seed(0)
    model = make_model().to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    fit(model, objective, images, labels, epochs=1, batch_size=batch, optimizer=opt,
        images_per_epoch=2 * batch, precision=precision, desc="warm-up")
    sync(device)
    start = time.perf_counter()
    fit(model, objective, images, labels, epochs=1, batch_size=batch, optimizer=opt,
        images_per_epoch=steps * batch, precision=precision, desc="timed")
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None, help="MNIST root (default: a synthetic one)")
    ap.add_argument("--steps", type=int, default=10, help="timed optimizer steps per measurement")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default="auto")
    args = ap.parse_args()
    device = torch.device(args.device)
    root = args.data_root or make_fake_mnist(tempfile.mkdtemp(), num_train=4096, num_test=16)
    images, labels = load_mnist(root, train=True, download=False, device=device)
    precision = resolve_precision(args.precision, device)
    peaks = {k: ceiling(device, k) for k in ("matmul", "conv")}
    print(f"device {device}, {torch.get_num_threads()} threads, trainer precision {precision}; "
          f"measured float32 ceilings: matmul {peaks['matmul'] / 1e9:.0f} GFLOP/s, "
          f"conv {peaks['conv'] / 1e9:.0f} GFLOP/s")
    print(f"| training | plain img/s | course img/s | speed-up | GFLOP/img | course GFLOP/s | % of conv ceiling |")
    print("|---|---|---|---|---|---|---|")
    plain = {}
    rows = [(name, make_model, objective, batch, name) for name, (make_model, objective, batch) in TRAININGS.items()]
    _, objective, batch = TRAININGS["class-cond D=64"]
    rows += [(name, make_model, objective, batch, "class-cond D=64") for name, make_model in VARIANTS.items()]
    for name, make_model, objective, batch, baseline in rows:
        flops = step_flops(make_model, objective, batch, device) / batch
        if name == baseline:
            plain[name] = plain_loop(make_model, objective, batch, root, args.steps, device)
        ours = course_loop(make_model, objective, batch, images, labels, args.steps, device, precision)
        versus = "" if name == baseline else f" ({baseline})"
        print(f"| {name} | {plain[baseline]:.0f}{versus} | {ours:.0f} | {ours / plain[baseline]:.2f}x | "
              f"{flops / 1e9:.2f} | {ours * flops / 1e9:.0f} | {100 * ours * flops / peaks['conv']:.0f}% |",
              flush=True)
    model = ClassConditionalUNet(num_hiddens=64).to(device)
    labels10 = torch.arange(10).repeat(10)
    sample_class_conditioned(model, labels10[:10], 2)
    sync(device)
    start = time.perf_counter()
    sample_class_conditioned(model, labels10, 20, 5.0, torch.Generator().manual_seed(0))
    sync(device)
    print(f"\nsampling, class-conditioned D=64, CFG (one batched pass), 20 Euler steps: "
          f"{len(labels10) / (time.perf_counter() - start):.1f} images/s")


if __name__ == "__main__":
    main()
