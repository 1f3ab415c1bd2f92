"""DDPM versus flow matching on the same class-conditioned UNet and the same digits (notebook 19).

    python benchmarks/ddpm_vs_flow.py --data-root ../shared/data [--profile cpu] [--n 100] [--seed 0]

Loads (or trains) the profile's two class-conditioned models: notebook 17's flow ("flow_class")
and notebook 19's DDPM ("ddpm_class"), both from ``recipes``, so a run after the notebooks only
samples. Then prints, with CFG γ = 5 and ``--n`` samples per point (every digit equally often, the
same noise for every setting):

1. quality against network evaluations per image (counted; 2 × steps with CFG): flow matching
   with Euler steps, the DDPM ancestrally (300 steps or strided) and with DDIM;
2. quality against epoch at equal epochs (Euler and DDIM at the profile's step count), with the
   measured seconds per training epoch of each and their ratio;
3. Part A's strided loop with CFG on both (the flow through ``FlowNoiseModel``), same timesteps.

Figures go to ``COURSE_FIGURE_DIR`` (default build/figures, beside ``make notebooks``' figures) as
B3_bench_quality_vs_nfe.png and B3_bench_quality_vs_epoch.png.
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")   # a benchmark prints tables, not progress bars
os.environ.setdefault("COURSE_FIGURE_DIR", str(Path(__file__).resolve().parents[1] / "build" / "figures"))

import matplotlib  # noqa: E402

matplotlib.use("Agg")

from course_utils.common.data import load_mnist  # noqa: E402
from course_utils.common.env import figure_dir, get_device  # noqa: E402
from course_utils.common.metrics import load_judge  # noqa: E402
from course_utils.common.profiles import describe_run, get_profile  # noqa: E402
from course_utils.part_a.noise_models import FlowNoiseModel  # noqa: E402
from course_utils.part_b import compare  # noqa: E402
from course_utils.part_b.recipes import train_ddpm, train_flow  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", required=True, help="folder holding MNIST/raw")
    ap.add_argument("--profile", default="cpu", choices=("smoke", "cpu", "full"))
    ap.add_argument("--n", type=int, default=None, help="samples per point (default: a fifth of quality_samples)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--guidance", type=float, default=5.0)
    ap.add_argument("--flow-steps", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 50])
    ap.add_argument("--ancestral-steps", type=int, nargs="+", default=[20, 50, 300])
    ap.add_argument("--ddim-steps", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--link-steps", type=int, default=30)
    ap.add_argument("--ddpm-lr", type=float, default=None,
                    help="train the DDPM at this lr instead of the profile's (a run of its own, e.g. 1e-3: CS180's)")
    args = ap.parse_args()

    profile = get_profile(args.profile)
    ddpm_name = None
    if args.ddpm_lr is not None:
        profile, ddpm_name = replace(profile, ddpm_lr=args.ddpm_lr), f"ddpm_class_lr{args.ddpm_lr:g}"
    device = get_device()
    print(describe_run(profile, device))
    X, Y = load_mnist(args.data_root, train=True, device=device, download=False)
    X_test, _ = load_mnist(args.data_root, train=False, download=False)
    flow, flow_history = train_flow(X, Y, profile, device, class_conditioned=True)
    ddpm_net, ddpm_history = train_ddpm(X, Y, profile, device, class_conditioned=True, name=ddpm_name)
    judge = load_judge(X_test, args.n or max(10, profile.quality_samples // 5), device)
    print(f"n = {judge.n} per point; real vs real: FD {judge.floor:.2f}, KID {1e3 * judge.kid_floor:.2f}×1e-3\n")

    start = time.perf_counter()
    points = compare.sweep(flow, ddpm_net, compare.samplers(args.flow_steps, args.ancestral_steps, args.ddim_steps),
                           judge, args.guidance, args.seed)
    print(f"1. quality against sampling cost (γ = {args.guidance:g}); NFE per image counted")
    print(compare.table(points))
    print(compare.nfe_findings(points))
    compare.plot_quality_vs_nfe(points, name="B3_bench_quality_vs_nfe")

    steps = profile.num_steps
    epochs = compare.epochs_in_common(flow_history, ddpm_history, keep_epochs=profile.keep_epochs)
    by_flow = compare.by_epoch(flow, flow_history, compare.Sampler(compare.FLOW, steps), epochs, judge,
                               args.guidance, args.seed, points)
    by_ddpm = compare.by_epoch(ddpm_net, ddpm_history, compare.Sampler(compare.DDIM, steps), epochs, judge,
                               args.guidance, args.seed, points)
    seconds = compare.class_training_seconds_per_epoch(profile, X, Y, device)
    print(f"\n2. quality against epoch ({steps} steps: Euler for the flow, DDIM for the DDPM)")
    print(compare.table(by_flow + by_ddpm, first="run"))
    print(compare.epoch_findings(by_flow, by_ddpm, seconds))
    compare.plot_quality_vs_epoch({"flow matching": by_flow, "DDPM": by_ddpm}, name="B3_bench_quality_vs_epoch")

    timesteps = compare.part_a_timesteps(args.link_steps)
    link = [compare.measure_part_a(FlowNoiseModel(flow, scheduler=compare.ddpm_scheduler()), judge, args.guidance,
                                   timesteps, args.seed, label="flow → ε, Part A"),
            compare.measure_part_a(compare.DDPMNoiseModel(ddpm_net), judge, args.guidance, timesteps, args.seed,
                                   label="DDPM ε, Part A")]
    print(f"\n3. Part A's loop with CFG on both, {args.link_steps} steps from t = 299 to 0")
    print(compare.table(link, first="model"))
    print(compare.link_findings(*link, points))
    print(f"\nmeasured in {time.perf_counter() - start:.0f} s; figures in {figure_dir()}")


if __name__ == "__main__":
    main()
