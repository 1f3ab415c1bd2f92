"""Screen all 90 ordered (far, near) digit pairs as MNIST hybrids: up close read by the digit
judge (it can refuse "not a digit"), the far view (``illusions.far_view``, 10 px, smoothed) by
the far-view judge; N seeds per pair in one batch, the cpu profile's timesteps and the
backend's γ and low-pass; prints the 15 best. Confirm a pick at 100 seeds with its baseline:
`python benchmarks/quality.py --illusions` (candidates listed there).

    python benchmarks/hybrid_sweep.py 8       # 720 hybrids, about 5 min on one CPU thread
"""
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
torch.set_num_threads(1)
from course_utils.common.judge import load_judge
from course_utils.common.classifier import predict
from course_utils.common.profiles import get_profile
from course_utils.part_a.backend import load_backend, timesteps_for, MNIST_EXAMPLES as ex
from course_utils.part_a.edits import hybrid_image
from course_utils.part_a.illusions import far_view, load_far_judge
n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
profile = get_profile("cpu"); backend = load_backend("mnist", profile, seed=777); ts = timesteps_for(profile)
judge, far_judge = load_judge(), load_far_judge()
pairs = [(a, b) for a in range(10) for b in range(10) if a != b]
c1 = backend.embed_each([f"a {a}" for a, b in pairs for _ in range(n)])
c2 = backend.embed_each([f"a {b}" for a, b in pairs for _ in range(n)])
t = time.time()
x = hybrid_image(backend.model, c1, c2, backend.embed(""), ex.cfg_scale, ex.hybrid_kernel, ex.hybrid_sigma, len(c1), ts,
                 torch.Generator().manual_seed(777), backend.device, progress=False).cpu()
u = (x + 1) / 2
rf = predict(far_judge, far_view(u, 10, 28).clamp(0, 1)).view(len(pairs), n)
rn = predict(judge, u).view(len(pairs), n)
res = sorted((((rf[k] == a) & (rn[k] == b)).float().mean().item(), a, b, (rf[k] == a).float().mean().item(),
              (rn[k] == b).float().mean().item()) for k, (a, b) in enumerate(pairs))[::-1]
print(f"{time.time() - t:.0f} s; {n} seeds per pair; top 15 (far/near):")
for both, a, b, f1, f2 in res[:15]:
    print(f"  {a}/{b}: both {both:.0%} (far {f1:.0%}, near {f2:.0%})")
