"""Part A §1.7.1: hand-drawn input images.

In Colab, ``draw()`` opens a small HTML canvas under the cell and waits for "Done". Elsewhere
(Jupyter, papermill, tests) there is no way to wait for a drawing, so ``sketches()`` gives simple
drawings rendered with PIL instead: a sun over hills and a tree, the kind of thing one would draw.
"""
from __future__ import annotations

import base64
import io
import math

import torch
from PIL import Image, ImageDraw

from ..common.env import in_colab
from .images import pil_to_tensor

_CANVAS_HTML = """
<div style="font-family:sans-serif">
<p>Draw with the mouse; pick a colour; press <b>Done</b> when finished.</p>
<canvas id="c" width="{size}" height="{size}" style="border:1px solid #888;background:white;cursor:crosshair"></canvas><br>
<input type="color" id="col" value="#1f4fbf"> width <input type="range" id="w" min="2" max="30" value="8">
<button id="clear">Clear</button> <button id="done">Done</button>
</div>
<script>
var c = document.getElementById('c'), ctx = c.getContext('2d'), down = false;
ctx.fillStyle = 'white'; ctx.fillRect(0, 0, c.width, c.height); ctx.lineCap = 'round';
function pos(e) {{ var r = c.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; }}
c.onmousedown = function(e) {{ down = true; var p = pos(e); ctx.beginPath(); ctx.moveTo(p[0], p[1]); }};
c.onmouseup = c.onmouseleave = function() {{ down = false; }};
c.onmousemove = function(e) {{ if (!down) return; var p = pos(e);
  ctx.strokeStyle = document.getElementById('col').value; ctx.lineWidth = document.getElementById('w').value;
  ctx.lineTo(p[0], p[1]); ctx.stroke(); }};
document.getElementById('clear').onclick = function() {{ ctx.fillStyle = 'white'; ctx.fillRect(0, 0, c.width, c.height); }};
var finished = new Promise(function(resolve) {{ document.getElementById('done').onclick = function() {{ resolve(c.toDataURL('image/png')); }}; }});
</script>
"""


def draw_pil(size: int = 256) -> Image.Image | None:
    """Draw in a Colab canvas (the cell waits for "Done"); the drawing, or None outside Colab."""
    if not in_colab():
        return None
    from google.colab.output import eval_js  # type: ignore
    from IPython.display import HTML, display

    display(HTML(_CANVAS_HTML.format(size=size)))
    data_url = eval_js("finished")
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))


def draw(size: int = 256, out_size: int = 64) -> torch.Tensor | None:
    """Draw an image in a Colab canvas; returns (1, 3, 64, 64) in [-1, 1], or None outside Colab."""
    img = draw_pil(size)
    return None if img is None else pil_to_tensor(img, out_size)


def _sun(size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), (120, 180, 255))
    d = ImageDraw.Draw(img)
    s = size / 256
    d.polygon([(0, 200 * s), (90 * s, 140 * s), (180 * s, 190 * s), (256 * s, 150 * s),
               (256 * s, 256 * s), (0, 256 * s)], fill=(60, 160, 60))
    d.ellipse([150 * s, 30 * s, 220 * s, 100 * s], fill=(255, 210, 0))
    for k in range(8):  # rays
        a = k * math.pi / 4
        cx, cy = 185 * s, 65 * s
        d.line([(cx + 45 * s * math.cos(a), cy + 45 * s * math.sin(a)),
                (cx + 65 * s * math.cos(a), cy + 65 * s * math.sin(a))], fill=(255, 190, 0), width=int(6 * s) or 1)
    return img


def _tree(size: int) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    s = size / 256
    d.rectangle([0, 220 * s, 256 * s, 256 * s], fill=(110, 190, 90))
    d.rectangle([112 * s, 140 * s, 144 * s, 230 * s], fill=(120, 70, 30))
    d.ellipse([60 * s, 30 * s, 196 * s, 170 * s], fill=(30, 130, 40))
    for x, y in [(95, 80), (150, 70), (120, 120), (160, 115)]:  # apples
        d.ellipse([(x - 8) * s, (y - 8) * s, (x + 8) * s, (y + 8) * s], fill=(210, 30, 30))
    return img


SKETCHES = {"sun over hills": _sun, "tree": _tree}


def sketches(size: int = 64) -> dict[str, torch.Tensor]:
    """Simple drawings rendered with PIL (the headless stand-in for ``draw``)."""
    return {name: pil_to_tensor(fn(256), size) for name, fn in SKETCHES.items()}


def drawings(use_canvas: bool = True, count: int = 2, size: int = 64) -> dict[str, torch.Tensor]:
    """``count`` canvas drawings in Colab when ``use_canvas``; else the PIL sketches."""
    if use_canvas and in_colab():
        return {f"drawing {k + 1}": draw(out_size=size) for k in range(count)}
    return sketches(size)
