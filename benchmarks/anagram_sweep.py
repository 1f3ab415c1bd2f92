"""Screen all 90 ordered digit pairs as MNIST anagrams, read by the digit judge (a view it
refuses as "not a digit" counts as wrong): N seeds per pair, all in one batch, the cpu profile's
timesteps, the backend's view and γ; prints the 15 best pairs. Confirm a pick at 100 seeds with
its plain-sample baseline: `python benchmarks/quality.py --illusions` (candidates listed there).

    python benchmarks/anagram_sweep.py 8      # 720 anagrams, about 4 min on one CPU thread
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
from course_utils.part_a.edits import VIEWS, visual_anagram
n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
profile = get_profile("cpu")
backend = load_backend("mnist", profile, seed=777)
ts = timesteps_for(profile)
judge = load_judge()
view = VIEWS[ex.anagram_view]
pairs = [(a, b) for a in range(10) for b in range(10) if a != b]
c1 = backend.embed_each([f"a {a}" for a, b in pairs for _ in range(n)])
c2 = backend.embed_each([f"a {b}" for a, b in pairs for _ in range(n)])
t = time.time()
x = visual_anagram(backend.model, c1, c2, backend.embed(""), ex.cfg_scale, view, len(c1), ts,
                   torch.Generator().manual_seed(777), backend.device, progress=False).cpu()
r1 = predict(judge, (x + 1) / 2).view(len(pairs), n)
r2 = predict(judge, (view.apply(x) + 1) / 2).view(len(pairs), n)
res = []
for k, (a, b) in enumerate(pairs):
    both = ((r1[k] == a) & (r2[k] == b)).float().mean().item()
    res.append((both, a, b, (r1[k] == a).float().mean().item(), (r2[k] == b).float().mean().item()))
res.sort(reverse=True)
print(f"{time.time() - t:.0f} s; view {view.name}; {n} seeds per pair; top 15:")
for both, a, b, f1, f2 in res[:15]:
    print(f"  {a}/{b}: both {both:.0%} (upright {f1:.0%}, turned {f2:.0%})")
