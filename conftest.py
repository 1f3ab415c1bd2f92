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


# ---- two workers (`make test` runs pytest-xdist: `-n 2 --no-loadscope-reorder`) -------------------
# nbval runs a notebook's cells as separate items on one kernel: they must stay together, in order,
# on one worker (xdist's own `--dist loadgroup` cannot do it under pytest 9, whose node ids it can
# no longer suffix; so the scheduler below keeps each notebook's cells in one unit and every other
# test a unit of its own). And the longest items go first, so that both workers finish together
# (a long item picked up last would leave a core idle): the emulated Colab (a fresh venv,
# minutes), nbgrader's autograde runs and the SIGKILL test, then every other notebook execution,
# then the unit tests.
import pytest  # noqa: E402

_FIRST = ("tests/test_emulated_colab.py::", "tests/test_nbgrader.py::test_nbgrader_autogrades",
          "tests/test_kill.py::")
_NOTEBOOK_RUNS = ("tests/test_notebooks.py::test_", "tests/test_student_edition.py::test_student_notebook_runs")


def _rank(item) -> int:
    nodeid = item.nodeid
    for k, prefix in enumerate(_FIRST):
        if nodeid.startswith(prefix):
            return k
    if nodeid.split("::")[0].endswith(".ipynb") or nodeid.startswith(_NOTEBOOK_RUNS):
        return len(_FIRST)
    return len(_FIRST) + 1


def pytest_collection_modifyitems(config, items):
    items.sort(key=_rank)   # stable: nbval's cells keep their order


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class OneKernelPerNotebook(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return path if path.endswith(".ipynb") else nodeid

    return OneKernelPerNotebook(config, log)


# ---- nbval only where it compares something --------------------------------------------------
# `--nbval-lax` compares the outputs of the cells marked NBVAL_CHECK_OUTPUT and nothing else; a
# notebook without one would only repeat tests/test_notebooks.py, which runs every notebook on the
# same profile and also checks its figures and that no token leaks. So nbval skips those.
def pytest_ignore_collect(collection_path, config):
    path = Path(str(collection_path))
    if path.suffix == ".ipynb" and path.parent.name == "notebooks" and config.getoption("nbval_lax", False):
        return "NBVAL_CHECK_OUTPUT" not in path.read_text()
    return None
