"""The repository the notebooks point at: one setting, one command.

The setting is ``[tool.course-utils] repository`` (and ``branch``) in pyproject.toml. Every
notebook's "Open in Colab" badge and its ``!pip install ... @ git+URL`` line are derived from it,
in both editions: notebooks/ (badges to notebooks/NAME) and student/ (badges to student/NAME;
``tools/exercises.py student`` writes them from the same setting).

    python tools/repo_url.py                      rewrite notebooks/ and student/ to match the setting
    python tools/repo_url.py https://github.com/ME/FORK [--branch B]   change the setting, rewrite
    python tools/repo_url.py --check              list notebooks that disagree (exit 1 if any)

The rewrite edits the URLs in the notebook files as text, so nothing else in them changes.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
NOTEBOOKS = ROOT / "notebooks"
STUDENT = ROOT / "student"
FOLDERS = (NOTEBOOKS, STUDENT)   # the solution edition and the student edition

_SETTING = re.compile(r'^(repository|branch)\s*=\s*"([^"]*)"', re.M)
_SECTION = re.compile(r"^\[tool\.course-utils\]\s*$(.*?)(?=^\[|\Z)", re.M | re.S)
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^/\s\"]+/[^/\s\"]+/blob/[^/\s\"]+"
                   r"/(?:notebooks|student)/[^\s\"]+?\.ipynb")
INSTALL = re.compile(r"git\+https://github\.com/[^/\s\"@\\]+/[^/\s\"@\\]+?(?:\.git)?(?:@[^\s\"\\#]+)?(?=[\s\"\\#]|$)")


def setting(pyproject: Path = PYPROJECT) -> tuple[str, str]:
    """(repository URL, branch) from pyproject.toml."""
    section = _SECTION.search(pyproject.read_text())
    values = dict(_SETTING.findall(section.group(1))) if section else {}
    if "repository" not in values:
        raise SystemExit(f"{pyproject} has no [tool.course-utils] repository = \"https://github.com/OWNER/NAME\"")
    return values["repository"].rstrip("/"), values.get("branch", "main")


def owner_name(url: str) -> str:
    match = re.fullmatch(r"https://github\.com/([^/\s]+/[^/\s]+?)(?:\.git)?/?", url)
    if not match:
        raise SystemExit(f"{url!r} is not a GitHub repository URL: give https://github.com/OWNER/NAME")
    return match.group(1)


def badge_url(notebook: str, url: str, branch: str, folder: str = "notebooks") -> str:
    """The Colab link of ``folder/notebook``: folder "notebooks" (solutions) or "student"."""
    return f"https://colab.research.google.com/github/{owner_name(url)}/blob/{branch}/{folder}/{notebook}"


def edition(path: Path) -> str:
    """The folder a notebook's badge names: "student" for student/, else "notebooks"."""
    return STUDENT.name if path.parent.name == STUDENT.name else NOTEBOOKS.name


def install_url(url: str, branch: str) -> str:
    # pip takes the repository's default branch without "@"; name the branch only when needed
    ref = "" if branch == "main" else f"@{branch}"
    return f"git+https://github.com/{owner_name(url)}{ref}"


def expected_text(path: Path, url: str, branch: str) -> str:
    text = path.read_text()
    text = BADGE.sub(badge_url(path.name, url, branch, edition(path)), text)
    return INSTALL.sub(install_url(url, branch), text)


def disagreements(url: str, branch: str, folder: Path = NOTEBOOKS) -> list[str]:
    """Notebooks whose badge or install line do not match the setting, or that lack either."""
    bad = []
    for path in sorted(folder.glob("*.ipynb")):
        text = path.read_text()
        if not BADGE.search(text) or not INSTALL.search(text):
            bad.append(f"{path.name}: no Colab badge or no git+https install line")
        elif expected_text(path, url, branch) != text:
            bad.append(f"{path.name}: points elsewhere than {url}@{branch}")
    return bad


def write_setting(url: str, branch: str, pyproject: Path = PYPROJECT) -> None:
    owner_name(url)
    text = pyproject.read_text()
    block = f'[tool.course-utils]\nrepository = "{url}"\nbranch = "{branch}"\n'
    if _SECTION.search(text):
        text = _SECTION.sub(lambda m: block + "\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + block
    pyproject.write_text(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?", help="new repository URL, https://github.com/OWNER/NAME")
    parser.add_argument("--branch", help="branch the badges and install line use (default: the setting's)")
    parser.add_argument("--check", action="store_true", help="only report notebooks that disagree")
    args = parser.parse_args(argv)
    url, branch = setting()
    if args.check:
        bad = [f"{folder.name}/{line}" for folder in FOLDERS if folder.exists()
               for line in disagreements(url, branch, folder)]
        print("\n".join(bad) or f"every notebook points at {url}@{branch}")
        return 1 if bad else 0
    if args.url or args.branch:
        url, branch = (args.url or url).rstrip("/"), args.branch or branch
        write_setting(url, branch)
    changed = 0
    for path in [p for folder in FOLDERS for p in sorted(folder.glob("*.ipynb"))]:
        new = expected_text(path, url, branch)
        if new != path.read_text():
            path.write_text(new)
            changed += 1
    print(f"{changed} notebooks now point at {url}@{branch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
