"""Build notebooks from jupytext 'percent' scripts (how the notebooks are authored and edited).

    python tools/py2nb.py SRC.py [SRC.py ...]      ->  notebooks/<stem>.ipynb
    python tools/py2nb.py --to-py notebooks/X.ipynb  ->  X.py beside your cwd, for editing

Outputs are not kept: refresh them with `make publish`.
"""
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def to_notebook(src: Path) -> Path:
    nb = jupytext.read(src, fmt="py:percent")
    nb.metadata = {"kernelspec": KERNEL, "language_info": {"name": "python"},
                   "colab": {"provenance": []}}
    for cell in nb.cells:
        if cell.metadata.get("tags") == []:
            del cell.metadata["tags"]
    out = ROOT / "notebooks" / f"{src.stem}.ipynb"
    nbformat.write(nb, out)
    return out


if __name__ == "__main__":
    if sys.argv[1] == "--to-py":
        for p in map(Path, sys.argv[2:]):
            jupytext.write(jupytext.read(p), Path(p.stem + ".py"), fmt="py:percent")
    else:
        for p in map(Path, sys.argv[1:]):
            print(to_notebook(p))
