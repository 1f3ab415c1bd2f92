"""Test-session environment, set before any notebook kernel starts (kernels inherit it).

Tests and nbval run offline on the smoke profile, with a synthetic MNIST and throw-away
checkpoint and figure folders: a fresh clone needs no data and no network.
"""
import os
import tempfile
from pathlib import Path

_tmp = Path(tempfile.mkdtemp(prefix="course-tests-"))
os.environ["COURSE_PROFILE"] = "smoke"
os.environ.setdefault("COURSE_DEVICE", "cpu")
os.environ["COURSE_CKPT_DIR"] = str(_tmp / "checkpoints")
os.environ["COURSE_FIGURE_DIR"] = str(_tmp / "figures")
os.environ["COURSE_DATA_ROOT"] = str(_tmp / "data")
# Notebook kernels show figures inline by themselves: a global MPLBACKEND=Agg would silence them.
os.environ.pop("MPLBACKEND", None)
# The smoke models are tiny: one thread is as fast, and immune to oversubscription when other
# work shares the cores (measured here: a tiny-UNet forward 60x slower with 2 threads under load).
os.environ["OMP_NUM_THREADS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

from course_utils.common.data import make_fake_mnist  # noqa: E402

make_fake_mnist(_tmp / "data", num_train=256, num_test=64)
