"""Does an EMA of the weights help the cpu profile's class-conditioned model?

    python benchmarks/ema.py --data-root ../shared/data [--decays 0.995 0.999] [--n 500]

Trains the class-conditioned flow model as notebook 17 does (with the learning-rate decay),
once per EMA decay β, into a temporary checkpoint folder, and prints class accuracy and FD
against the real-vs-real floor for γ = 2, 3, 5. Compare with notebook 17's γ table, which is
the same training without EMA. About 7 minutes per β on two cores.
"""
import argparse
import os
import tempfile
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data-root", default=None)
parser.add_argument("--decays", type=float, nargs="+", default=[0.995, 0.999])
parser.add_argument("--profile", default="cpu")
parser.add_argument("--n", type=int, default=500)
args = parser.parse_args()
os.environ["COURSE_CKPT_DIR"] = tempfile.mkdtemp()   # never reuse or overwrite the course's checkpoints

os.environ.setdefault("TQDM_DISABLE", "1")   # a benchmark prints tables, not progress bars

from course_utils.common.data import load_mnist  # noqa: E402  (after COURSE_CKPT_DIR is set)
from course_utils.common.env import get_device  # noqa: E402
from course_utils.common.metrics import load_judge  # noqa: E402
from course_utils.common.profiles import get_profile  # noqa: E402
from course_utils.part_b.evaluation import judge_class_conditioned  # noqa: E402
from course_utils.part_b.recipes import train_flow  # noqa: E402

device, profile = get_device(), get_profile(args.profile)
x, y = load_mnist(args.data_root, train=True, download=False, device=device)
x_test, _ = load_mnist(args.data_root, train=False, download=False)
judge = load_judge(x_test, args.n, device)
for decay in args.decays:
    start = time.perf_counter()
    model, _ = train_flow(x, y, profile, device, class_conditioned=True, ema_decay=decay)
    print(f"EMA β = {decay}: trained in {time.perf_counter() - start:.0f} s", flush=True)
    for gamma in (2.0, 3.0, 5.0):
        q = judge_class_conditioned(model, judge, gamma, profile.num_steps, seed=0)
        print(f"  γ = {gamma}, {profile.num_steps} steps: {q}", flush=True)
