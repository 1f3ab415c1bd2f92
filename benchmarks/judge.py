"""Validation of the digit judge (course_utils.common.judge) on held-out MNIST digits.

    python benchmarks/judge.py --data-root ../shared/data

Prints, for the committed judge (or --weights) and, for comparison, the plain 10-way classifier:
the share of held-out real digits read right (a rejection counts as wrong), and per kind of
off-manifold shape made from held-out digits (mirrored, upside down, rotated by ±90° / 180°
except the digits that stay digits, two digits superposed, blurred blobs) the share accepted as a
digit. Targets (issue 18): shapes accepted ≤ 5%, real digits read right ≥ 97%.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from course_utils.common.classifier import load_classifier  # noqa: E402
from course_utils.common.data import load_mnist  # noqa: E402
from course_utils.common.judge import JUDGE_PATH, format_validation, load_judge, validate  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None, help="folder with MNIST/raw (downloads if missing)")
    parser.add_argument("--weights", default=str(JUDGE_PATH))
    parser.add_argument("--per-kind", type=int, default=1000, help="shapes per kind")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    x, y = load_mnist(args.data_root, train=False)
    print(f"held-out split: {len(x)} digits; {args.per_kind} shapes per kind, seed {args.seed}\n")
    v = validate(load_judge(args.weights), x, y, args.per_kind, args.seed)
    print(f"digit judge ({args.weights}):")
    print(format_validation(v, len(x)))
    print("\nplain 10-way classifier (it has no 'not a digit', so it accepts every shape):")
    print(format_validation(validate(load_classifier(), x, y, args.per_kind, args.seed), len(x)))
    worst = max(v["accepted"].values())
    print(f"\ntargets: real read right ≥ 97% -> {v['real_right']:.1%} "
          f"({'met' if v['real_right'] >= 0.97 else 'NOT met'}); shapes accepted ≤ 5% -> "
          f"{v['accepted_all']:.1%} over all kinds, worst kind {worst:.1%} "
          f"({'met' if worst <= 0.05 else 'NOT met per kind' if v['accepted_all'] <= 0.05 else 'NOT met'})")


if __name__ == "__main__":
    main()
