"""tools/run_notebooks.py and the notebooks' own parameter check: wrong arguments are named
before any kernel starts, and one failing notebook neither hides the others nor their timings."""
import importlib.util
import os
from pathlib import Path

import nbformat
import papermill
import pytest

from course_utils.common.env import check_parameters

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools" / "run_notebooks.py")
run_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_notebooks)


@pytest.fixture
def kernels(monkeypatch):
    """Record notebook executions instead of starting kernels; '13_' fails."""
    calls = []

    def execute(path, out, parameters=None, **kwargs):
        calls.append((Path(path).name, parameters))
        if Path(path).name.startswith("13_"):
            raise RuntimeError("cell 4 raised\nValueError: something broke")
        Path(out).write_text("{}")
    monkeypatch.setattr(run_notebooks.papermill, "execute_notebook", execute)
    for name in ("COURSE_CKPT_DIR", "COURSE_FIGURE_DIR", "COURSE_PROFILE", "COURSE_DATA_ROOT", "TQDM_DISABLE"):
        monkeypatch.setenv(name, os.environ.get(name, ""))    # main() sets them: restore after
    return calls


@pytest.mark.parametrize("argv, message", [
    (["--profile", "huge"], "invalid choice: 'huge'"),
    (["17_", "-p", "EPOCHS", "3"], "unknown parameter(s) EPOCHS"),
    (["17_", "-p", "SEDD", "1"], "SEDD -> SEED?"),
    (["99_"], "no notebook starts with 99_"),
])
def test_bad_arguments_fail_before_any_kernel_starts(kernels, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as err:
        run_notebooks.main(argv + ["--build", str(tmp_path)])
    assert err.value.code != 0
    assert message in str(err.value.code) + capsys.readouterr().err
    assert kernels == []


def test_parameters_go_to_the_notebooks_that_declare_them(kernels, tmp_path):
    assert run_notebooks.main(["12_", "14_", "-p", "SEED", "3", "-p", "DATA_ROOT", "None",
                               "--build", str(tmp_path)]) == 0
    assert kernels == [("12_B1.1_unet.ipynb", {"SEED": 3}),
                       ("14_B1.2.2_out_of_distribution.ipynb", {"SEED": 3, "DATA_ROOT": None})]


def test_a_failing_notebook_is_recorded_and_the_others_still_run(kernels, tmp_path, capsys):
    assert run_notebooks.main(["12_", "13_", "14_", "--build", str(tmp_path)]) == 1
    assert [name[:3] for name, _ in kernels] == ["12_", "13_", "14_"]
    timings = (tmp_path / "timings.md").read_text()
    assert "| 13_B1.2_denoiser.ipynb |" in timings and "(FAILED)" in timings
    assert "| 12_B1.1_unet.ipynb |" in timings and "| 14_B1.2.2_out_of_distribution.ipynb |" in timings
    assert timings.count("FAILED") == 1
    out = capsys.readouterr()
    assert "FAILED: ValueError: something broke" in out.out and "13_B1.2_denoiser" in out.err


# ---- inside the notebook: papermill injects any name; get_profile rejects undeclared ones ----------

PARAMS_CELL = 'PROFILE = "auto"   # a comment\nSEED = 0\nGUIDANCE = 5.0\n'


@pytest.mark.parametrize("injected, message", [
    ('# Parameters\nPROFILE = "smoke"\nEPOCHS = 3\n', r"unknown notebook parameter\(s\) EPOCHS"),
    ("# Parameters\nD = 8\nSEDD = 1\n", "D, SEDD: .*PROFILE, SEED, GUIDANCE.*SEDD -> did you mean SEED"),
])
def test_check_parameters_names_undeclared_papermill_parameters(injected, message):
    with pytest.raises(ValueError, match=message):
        check_parameters(["import os", PARAMS_CELL, injected, "profile = get_profile(PROFILE)"])


def test_check_parameters_accepts_declared_ones_and_runs_without_papermill():
    check_parameters(["import os", PARAMS_CELL, '# Parameters\nSEED = 3\nPROFILE = "smoke"\n', "x = 1"])
    check_parameters(["import os", PARAMS_CELL, "x = 1"])
    check_parameters()                       # not in IPython: nothing to check


def test_a_misspelt_papermill_parameter_stops_the_notebook(tmp_path):
    """End to end through papermill and a kernel, with the first two cells every notebook has."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    params = nbformat.v4.new_code_cell(PARAMS_CELL)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "from course_utils.common.profiles import get_profile\nprint(get_profile(PROFILE).name)")]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    run = lambda p: papermill.execute_notebook(str(tmp_path / "nb.ipynb"), str(tmp_path / "out.ipynb"),  # noqa: E731
                                               parameters=p, kernel_name="python3", progress_bar=False)
    with pytest.raises(papermill.PapermillExecutionError, match="unknown notebook parameter.*EPOCHS"):
        run({"PROFILE": "smoke", "EPOCHS": 3})
    # (declared parameters pass: every notebook of test_notebooks.py gets PROFILE this way)
