"""The committed notebooks are what most readers see first (GitHub, Colab): their stored outputs
must be clean. No errors, no progress-bar debris, no widget without a static figure beside it
(GitHub and a headless run show widgets as raw text), and no figure too small to read."""
import base64
import json
import re
import struct
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
PROGRESS = re.compile(r"\d+%\|| \d+/\d+ \[\d\d:\d\d|it/s\]|batch/s\]|█")
MIN_LONG_SIDE = 300   # px: smaller figures are unreadable on GitHub


def png_size(data: str) -> tuple[int, int]:
    raw = base64.b64decode(data)
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", raw[16:24])


def output_text(out: dict) -> str:
    if out["output_type"] == "stream":
        return "".join(out["text"])
    return "".join(out.get("data", {}).get("text/plain", ""))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:5])
def test_stored_outputs_are_clean(path):
    nb = json.loads(path.read_text())
    problems = []
    for k, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        outputs = cell.get("outputs", [])
        has_png = any("image/png" in o.get("data", {}) for o in outputs)
        for out in outputs:
            if out["output_type"] == "error":
                problems.append(f"cell {k}: error {out['ename']}: {out['evalue'][:80]}")
            if PROGRESS.search(output_text(out)):
                problems.append(f"cell {k}: progress-bar text {output_text(out)[:60]!r}")
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data and not has_png:
                problems.append(f"cell {k}: a widget with no static figure beside it")
            if "image/png" in data:
                w, h = png_size(data["image/png"])
                if max(w, h) < MIN_LONG_SIDE:
                    problems.append(f"cell {k}: a {w}×{h} px figure (long side < {MIN_LONG_SIDE})")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_png_size_reads_the_header():
    # a 1×1 PNG made by hand: signature, IHDR length and type, then width and height
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 640, 2)
    assert png_size(base64.b64encode(header + b"\0" * 20).decode()) == (640, 2)
