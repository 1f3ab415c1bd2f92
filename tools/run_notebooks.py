"""Run every notebook headless with papermill, in course order, and time each one.

    python tools/run_notebooks.py --profile cpu --data-root ../shared/data [--publish] [names...]

Executed notebooks go to BUILD/notebooks, figures (PNG/GIF) to BUILD/figures, timings to
BUILD/timings.md. Checkpoints go to ./checkpoints/<profile> (COURSE_CKPT_DIR overrides), so a
second run reuses the trainings of the first. ``--publish`` also writes the executed notebooks
back into notebooks/ so that the committed copies carry the outputs of a real run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import papermill

ROOT = Path(__file__).resolve().parents[1]


def clean_for_publish(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.get("widgets", {}).pop("application/vnd.jupyter.widget-state+json", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="notebook names or prefixes (default: all)")
    ap.add_argument("--profile", default="auto", help="smoke, cpu, full or auto")
    ap.add_argument("--build", default="build")
    ap.add_argument("--data-root", default=None, help="folder holding MNIST/raw (default: download)")
    ap.add_argument("--publish", action="store_true", help="store outputs in notebooks/")
    args = ap.parse_args(argv)

    build = Path(args.build).resolve()
    (build / "notebooks").mkdir(parents=True, exist_ok=True)
    os.environ["COURSE_FIGURE_DIR"] = str(build / "figures")
    os.environ.setdefault("COURSE_CKPT_DIR", str(ROOT / "checkpoints"))
    if args.profile != "auto":
        os.environ["COURSE_PROFILE"] = args.profile
    if args.data_root:
        os.environ["COURSE_DATA_ROOT"] = str(Path(args.data_root).resolve())

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.names:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(n) for n in args.names)]
    timings = []
    for nb in notebooks:
        out = build / "notebooks" / nb.name
        print(f"==> {nb.name}", flush=True)
        start = time.perf_counter()
        papermill.execute_notebook(str(nb), str(out), cwd=str(nb.parent), kernel_name="python3",
                                   progress_bar=False)
        seconds = time.perf_counter() - start
        timings.append((nb.name, seconds))
        print(f"    {seconds:.1f} s", flush=True)
        if args.publish:
            clean_for_publish(out)
            nb.write_bytes(out.read_bytes())
    lines = [f"| notebook | seconds (profile {args.profile}) |", "|---|---|"]
    lines += [f"| {name} | {s:.1f} |" for name, s in timings]
    lines.append(f"| total | {sum(s for _, s in timings):.1f} |")
    (build / "timings.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    json.dump(dict(timings), open(build / "timings.json", "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
