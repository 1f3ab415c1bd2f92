"""Run every notebook headless with papermill, in course order, and time each one.

    python tools/run_notebooks.py --profile cpu --data-root ../shared/data [--publish] [-p NAME VALUE] [names...]

Executed notebooks go to BUILD/notebooks, figures (PNG/GIF) to BUILD/figures, timings to
BUILD/timings.md. Arguments are checked before any kernel starts; a failing notebook is recorded
in the timings and the others still run (the exit status is 1 if any failed). Checkpoints go to ./checkpoints/<profile> (COURSE_CKPT_DIR overrides), so a
second run reuses the trainings of the first. ``--publish`` also writes the executed notebooks
back into notebooks/ so that the committed copies carry the outputs of a real run.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import papermill

ROOT = Path(__file__).resolve().parents[1]


# A progress bar is useful while a cell runs and debris afterwards: a stored one reads "0%"
# forever (tqdm's widget falls back to its first text) or as a wall of carriage returns.
PROGRESS = re.compile(r"\d+%\||it/s\]|s/it\]|batch/s\]")


def is_progress(out) -> bool:
    if out.get("output_type") == "stream":
        return bool(PROGRESS.search(out.get("text", "")))
    data = out.get("data", {})
    return "application/vnd.jupyter.widget-view+json" in data and bool(PROGRESS.search(data.get("text/plain", "")))


def drop_progress(out):
    """``out`` without its progress-bar text (None if nothing else is left)."""
    if not is_progress(out):
        return out
    if out.get("output_type") != "stream":
        return None
    # keep the lines a bar shares a stream with ("Resuming from ...", "trained in ...")
    lines = [line.split("\r")[-1] for line in out["text"].split("\n")]
    kept = [line for line in lines if line.strip() and not PROGRESS.search(line)]
    if not kept:
        return None
    out["text"] = "\n".join(kept) + "\n"
    return out


def clean_for_publish(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.get("widgets", {}).pop("application/vnd.jupyter.widget-state+json", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.metadata.get("tags") == []:   # papermill adds an empty list to every cell
            del cell.metadata["tags"]
        if cell.cell_type == "code":
            cell.outputs = [o for o in map(drop_progress, cell.outputs) if o is not None]
    nbformat.write(nb, path)


def parse_value(text: str):
    """-p values as Python literals where they are one (3, 0.5, None, [1, 2]), else strings."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parameters_for(notebooks: list[Path], given: dict) -> dict[Path, dict]:
    """Each notebook's share of ``given``; a name that no selected notebook declares is an error."""
    declared = {nb: set(papermill.inspect_notebook(str(nb))) for nb in notebooks}
    known = set().union(*declared.values()) if declared else set()
    unknown = [name for name in given if name not in known]
    if unknown:
        hints = [f"{n} -> {close[0]}?" for n in unknown if (close := difflib.get_close_matches(n, known, 1))]
        raise SystemExit(f"unknown parameter(s) {', '.join(unknown)} for the selected notebooks; they "
                         f"declare {', '.join(sorted(known))}. {' '.join(hints)}")
    return {nb: {k: v for k, v in given.items() if k in declared[nb]} for nb in notebooks}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="notebook names or prefixes (default: all)")
    ap.add_argument("--profile", default="auto", choices=("smoke", "cpu", "full", "auto"))
    ap.add_argument("--build", default="build")
    ap.add_argument("--data-root", default=None, help="folder holding MNIST/raw (default: download)")
    ap.add_argument("--publish", action="store_true", help="store outputs in notebooks/")
    ap.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="a papermill parameter for the notebooks that declare it (repeatable)")
    args = ap.parse_args(argv)

    all_notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    notebooks = [nb for nb in all_notebooks if not args.names or any(nb.name.startswith(n) for n in args.names)]
    if not notebooks:
        ap.error(f"no notebook starts with {' or '.join(args.names)}; they are "
                 f"{', '.join(nb.stem for nb in all_notebooks)}")
    params = parameters_for(notebooks, {name: parse_value(value) for name, value in args.parameter})

    build = Path(args.build).resolve()
    (build / "notebooks").mkdir(parents=True, exist_ok=True)
    os.environ["COURSE_FIGURE_DIR"] = str(build / "figures")
    os.environ.setdefault("COURSE_CKPT_DIR", str(ROOT / "checkpoints"))
    # Headless: the kernels inherit this, and the course's bars (and diffusers') stay off; a
    # notebook run by hand keeps its bars. course_utils.common.progress honours it even where a
    # call passes disable= itself.
    os.environ["TQDM_DISABLE"] = "1"
    if args.profile != "auto":
        os.environ["COURSE_PROFILE"] = args.profile
    if args.data_root:
        os.environ["COURSE_DATA_ROOT"] = str(Path(args.data_root).resolve())

    timings, failed = [], []
    for nb in notebooks:
        out = build / "notebooks" / nb.name
        print(f"==> {nb.name}" + (f" {params[nb]}" if params[nb] else ""), flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(str(nb), str(out), parameters=params[nb], cwd=str(nb.parent),
                                       kernel_name="python3", progress_bar=False,
                                       # the kernel's "running over TCP without encryption" warning is
                                       # about Jupyter's local transport, not the course: keep it quiet
                                       extra_arguments=["--IPKernelApp.log_level=ERROR"])
        except Exception as err:   # record it, and let the other notebooks run
            failed.append(nb.name)
            first_line = (str(err).strip().splitlines() or [type(err).__name__])[-1]
            print(f"    FAILED: {first_line} (executed copy: {out})", flush=True)
        seconds = time.perf_counter() - start
        timings.append((nb.name, seconds))
        print(f"    {seconds:.1f} s", flush=True)
        if args.publish and nb.name not in failed:
            clean_for_publish(out)
            nb.write_bytes(out.read_bytes())
    lines = [f"| notebook | seconds (profile {args.profile}) |", "|---|---|"]
    lines += [f"| {name} | {s:.1f}{' (FAILED)' if name in failed else ''} |" for name, s in timings]
    lines.append(f"| total | {sum(s for _, s in timings):.1f} |")
    (build / "timings.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    json.dump(dict(timings), open(build / "timings.json", "w"), indent=1)
    if failed:
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
