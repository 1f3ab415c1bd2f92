"""Every notebook runs headless under papermill on the smoke profile (see conftest.py), with a
(fake) HF_TOKEN in its environment that must not appear anywhere in the executed notebook."""
import re
from pathlib import Path

import nbformat
import papermill
import pytest

# Notebooks whose lesson is printed, not drawn (architecture and shapes).
NO_FIGURE = {"12_B1.1_unet"}
# Shaped like a real token, so that code printing tokens (or masking only their start) shows up.
FAKE_TOKEN = "hf_testTOKENnotREAL0123456789abcdefXYZ"
NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_smoke_profile(path, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    out = tmp_path / path.name
    papermill.execute_notebook(str(path), str(out), parameters={"PROFILE": "smoke"},
                               cwd=str(path.parent), kernel_name="python3", progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images or path.stem in NO_FIGURE, f"{path.name} showed no figure"
    assert_no_token(out)


def assert_no_token(out):
    text = out.read_text()
    assert FAKE_TOKEN not in text and FAKE_TOKEN[-12:] not in text, f"HF_TOKEN leaked into {out.name}"


# On CPU, "auto" gives the MNIST backend; these run the DeepFloyd code path on the tiny IF-shaped
# model instead (section 0 uses IFPipeline itself; the anagram and hybrid use 3-channel 64×64).
TINY = [p for p in NOTEBOOKS if p.stem.startswith(("00_", "08_", "10_"))]


@pytest.mark.parametrize("path", TINY, ids=[p.stem for p in TINY])
def test_part_a_notebook_runs_on_the_tiny_if_model(path, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    out = tmp_path / path.name
    papermill.execute_notebook(str(path), str(out), parameters={"PROFILE": "smoke", "BACKEND": "tiny"},
                               cwd=str(path.parent), kernel_name="python3", progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    assert any("backend 'tiny'" in "".join(o.get("text", "")) for c in nb.cells if c.cell_type == "code"
               for o in c.get("outputs", []))
    assert_no_token(out)


def test_no_hub_token_in_the_committed_notebooks():
    """The published outputs come from real runs: a token printed there would be on GitHub."""
    for path in NOTEBOOKS:
        found = re.findall(r"hf_[A-Za-z0-9]{30,}", path.read_text())
        assert not found, f"{path.name} holds what looks like a Hugging Face token"
