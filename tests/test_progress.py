"""Progress bars honour TQDM_DISABLE, also where a call passes disable= itself (issue 20), and
the headless notebook runner sets it; without it the bars still show."""
import importlib.util
import logging
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from course_utils.common import progress, quiet
from course_utils.part_a import diffusion, edits
from course_utils.part_a.noise_models import OracleNoiseModel
from course_utils.part_a.schedule import strided_timesteps
from course_utils.part_b.train import fit

ROOT = Path(__file__).resolve().parents[1]
IM = torch.rand(1, 3, 8, 8) * 2 - 1
T5 = torch.zeros(1, 77, 4096)
TS = strided_timesteps(stride=330)


def everything_with_a_bar():
    diffusion.iterative_denoise(OracleNoiseModel(IM), torch.randn(1, 3, 8, 8), 0, T5, TS, progress=True)
    edits.sdedit_series(OracleNoiseModel(IM), IM, T5, T5, i_starts=(1, 2), timesteps=TS)
    model = nn.Conv2d(1, 1, 3, padding=1)
    fit(model, lambda m, x, y, g: m(x).pow(2).mean(), torch.rand(8, 1, 8, 8), epochs=1, batch_size=4,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0))
    with progress.tqdm(range(3), disable=False) as bar:   # an explicit disable=False
        list(bar)


@pytest.mark.parametrize("value", ["1", "true", "True", "yes"])
def test_tqdm_disable_silences_every_bar(value, monkeypatch, capfd):
    monkeypatch.setenv("TQDM_DISABLE", value)
    everything_with_a_bar()
    err = capfd.readouterr().err
    assert "%|" not in err and "it/s" not in err, err


@pytest.mark.parametrize("value", [None, "", "0", "false"])
def test_bars_show_without_it(value, monkeypatch, capfd):
    if value is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", value)
    everything_with_a_bar()
    err = capfd.readouterr().err
    for desc in ("denoise from t=990", "SDEdit", "training"):
        assert desc in err, (desc, err)
    assert not progress.bars_disabled()


def test_an_explicit_disable_still_disables(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert progress.tqdm(range(2), disable=True).disable


def test_the_headless_runner_sets_it_for_its_kernels(monkeypatch, tmp_path):
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools" / "run_notebooks.py")
    run_notebooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_notebooks)
    seen = []

    def execute(path, out, **kwargs):
        seen.append(os.environ.get("TQDM_DISABLE"))
        Path(out).write_text("{}")

    monkeypatch.setattr(run_notebooks.papermill, "execute_notebook", execute)
    for name in ("COURSE_CKPT_DIR", "COURSE_FIGURE_DIR", "COURSE_PROFILE", "COURSE_DATA_ROOT", "TQDM_DISABLE"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    assert run_notebooks.main(["12_", "--build", str(tmp_path)]) == 0
    assert seen == ["1"]


def test_the_bitsandbytes_kernels_message_is_dropped_and_nothing_else(caplog):
    quiet.install()
    quiet.install()   # idempotent
    logger = logging.getLogger(quiet.BNB_CPU_LOGGER)
    assert len([f for f in logger.filters if isinstance(f, quiet._DropKnownNoise)]) == 1
    with caplog.at_level(logging.WARNING):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: %s. Please make "
                       "sure you already `pip install kernels`", "No module named 'kernels'")
        logger.warning("something else went wrong")
    assert [r.getMessage() for r in caplog.records] == ["something else went wrong"]
