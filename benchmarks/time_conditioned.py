"""Can the cpu profile's time-conditioned UNet (notebook 16) get legible samples cheaply?

Trains §2.2's recipe at the cpu profile's sizes with a chosen learning rate, width and number of
epochs, then prints the FD of 500 unconditional samples (16 Euler steps) to held-out digits, as a
multiple of the real-vs-real floor, after each kept epoch (notebook 16's rule of thumb: ≤ 10×
reads as digits).

    python benchmarks/time_conditioned.py --data-root ../shared/data --lr 1e-2
    python benchmarks/time_conditioned.py --data-root ../shared/data --epochs 20

``--evaluate FOLDER`` trains nothing: it judges the weights kept in a run's folder instead, e.g.
the reference model's run (``python -m course_utils.part_b.reference --ckpt-dir DIR --keep 10 20 …``):

    python benchmarks/time_conditioned.py --data-root ../shared/data --evaluate DIR/full/flow_time_ema0.999 --steps 16 50
"""
import argparse
import os
import tempfile
import time
from dataclasses import replace

os.environ.setdefault("TQDM_DISABLE", "1")

from course_utils.common.data import load_mnist  # noqa: E402
from course_utils.common.metrics import load_judge  # noqa: E402
from course_utils.common.profiles import get_profile  # noqa: E402
from course_utils.part_b.evaluation import judge_time_conditioned  # noqa: E402
from course_utils.part_b.recipes import after_epoch, train_flow  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="folder holding MNIST/raw")
    parser.add_argument("--lr", type=float, default=None, help="initial lr (default: the cpu profile's)")
    parser.add_argument("--D", type=int, default=None, help="UNet width (default: the cpu profile's)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the cpu profile's)")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--evaluate", default=None, help="a run's folder: judge its epoch_<k>.pt files")
    parser.add_argument("--steps", type=int, nargs="*", default=None, help="Euler steps (default: the cpu profile's)")
    args = parser.parse_args()
    if args.evaluate:
        return evaluate(args)

    cpu = get_profile("cpu")
    epochs = args.epochs or cpu.flow_epochs
    profile = replace(cpu, flow_lr=args.lr or cpu.flow_lr, flow_D=args.D or cpu.flow_D, flow_epochs=epochs,
                      keep_epochs=tuple(sorted({1, 5, 10, epochs} - {e for e in (5, 10) if e > epochs})))
    X, _ = load_mnist(args.data_root, train=True)
    X_test, _ = load_mnist(args.data_root, train=False)
    with tempfile.TemporaryDirectory() as ckpt:
        os.environ["COURSE_CKPT_DIR"] = ckpt   # a fresh run every time
        start = time.perf_counter()
        model, history = train_flow(X, None, profile, "cpu")
        print(f"D = {profile.flow_D}, lr {profile.flow_lr:g} decayed tenfold over {epochs} epochs of "
              f"{min(len(X), profile.images_per_epoch or len(X)):,} digits: trained in "
              f"{time.perf_counter() - start:.0f} s")
        judge = load_judge(X_test, args.samples, "cpu")
        for e in profile.keep_epochs:
            print(f"epoch {e:3d}: {judge_time_conditioned(after_epoch(model, history, e), judge, profile.num_steps)}")


def evaluate(args):
    from pathlib import Path

    from course_utils.part_b.reference import load_reference

    X_test, _ = load_mnist(args.data_root, train=False)
    judge = load_judge(X_test, args.samples, "cpu")
    steps = args.steps or [get_profile("cpu").num_steps]
    for path in sorted(Path(args.evaluate).glob("epoch_*.pt"), key=lambda p: int(p.stem.split("_")[1])):
        model = load_reference(path)   # reads the width from the file
        for k in steps:
            print(f"{path.stem}, {k:2d} Euler steps: {judge_time_conditioned(model, judge, k)}", flush=True)


if __name__ == "__main__":
    main()
