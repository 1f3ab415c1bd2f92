"""The notebooks' Colab badges and install lines come from one setting in pyproject.toml, in both
editions: notebooks/ (badges to notebooks/NAME) and student/ (badges to student/NAME)."""
import importlib.util
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("repo_url", ROOT / "tools" / "repo_url.py")
repo_url = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(repo_url)


def test_every_notebook_agrees_with_the_setting():
    url, branch = repo_url.setting()
    assert repo_url.disagreements(url, branch) == [], "run: python tools/repo_url.py"
    assert sorted((ROOT / "student").glob("*.ipynb")), "no student edition: run make student"
    assert repo_url.disagreements(url, branch, ROOT / "student") == [], "run: make student"


def test_a_student_notebook_opens_the_student_copy():
    url, branch = repo_url.setting()
    for path in sorted((ROOT / "student").glob("*.ipynb")):
        text = path.read_text()
        assert repo_url.badge_url(path.name, url, branch, "student") in text, path.name
        assert "/notebooks/" + path.name not in text, f"{path.name} links to the solution edition"


def test_a_fork_changes_one_setting_and_every_link_follows(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "student").mkdir()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb"))[:3]:
        shutil.copy(path, tmp_path / "notebooks" / path.name)
        shutil.copy(ROOT / "student" / path.name, tmp_path / "student" / path.name)
    repo_url.write_setting("https://github.com/me/fork", "dev", tmp_path / "pyproject.toml")
    url, branch = repo_url.setting(tmp_path / "pyproject.toml")
    assert (url, branch) == ("https://github.com/me/fork", "dev")
    for folder in ("notebooks", "student"):
        assert len(repo_url.disagreements(url, branch, tmp_path / folder)) == 3
        for path in (tmp_path / folder).glob("*.ipynb"):
            old = path.read_text()
            path.write_text(repo_url.expected_text(path, url, branch))
            new = path.read_text()
            assert "diffusion-course/diffusion-course" not in new
            assert f"colab.research.google.com/github/me/fork/blob/dev/{folder}/{path.name}" in new
            assert "git+https://github.com/me/fork@dev" in new
            assert len(new.splitlines()) == len(old.splitlines())  # only the URLs changed
        assert repo_url.disagreements(url, branch, tmp_path / folder) == []
    assert "[tool.pytest.ini_options]" in (tmp_path / "pyproject.toml").read_text()


def test_a_badge_for_another_notebook_is_caught(tmp_path):
    url, branch = repo_url.setting()
    src = sorted((ROOT / "notebooks").glob("*.ipynb"))[0]
    (tmp_path / "99_copy.ipynb").write_text(src.read_text())  # badge still names the original
    assert repo_url.disagreements(url, branch, tmp_path)
